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

from typing import Annotated, Any, Literal

from pydantic import Field, PositiveFloat, PositiveInt, model_validator

from .priors import _Strict, describe, merge_priors

Positive = Annotated[float, Field(gt=0, allow_inf_nan=False)]


class Accrual(_Strict):
    """Recruitment: its length ``time`` (data time units) and relative rates in equal segments."""

    time: Positive  # length of the recruitment period
    # relative rates in equal-length segments (one: uniform); each > 0 and finite
    weights: list[Positive] = Field([1.0], min_length=1, max_length=1000)


class PopulationSpec(_Strict):
    """A population the next trial could enrol: all comers, or patients below / above a biomarker
    ``cutoff``; optionally its own patients randomised per target death."""

    kind: Literal["all", "below", "above"] = "all"
    cutoff: PositiveFloat | None = None
    # randomised per target death in this population (None: next_phase.patients_per_event)
    patients_per_event: float | Literal["auto"] | None = None

    @model_validator(mode="after")
    def _ppe(self):
        ppe = self.patients_per_event
        if isinstance(ppe, float) and ppe < 1:
            raise ValueError(f"patients_per_event must be >= 1 (or 'auto'), got {ppe:g}")
        return self

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


class AnalysisPrior(_Strict):
    """The next trial's analysis prior on the treatment log-HR (borrowing the phase 2 posterior;
    nextphase/borrowing.py). Used by posterior rules (``efficacy: {kind: posterior}``, futility
    ``posterior`` / ``predictive``) on the normal approximation of each trial's log-HR likelihood.
    ``none``: N(vague_mean, vague_sd²) alone (vague_sd null: flat); ``robust_mixture``:
    weight·(phase 2 posterior) + (1 − weight)·vague; ``power``: (phase 2 posterior)^a0 × vague.
    Every output also shows the same design analysed without borrowing (the vague prior)."""

    kind: Literal["none", "robust_mixture", "power"] = "none"
    weight: float = Field(0.5, ge=0, le=1)
    a0: float = Field(0.5, ge=0, le=1)
    vague_mean: float = 0.0
    vague_sd: PositiveFloat | None = 2.0  # N(0, 2²): one event's information at 1:1

    @model_validator(mode="after")
    def _keys(self):
        given = self.model_fields_set
        wrong = {"robust_mixture": {"a0"}, "power": {"weight"}, "none": {"a0", "weight"}}
        bad = sorted(given & wrong[self.kind])
        if bad:
            raise ValueError(f"{bad} do not apply to prior kind '{self.kind}'")
        if self.kind != "none" and self.vague_sd is None:
            raise ValueError(f"prior kind '{self.kind}' needs a proper vague_sd (not null)")
        return self


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
    prior: AnalysisPrior = AnalysisPrior()  # posterior rules only (borrowing)

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


class EfficacySpec(_Strict):
    """Efficacy stopping at every look. ``spending``: Lan–DeMets α-spending boundaries of the
    log-rank / Cox statistic (``function`` obrien_fleming, pocock or hsd with parameter
    ``gamma``; boundaries at the observed information fractions, all remaining α at the final
    look); ``posterior``: P(HR < 1 | data) > ``gamma[k]`` at look k (normal approximation of the
    log-HR likelihood with the analysis prior)."""

    kind: Literal["spending", "posterior"] = "spending"
    function: Literal["obrien_fleming", "pocock", "hsd"] = "obrien_fleming"
    gamma: float | list[float] | None = None

    @model_validator(mode="after")
    def _check(self):
        if self.kind == "spending":
            if isinstance(self.gamma, list):
                raise ValueError("gamma of a spending function is one number (the HSD parameter)")
            if self.gamma is not None and self.function != "hsd":
                raise ValueError(f"gamma applies to function 'hsd' only, not '{self.function}'")
        else:
            if "function" in self.model_fields_set:
                raise ValueError("function applies to kind 'spending' only")
            g = self.gamma
            if not isinstance(g, list) or not all(0.5 < x < 1 for x in g):
                raise ValueError(
                    "kind 'posterior' needs gamma: [..], one threshold in (0.5, 1) a look"
                )
        return self

    def posterior_gammas(self) -> list[float]:
        """The per-look thresholds of kind ``posterior`` (empty for a spending function)."""
        return list(self.gamma) if isinstance(self.gamma, list) else []

    def hsd_gamma(self) -> float:
        return -4.0 if self.gamma is None or isinstance(self.gamma, list) else float(self.gamma)

    def describe(self, alpha: float) -> str:
        if self.kind == "posterior":
            gammas = ", ".join(f"{g:g}" for g in self.posterior_gammas())
            return f"P(HR < 1 | data) > {gammas} at the looks"
        name = {"obrien_fleming": "O'Brien–Fleming", "pocock": "Pocock"}.get(self.function)
        name = name or f"Hwang–Shih–DeCani (γ = {self.hsd_gamma():g})"
        return f"Lan–DeMets α-spending, {name}-type, one-sided α = {alpha:g} over all looks"


