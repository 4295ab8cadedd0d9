"""Typed sections of a run's results besides the models: the data summary, Kaplan–Meier at the
landmark, the synthetic truth, the reconstruction quality, the sampler gate, the LOO comparison,
the prior-scenario refits and the provenance. Vocabulary: :mod:`.model`."""

from __future__ import annotations

from dataclasses import dataclass, field

from .summaries import Count, HRSummary, Probability
from .synthetic import CohortCheck, PublishedTarget


# ----------------------------------------------------------------------------- data
@dataclass
class ArmSummary:
    """Patients and events in one arm."""

    n: Count
    events: Count


@dataclass
class DataSummary:
    """What the analysed data are: where from, how many patients and events (per arm, keyed by
    the arm's display label), follow-up, and what was dropped."""

    label: str
    synthetic: bool
    source: str
    n: Count
    events: Count
    by_arm: dict[str, ArmSummary]
    max_follow_up: float
    n_dropped_incomplete: Count = 0
    arms_left_out: dict[str, Count] = field(default_factory=dict)  # a file's other arms: rows
    sha256: str = ""
    #: two different quantities, each named: the median follow-up by the reverse Kaplan–Meier
    #: method (censoring as the event; None: not estimable) and the median observed time (to
    #: event or censoring), from which the default landmark is derived
    median_follow_up_reverse_km: float | None = None
    median_observed_time: float | None = None


@dataclass
class KaplanMeierAt:
    """Kaplan–Meier survival per arm at the landmark."""

    landmark: float
    survival_control: Probability
    survival_treatment: Probability


@dataclass
class SyntheticTruth:
    """The generating model of a synthetic cohort, as its generator states it: sentences for the
    reports and the parameters by name (natural units); the ``published`` estimates it is
    calibrated to and the cohort's own Cox HRs beside them (``cohort_vs_published``)."""

    label: str
    description: list[str]
    parameters: dict[str, float]
    published: list[PublishedTarget] = field(default_factory=list)
    cohort_vs_published: list[CohortCheck] = field(default_factory=list)


# ----------------------------------------------------------------------------- reconstruction
@dataclass
class RiskRow:
    """Numbers at risk at one time: as published and in the reconstructed data."""

    time: float
    published: int
    reconstructed: int


@dataclass
class ReconstructionArm:
    """One arm's agreement of the reconstruction with the digitised figure."""

    n: int
    events: int
    km_max_abs_diff: float
    km_rms_diff: float
    risk_table: list[RiskRow]
    n_at_risk_max_rel_diff: float
    km_max_abs_diff_raw: float | None = None
    published_events: int | None = None


@dataclass
class ReconstructionQuality:
    """Agreement of patient data rebuilt from a digitised KM figure with the figure (Guyot)."""

    method: str
    arms: dict[str, ReconstructionArm]
    warnings: list[str]
    poor_agreement: bool
    cox: HRSummary | None = None  # method cox: treatment_arm vs the other arm
    treatment_arm: str | None = None


# ----------------------------------------------------------------------------- sampler gate
@dataclass
class GateThresholds:
    """The diagnostics gate a fit was held to (config ``diagnostics``)."""

    rhat_max: float
    ess_bulk_min: float
    ess_tail_min: float
    max_divergences: int
    bfmi_min: float


@dataclass
class GateResult:
    """The sampler diagnostics of one fit against the gate; ``failures`` names every miss."""

    rhat_max: float | None  # None: undefined (one chain)
    ess_bulk_min: float
    ess_tail_min: float
    divergences: Count
    bfmi_min: float
    n_draws: Count
    thresholds: GateThresholds
    failures: list[str]
    reliable: bool


# ----------------------------------------------------------------------------- LOO
@dataclass
class LooRow:
    """One model in the PSIS-LOO comparison (ArviZ ``compare``): ``p_loo`` is its effective
    number of parameters, ``p_worse`` the probability that it predicts worse than the best (None
    for the best), ``diagnostics`` ArviZ's notes (Pareto k̂, few observations)."""

    model: str
    rank: int
    elpd: float
    se: float
    p_loo: float
    elpd_diff: float
    dse: float
    weight: float
    p_worse: Probability | None = None
    diagnostics: str = ""


@dataclass
class ParetoK:
    """PSIS-LOO Pareto k of one model: the largest, and how many exceed 0.7."""

    max_pareto_k: float
    n_k_above_0_7: int


@dataclass
class LooComparison:
    """The PSIS-LOO comparison of the models and its verdict."""

    table: list[LooRow] | None
    pareto_k: dict[str, ParetoK]
    verdict: str  # "PSIS-LOO prefers `a` (...)" or "no clear preference (...)"


# ----------------------------------------------------------------------------- sensitivity
@dataclass
class ScenarioInfo:
    """A named prior scenario and the treatment prior it stands for."""

    name: str
    kind: str
    prior: str  # the treatment prior, described


@dataclass
class ScenarioRefit:
    """One model refitted under one prior scenario: its treatment HR and, for an interaction
    model, the HR at a few biomarker values (``at``, keyed by the value written with ``:g``)."""

    model: str
    scenario: str
    treatment_prior: str
    interaction_prior: str
    reliable: bool
    divergences: int
    rhat_max: float | None
    treatment: HRSummary
    at: dict[str, HRSummary] = field(default_factory=dict)


@dataclass
class PsenseRow:
    """ArviZ power-scaling sensitivity of one parameter of one model."""

    model: str
    parameter: str
    prior: float
    likelihood: float
    diagnosis: str


@dataclass
class Compilations:
    """Compilations of one model in the run, and during the scenario refits."""

    compilations: int
    during_scenarios: int


@dataclass
class SensitivityResults:
    """The prior-scenario refits and power-scaling sensitivity of a patient-level run."""

    scenarios: list[ScenarioInfo]
    refits: list[ScenarioRefit]
    psense: list[PsenseRow]
    compilations: dict[str, Compilations]

    @property
    def unreliable_refits(self) -> list[ScenarioRefit]:
        """The refits that failed the diagnostics gate."""
        return [r for r in self.refits if not r.reliable]


# ----------------------------------------------------------------------------- many-cell jobs
@dataclass
class ExecutorSummary:
    """How a many-cell job ran: backend, workers, cells done, failed (their keys), resumed."""

    backend: str
    workers: int
    cells: int
    failed: list[str]
    resumed: int
    wall_seconds: float
    first_errors: list[str] = field(default_factory=list)  # distinct errors, with a cell each


# ----------------------------------------------------------------------------- provenance
@dataclass
class ModelTimings:
    """Seconds one model spent compiling, sampling and in the analysis step."""

    compile_s: float
    sample_s: float
    analyse_s: float | None = None
    compiled_from: str | None = None  # memory, disk, compiled or uncached


@dataclass
class SamplerProvenance:
    """The sampler settings a run used (and each model's target acceptance)."""

    backend: str
    chains: int
    draws: int
    tune: int
    target_accept: dict[str, float] = field(default_factory=dict)


@dataclass
class Provenance:
    """Where a result came from; provenance.json adds the whole config and wall times."""

    created_at: str
    config_path: str | None
    config_hash: str
    data_label: str = ""
    data_sha256: str = ""
    seeds: dict[str, int] = field(default_factory=dict)
    seed_rule: str = ""
    sampler: SamplerProvenance | None = None
    versions: dict[str, str] = field(default_factory=dict)
    timings: dict[str, ModelTimings] = field(default_factory=dict)
