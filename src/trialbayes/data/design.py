"""From validated TrialData and a model spec to the arrays a piecewise-exponential model needs.

Per patient only sufficient statistics are kept (O(N + K)): the interval of exit, the time spent
in it, the event indicator, the treatment indicator, standardised covariates, the centre index and
the biomarker basis. The baseline has K intervals [s_k, s_{k+1}) with s_0 = 0; the last is open.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from scipy.interpolate import BSpline

from ..config.schema import Baseline, ModelSpec
from ..core.errors import DataError
from .columns import rows_text
from .missing import MissingDesign, build_missing
from .table import TrialData


def check_cuts(cuts, tmax: float) -> None:
    """The one check of configured cut points: every one before the last follow-up time."""
    beyond = [float(c) for c in cuts if c >= tmax]
    if beyond:
        raise DataError(
            f"baseline.cuts: cut points {beyond} are at or beyond the last follow-up time {tmax:g}"
        )


def check_log_biomarker(values: np.ndarray, spec: ModelSpec, where=rows_text) -> None:
    """The one check of a biomarker a model log-transforms: every x + biomarker_offset > 0
    (rows named by ``where``, e.g. TrialData.rows_text: the file's rows and ids; missing
    values, left to data.missing, are not checked)."""
    c = spec.biomarker_offset
    bad = np.asarray(values, float) + c <= 0
    if bad.any():
        shown = f"log({spec.biomarker} + {c:g})" if c else f"log({spec.biomarker})"
        hint = "; a biomarker with zeros: set models[].biomarker_offset (log(x + c))"
        hint = "" if c else hint
        raise DataError(
            f"column '{spec.biomarker}' (biomarker): values ≤ {0.0 - c:g} at {where(bad)}, but "
            f"model '{spec.name}' ({spec.interaction}) uses {shown}{hint}"
        )


def cut_points(times: np.ndarray, events: np.ndarray, baseline: Baseline) -> np.ndarray:
    """Interior cut points: as given, or at quantiles of the event times."""
    if baseline.cuts:
        check_cuts(baseline.cuts, float(times.max()))
        return np.asarray(baseline.cuts, float)
    ev_t = np.sort(times[events == 1])
    k = baseline.n_intervals
    if k == 1 or len(ev_t) < 2:
        return np.array([])
    q = np.quantile(ev_t, np.arange(1, k) / k)
    q = np.unique(np.round(q, 6))
    return q[(q > 0) & (q < times.max())]


def interval_stats(times: np.ndarray, cuts: np.ndarray):
    """Interval index of exit (half-open on the left: (s_k, s_{k+1}]) and time spent in it."""
    starts = np.concatenate([[0.0], cuts])
    idx = np.searchsorted(cuts, times, side="left")
    return idx.astype("int64"), times - starts[idx], starts


@dataclass
class BiomarkerBasis:
    """Effect-modification basis in the (log-)biomarker, zero at the reference value.

    linear / log_linear: one column, z = (g(x) - centre) / scale with g = identity or
    log(x + offset) (``offset``: models[].biomarker_offset, 0 by default).
    spline: z plus penalised cubic B-spline deviations in mixed-model form (Eilers & Marx P-spline,
    second-order difference penalty reparametrised so the penalised part has iid N(0, σ²)
    coefficients; σ → 0 recovers the linear model).
    """

    kind: str
    log: bool
    centre: float
    scale: float
    reference: float  # in original units (the median)
    knots: np.ndarray | None = None
    transform: np.ndarray | None = None  # nb × (nb - 2)
    lo: float = 0.0
    hi: float = 0.0
    ref_row: np.ndarray | None = None
    offset: float = 0.0  # c in log(x + c) (log scale only)

    @classmethod
    def fit(
        cls, x: np.ndarray, kind: str, n_basis: int = 8, offset: float = 0.0
    ) -> BiomarkerBasis:
        log = kind in ("log_linear", "spline")
        ref = float(np.median(x))
        b = cls(kind=kind, log=log, centre=0.0, scale=1.0, reference=ref, offset=offset)
        b.centre, b.scale = float(b.g(ref)), float(np.std(b.g(x)))
        if kind == "spline":
            z = b._z(x)
            b.lo, b.hi = float(z.min()), float(z.max())
            inner = np.linspace(b.lo, b.hi, n_basis - 2)
            step = inner[1] - inner[0]
            b.knots = np.concatenate(
                [b.lo - step * np.arange(3, 0, -1), inner, b.hi + step * np.arange(1, 4)]
            )
            d = np.diff(np.eye(n_basis), 2, axis=0)
            w, v = np.linalg.eigh(d.T @ d)
            keep = w > 1e-9 * w.max()
            b.transform = v[:, keep] / np.sqrt(w[keep])
            b.ref_row = b._penalised_raw(np.array([0.0]))[0]
        return b

    def g(self, x):
        """The biomarker on the model's scale: x, or log(x + offset)."""
        x = np.asarray(x, float)
        return np.log(x + self.offset) if self.log else x

    def g_inverse(self, g):
        """Original units from the model's scale."""
        g = np.asarray(g, float)
        return np.exp(g) - self.offset if self.log else g

    def scale_label(self, name: str) -> str:
        """The model's scale in words: 'pnfh', 'log pnfh' or 'log(pnfh + 1)'."""
        if not self.log:
            return name
        return f"log({name} + {self.offset:g})" if self.offset else f"log {name}"

    @property
    def transform_name(self) -> str:
        """'identity', 'log' or 'log(x + c)' (results hr_curve.transform)."""
        if not self.log:
            return "identity"
        return f"log(x + {self.offset:g})" if self.offset else "log"

    def _z(self, x):
        return (self.g(x) - self.centre) / self.scale

    def _penalised_raw(self, z):
        zc = np.clip(z, self.lo, self.hi)
        bs = BSpline.design_matrix(zc, self.knots, 3, extrapolate=True).toarray()
        return bs @ self.transform

    def n_penalised(self) -> int:
        return 0 if self.transform is None else self.transform.shape[1]

    def evaluate(self, x) -> tuple[np.ndarray, np.ndarray]:
        """(linear column z, penalised columns) at biomarker values ``x`` (original units)."""
        x = np.asarray(x, float)
        if self.log and (x + self.offset <= 0).any():  # data checked by check_log_biomarker
            raise ValueError(f"a log-scale basis is evaluated at values > {-self.offset:g} only")
        z = self._z(x)
        pen = (
            self._penalised_raw(z) - self.ref_row
            if self.kind == "spline"
            else np.zeros((len(z), 0))
        )
        return z, pen

    def per_unit_slope(self) -> float:
        """Multiply a coefficient of z by this to get it per original unit (linear) or per log
        unit."""
        return 1.0 / self.scale


