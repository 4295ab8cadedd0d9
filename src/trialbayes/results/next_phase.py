"""Typed results of a next-phase simulation: per design (design prior × population × events)
assurance and its costs, the operating characteristics over the true HR, and the settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Annotated

import pandas as pd
from pydantic import PlainSerializer

from ..config.next_phase import NextPhase
from .sections import ExecutorSummary

#: the config section as results.json holds it: what differs from the defaults (the section's
#: own checks refuse some defaults together, e.g. Bayesian sampler settings under a log-rank test)
Section = Annotated[
    NextPhase,
    PlainSerializer(lambda s: s.model_dump(mode="json", exclude_defaults=True), return_type=dict),
]


@dataclass
class DesignResult:
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


@dataclass
class OCPoint:
    population: str
    events: int
    true_hr: float
    p_success: float
    mc_se: float
    analysis_failed: int = 0
    analysis_divergent: int = 0
    analysis_errors: list[str] = field(default_factory=list)


@dataclass
class NextPhaseResults:
    model: str
    design_priors: dict[str, str]  # name -> what it is (stated in every output)
    analysis: str
    decision_rule: str
    settings: Section  # the next_phase: section as run (executor settings left out)
    designs: list[DesignResult] = field(default_factory=list)
    oc: list[OCPoint] = field(default_factory=list)
    failed_cells: list[str] = field(default_factory=list)
    executor: dict[str, ExecutorSummary] = field(default_factory=dict)  # assurance, oc
    time_unit: str = "time units"  # the data's (data.time_unit): calendar cut, accrual, durations
    biomarker: str | None = None  # the model's biomarker (enriched populations' labels)
    biomarker_unit: str = ""
    analysis_short: str = ""  # method and level in a few words (figure titles)

    def designs_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(d) for d in self.designs])

    def oc_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(o) for o in self.oc])
