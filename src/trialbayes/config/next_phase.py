"""Schema of the ``next_phase:`` config section (strict, like the rest of config.py).

next_phase:
  model: interaction            # the fitted patient-level model whose posterior is the design prior
  populations: [{kind: all}, {kind: below, cutoff: 3000}]
  events: [150, 200, 300, 400]
  accrual: {time: 720}          # data time units
  design_priors: [{name: as_is}, {name: discounted, kind: mixture, weight: 0.5, sceptical_sd: 0.42}]
  analysis: {method: bayes, gamma: 0.975, draws: 500}   # default: {method: logrank}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .priors import _Strict, describe, merge_priors


class Accrual(_Strict):
    time: PositiveFloat  # length of the recruitment period
    weights: list[PositiveFloat] = [1.0]  # relative rates in equal-length segments (1 = uniform)


class PopulationSpec(_Strict):
    kind: Literal["all", "below", "above"] = "all"
    cutoff: PositiveFloat | None = None

    @model_validator(mode="after")
    def _cut(self):
        if (self.kind == "all") != (self.cutoff is None):
            raise ValueError(
                f"population '{self.kind}': a cutoff is needed for 'below'/'above' only"
            )
        return self

    def label(self) -> str:
        """Short label (cell keys, messages)."""
        return "all comers" if self.kind == "all" else f"{self.kind} {self.cutoff:g}"

    def describe(self, biomarker: str | None = None, unit: str = "") -> str:
        """Label of the outputs, naming the biomarker and its unit: "prio below 3 convictions"."""
        if self.kind == "all":
            return "all comers"
        return f"{biomarker or 'biomarker'} {self.label()}" + (f" {unit}" if unit else "")


class DesignPriorSpec(_Strict):
    """How the posterior becomes the design prior. ``as_is``; ``mixture``: with probability
    ``weight`` the treatment log-HR is drawn from N(sceptical_mean, sceptical_sd²) with no effect
    modification instead; ``inflate``: treatment terms' deviations from their mean scaled so their
    variance is multiplied by ``factor``."""

    name: str = Field(pattern=r"^[A-Za-z0-9_.-]+$")
    kind: Literal["as_is", "mixture", "inflate"] = "as_is"
    weight: float = Field(0.5, gt=0, lt=1)
    sceptical_mean: float = 0.0
    sceptical_sd: PositiveFloat = 0.4214  # P(HR < 0.5) = 5%, the package's sceptical scenario
    factor: PositiveFloat = 2.0

    def describe(self) -> str:
        if self.kind == "as_is":
            return "the posterior as it is"
        if self.kind == "mixture":
            return (
                f"mixture: {1 - self.weight:.0%} posterior + {self.weight:.0%} sceptical "
                f"N({self.sceptical_mean:g}, {self.sceptical_sd:g}²) log-HR "
                "without effect modification"
            )
        return f"posterior with the variance of the treatment terms inflated ×{self.factor:g}"


class DecisionRule(_Strict):
    """Go when the next trial succeeds; a go is false when the true HR of the enrolled population is
    ≥ ``null_hr``, a stop is false when the true HR ≤ ``target_hr``."""

    null_hr: PositiveFloat = 1.0
    target_hr: PositiveFloat = 0.8


#: keys of next_phase.analysis that only the Bayesian analysis reads
BAYES_KEYS = ("gamma", "intervals", "chains", "draws", "tune", "target_accept", "priors")
#: prior terms of the Bayesian analysis model (treatment only, piecewise-exponential baseline)
ANALYSIS_PRIOR_TERMS = ("treatment", "baseline_start", "baseline_rw_sigma")


class AnalysisSpec(_Strict):
    """How each simulated trial is analysed (success also needs ``min_observed_hr`` if set).

    ``logrank``: one-sided log-rank test at ``next_phase.alpha`` (HR estimate: Peto's).
    ``cox``: Wald test of a Cox model with treatment only (Efron ties) at ``alpha``.
    ``bayes``: the piecewise-exponential model with treatment only, refitted on every trial
    (``intervals`` baseline intervals cut at the quantiles of that trial's event times, as
    ``baseline.n_intervals`` does for real data; priors: the package defaults unless ``priors``
    overrides treatment / baseline_start / baseline_rw_sigma); success if P(HR < 1) > ``gamma``
    (HR estimate: the posterior median)."""

    method: Literal["logrank", "cox", "bayes"] = "logrank"
    gamma: float = Field(0.975, gt=0.5, lt=1.0)
    intervals: int = Field(3, ge=1, le=20)
    chains: int = Field(2, ge=1, le=8)
    draws: int = Field(500, ge=50, le=100_000)
    tune: int = Field(500, ge=50, le=100_000)
    target_accept: float | None = Field(None, gt=0.5, lt=1.0)  # None: chosen by the model
    priors: dict[str, dict[str, Any]] = {}

    @model_validator(mode="after")
    def _check(self):
        extra = sorted(set(self.model_fields_set) & set(BAYES_KEYS))
        if self.method != "bayes" and extra:
            raise ValueError(f"{extra} apply to method 'bayes' only")  # loc names the section
        bad = sorted(set(self.priors) - set(ANALYSIS_PRIOR_TERMS))
        if bad:
            raise ValueError(
                f"priors: terms {bad} not in the analysis model; "
                f"terms are {list(ANALYSIS_PRIOR_TERMS)}"
            )
        merge_priors(self.priors)  # raises on wrong families / values
        return self

    def short(self, alpha: float) -> str:
        """The method and its level in a few words (figure titles)."""
        if self.method == "bayes":
            return f"Bayesian model, P(HR < 1) > γ = {self.gamma:g}"
        name = "Cox Wald test" if self.method == "cox" else "log-rank test"
        return f"{name}, one-sided α = {alpha:g}"

    def describe(self, alpha: float, min_hr: float | None) -> str:
        if self.method == "bayes":
            pri = merge_priors(self.priors)
            s = (
                f"Bayesian piecewise-exponential model (treatment only, {self.intervals} baseline "
                f"intervals at the quantiles of each trial's event times, treatment prior "
                f"{describe(pri['treatment'])}, {self.chains} × {self.draws} draws after "
                f"{self.tune} tuning, one compiled model per worker): P(HR < 1) > {self.gamma:g}"
            )
            est = "posterior median HR"
        elif self.method == "cox":
            s, est = (
                f"Cox model (treatment only, Efron ties), one-sided Wald alpha {alpha:g}",
                ("Cox estimate of the HR"),
            )
        else:
            s, est = f"log-rank test, one-sided alpha {alpha:g}", "Peto estimate of the HR"
        return s + (f", and {est} < {min_hr:g}" if min_hr is not None else "")


class NextPhase(_Strict):
    model: str
    populations: list[PopulationSpec] = [PopulationSpec()]
    events: list[PositiveInt] = [150, 200, 300, 400]
    patients_per_event: float = Field(2.0, ge=1.0)  # randomised = ceil(events × this)
    accrual: Accrual
    dropout_rate: float = Field(0.0, ge=0)  # exponential, per data time unit
    allocation: float = Field(0.5, gt=0, lt=1)
    calendar_cut: PositiveFloat | None = None  # latest analysis time after the first randomisation
    alpha: float = Field(0.025, gt=0, lt=0.5)  # one-sided level (log-rank or Cox analysis)
    min_observed_hr: PositiveFloat | None = None  # success also needs the estimated HR below this
    analysis: AnalysisSpec = AnalysisSpec()  # how each simulated trial is analysed
    # patients of a next trial: resampled from the fitted cohort, or drawn from a Gaussian copula
    # fitted to its covariates and biomarker (covariate_model.py; a synthetic cohort of this size)
    covariates: Literal["resample", "fitted"] = "resample"
    fitted_cohort: int = Field(20_000, ge=1_000, le=1_000_000)
    design_priors: list[DesignPriorSpec] = [DesignPriorSpec(name="as_is")]
    trials: int = Field(2000, ge=100)  # simulated trials per design × design prior
    design_hr: float = Field(0.7, gt=0, lt=1)
    oc_hrs: list[PositiveFloat] = [0.5, 0.6, 0.8, 0.9]  # OC grid; 1 and design_hr always added
    oc_trials: int = Field(1000, ge=100)
    decision: DecisionRule = DecisionRule()
    seed: int = 20250602
    executor: Literal["auto", "inprocess", "processes", "dask"] = "auto"
    # Dask scheduler address; "local" or none (with executor: dask): a LocalCluster of `workers`
    scheduler: str | None = None
    workers: PositiveInt = 2

    @model_validator(mode="after")
    def _check(self):
        names = [p.name for p in self.design_priors]
        if len(set(names)) != len(names):
            raise ValueError(f"design_priors: names must be unique, got {names}")
        labels = [p.label() for p in self.populations]
        if len(set(labels)) != len(labels):
            raise ValueError(f"populations: duplicates in {labels}")
        if self.scheduler is not None and self.executor not in ("auto", "dask"):
            raise ValueError("scheduler needs executor 'dask' (or 'auto')")
        if self.analysis.method == "bayes" and "alpha" in self.model_fields_set:
            raise ValueError(
                "alpha is the level of the log-rank / Cox analysis; the Bayesian rule "
                "(analysis.method: bayes) uses analysis.gamma instead: remove next_phase.alpha"
            )
        return self

    def oc_grid(self) -> list[float]:
        return sorted(set(self.oc_hrs) | {1.0, self.design_hr})

    def check_models(self, models, data_kind: str) -> None:
        """Cross-checks with the rest of the config (called by Config's validator)."""
        if data_kind == "published":
            raise ValueError("next_phase: needs patient-level data (not kind 'published')")
        spec = {m.name: m for m in models}.get(self.model)
        if spec is None:
            names = [m.name for m in models]
            raise ValueError(f"next_phase.model: unknown model '{self.model}'; models are {names}")
        if spec.time_varying:
            raise ValueError(
                f"next_phase.model: model '{self.model}' has a time-varying treatment effect; "
                "the next-trial simulator draws one hazard ratio per state of nature — use a "
                "model with treatment_effect 'constant'"
            )
        if any(p.kind != "all" for p in self.populations) and not spec.biomarker:
            raise ValueError(
                f"next_phase.populations: enrichment needs a model with a biomarker term; "
                f"model '{self.model}' has none"
            )
