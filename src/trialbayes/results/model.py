"""The typed results model: every number a run reports lives here, computed once.

Vocabulary (one name for one thing, across the package, its tables and results.json):

* **An HR is an** :class:`HRSummary`: ``median`` (the posterior median; for a frequentist or
  published estimate, the point estimate), ``lower`` / ``upper`` (the equal-tailed interval at
  ``level``), ``log_mean`` / ``log_sd`` (log scale), ``p_hr_below[t]`` = P(HR < t) and
  ``p_hr_above[t]`` = P(HR > t) keyed by the threshold written with ``:g`` ("1", "0.8", "1.1"),
  ``n_draws`` (None: exact), ``method`` (``draws``: posterior draws; ``normal``: a closed-form
  normal posterior; ``cox``: a Cox partial-likelihood fit with its Wald interval; ``published``: a
  published estimate) and, for frequentist estimates only, ``p_value``. A ratio of two HRs (a
  contrast) is an HRSummary too.
* **The credible (or confidence) level** is ``level`` in every signature and field.
* ``p_value`` is a frequentist p-value; ``p_hr_below`` / ``p_hr_above`` are posterior
  probabilities; ``alpha`` is only ever a significance level.
* Flat tables (CSV) use the same names, prefixed where a row holds several HRs: ``median``,
  ``lower``, ``upper``, ``level``, ``p_hr_below_1``, ``p_hr_above_1.1``; ``cox_median``, ...
* ``SamplerSpec`` (config) says how to sample; ``inference.sampler.SamplerRunner`` samples.

A run's :class:`Results` has a ``kind`` (``patient_level``, ``reconstructed``, ``published``,
``calibration``), the ``schema_version`` below (changed whenever the JSON shape changes), the
resolved ``settings`` (each with where it came from), run-level ``flags``, and typed sections.
``Results.to_dict()`` is exactly what ``results.json`` holds (:mod:`.io` reads it back into the
same object and keeps the JSON Schema generated from these types); CSV tables, reports and the CLI
headline are rendered from these objects.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cache
from typing import Annotated, Literal

from pydantic import StringConstraints, TypeAdapter

from ..core.escape import FIGURE_PATH
from ..core.flags import Flag
from .calibration import CalibrationSummary
from .credible import CredibleSubgroup, CurveGrid, SimultaneousBand, Span
from .missing import MissingData
from .next_phase import NextPhaseResults
from .published import PublishedEstimateResult, PublishedSections
from .sections import (
    DataSummary,
    GateResult,
    KaplanMeierAt,
    LooComparison,
    Provenance,
    ReconstructionQuality,
    SensitivityResults,
    SyntheticTruth,
)
from .summaries import Count, HRSummary, Probability, Quantity
from .time_varying import HROverTime

#: what results.json's ``figures`` may name: a PNG file directly in the run's figures/ folder
#: (``trialbayes report`` embeds only these; a planted path is refused on reading)
FigurePath = Annotated[str, StringConstraints(pattern=FIGURE_PATH)]
FigureKey = Annotated[str, StringConstraints(pattern=r"^[^\x00-\x1f\x7f]{1,200}$")]

SCHEMA_VERSION = "3.1"  # 3.1: hr_curve grid, benefit_range, simultaneous, credible_subgroups
SIGN_CONVENTION = "HR = hazard(treatment) / hazard(control); HR < 1 favours treatment"
Kind = Literal["patient_level", "reconstructed", "published", "calibration", "assumptions"]


# ----------------------------------------------------------------------------- settings
SettingValue = float | str | list[float] | dict[str, str] | None


@dataclass(frozen=True)
class Setting:
    """A resolved analysis setting and where it came from (``config`` or ``derived`` + rule)."""

    value: SettingValue
    source: Literal["config", "derived", "default", "none"]
    rule: str = ""

    def text(self) -> str:
        """Where the setting came from, for reports."""
        return (
            "from the config"
            if self.source == "config"
            else (f"derived: {self.rule}" if self.source == "derived" else self.rule or self.source)
        )


# ----------------------------------------------------------------------------- patient-level
@dataclass
class Coefficient:
    """A model term: its posterior beside the Cox estimate of the same term on the same coding
    (``cox`` is None when the Cox fit gave no estimate)."""

    term: str
    unit: str
    posterior: HRSummary
    cox: HRSummary | None = None

    @property
    def gap_sd(self) -> float | None:
        """How far the posterior lies from the Cox estimate, in posterior SDs of the log HR
        (posterior minus Cox); None without a Cox estimate."""
        if self.cox is None or self.posterior.log_sd <= 0:
            return None
        return (self.posterior.log_mean - self.cox.log_mean) / self.posterior.log_sd

    def flat(self) -> dict[str, str | float | int | None]:
        """One row of the coefficient table (CSV, notebook summary): the posterior's columns
        unprefixed, the Cox estimate's prefixed ``cox_``."""
        post = self.posterior
        row: dict[str, str | float | int | None] = {"term": self.term, "unit": self.unit}
        row |= post.flat() | {"log_mean": post.log_mean, "log_sd": post.log_sd}
        row["n_draws"] = post.n_draws
        if self.cox is not None:
            row |= self.cox.flat("cox_") | {
                "cox_log_mean": self.cox.log_mean,
                "cox_log_sd": self.cox.log_sd,
            }
        return row


