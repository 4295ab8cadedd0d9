"""Typed results of the next-phase designs as they are run: interim looks, borrowing, adaptive
enrichment, the recommended design, and the grid they sit in (:class:`NextPhaseResults`).

Every probability is a simulated share of trials with its Monte Carlo SE where one is given, or
a closed form (``PlannedLook``: normal approximation of the log-rank statistic at the planned
death counts). Times are in the data's time unit (``NextPhaseResults.time_unit``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated

import pandas as pd
from pydantic import PlainSerializer

from ..config.next_phase import NextPhase
from .sections import ExecutorSummary
from .summaries import HRSummary

#: the config section as results.json holds it: what differs from the defaults (the section's
#: own checks refuse some defaults together, e.g. Bayesian sampler settings under a log-rank test)
Section = Annotated[
    NextPhase,
    PlainSerializer(lambda s: s.model_dump(mode="json", exclude_defaults=True), return_type=dict),
]


@dataclass(frozen=True)
class LookOutcome:
    """Simulated: the share of trials that reached look ``look`` and stopped there."""

    look: int
    fraction: float  # of the target deaths
    target_events: int
    p_performed: float  # the look took place (not stopped before, deaths reached before the end)
    p_efficacy: float  # stopped for efficacy at this look
    p_futility: float  # stopped for futility at this look


@dataclass(frozen=True)
class PlannedLook:
    """Closed form at the planned death counts (information r(1 − r) per death): the boundary on
    the Z scale (benefit positive), its one-sided nominal p, the cumulative α spent (efficacy
    crossing under HR 1 ignoring futility), the futility threshold, and the probabilities of
    stopping at this look for efficacy / futility under HR 1 and at the design HR."""

    look: int
    fraction: float
    events: int
    efficacy_z: float
    nominal_p: float
    alpha_spent: float
    futility_z: float | None
    p_efficacy_null: float
    p_futility_null: float
    p_efficacy_design: float
    p_futility_design: float


@dataclass(frozen=True)
class PlannedDesign:
    """The closed-form looks of one target death count; ``power`` and ``size`` are the summed
    efficacy-stopping probabilities at the design HR and at HR 1."""

    events: int
    looks: list[PlannedLook]

    @property
    def power(self) -> float:
        return sum(x.p_efficacy_design for x in self.looks)

    @property
    def size(self) -> float:
        return sum(x.p_efficacy_null for x in self.looks)


@dataclass(frozen=True)
class BorrowingSummary:
    """The analysis prior of one population built from the phase 2 posterior, its effective
    sample size in events, and the operating characteristics with and without borrowing on the
    same simulated trials (``None`` where the OC point did not run)."""

    population: str
    events: int
    prior: str  # description of the analysis prior
    no_borrowing: str  # the prior it is compared with
    phase2: HRSummary  # the phase 2 posterior of the population's average HR it borrows
    ess_elir: float  # events (RBesT's default method)
    ess_moment: float
    type_one_error: float | None  # P(success | HR 1), borrowing
    type_one_error_none: float | None  # the same without borrowing
    power: float | None  # P(success | design HR), borrowing
    power_none: float | None
    assurance: float | None  # under the first design prior
    assurance_none: float | None
    mc_se_max: float  # the largest MC SE of the six probabilities


@dataclass(frozen=True)
class EnrichmentRow:
    """One design of the adaptive-enrichment comparison under one design prior (or one true HR
    with zero interaction: ``design_prior`` 'HR x, no interaction')."""

    design: str  # fixed all comers | fixed enriched | adaptive
    design_prior: str
    events: int
    assurance: float  # P(success): H_F or H_S rejected (fixed designs: their one test)
    mc_se: float
    trials: int
    expected_screened: float
    expected_randomised: float
    expected_events: float
    expected_duration: float
    p_events_reached: float
    false_go: float  # success while the true HR of the population claimed is ≥ null_hr
    p_enrich: float  # adaptive only (else 0)
    p_stop: float  # adaptive only: stopped for futility at the interim
    p_claim_subgroup: float  # success with the claim in the subgroup only
    true_hr: float | None = None  # the fixed true HR of an OC row (None under a design prior)


@dataclass(frozen=True)
class FalseEnrichment:
    """P(enrich) with zero interaction at one common true HR: closed form (independent subgroup
    and complement statistics, normal approximation at the simulated mean interim deaths of each)
    and simulated."""

    events: int
    true_hr: float
    closed_form: float
    simulated: float
    mc_se: float


@dataclass(frozen=True)
class EnrichmentResults:
    """Adaptive enrichment as run: the rule, the subgroup and its prevalence, a row per design and
    design prior, and the false-enrichment rates (closed form and simulated)."""

    rule: str  # the stated rule and the final test
    subgroup: str  # PopulationSpec.describe: the biomarker, the side of the cut-off, its unit
    prevalence: float  # share of the population in the subgroup
    rows: list[EnrichmentRow]
    false_enrichment: list[FalseEnrichment]
    stated_false_enrichment: float  # the largest closed-form P(enrich) over the OC grid


@dataclass(frozen=True)
class Recommended:
    """The design recommended under one design prior by the stated criterion (None: no design
    qualifies)."""

    design_prior: str
    criterion: str  # stated in words
    population: str | None
    events: int | None
    analysis_prior: str
    assurance: float | None
    expected_screened: float | None
    expected_randomised: float | None
    p_events_reached: float | None
    note: str = ""
    type_one_error: float | None = None  # simulated P(success | HR 1) of that design


# ----------------------------------------------------------------------------- the grid
@dataclass
class DesignResult:
    """One design (population, target deaths) under one design prior, simulated: assurance with its
    Monte Carlo SE, expected deaths, patients, screening and duration, go / stop decision rates, the
    true-HR summaries of the design prior, failed analyses and, with looks, each look's outcome."""

    design_prior: str
    population: str
    cutoff: float | None
    events: int
    n_planned: int
    assurance: float
    mc_se: float
    trials: int
    expected_events: float
    expected_randomised: float
    expected_screened: float
    expected_duration: float
    p_events_reached: float
    p_go: float
    false_go: float
    false_stop: float
    p_true_hr_below_null: float
    p_true_hr_below_target: float
    true_hr_median: float
    analysis_failed: int = 0  # trials whose analysis gave no result (counted as no success)
    analysis_divergent: int = 0  # Bayesian analyses with divergent transitions (kept)
    analysis_errors: list[str] = field(default_factory=list)  # first errors of failed analyses
    population_kind: str = ""  # all / below / above ("" in results written before it existed)
    analysis_prior: str = ""  # "borrowing" / "no borrowing" when analysis.prior borrows
    looks: list[LookOutcome] = field(default_factory=list)  # per look (designs with looks)


