"""Cox proportional-hazards fit of one binary treatment covariate over many trials at once.

Rows are trials (patients with time = inf are not in the trial). At each distinct event time with
d deaths (d1 treated) among y at risk (y1 treated), with r = e^β:

    S0 = (y − y1) + y1·r,  S1 = y1·r,  A0 = (d − d1) + d1·r,  A1 = d1·r
    Efron:   ℓ(β) = d1·β − Σ_{l<d} log(S0 − (l/d)·A0)
    Breslow: ℓ(β) = d1·β − d·log S0

Score U = d1 − Σ_l m_l, information I = Σ_l m_l(1 − m_l), m_l = (S1 − c_l A1)/(S0 − c_l A0) with
c_l = l/d (Efron) or 0 (Breslow); a binary covariate makes Σx² = Σx. Newton–Raphson from β = 0
with steps capped at 1 (ℓ is concave; the cap stops overshoot far from 0), vectorised over trials.
SE = I(β̂)^{-1/2}; Wald z = β̂/SE (z < 0: benefit). Efron is lifelines' ``CoxPHFitter`` default;
without ties Efron and Breslow coincide. A trial whose deaths are all in one arm has no finite
estimate: ``converged`` is False there (β̂ then sits at ±``MAX_ABS_LOG_HR``); the next-phase
analysis counts such a trial as failed and never as a success, even when every death is in the
control arm (conservative; reported in the outputs' count of analyses without a result).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from .logrank import risk_groups

MAX_ABS_LOG_HR = 30.0


@dataclass
class CoxMany:
    """Treatment-only Cox fits of T simulated trials: log-HR, its SE, whether each converged."""

    log_hr: np.ndarray  # (T,)
    se: np.ndarray
    converged: np.ndarray  # (T,) bool
    iterations: int

    @property
    def z(self) -> np.ndarray:
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(np.isfinite(self.se), self.log_hr / self.se, 0.0)

    def p_one_sided(self) -> np.ndarray:
        """Wald p-value for benefit (treated hazard lower)."""
        return stats.norm.cdf(self.z)

    def failure_notes(self) -> list[str]:
        """One sentence for the outputs if some trials had no finite estimate (else none)."""
        k = int((~self.converged).sum())
        if not k:
            return []
        return [
            f"{k} trial(s) without a finite Cox estimate (every death in one arm, or none): "
            "counted as no success, also when the deaths are all in the control arm"
        ]

    def success(self, alpha: float, max_hr: float | None = None) -> np.ndarray:
        """Wald-significant at one-sided ``alpha`` (and, if given, exp(β̂) below ``max_hr``)."""
        ok = self.z < -stats.norm.ppf(1 - alpha)
        if max_hr is not None:
            ok &= self.log_hr < np.log(max_hr)
        return ok


def _score_info(beta, g, c_steps, ties: str):
    """Score and information (T,) at ``beta`` (T,) from tie groups ``g``."""
    r = np.exp(beta)[:, None]
    s0 = (g.y - g.y1) + g.y1 * r
    s1 = g.y1 * r
    a0 = (g.d - g.d1) + g.d1 * r
    a1 = g.d1 * r
    u = np.where(g.use, g.d1, 0.0).sum(1)
    info = np.zeros(beta.shape)
    if ties == "breslow":
        m = np.where(g.use, s1 / np.where(g.use, s0, 1.0), 0.0)
        return u - (g.d * m).sum(1), (g.d * m * (1 - m)).sum(1)
    for k in range(c_steps):  # Efron: one term per tied death, k = 0 .. d − 1
        on = g.use & (g.d > k)
        c = np.where(on, k / np.maximum(g.d, 1), 0.0)
        m = np.where(on, (s1 - c * a1) / np.where(on, s0 - c * a0, 1.0), 0.0)
        u = u - m.sum(1)
        info = info + (m * (1 - m)).sum(1)
    return u, info


def cox_many(
    time: np.ndarray,
    event: np.ndarray,
    treat: np.ndarray,
    ties: str = "efron",
    tol: float = 1e-10,
    max_iter: int = 60,
) -> CoxMany:
    """Maximum partial-likelihood log-HR of treated vs control for each row of (T, n) arrays."""
    if ties not in ("efron", "breslow"):
        raise ValueError(f"ties must be 'efron' or 'breslow', not '{ties}'")
    g = risk_groups(time, event, treat)
    g.d, g.d1, g.y, g.y1 = (np.asarray(a, float) for a in (g.d, g.d1, g.y, g.y1))
    c_steps = int(np.where(g.use, g.d, 0).max()) if g.use.any() else 0
    beta = np.zeros(g.use.shape[0])
    done = np.zeros(beta.shape, bool)
    it = 0
    for it in range(1, max_iter + 1):
        u, info = _score_info(beta, g, c_steps, ties)
        with np.errstate(invalid="ignore", divide="ignore"):
            step = np.where(info > 0, u / info, 0.0)
        step = np.clip(step, -1.0, 1.0)
        beta = np.clip(beta + np.where(done, 0.0, step), -MAX_ABS_LOG_HR, MAX_ABS_LOG_HR)
        done |= np.abs(step) < tol
        if done.all():
            break
    u, info = _score_info(beta, g, c_steps, ties)
    with np.errstate(divide="ignore"):
        se = np.where(info > 0, 1.0 / np.sqrt(np.maximum(info, 0.0)), np.inf)
    ok = done & (np.abs(beta) < MAX_ABS_LOG_HR) & (info > 0)
    return CoxMany(beta, se, ok, it)
