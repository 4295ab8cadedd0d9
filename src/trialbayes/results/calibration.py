"""Typed results of a simulation-based calibration (``trialbayes calibrate``): rank uniformity
per parameter, the prior predictive, and the ranks themselves."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from ..config.calibration import CalibrationSettings
from .sections import ExecutorSummary
from .summaries import Probability


@dataclass
class Quantiles:
    """5%, 50% and 95% quantiles over the replicates."""

    q05: float
    median: float
    q95: float


@dataclass
class PriorPredictive:
    """What the priors imply for a trial like the data's, over the replicates."""

    event_share: Quantiles | None = None
    control_survival_at_median_follow_up: Quantiles | None = None
    treatment_hr: Quantiles | None = None  # the HR at the biomarker reference
    share_extreme_survival: Probability | None = None  # control survival < 0.01 or > 0.99


@dataclass
class ParameterCalibration:
    """Rank uniformity of one parameter: a chi-square test on binned ranks (``chi2_p`` is its
    p-value) and the ECDF of fractional ranks against simultaneous 95% bands."""

    parameter: str
    n: int
    chi2: float
    chi2_p: Probability
    ecdf_outside_95_band: bool
    max_abs_ecdf_diff: float

    @property
    def uniform(self) -> bool:
        """Both rank tests pass (chi-square p ≥ 0.01, ECDF inside the band)."""
        return self.chi2_p >= 0.01 and not self.ecdf_outside_95_band


@dataclass
class CalibrationSummary:
    """A calibration run: per-parameter rank uniformity, the prior predictive, the ranks."""

    model: str
    settings: CalibrationSettings
    parameters: list[ParameterCalibration]
    prior_predictive: PriorPredictive
    ranks: dict[str, list[int]]  # parameter -> rank of the truth among L thinned draws, per fit
    failed_cells: list[str] = field(default_factory=list)
    executor: ExecutorSummary | None = None
    divergent_fits: int = 0

    def table(self) -> pd.DataFrame:
        """The per-parameter tests as a table (tables/sbc_summary.csv)."""
        return pd.DataFrame([asdict(p) for p in self.parameters])