class FutilitySpec(_Strict):
    """Futility stopping at the interim looks (never at the final one): conditional power (under
    the current trend or the design HR), posterior P(HR < 1 | data) or the predictive probability
    that the final analysis succeeds, below ``threshold``. ``binding: false`` (the default, what
    regulators expect): the efficacy boundaries ignore it, so the type I error stays at or below
    α whether or not it is followed."""

    kind: Literal["conditional_power", "posterior", "predictive"]
    threshold: float = Field(gt=0, lt=1)
    under: Literal["trend", "design"] = "trend"
    binding: bool = False

    @model_validator(mode="after")
    def _check(self):
        if "under" in self.model_fields_set and self.kind != "conditional_power":
            raise ValueError("under applies to kind 'conditional_power' only")
        return self

    def describe(self) -> str:
        what = {
            "conditional_power": f"conditional power (under the {self.under}"
            + (" HR)" if self.under == "design" else ")"),
            "posterior": "P(HR < 1 | data)",
            "predictive": "predictive probability of success",
        }[self.kind]
        kind = "binding" if self.binding else "non-binding"
        return f"stop for futility at an interim look if {what} < {self.threshold:g} ({kind})"


class AdaptiveEnrichment(_Strict):
    """Start all comers; at the interim (``look`` × the target deaths) with P_S = P(HR < 1) in the
    biomarker subgroup and P_C in its complement (subgroup log-rank statistics, normal
    approximation, flat prior): stop if P_S < ``futility``; else enrich (randomise only the
    subgroup from then on, final at the target deaths among subgroup patients) if P_C <
    ``enrich_if``; else continue all comers. Final test: closed testing of H_F (all comers) and
    H_S (subgroup) with the inverse-normal combination of the stage-wise log-rank increments
    (weights from the planned look), the intersection by ``intersection`` (Simes or Bonferroni);
    success if H_F or H_S is rejected. Compared with fixed all-comers and fixed enriched designs
    of the same target deaths on the same simulated patients."""

    kind: Literal["below", "above"] = "below"
    cutoff: PositiveFloat
    look: float = Field(0.5, gt=0, lt=1)
    futility: float = Field(0.1, ge=0, lt=1)
    enrich_if: float = Field(0.5, gt=0, lt=1)
    intersection: Literal["simes", "bonferroni"] = "simes"
    trials: PositiveInt | None = None  # default: next_phase.trials

    def describe(self, biomarker: str | None = None) -> str:
        s = f"{biomarker or 'biomarker'} {self.kind} {self.cutoff:g}"
        return (
            f"interim at {self.look:g} of the target deaths: stop if P(HR < 1) in {s} < "
            f"{self.futility:g}; else enrich to {s} if P(HR < 1) in its complement < "
            f"{self.enrich_if:g}; else continue all comers. Final: closed testing, inverse-normal "
            f"combination of stage-wise log-rank increments, {self.intersection.capitalize()} "
            "intersection test"
        )