@dataclass
class Design:
    """The arrays of one model's piecewise-exponential likelihood (see the module docstring):
    baseline intervals, per-patient exit interval and time in it, event, arm, standardised
    covariates, centre index, biomarker basis, and what is imputed."""

    spec: ModelSpec
    cuts: np.ndarray
    starts: np.ndarray
    widths: np.ndarray
    interval: np.ndarray
    offset: np.ndarray
    event: np.ndarray
    treat: np.ndarray
    X: np.ndarray
    cov_names: list[str]
    cov_mean: np.ndarray
    cov_sd: np.ndarray
    centre_idx: np.ndarray
    centre_labels: list[str]
    log_rate: float
    basis: BiomarkerBasis | None = None
    bm_z: np.ndarray = field(default_factory=lambda: np.zeros(0))
    bm_pen: np.ndarray = field(default_factory=lambda: np.zeros((0, 0)))
    biomarker_values: np.ndarray | None = None
    baseline_parametrisation: str = "auto"
    likelihood: str = "fused"  # 'graph' (model.pem_parts), 'fused'/'fused_float32' (fused.py)
    #: data.missing: impute — what the model imputes (X / bm_z hold 0 at the missing cells)
    missing: MissingDesign | None = None
    #: text covariate -> its levels, the first the reference (the coefficients' contrasts)
    factors: dict[str, list[str]] = field(default_factory=dict)

    @property
    def n(self) -> int:
        return len(self.event)

    @property
    def n_intervals(self) -> int:
        return len(self.starts)

    @property
    def time_varying(self) -> bool:
        """A treatment log-HR per baseline interval (``treatment_effect: time_varying``)."""
        return self.spec.time_varying

    @property
    def event_share(self) -> np.ndarray:
        """Share of the observed events in each baseline interval: the weights of the
        time-varying model's average log-HR (its ``treatment`` parameter)."""
        k = np.bincount(self.interval, weights=self.event, minlength=self.n_intervals)
        return k / max(k.sum(), 1.0)

    def data_dict(self) -> dict[str, np.ndarray]:
        """The pm.Data values; the names are those of the PyMC model's data containers."""
        d = {
            **({"event_share": self.event_share} if self.time_varying else {}),
            "event": self.event,
            "treat": self.treat,
            "interval_idx": self.interval,
            "offset": self.offset,
            "widths": self.widths,
            "log_rate": np.asarray(self.log_rate),
        }
        if self.X.shape[1]:
            d["X"] = self.X
        if self.centre_labels:
            d["centre_idx"] = self.centre_idx
        if self.basis is not None:
            d["bm_z"] = self.bm_z
            if self.basis.n_penalised():
                d["bm_pen"] = self.bm_pen
        return d


