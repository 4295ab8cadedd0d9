"""A published estimate as evidence about the log hazard ratio: log HR_hat ~ N(log HR, se²)."""

from __future__ import annotations

import math
from dataclasses import dataclass
from statistics import NormalDist

from ..config.data_sources import PublishedEstimate


@dataclass(frozen=True)
class Evidence:
    """A published estimate as evidence: the log-HR estimate and its SE (treatment vs control), with
    the subgroup it describes and that subgroup's share of the patients."""

    name: str
    log_hr: float
    se: float
    subgroup: str | None = None
    share: float | None = None

    @property
    def hr(self) -> float:
        return math.exp(self.log_hr)


def evidence_of(estimate: PublishedEstimate) -> Evidence:
    """A published estimate's log HR and its standard error: given, or from the CI
    ((log upper − log lower) / (2 z)), or from the events per arm (√(1/d₁ + 1/d₀), Schoenfeld)."""
    e = estimate
    y = math.log(e.hr) if e.hr is not None else e.log_hr
    if e.se is not None:
        se = e.se
    elif e.ci is not None:
        z = NormalDist().inv_cdf((1 + e.ci_level) / 2)
        se = (math.log(e.ci[1]) - math.log(e.ci[0])) / (2 * z)
    else:
        se = math.sqrt(1 / e.events.treatment + 1 / e.events.control)
    return Evidence(e.name, y, se, e.subgroup, e.share)