class Recommendation(_Strict):
    """The design recommended: the one with the smallest expected number screened (``criterion:
    min_screened``; or randomised, or events) among those with assurance ≥ ``assurance``,
    P(D reached) ≥ ``min_p_events_reached`` and (if set) simulated P(success | HR 1) ≤
    ``max_type_one_error``, under each design prior; none when no design qualifies (said so).
    The recommended design's simulated type I error is always reported beside it."""

    criterion: Literal["min_screened", "min_randomised", "min_events"] = "min_screened"
    assurance: float = Field(0.8, gt=0, lt=1)
    min_p_events_reached: float = Field(0.9, ge=0, le=1)
    # designs whose simulated P(success | HR 1) exceeds this are not recommended (None: no limit)
    max_type_one_error: float | None = Field(None, gt=0, lt=1)

    def describe(self) -> str:
        what = self.criterion.removeprefix("min_")
        what = {"events": "target deaths", "randomised": "expected number randomised"}.get(
            what, "expected number screened"
        )
        t1 = (
            f" and simulated type I error ≤ {self.max_type_one_error:g}"
            if self.max_type_one_error is not None
            else ""
        )
        return (
            f"the smallest {what} among designs with assurance ≥ {self.assurance:g}, "
            f"P(D reached) ≥ {self.min_p_events_reached:g}{t1}"
        )


#: P(D reached) below this is flagged beside every power / assurance figure
P_EVENTS_REACHED_FLAG = 0.9


