"""Typed results of a synthetic cohort's check against the published estimates it is calibrated
to: each target (a published HR over a range of a biomarker, with the band the cohort's own
estimate should fall in) and the cohort's treatment-only Cox HR in the same patients. Both sit in
the typed ``synthetic_truth`` section (:class:`.sections.SyntheticTruth`)."""

from __future__ import annotations

from dataclasses import dataclass

from .summaries import Count, HRSummary, Ratio


@dataclass(frozen=True)
class PublishedTarget:
    """A published treatment HR with its 95% CI, in the patients whose ``biomarker`` lies between
    ``low`` (inclusive if ``low_inclusive``; None: no lower bound) and ``high`` (inclusive; None:
    no upper bound); ``target_lower``–``target_upper`` is the band a calibrated cohort's own Cox
    HR should fall in."""

    label: str
    biomarker: str
    low: float | None
    high: float | None
    low_inclusive: bool
    hr: Ratio
    lower: Ratio
    upper: Ratio
    target_lower: Ratio
    target_upper: Ratio

    def mask(self, values):
        """The patients of this target, from their biomarker ``values`` (a NumPy array)."""
        m = values == values  # every non-missing value
        if self.low is not None:
            m = m & ((values >= self.low) if self.low_inclusive else (values > self.low))
        if self.high is not None:
            m = m & (values <= self.high)
        return m

    def published_text(self) -> str:
        return f"{self.hr:.2f} ({self.lower:.2f}–{self.upper:.2f})"

    def target_text(self) -> str:
        return f"{self.target_lower:.2f}–{self.target_upper:.2f}"


@dataclass(frozen=True)
class CohortCheck:
    """The cohort's own Cox HR for one published target: treatment only, Efron ties (an
    HRSummary of method ``cox``; None: the fit failed or had too few events), and whether its
    point estimate lies in the target band."""

    target: PublishedTarget
    n: Count
    events: Count
    cox: HRSummary | None
    inside: bool
