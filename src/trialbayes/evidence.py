"""A published estimate as evidence about the log hazard ratio: log HR_hat ~ N(log HR, se²)."""

from __future__ import annotations

import math
from dataclasses import dataclass


@dataclass(frozen=True)
class Evidence:
    name: str
    log_hr: float
    se: float
    subgroup: str | None = None
    share: float | None = None

    @property
    def hr(self) -> float:
        return math.exp(self.log_hr)
