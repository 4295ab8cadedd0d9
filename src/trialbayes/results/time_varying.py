"""Results of a model with a time-varying treatment effect (``treatment_effect: time_varying``).

``models.<name>.hr_over_time`` in results.json: the treatment HR per baseline interval (start, end,
events, :class:`~trialbayes.results.model.HRSummary`), the change from the first interval to the
last, the random walk's scale, the frequentist proportional-hazards test (scaled Schoenfeld
residuals, lifelines) and the PSIS-LOO comparison with the constant-effect model of the same terms.

Such a model's ``treatment_effect`` is the *event-weighted average* of the interval log-HRs
(weights: each interval's share of the observed events), stated in its ``estimand``; the per
interval HRs are the time-varying estimand itself.
"""

from __future__ import annotations

from dataclasses import dataclass

from .summaries import Count, HRSummary, Probability, Quantity

#: how a time-varying model's ``treatment_effect`` is defined (reports, results.json)
AVERAGE_DEFINITION = (
    "exp of the event-weighted mean of the interval log-HRs, Σ_k π_k β_k with π_k the share of "
    "the observed events in interval k: the average over follow-up that a Cox proportional-hazards "
    "fit of non-proportional data approximates (Xu & O'Quigley 2000)"
)


@dataclass(frozen=True)
class IntervalHR:
    """The treatment HR in one baseline interval (start, end]; ``end`` None: the open last one."""

    start: float
    end: float | None
    events: Count  # observed events in the interval, both arms
    hr: HRSummary


@dataclass(frozen=True)
class PHTest:
    """Grambsch–Therneau test of proportional hazards for the treatment term: the correlation of
    its scaled Schoenfeld residuals with a transform of time, in the Cox model of the same terms
    (lifelines ``proportional_hazard_test``); chi-square on 1 degree of freedom."""

    method: str
    time_transform: str
    test_statistic: float | None
    p_value: Probability | None
    status: str = "ok"  # "failed": no statistic (``error`` says why)
    error: str | None = None


@dataclass(frozen=True)
class PHComparison:
    """PSIS-LOO of the time-varying model against the constant-effect model of the same terms."""

    constant_model: str
    constant_hr: HRSummary  # that model's (proportional-hazards) treatment HR
    elpd_diff: float | None  # elpd(time-varying) − elpd(constant); > 0 favours time-varying
    se: float | None  # SE of the difference
    preferred: str | None  # "time_varying", "constant" or None (no clear preference)
    verdict: str


@dataclass(frozen=True)
class HROverTime:
    """HR(t): the treatment hazard ratio per baseline interval (at the biomarker's reference value
    when the model has an interaction, which is constant over time)."""

    estimand: str
    average_definition: str
    intervals: list[IntervalHR]
    change: HRSummary  # HR(last interval) / HR(first interval)
    rw_sigma: Quantity  # posterior of the walk's scale (SD of the first-to-last change)
    time_unit: str = "time units"
    ph_test: PHTest | None = None
    comparison: PHComparison | None = None