@dataclass
class OCPoint:
    """An operating characteristic: P(success) of one population and target deaths at a fixed true
    HR, with its Monte Carlo SE, failed analyses and, with looks, each look's outcome."""

    population: str
    events: int
    true_hr: float
    p_success: float
    mc_se: float
    analysis_failed: int = 0
    analysis_divergent: int = 0
    analysis_errors: list[str] = field(default_factory=list)
    analysis_prior: str = ""
    p_events_reached: float | None = None
    looks: list[LookOutcome] = field(default_factory=list)


@dataclass
class NextPhaseResults:
    """The next-phase section of the results: the designs under each design prior, the operating
    characteristics, the closed-form plans, borrowing, enrichment, the recommendation, and what
    was run (settings, executor, failed cells)."""

    model: str | None
    design_priors: dict[str, str]  # name -> what it is (stated in every output)
    analysis: str
    decision_rule: str
    settings: Section  # the next_phase: section as run (executor settings left out)
    designs: list[DesignResult] = field(default_factory=list)
    oc: list[OCPoint] = field(default_factory=list)
    failed_cells: list[str] = field(default_factory=list)
    failed_errors: dict[str, str] = field(default_factory=dict)  # cell -> its error (one line)
    executor: dict[str, ExecutorSummary] = field(default_factory=dict)  # assurance, oc
    time_unit: str = "time units"  # the data's (data.time_unit): calendar cut, accrual, durations
    biomarker: str | None = None  # the model's biomarker (enriched populations' labels)
    biomarker_unit: str = ""
    analysis_short: str = ""  # method and level in a few words (figure titles)
    sequential: str = ""  # looks, efficacy and futility rules in words ("" for one look)
    planned: list[PlannedDesign] = field(default_factory=list)  # closed form per target deaths
    borrowing: list[BorrowingSummary] = field(default_factory=list)
    enrichment: EnrichmentResults | None = None
    recommendation: list[Recommended] = field(default_factory=list)
    sizing: dict[str, str] = field(default_factory=dict)  # population -> patients per death, how
    source: str = ""  # where the states of nature come from (a model's posterior, assumptions)
    assumptions: AssumptionsSummary | None = None  # data kind assumptions only

    def designs_table(self) -> pd.DataFrame:
        rows = [{k: v for k, v in asdict(d).items() if k != "looks"} for d in self.designs]
        return pd.DataFrame(rows)

    def oc_table(self) -> pd.DataFrame:
        return pd.DataFrame([{k: v for k, v in asdict(o).items() if k != "looks"} for o in self.oc])

    def looks_table(self) -> pd.DataFrame:
        """Per design (and OC point) and look: P(performed), P(efficacy), P(futility)."""
        rows = []
        for d in self.designs:
            for lk in d.looks:
                rows.append({"design_prior": d.design_prior, "population": d.population,
                             "events": d.events, "true_hr": None,
                             "analysis_prior": d.analysis_prior, **asdict(lk)})  # fmt: skip
        for o in self.oc:
            for lk in o.looks:
                rows.append({"design_prior": "", "population": o.population,
                             "events": o.events, "true_hr": o.true_hr,
                             "analysis_prior": o.analysis_prior, **asdict(lk)})  # fmt: skip
        return pd.DataFrame(rows)


@dataclass(frozen=True)
class ClosedFormAssurance:
    """A one-look log-rank design from assumptions: simulated assurance beside the closed form
    (Schoenfeld's normal approximation averaged over the design prior, estimands.assurance)."""

    events: int
    design_prior: str
    simulated: float
    mc_se: float
    closed_form: float
    p_events_reached: float


@dataclass(frozen=True)
class AssumptionsSummary:
    """What a design from assumptions (data kind ``assumptions``) assumed."""

    control_hazard: str
    design_prior: str
    design_hr: HRSummary  # the design prior of the treatment HR (from its draws)
    closed_form: list[ClosedFormAssurance]
