"""HR(t) of a time-varying treatment effect: pure functions of posterior draws.

The model (``treatment_effect: time_varying``) has one treatment log-HR β_k per baseline interval
(``treatment_over_time``, draws × K); β (``treatment``) is their event-weighted mean. With a
biomarker interaction the interval HRs are at the biomarker's reference value (the interaction is
constant over time). The survival estimands use β_k through the treated arm's cumulative hazard
(``draws.standardized_survival``).
"""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..results.model import Quantity
from ..results.time_varying import AVERAGE_DEFINITION, HROverTime, IntervalHR
from .draws import hr_summary


def interval_bounds(design: Design) -> list[tuple[float, float | None]]:
    """(start, end) of each baseline interval; the last is open (end None)."""
    ends = [float(x) for x in design.starts[1:]] + [None]
    return list(zip((float(x) for x in design.starts), ends))


def events_per_interval(design: Design) -> np.ndarray:
    """Number of events in each baseline interval of ``design``."""
    return np.bincount(design.interval, weights=design.event, minlength=design.n_intervals)


def hr_over_time(
    draws: dict,
    design: Design,
    estimand: str,
    thresholds=(1.0, 0.8),
    harm=1.1,
    level: float = 0.95,
    time_unit: str = "time units",
) -> HROverTime:
    """Per interval the treatment HR; the change HR(last) / HR(first); the walk's scale."""
    bt = draws["treatment_over_time"]
    ev = events_per_interval(design)
    intervals = [
        IntervalHR(start, end, int(round(ev[k])), hr_summary(bt[:, k], thresholds, harm, level))
        for k, (start, end) in enumerate(interval_bounds(design))
    ]
    return HROverTime(
        estimand=estimand,
        average_definition=AVERAGE_DEFINITION,
        intervals=intervals,
        # a ratio of two HRs: only "lower in the last interval than in the first" (ratio < 1)
        # and its reverse mean something; the benefit and harm thresholds are for HRs
        change=hr_summary(bt[:, -1] - bt[:, 0], (1.0,), (1.0,), level),
        rw_sigma=Quantity.from_draws(draws["treatment_rw_sigma"], level),
        time_unit=time_unit,
    )


def hr_over_time_table(result: HROverTime) -> list[dict]:
    """One row per interval (CSV ``tables/hr_over_time_<model>.csv``)."""
    return [
        {
            "start": iv.start,
            "end": iv.end,
            "time_unit": result.time_unit,
            "events": iv.events,
            **iv.hr.flat(),
        }
        for iv in result.intervals
    ]
