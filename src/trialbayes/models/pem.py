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

from ..config.data_sources import ColumnMap
from ..config.priors import describe, merge_priors, parse_prior
from ..config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from ..core.errors import NotFittedError
from ..data.design import Design, build_design
from ..data.table import TrialData, from_frame
from ..estimands.coefficients import coefficients
from ..estimands.credible import biomarker_grid, credible_subgroups, simultaneous_band
from ..estimands.draws import flatten_draws, hr_curve, hr_summary, log_hr_at, pointwise_loglik
from ..estimands.frequentist import CoxFit
from ..estimands.imputed import complete_missing
from ..estimands.time_varying import hr_over_time
from ..inference.sampler import SamplerRunner, diagnose, free_var_names
from ..results.credible import CredibleSubgroup
from ..results.model import Coefficient
from .graph import build_model, default_target_accept, prior_data


def as_trial_data(data, columns=None) -> TrialData:
    """TrialData as is; a DataFrame validated under ``columns`` (a ColumnMap or a dict of its
    keys)."""
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
    "imputed_continuous",  # data.missing: impute (estimands.imputed)
    "imputed_level_logweight",
]


class PiecewiseExponentialModel:
    """One piecewise-exponential survival model for notebooks: ``build`` makes the design and the
    PyMC model, ``fit`` samples (and returns self), then summaries (see the module docstring)."""

    def __init__(
        self,
        spec: ModelSpec,
        priors: dict | None = None,
        baseline: Baseline | None = None,
        sampler: SamplerSpec | None = None,
        diagnostics: Diagnostics | None = None,
    ):
        self.spec = spec
        self.priors = merge_priors(priors)
        self.baseline = baseline or Baseline()
        self.sampler_config = sampler or SamplerSpec()
        self.gate = diagnostics or Diagnostics()
        self.design: Design | None = None
        self.model = None
        self.sampler: SamplerRunner | None = None
        self._idata = None  # the posterior DataTree once fitted (the ``idata`` property)
        self.diagnostics: dict | None = None
        self.data: TrialData | None = None

    # ------------------------------------------------------------------ build / fit
    def build(self, data, columns=None) -> PiecewiseExponentialModel:
        """Make the design and the PyMC model for ``data`` (nothing is compiled or sampled yet)."""
        data = as_trial_data(data, columns)
        self.data = data
        self.design = build_design(data, self.spec, self.baseline)
        self.model = build_model(self.design, self.priors)
        self.sampler = SamplerRunner(
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
                    "only 'treatment' and 'interaction' priors can be swapped at refit, not "
                    f"'{term}'"
                )
            prior = parse_prior(term, prior)
            if term == "interaction" and self.design.basis is None:
                continue
            new.update(prior_data(term, prior))
            self.priors[term] = prior
        self._idata = self.sampler.sample(
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
        if self.design.missing is not None or new_design.missing is not None:
            raise ValueError(
                "refit cannot swap data with imputed values (the imputation is part of the "
                "model's structure); use fit(new_data), which builds a new model"
            )
        if new_design.n != self.design.n or new_design.n_intervals != self.design.n_intervals:
            raise ValueError(
                "refit needs data of the same shape (patients and intervals); build a new model "
                "instead"
            )
        self.design, self.data = new_design, data
        loglik = self._loglik_dataset if log_likelihood else False
        self._idata = self.sampler.sample(
            data=new_design.data_dict(), seed=seed, log_likelihood=loglik
        )
        self.diagnostics = (
            diagnose(self.idata, free_var_names(self.model), self.gate) if gate else None
        )
        return self

    #: above this many draws × patients the pointwise log-likelihood (for LOO) is not stored
    MAX_LOGLIK_CELLS = 50_000_000

    def _loglik_dataset(self, idata) -> xr.Dataset:
        """Pointwise log-likelihood as ArviZ expects it: variable ``survival`` (chain, draw,
        patient)."""
        post = idata.posterior
        c, d = post.sizes["chain"], post.sizes["draw"]
        if c * d * self.design.n > self.MAX_LOGLIK_CELLS:
            return xr.Dataset()
        draws = complete_missing(flatten_draws(post, DRAW_NAMES), self.design)
        ll = pointwise_loglik(draws, self.design).reshape(c, d, self.design.n)
        return xr.Dataset(
            {"survival": (("chain", "draw", "patient"), ll)},
            coords={"chain": post["chain"].values, "draw": post["draw"].values},
        )

    # ------------------------------------------------------------------ results
    def _require_fit(self, what: str) -> None:
        if self._idata is None:
            raise NotFittedError(f"{what}() needs a fitted model: call fit(data) first")

    @property
    def idata(self):
        """The posterior DataTree (ArviZ 1.x): posterior, sample_stats, log_likelihood."""
        self._require_fit("idata")
        return self._idata

    def restore_fit(self, idata, diagnostics, priors: dict) -> None:
        """Put back a fit saved before refits (the prior-scenario loop): its posterior, its
        diagnostics and the priors it was sampled under."""
        self._idata, self.diagnostics, self.priors = idata, diagnostics, priors

    @property
    def reliable(self) -> bool:
        return bool(self.diagnostics and self.diagnostics.reliable)

    def _failures(self) -> str:
        return "; ".join(self.diagnostics.failures) if self.diagnostics else "not checked"

    def draws(self, max_draws: int | None = None) -> dict[str, np.ndarray]:
        self._require_fit("draws")
        return complete_missing(
            flatten_draws(self.idata.posterior, DRAW_NAMES, max_draws), self.design
        )

    def coefficients(self, level: float = 0.95, cox: CoxFit | None = None) -> list[Coefficient]:
        """Every term's posterior HR (treatment at the biomarker reference, covariates per SD,
        biomarker and interaction per SD and per unit; HR < 1 is benefit / lower hazard), with
        the Cox estimate of the same term when ``cox`` is given."""
        self._require_fit("coefficients")
        return coefficients(
            self.design,
            self.draws(),
            lambda v: hr_summary(v, (1.0,), 1.1, level),
            cox,
        )

    def treatment_effect(self, thresholds=(1.0, 0.8), harm=1.1, level=0.95):
        """The treatment HR as an :class:`~trialbayes.results.summaries.HRSummary`."""
        self._require_fit("treatment_effect")
        return hr_summary(self.draws()["treatment"], thresholds, harm, level)

    def hr_over_time(self, thresholds=(1.0, 0.8), harm=1.1, level=0.95):
        """HR(t) of a time-varying model (``treatment_effect: time_varying``): the treatment HR per
        baseline interval, the change HR(last) / HR(first) and the walk's scale, as an
        :class:`~trialbayes.results.time_varying.HROverTime` (no PH test or LOO comparison: the
        run adds those). The treatment HR of such a model is their event-weighted average."""
        self._require_fit("hr_over_time")
        if not self.design.time_varying:
            raise ValueError(f"model '{self.spec.name}' has a constant treatment effect")
        what = "treatment HR in each baseline interval"
        if self.design.basis is not None:
            what += f" at {self.spec.biomarker} = {self.design.basis.reference:.4g} (the median)"
        return hr_over_time(self.draws(), self.design, what, thresholds, harm, level)

    def hr_by_biomarker(
        self, values=None, level: float = 0.95, n: int = 60, quantiles=(0.05, 0.95)
    ) -> pd.DataFrame:
        """Treatment HR at biomarker ``values`` (default: ``n`` values over the 5th–95th
        percentiles of the data, as a run's curve) with its pointwise credible band at
        ``level``, P(HR < 1) and the simultaneous band at ``level`` (``lower_simultaneous`` /
        ``upper_simultaneous``: the whole curve inside with probability ``level``); for
        ``plots.hr_curve_figure``."""
        self._require_fit("hr_by_biomarker")
        b = self._basis("hr_by_biomarker")
        if values is None:
            values = biomarker_grid(self.design.biomarker_values, b.log, n, quantiles, b.offset)
        curve = hr_curve(self.draws(), b, values, (1.0,), level)
        _, lo, hi = simultaneous_band(log_hr_at(self.draws(), b, values), level)
        curve["lower_simultaneous"], curve["upper_simultaneous"] = np.exp(lo), np.exp(hi)
        return curve

    def credible_subgroups(
        self, thresholds=(1.0,), level: float = 0.95, n: int = 60, quantiles=(0.05, 0.95)
    ) -> list[CredibleSubgroup]:
        """Exclusive and inclusive credible subgroups for HR < t (Schnell et al. 2016) over
        ``n`` values between the ``quantiles`` of the biomarker: where HR < t credibly at every
        value at once, and outside which HR ≥ t credibly, jointly with probability ``level``."""
        self._require_fit("credible_subgroups")
        b = self._basis("credible_subgroups")
        values = self.design.biomarker_values
        grid = biomarker_grid(values, b.log, n, quantiles, b.offset)
        _, lo, hi = simultaneous_band(log_hr_at(self.draws(), b, grid), level)
        return credible_subgroups(grid, lo, hi, thresholds, level, values)

    def _basis(self, method: str):
        if self.design.basis is None:
            raise ValueError(f"{method}: model '{self.spec.name}' has no biomarker interaction")
        return self.design.basis

    def summary(self, level: float = 0.95) -> pd.DataFrame:
        """The coefficient table as a DataFrame indexed by (term, unit)."""
        self._require_fit("summary")
        rows = [c.flat() for c in self.coefficients(level)]
        return pd.DataFrame(rows).set_index(["term", "unit"])

    def print_summary(self, level: float = 0.95) -> None:
        self._require_fit("print_summary")
        d = self.data
        lines = [
            f"<trialbayes.PiecewiseExponentialModel: {self.spec.name}>",
            f"data = {d.label if d else '?'}",
            f"n = {d.n if d else '?'}, events = {d.events if d else '?'}, intervals = "
            f"{self.design.n_intervals}",
            "sampler = "
            f"{self.idata.attrs.get('sampler', '?') if self._idata is not None else 'not fitted'}",
            f"treatment prior = {describe(self.priors['treatment'])}",
            f"diagnostics = {'OK' if self.reliable else 'UNRELIABLE: ' + self._failures()}",
            "---",
        ]
        print("\n".join(lines))
        with pd.option_context("display.width", 160, "display.max_columns", 20):
            print(self.summary(level).round(3))