class NextPhase(_Strict):
    """The ``next_phase:`` section: the next-trial designs to simulate (populations, target deaths,
    accrual, looks and stopping rules, analysis, design priors) and how many trials per design."""

    model: str | None = (
        None  # the fitted model (patient-level data); none with data kind assumptions
    )
    populations: list[PopulationSpec] = Field([PopulationSpec()], min_length=1)
    events: list[Annotated[int, Field(gt=0, le=1_000_000)]] = Field(
        [150, 200, 300, 400], min_length=1
    )
    # randomised = ceil(events × this); "auto": from the fitted event rate by calendar_cut
    patients_per_event: float | Literal["auto"] = 2.0
    patients: PositiveInt | None = None  # a fixed number randomised instead (every design)
    looks: list[float] = [1.0]  # analyses at these fractions of the target deaths (last 1)
    efficacy: EfficacySpec | None = None  # default: Lan–DeMets O'Brien–Fleming when looks > 1
    futility: FutilitySpec | None = None
    enrichment: AdaptiveEnrichment | None = None  # adaptive enrichment at an interim look
    recommend: Recommendation = Recommendation()
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
    design_priors: list[DesignPriorSpec] = Field([DesignPriorSpec(name="as_is")], min_length=1)
    # simulated trials per design × design prior (and bounded by memory: nextphase.checks)
    trials: int = Field(2000, ge=100, le=10**9)
    design_hr: float = Field(0.7, gt=0, lt=1)
    oc_hrs: list[PositiveFloat] = [0.5, 0.6, 0.8, 0.9]  # OC grid; 1 and design_hr always added
    oc_trials: int = Field(1000, ge=100, le=10**9)
    decision: DecisionRule = DecisionRule()
    seed: int = 20250602
    executor: Literal["auto", "inprocess", "processes", "dask"] = "auto"
    # Dask scheduler address; "local" or none (with executor: dask): a LocalCluster of `workers`
    scheduler: str | None = None
    workers: int = Field(2, ge=1, le=256)

    @model_validator(mode="after")
    def _check(self):
        self._check_sequential()
        ppe = self.patients_per_event
        if isinstance(ppe, float) and ppe < 1:
            raise ValueError(f"patients_per_event must be >= 1 (or 'auto'), got {ppe:g}")
        auto = ppe == "auto" or any(p.patients_per_event == "auto" for p in self.populations)
        if auto and self.calendar_cut is None:
            raise ValueError(
                "patients_per_event 'auto' needs calendar_cut (the deaths expected by then "
                "set the number randomised)"
            )
        if self.patients is not None and "patients_per_event" in self.model_fields_set:
            raise ValueError("give patients or patients_per_event, not both")
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

    def _check_sequential(self) -> None:
        lk = self.looks
        if not lk or lk[-1] != 1.0 or any(not 0 < x <= 1 for x in lk):
            raise ValueError(
                f"looks: fractions of the target deaths in (0, 1], the last 1; got {lk}"
            )
        if any(b <= a for a, b in zip(lk, lk[1:])):
            raise ValueError(f"looks must increase strictly, got {lk}")
        e, f, a = self.efficacy, self.futility, self.analysis
        if e is not None and e.kind == "posterior" and len(e.posterior_gammas()) != len(lk):
            raise ValueError(
                f"efficacy.gamma has {len(e.posterior_gammas())} thresholds for {len(lk)} looks "
                f"{lk}"
            )
        if f is not None and len(lk) == 1:
            raise ValueError("futility needs an interim look (looks: [..., 1.0])")
        sequential = len(lk) > 1 or e is not None or f is not None
        if a.method == "bayes" and sequential:
            raise ValueError(
                "looks / efficacy / futility need analysis.method logrank or cox (the posterior "
                "rules use the normal approximation of their log-HR likelihood with "
                "analysis.prior); the refitted Bayesian model analyses one look only"
            )
        posterior = (e is not None and e.kind == "posterior") or (
            f is not None and f.kind in ("posterior", "predictive")
        )
        if a.prior.kind != "none" and not posterior:
            raise ValueError(
                "analysis.prior (borrowing) is used by posterior rules only: set efficacy: "
                "{kind: posterior, gamma: [..]} or a posterior / predictive futility rule"
            )
        if (
            "alpha" in self.model_fields_set
            and e is not None
            and e.kind == "posterior"
            and (f is None or f.kind != "conditional_power")
        ):
            raise ValueError("alpha is not used by a posterior efficacy rule (efficacy.gamma is)")

    @property
    def sequential(self) -> bool:
        """Looks, stopping rules or an analysis prior: the group-sequential analysis path."""
        return len(self.looks) > 1 or self.efficacy is not None or self.futility is not None

    def efficacy_rule(self) -> EfficacySpec:
        return self.efficacy or EfficacySpec()

    def oc_grid(self) -> list[float]:
        return sorted(set(self.oc_hrs) | {1.0, self.design_hr})

    def check_models(self, models, data_kind: str) -> None:
        """Cross-checks with the rest of the config (called by Config's validator)."""
        if data_kind == "published":
            raise ValueError(
                "next_phase: needs patient-level data or data kind 'assumptions' "
                "(not kind 'published')"
            )
        if data_kind == "assumptions":
            if self.model is not None:
                raise ValueError("next_phase.model: data kind 'assumptions' has no fitted model")
            if any(p.kind != "all" for p in self.populations) or self.enrichment is not None:
                raise ValueError(
                    "next_phase: enrichment needs a fitted model with a biomarker term "
                    "(data kind 'assumptions' has no patients)"
                )
            if self.covariates != "resample" or "auto" in (
                self.patients_per_event,
                *[p.patients_per_event for p in self.populations],
            ):
                raise ValueError(
                    "next_phase: covariates 'fitted' and patients_per_event 'auto' need "
                    "patient-level data"
                )
            return
        if self.model is None:
            raise ValueError("next_phase.model: which fitted model's posterior is the design prior")
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
        enriched = any(p.kind != "all" for p in self.populations) or self.enrichment is not None
        if enriched and not spec.biomarker:
            raise ValueError(
                f"next_phase.populations: enrichment needs a model with a biomarker term; "
                f"model '{self.model}' has none"
            )
