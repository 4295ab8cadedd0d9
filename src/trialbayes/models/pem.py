"""Notebook-friendly model object: build, fit (returns self), summary / print_summary, refit.

    m = PiecewiseExponentialModel(ModelSpec(name="adj", covariates="all")).fit(data)
    m.print_summary()

``data`` is :class:`~trialbayes.data.table.TrialData` or a pandas DataFrame with a column map
(``fit(df, columns={"time": "week", "event": "arrest", "arm": "fin", ...})``), validated the same
way as a config's data. Nothing samples in the constructor; ``build`` makes the design and the
PyMC model, ``fit`` samples. Asking for results before ``fit`` raises :class:`NotFittedError`.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import xarray as xr

from ..config.priors import describe, merge_priors, parse_prior
from ..config.schema import Baseline, ColumnMap, Diagnostics, ModelSpec
from ..config.schema import Sampler as SamplerConfig
from ..core.errors import NotFittedError
from ..data.design import Design, build_design
from ..data.table import TrialData, from_frame
from ..estimands.draws import flatten_draws, hr_curve, hr_summary, interval, pointwise_loglik
from ..estimands.time_varying import hr_over_time
from ..inference.sampler import Sampler, diagnose, free_var_names
from .graph import build_model, default_target_accept, prior_data


def as_trial_data(data, columns=None) -> TrialData:
    """TrialData as is; a DataFrame validated under ``columns`` (a ColumnMap or a dict of its keys)."""
    if isinstance(data, TrialData):
        return data
    if isinstance(data, pd.DataFrame):
        cols = columns if isinstance(columns, ColumnMap) else ColumnMap(**(columns or {}))
        return from_frame(data, cols, label="user DataFrame", source="<DataFrame>")
    raise TypeError(f"data must be TrialData or a pandas DataFrame, not {type(data).__name__}")


DRAW_NAMES = [
    "treatment",
    "treatment_over_time",
    "treatment_rw_sigma",
    "covariate_effects",
    "log_baseline_hazard",
    "biomarker_effect",
    "interaction",
    "biomarker_spline",
    "interaction_spline",
    "centre_frailty",
]


class PiecewiseExponentialModel:
    def __init__(
        self,
        spec: ModelSpec,
        priors: dict | None = None,
        baseline: Baseline | None = None,
        sampler: SamplerConfig | None = None,
        diagnostics: Diagnostics | None = None,
    ):
        self.spec = spec
        self.priors = merge_priors(priors)
        self.baseline = baseline or Baseline()
        self.sampler_config = sampler or SamplerConfig()
        self.gate = diagnostics or Diagnostics()
        self.design: Design | None = None
        self.model = None
        self.sampler: Sampler | None = None
        self.idata = None
        self.diagnostics: dict | None = None
        self.data: TrialData | None = None

    # ------------------------------------------------------------------ build / fit
    def build(self, data, columns=None) -> PiecewiseExponentialModel:
        """Make the design and the PyMC model for ``data`` (nothing is compiled or sampled yet)."""
        data = as_trial_data(data, columns)
        self.data = data
        self.design = build_design(data, self.spec, self.baseline)
        self.model = build_model(self.design, self.priors)
        self.sampler = Sampler(
            self.model, self.sampler_config, target_accept=default_target_accept(self.design)
        )
        return self

    def fit(
        self,
        data=None,
        seed: int | None = None,
        prior_overrides: dict | None = None,
        log_likelihood: bool = True,
        columns=None,
    ):
        """Sample the posterior; returns self.

        Compilation: ``fit(data)`` with data other than the model's builds a new model, which
        compiles on first sampling; ``fit()`` without data (or with the same object) reuses the
        compiled model. ``prior_overrides`` (term -> prior object or dict such as
        ``{"treatment": {"family": "normal", "mu": 0, "sigma": 0.42}}``) swaps the treatment /
        interaction priors through pm.Data, also without recompiling. For new data of the same
        shape without recompiling, use :meth:`refit`."""
        if data is not None and (self.design is None or data is not self.data):
            self.build(data, columns)
        if self.model is None:
            raise NotFittedError("nothing to fit: call fit(data) (or build(data) first)")
        new = {}
        for term, prior in (prior_overrides or {}).items():
            if term not in ("treatment", "interaction"):
                raise ValueError(
                    f"only 'treatment' and 'interaction' priors can be swapped at refit, not '{term}'"
                )
            prior = parse_prior(term, prior)
            if term == "interaction" and self.design.basis is None:
                continue
            new.update(prior_data(term, prior))
            self.priors[term] = prior
        self.idata = self.sampler.sample(
            data=new or None,
            seed=seed,
            log_likelihood=self._loglik_dataset if log_likelihood else False,
        )
        self.diagnostics = diagnose(self.idata, free_var_names(self.model), self.gate)
        return self

    def refit(
        self,
        data,
        seed: int | None = None,
        columns=None,
        *,
        gate: bool = True,
        log_likelihood: bool = True,
    ) -> PiecewiseExponentialModel:
        """Refit on new data of the same shape (patients, intervals) with the compiled model: never
        recompiles (new values go in through pm.Data); a different shape is an error — use
        ``fit(new_data)``, which builds and compiles a new model.

        Many-fit jobs (coverage, simulation) may skip the diagnostics gate (``gate=False``:
        ``diagnostics`` is then None and the fit counts as not checked) and the pointwise
        log-likelihood; they then read what they need from ``idata.sample_stats`` themselves."""
        self._require_fit("refit")
        data = as_trial_data(data, columns)
        new_design = build_design(data, self.spec, self.baseline)
        if new_design.n != self.design.n or new_design.n_intervals != self.design.n_intervals:
            raise ValueError(
                "refit needs data of the same shape (patients and intervals); build a new model instead"
            )
        self.design, self.data = new_design, data
        loglik = self._loglik_dataset if log_likelihood else False
        self.idata = self.sampler.sample(
            data=new_design.data_dict(), seed=seed, log_likelihood=loglik
        )
        self.diagnostics = (
            diagnose(self.idata, free_var_names(self.model), self.gate) if gate else None
        )
        return self

    #: above this many draws × patients the pointwise log-likelihood (for LOO) is not stored
    MAX_LOGLIK_CELLS = 50_000_000

    def _loglik_dataset(self, idata) -> xr.Dataset:
        """Pointwise log-likelihood as ArviZ expects it: variable ``survival`` (chain, draw, patient)."""
        post = idata.posterior
        c, d = post.sizes["chain"], post.sizes["draw"]
        if c * d * self.design.n > self.MAX_LOGLIK_CELLS:
            return xr.Dataset()
        ll = pointwise_loglik(flatten_draws(post, DRAW_NAMES), self.design).reshape(
            c, d, self.design.n
        )
        return xr.Dataset(
            {"survival": (("chain", "draw", "patient"), ll)},
            coords={"chain": post["chain"].values, "draw": post["draw"].values},
        )

    # ------------------------------------------------------------------ results
    def _require_fit(self, what: str) -> None:
        if self.idata is None:
            raise NotFittedError(f"{what}() needs a fitted model: call fit(data) first")

    @property
    def reliable(self) -> bool:
        return bool(self.diagnostics and self.diagnostics["reliable"])

    def draws(self, max_draws: int | None = None) -> dict[str, np.ndarray]:
        self._require_fit("draws")
        return flatten_draws(self.idata.posterior, DRAW_NAMES, max_draws)

    def coefficients(self, prob: float = 0.95) -> pd.DataFrame:
        """Log-HR coefficients: per SD for covariates, per SD of the (log-)biomarker for z terms,
        and (linear / log-linear) also per original unit. HR < 1 is benefit / lower hazard."""
        self._require_fit("coefficients")
        d = self.draws()
        rows = []

        def add(term, v, unit):
            lo, hi = interval(v, prob)
            rows.append(
                {
                    "term": term,
                    "unit": unit,
                    "log_hr_mean": v.mean(),
                    "log_hr_sd": v.std(ddof=1),
                    "hr_median": np.exp(np.median(v)),
                    "hr_lower": np.exp(lo),
                    "hr_upper": np.exp(hi),
                    "p_hr_below_1": (v < 0).mean(),
                }
            )

        b = self.design.basis
        ref = f" at {self.spec.biomarker} = {b.reference:g}" if b is not None else ""
        avg = ", averaged over follow-up" if self.design.time_varying else ""
        add("treatment", d["treatment"], "treated vs control" + ref + avg)
        for j, name in enumerate(self.design.cov_names):
            add(name, d["covariate_effects"][:, j], f"per SD ({self.design.cov_sd[j]:.3g})")
        if b is not None:
            scale = "log " if b.log else ""
            add(
                f"{self.spec.biomarker} (main)",
                d["biomarker_effect"],
                f"per SD of {scale}{self.spec.biomarker} ({b.scale:.3g})",
            )
            add(
                f"treatment × {self.spec.biomarker}",
                d["interaction"],
                f"per SD of {scale}{self.spec.biomarker} ({b.scale:.3g})",
            )
            if b.kind != "spline":  # also per a round number of original units (or per log unit)
                step = 1.0 if b.log else float(10 ** np.floor(np.log10(b.scale)))
                unit = "per log unit" if b.log else f"per {step:g} units"
                add(
                    f"treatment × {self.spec.biomarker}",
                    d["interaction"] * step / b.scale,
                    f"{unit} of {self.spec.biomarker}",
                )
        return pd.DataFrame(rows)

    def treatment_effect(self, thresholds=(1.0, 0.8), harm=1.1, prob=0.95):
        """The treatment HR as an :class:`~trialbayes.results.model.HRSummary`; for a time-varying
        effect the event-weighted average of the interval log-HRs (see :meth:`hr_over_time`)."""
        return hr_summary(self.draws()["treatment"], thresholds, harm, prob)

    def hr_over_time(self, thresholds=(1.0, 0.8), harm=1.1, prob=0.95):
        """HR(t) of a time-varying model (``treatment_effect: time_varying``): the treatment HR per
        baseline interval, the change HR(last) / HR(first) and the walk's scale, as an
        :class:`~trialbayes.results.time_varying.HROverTime` (no PH test or LOO comparison: the
        run adds those)."""
        self._require_fit("hr_over_time")
        if not self.design.time_varying:
            raise ValueError(f"model '{self.spec.name}' has a constant treatment effect")
        what = "treatment HR in each baseline interval"
        if self.design.basis is not None:
            what += f" at {self.spec.biomarker} = {self.design.basis.reference:.4g} (the median)"
        return hr_over_time(self.draws(), self.design, what, thresholds, harm, prob)

    def hr_by_biomarker(self, values=None, prob: float = 0.95, n: int = 60) -> pd.DataFrame:
        """Treatment HR at biomarker ``values`` (default: an even grid over the 2nd–98th
        percentiles) with its pointwise credible band and P(HR < 1); for ``plots.hr_curve_plot``."""
        self._require_fit("hr_by_biomarker")
        if self.design.basis is None:
            raise ValueError(f"model '{self.spec.name}' has no biomarker interaction")
        if values is None:
            lo, hi = np.quantile(self.design.biomarker_values, [0.02, 0.98])
            values = np.linspace(lo, hi, n)
        return hr_curve(self.draws(), self.design.basis, values, (1.0,), prob)

    def summary(self, prob: float = 0.95) -> pd.DataFrame:
        self._require_fit("summary")
        return self.coefficients(prob).set_index(["term", "unit"])

    def print_summary(self, prob: float = 0.95) -> None:
        self._require_fit("print_summary")
        d = self.data
        diag = self.diagnostics or {}
        lines = [
            f"<trialbayes.PiecewiseExponentialModel: {self.spec.name}>",
            f"data = {d.label if d else '?'}",
            f"n = {d.n if d else '?'}, events = {d.events if d else '?'}, intervals = {self.design.n_intervals}",
            f"sampler = {self.idata.attrs.get('sampler', '?') if self.idata is not None else 'not fitted'}",
            f"treatment prior = {describe(self.priors['treatment'])}",
            f"diagnostics = {'OK' if self.reliable else 'UNRELIABLE: ' + '; '.join(diag.get('failures', []))}",
            "---",
        ]
        print("\n".join(lines))
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(self.summary(prob).round(3))