@dataclass
class SurvivalSummary:
    """Standardised survival and RMST per arm at the landmark, and their differences."""

    landmark: float
    time_unit: str
    survival_treatment: Quantity
    survival_control: Quantity
    survival_difference: Quantity
    rmst_treatment: Quantity
    rmst_control: Quantity
    rmst_difference: Quantity


@dataclass
class SubgroupResult:
    """One biomarker subgroup: its size, events, conditional and marginal HRs, flags."""

    label: str
    n: Count
    share: Probability
    events: Count
    conditional: HRSummary | None = None
    marginal: HRSummary | None = None
    flags: list[Flag] = field(default_factory=list)


@dataclass
class Subgroups:
    """The biomarker subgroups of a model, with the cut-offs and where they came from."""

    biomarker: str
    unit: str
    cutoffs: list[float]
    cutoffs_source: str
    groups: list[SubgroupResult]


#: the pointwise posterior probability above which HR < 1 is called "benefit" along the curve
BENEFIT_PROB = 0.9


@dataclass
class HRCurve:
    """The treatment HR along a biomarker over ``grid`` (the observed range): summaries at a few
    values (``at``, keyed by the value written with ``:g``), ``benefit_range`` — the spans where
    P(HR < 1) > BENEFIT_PROB pointwise, each saying whether it ends at the grid's end — where the
    median crosses 1, the ``simultaneous`` band and the ``credible_subgroups``."""

    biomarker: str
    unit: str
    reference: float
    transform: str
    kind: str
    median_crosses_1_at: float | None
    at: dict[str, HRSummary]
    benefit_range: list[Span] = field(default_factory=list)
    grid: CurveGrid | None = None
    simultaneous: SimultaneousBand | None = None
    credible_subgroups: list[CredibleSubgroup] = field(default_factory=list)


@dataclass
class ModelResult:
    """One fitted patient-level model. ``treatment_effect`` is the ``treatment`` coefficient's
    posterior (the same object, from the same draws)."""

    name: str
    estimand: str
    treatment_effect: HRSummary
    reliable: bool
    diagnostics: GateResult
    sampler: str | None
    spec: dict[str, str | int | float | bool | list[str] | None]
    priors: dict[str, str]
    n_intervals: int
    cut_points: list[float]
    cox_method: str
    coefficients: list[Coefficient]
    survival: SurvivalSummary
    subgroups: Subgroups | None = None
    hr_curve: HRCurve | None = None
    flags: list[Flag] = field(default_factory=list)
    #: treatment_effect: time_varying — HR per baseline interval, PH test, LOO against constant
    hr_over_time: HROverTime | None = None
    cox_status: Literal["ok", "not_converged", "failed"] = "ok"


# ----------------------------------------------------------------------------- the run
@dataclass
class Results:
    """Everything a run reports. Sections that do not apply to a run's kind are None (or
    empty); ``to_dict()`` is results.json."""

    kind: Kind
    config_name: str
    title: str
    data_label: str
    synthetic: bool = False
    schema_version: str = SCHEMA_VERSION
    sign_convention: str = SIGN_CONVENTION
    reliable: bool = True
    unreliable_models: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    settings: dict[str, Setting] = field(default_factory=dict)
    data: DataSummary | None = None
    models: dict[str, ModelResult] = field(default_factory=dict)
    loo: LooComparison | None = None
    kaplan_meier: KaplanMeierAt | None = None
    synthetic_truth: SyntheticTruth | None = None
    reconstruction: ReconstructionQuality | None = None
    data_notes: list[str] = field(default_factory=list)
    missing_data: MissingData | None = None  # data.missing: per column, what was done
    sensitivity: SensitivityResults | None = None
    next_phase: NextPhaseResults | None = None
    estimates: dict[str, PublishedEstimateResult] = field(default_factory=dict)
    published: PublishedSections | None = None
    calibration: CalibrationSummary | None = None
    figures: dict[FigureKey, FigurePath] = field(default_factory=dict)
    figure_captions: dict[str, str] = field(default_factory=dict)  # what each figure shows
    provenance: Provenance | None = None

    @property
    def all_flags(self) -> list[Flag]:
        """Run-level flags, then every model's and subgroup's."""
        out = list(self.flags)
        for m in self.models.values():
            out += m.flags
            out += [f for g in (m.subgroups.groups if m.subgroups else []) for f in g.flags]
        return out

    def setting(self, key: str, default=None):
        """The value of a resolved setting (``default`` when it is absent)."""
        s = self.settings.get(key)
        return default if s is None else s.value

    @property
    def level(self) -> float:
        """The run's credible level (``estimands.level``)."""
        return float(self.setting("level", 0.95))

    @property
    def time_unit(self) -> str:
        """The data's time unit (``time units`` when none was given)."""
        return self.setting("time_unit") or "time units"

    def unit_of(self, column: str | None) -> str:
        """The unit of a column ('' when none was given)."""
        return (self.setting("units") or {}).get(column, "") if column else ""

    def to_dict(self) -> dict:
        """What results.json holds (JSON types only: NaN and ±inf become null)."""
        return results_adapter().dump_python(self, mode="json")


@cache
def results_adapter() -> TypeAdapter:
    """The pydantic adapter of :class:`Results`: JSON dumping, validation, JSON Schema."""
    return TypeAdapter(Results)