def build_design(data: TrialData, spec: ModelSpec, baseline: Baseline) -> Design:
    """The :class:`Design` of model ``spec`` on ``data`` with the ``baseline`` intervals; DataError
    when a time-varying model would have a single interval."""
    f = data.frame
    t = f["time"].to_numpy(float)
    e = f["event"].to_numpy(float)
    cuts = cut_points(t, e.astype(int), baseline)
    interval, offset, starts = interval_stats(t, cuts)
    if spec.time_varying and len(starts) < 2:
        raise DataError(
            f"model '{spec.name}': treatment_effect 'time_varying' needs at least 2 baseline "
            f"intervals; the data give 1 ({int(e.sum())} events, no cut point below the last "
            "follow-up time): set baseline.cuts, or use treatment_effect 'constant'"
        )
    widths = np.diff(np.append(starts, t.max()))
    widths[-1] = 0.0  # the open last interval never contributes a full width

    covs = data.model_columns(spec.covariates)
    if covs:
        raw = f[covs].to_numpy(float)
        mean, sd = np.nanmean(raw, 0), np.nanstd(raw, 0)  # observed values (data.missing)
        X = np.nan_to_num((raw - mean) / sd)  # a missing cell: 0 until imputed
    else:
        raw = np.zeros((len(f), 0))
        X, mean, sd = raw, np.zeros(0), np.zeros(0)

    if spec.centre_frailty:
        labels, idx = np.unique(f["centre"].astype(str), return_inverse=True)
        centre_labels, centre_idx = [str(v) for v in labels], idx.astype("int64")
    else:
        centre_labels, centre_idx = [], np.zeros(len(f), "int64")

    person_time = t.sum()
    design = Design(
        spec=spec,
        cuts=cuts,
        starts=starts,
        widths=widths,
        interval=interval,
        offset=offset,
        event=e,
        treat=f["treat"].to_numpy(float),
        X=X,
        cov_names=covs,
        factors=dict(data.factors),
        cov_mean=mean,
        cov_sd=sd,
        centre_idx=centre_idx,
        centre_labels=centre_labels,
        log_rate=float(np.log(max(e.sum(), 0.5) / person_time)),
        baseline_parametrisation=baseline.parametrisation,
        likelihood=baseline.likelihood,
    )
    z_all = None
    if spec.biomarker:
        x = f[spec.biomarker].to_numpy(float)
        if spec.log_biomarker:
            check_log_biomarker(x, spec, data.rows_text)
        seen = ~np.isnan(x)  # all but the values data.missing: impute leaves missing
        design.basis = BiomarkerBasis.fit(
            x[seen], spec.interaction, spec.spline_basis, spec.biomarker_offset
        )
        z, pen = design.basis.evaluate(x[seen])
        design.bm_z, design.bm_pen = np.zeros(len(x)), np.zeros((len(x), pen.shape[1]))
        design.bm_z[seen], design.bm_pen[seen] = z, pen
        design.biomarker_values = x
        z_all = np.where(seen, design.bm_z, np.nan)
    design.missing = build_missing(
        covs, raw, mean, sd, data.factors, spec.biomarker, z_all, bool(spec.log_biomarker)
    )
    return design
