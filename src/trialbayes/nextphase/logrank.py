"""Vectorised two-sample log-rank test over many trials at once (rows = trials), ties exact.

For each row: at every distinct event time t_j with d_j deaths among Y_j at risk (Y_1j treated),
O − E = Σ (d_1j − d_j Y_1j / Y_j),  V = Σ d_j (Y_1j/Y_j)(1 − Y_1j/Y_j)(Y_j − d_j)/(Y_j − 1),
Z = (O − E)/√V (Z < 0: fewer treated deaths than expected, i.e. benefit); Z² is the usual
chi-square statistic (lifelines ``logrank_test``). The Peto one-step estimate of the log-HR is
(O − E)/V. Patients with time = inf are not in the trial.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats


@dataclass
class LogRank:
    """Log-rank statistics of T simulated trials: z, O − E of the treated arm, variance, events."""

    z: np.ndarray  # (T,) standardised O − E of the treated arm
    o_minus_e: np.ndarray
    variance: np.ndarray
    events: np.ndarray

    @property
    def log_hr(self) -> np.ndarray:
        """Peto's one-step log-HR estimate (O − E)/V."""
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.o_minus_e / self.variance

    def p_one_sided(self) -> np.ndarray:
        """P-value for benefit (treated hazard lower)."""
        return stats.norm.cdf(self.z)

    def success(self, alpha: float, max_hr: float | None = None) -> np.ndarray:
        """Significant at one-sided ``alpha`` (and, if given, the estimated HR below ``max_hr``)."""
        ok = self.z < -stats.norm.ppf(1 - alpha)
        if max_hr is not None:
            ok &= self.log_hr < np.log(max_hr)
        return ok


@dataclass
class RiskGroups:
    """Per distinct time of each row (valid where ``use``): deaths d (d1 treated) among y at risk
    (y1 treated). Arrays (T, n) in time order; shared by the log-rank test and cox_many."""

    use: np.ndarray
    d: np.ndarray
    d1: np.ndarray
    y: np.ndarray
    y1: np.ndarray
    events: np.ndarray  # (T,)


def risk_groups(time: np.ndarray, event: np.ndarray, treat: np.ndarray) -> RiskGroups:
    """Tie groups of each row of (T, n) arrays; patients with time = inf are not in the trial."""
    time = np.atleast_2d(np.asarray(time, float))
    event = np.atleast_2d(np.asarray(event, bool))
    treat = np.atleast_2d(np.asarray(treat, bool))
    t, n = time.shape
    order = np.argsort(time, axis=1, kind="stable")
    ts = np.take_along_axis(time, order, 1)
    ev = np.take_along_axis(event, order, 1) & np.isfinite(ts)
    tr = np.take_along_axis(treat, order, 1) & np.isfinite(ts)
    n_in = np.isfinite(ts).sum(1, keepdims=True)
    n1_in = tr.sum(1, keepdims=True)
    pos = np.broadcast_to(np.arange(n), (t, n))
    new = np.ones((t, n), bool)
    new[:, 1:] = ts[:, 1:] != ts[:, :-1]
    first = np.maximum.accumulate(np.where(new, pos, 0), axis=1)  # start of each tie group
    last_in_group = np.ones((t, n), bool)
    last_in_group[:, :-1] = new[:, 1:]
    cum_d = np.cumsum(ev, 1)
    cum_d1 = np.cumsum(ev & tr, 1)
    cum_tr = np.cumsum(tr, 1)

    def before(c):
        return np.take_along_axis(np.concatenate([np.zeros((t, 1), c.dtype), c], 1), first, 1)

    d = cum_d - before(cum_d)  # deaths in the group (valid at its last position)
    d1 = cum_d1 - before(cum_d1)
    y = n_in - first
    y1 = n1_in - before(cum_tr)
    return RiskGroups(last_in_group & (d > 0), d, d1, y, y1, ev.sum(1))


def logrank(time: np.ndarray, event: np.ndarray, treat: np.ndarray) -> LogRank:
    """Log-rank statistics of each row of (T, n) arrays; rows may differ in who is in the trial."""
    g = risk_groups(time, event, treat)
    use, d, d1, y, y1 = g.use, g.d, g.d1, g.y, g.y1
    with np.errstate(invalid="ignore", divide="ignore"):
        p1 = np.where(use, y1 / np.maximum(y, 1), 0.0)
        o_e = np.where(use, d1 - d * p1, 0.0).sum(1)
        v = np.where(use & (y > 1), d * p1 * (1 - p1) * (y - d) / np.maximum(y - 1, 1), 0.0).sum(1)
        z = np.where(v > 0, o_e / np.sqrt(v), 0.0)
    return LogRank(z, o_e, v, g.events)
