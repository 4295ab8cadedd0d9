"""Typed results of a reanalysis from published estimates: per estimate and prior scenario the
posterior, tipping points, the prior grid, subgroup shrinkage and the probability of success of a
next trial. Vocabulary: :mod:`.model`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .sections import GateResult, ScenarioInfo
from .summaries import HRSummary, Probability, Quantity


@dataclass
class QuadratureCheck:
    """A NUTS posterior against numerical quadrature of the same density."""

    max_abs_diff_p: float
    abs_diff_median_hr: float


@dataclass
class ScenarioPosterior:
    """One estimate's posterior under one prior scenario (sampled ones with their gate)."""

    prior: str
    kind: str
    method: str
    hr: HRSummary
    diagnostics: GateResult | None = None  # sampled posteriors only
    quadrature_check: QuadratureCheck | None = None


@dataclass
class TippingPoint:
    """The largest SD s of a centred prior N(0, s²) under which P(HR < 1) falls below ``level``
    (None: below it even under a flat prior)."""

    level: Probability
    p_flat: Probability
    sd: float | None
    note: str
    design_hr: float | None = None
    prior_p_hr_below_design: Probability | None = None


@dataclass
class PublishedEstimateResult:
    """One published estimate: itself, its posterior per scenario, its tipping points."""

    name: str
    estimate: HRSummary  # the published estimate (method published), at the run's level
    subgroup: str | None
    share: Probability | None
    scenarios: dict[str, ScenarioPosterior]
    tipping_points: list[TippingPoint] = field(default_factory=list)


@dataclass
class PriorGrid:
    """P(HR < threshold) under normal priors N(mean, sd²) on the log HR (tables/prior_grid.csv)."""

    means: list[float]
    sds: list[float]
    threshold: float


@dataclass
class ShrunkGroup:
    """One subgroup estimate as published and after hierarchical shrinkage."""

    name: str
    subgroup: str | None
    share: Probability | None
    unshrunk: HRSummary
    shrunk: HRSummary


@dataclass
class Contrast:
    """The ratio of two subgroups' HRs after shrinkage (an HRSummary of the ratio) and as
    published (a normal estimate of the ratio, method published)."""

    contrast: str
    shrunk: HRSummary
    unshrunk: HRSummary


@dataclass
class Shrinkage:
    """The hierarchical shrinkage of published subgroup estimates."""

    model: str
    tau_prior_sigma: float
    groups: list[ShrunkGroup]
    overall_mu: HRSummary
    contrasts: list[Contrast]
    tau: Quantity
    p_tau_above_0_2: Probability
    diagnostics: GateResult


@dataclass
class AssuranceAtEvents:
    """A next trial of a given number of events: assurance, P(estimate < target), power."""

    events: int
    assurance: Probability
    p_hr_estimate_below_target: Probability
    power_at_posterior_mean: Probability


@dataclass
class AssuranceDesign:
    """One next-trial design over one posterior: assurance by events and events needed."""

    posterior: str  # which posterior the design averages over
    log_hr_mean: float
    log_hr_sd: float
    share: Probability | None
    by_events: list[AssuranceAtEvents]
    events_needed: dict[str, int | None]  # assurance level (:g) -> events; None: not reachable
    assurance_limit: Probability


@dataclass
class Assurance:
    """Probability of success of a next trial per design (all comers, enriched)."""

    alpha: Probability  # one-sided significance level of the next trial's test
    allocation: Probability
    target_hr: float
    designs: dict[str, AssuranceDesign]


@dataclass
class PublishedSections:
    """What a published-estimates run reports besides each estimate's posteriors."""

    evidence_model: str
    scenarios: list[ScenarioInfo]
    prior_grid: PriorGrid
    compilations: int  # NUTS compilations in the run
    shrinkage: Shrinkage | None = None
    assurance: Assurance | None = None
