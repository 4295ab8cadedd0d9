"""The group-sequential analysis of simulated next trials: efficacy and futility at every look.

At look k of a trial (the ``target``-th death, or the final analysis at D deaths / calendar cut /
end of follow-up) the log-rank (or Cox) analysis gives the score S_k = −(O − E) (Cox: −β̂/SE²)
and information I_k = V (Cox: 1/SE²), benefit positive; Z_k = S_k/√I_k and the log-HR estimate
θ̂_k = −S_k/I_k. A look whose death count is reached only at or after the final analysis is not
performed (the trial goes to its final analysis).

* Efficacy ``spending``: Z_k ≥ b_k, the Lan–DeMets boundaries (sequential.py) at the trial's own
  information fractions t_k = d_k / D (all remaining α at the final look, where D may not have
  been reached), information proportional to the deaths; computed once per distinct tuple of
  death counts. ``posterior``: P(HR < 1 | look k) > γ_k under the analysis prior
  (borrowing.NormalMixture on θ̂_k ~ N(θ, 1/I_k)). ``min_observed_hr`` also asks θ̂_k < log of it.
* Futility (interim looks only): conditional power (B-value formula; under the trend or the
  design HR) toward the planned final threshold, posterior P(HR < 1), or the predictive
  probability that the final analysis succeeds, below the threshold. Binding futility enters the
  efficacy boundaries as the lower edge of the continuation region (on the Z scale, at the
  planned information); non-binding (default) does not.

``planned`` gives the same design in closed form at the planned death counts (the "textbook"
numbers: boundaries, α spent, crossing probabilities under the null and at the design HR).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from functools import lru_cache

import numpy as np
from scipy import special, stats

from ..config.next_phase import EfficacySpec, FutilitySpec
from ..results.next_phase import PlannedLook
from .borrowing import NormalMixture
from .cox_many import cox_many
from .logrank import logrank
from .sequential import conditional_power, crossing, spending, spending_bounds, z_threshold

#: grid size of boundaries computed during a simulation (r = 20: crossing probabilities to ~1e-7)
SIM_GRID = 20


@dataclass(frozen=True)
class SequentialPlan:
    """What the analysis of every look needs (a narrow input, built from ``next_phase``)."""

    events: int
    fractions: tuple[float, ...]
    alpha: float
    allocation: float
    efficacy: EfficacySpec
    futility: FutilitySpec | None = None
    design_log_hr: float = math.log(0.7)
    min_hr: float | None = None

    @property
    def n_looks(self) -> int:
        return len(self.fractions)

    def targets(self) -> np.ndarray:
        """Planned deaths at each look."""
        return np.array([max(1, math.ceil(f * self.events)) for f in self.fractions])

    @property
    def unit(self) -> float:
        """Information per death, r(1 − r)."""
        return self.allocation * (1 - self.allocation)


@dataclass
class LookStats:
    """Per-trial statistics at one look: the benefit-positive score and its information, deaths,
    calendar time, patients randomised, and whether the look took place or gave no estimate."""

    score: np.ndarray  # (T,) S_k
    info: np.ndarray  # (T,) I_k
    events: np.ndarray  # (T,) int
    time: np.ndarray  # (T,) calendar time of the look
    randomised: np.ndarray  # (T,)
    performed: np.ndarray  # (T,) bool
    failed: np.ndarray  # (T,) bool: no estimate (Cox without a finite estimate)


def look_stats(sim, method: str = "logrank") -> list[LookStats]:
    """Score and information of every look (interims, then the final analysis)."""
    out = []
    data = [(lk.time, lk.event, lk.analysis_time, lk.performed) for lk in sim.looks]
    data.append((sim.time, sim.event, sim.analysis_time, np.ones(sim.time.shape[0], bool)))
    final_events = sim.event.sum(axis=1)
    for time, event, at, performed in data:
        ev = event.sum(axis=1)
        if method == "cox":
            cx = cox_many(time, event, sim.treat)
            ok = cx.converged
            with np.errstate(divide="ignore", invalid="ignore"):
                info = np.where(ok, 1.0 / cx.se**2, 0.0)
                score = np.where(ok, -cx.log_hr * info, 0.0)
            failed = ~ok
        else:
            lr = logrank(time, event, sim.treat)
            score, info, failed = -lr.o_minus_e, lr.variance, lr.variance <= 0
        # an interim with as many deaths as the final analysis adds nothing: not performed
        performed = performed & ((ev < final_events) | (time is sim.time))
        out.append(LookStats(score, info, ev, at, np.isfinite(time).sum(axis=1), performed, failed))
    return out


@dataclass
class SequentialOutcome:
    """What a group-sequential design did on T simulated trials: success, the look each stopped at
    (efficacy or futility), and deaths, time and patients randomised when it stopped."""

    success: np.ndarray  # (T,)
    efficacy: np.ndarray  # (T, K) stopped for efficacy at look k
    futility: np.ndarray  # (T, K) stopped for futility at look k
    performed: np.ndarray  # (T, K) look k took place
    events: np.ndarray  # (T,) deaths at the stopping look
    time: np.ndarray  # (T,) calendar time of the stopping look
    randomised: np.ndarray  # (T,) randomised by then
    failed: int = 0  # trials whose analysis gave no estimate at the stopping look
    notes: list[str] = field(default_factory=list)


def _p_benefit(prior: NormalMixture, score, info) -> np.ndarray:
    score, info = np.asarray(score, float), np.asarray(info, float)
    with np.errstate(divide="ignore", invalid="ignore"):
        est = np.where(info > 0, -score / np.where(info > 0, info, 1.0), 0.0)
    return prior.p_below(est, np.maximum(info, 1e-12))


def final_score_threshold(plan: SequentialPlan, prior: NormalMixture) -> float:
    """The score S_K the final analysis needs at the planned information I_K."""
    i_k = plan.events * plan.unit
    if plan.efficacy.kind == "posterior":
        g = plan.efficacy.gamma[-1]
        z = z_threshold(lambda x: float(_p_benefit(prior, [x * math.sqrt(i_k)], [i_k])[0]), g)
        return z * math.sqrt(i_k)
    return float(planned_bounds(plan, prior)[-1]) * math.sqrt(i_k)


def futility_prob(plan, prior, score, info, final_score: float) -> np.ndarray:
    """The futility rule's probability at an interim look (compared with its threshold)."""
    f = plan.futility
    i_final = plan.events * plan.unit
    if f.kind == "posterior":
        return _p_benefit(prior, score, info)
    t = np.clip(info / i_final, 1e-9, 1 - 1e-9)
    if f.kind == "conditional_power":
        z = score / np.sqrt(np.maximum(info, 1e-12))
        drift = z / np.sqrt(t) if f.under == "trend" else -plan.design_log_hr * math.sqrt(i_final)
        return conditional_power(z, t, final_score / math.sqrt(i_final), drift)
    # predictive probability: the posterior mixture of θ (benefit scale −log HR) carried forward
    est = -score / np.maximum(info, 1e-12)
    w, m, v = prior.posterior(est, np.maximum(info, 1e-12))
    delta = np.maximum(i_final - info, 1e-9)[:, None]
    mean = score[:, None] - m * delta  # −m: the benefit-scale posterior mean
    sd = np.sqrt(delta + delta**2 * v)
    return (w * special.ndtr((mean - final_score) / sd)).sum(axis=1)


def futility_z(plan, prior, info: float, final_score: float) -> float:
    """The Z below which the futility rule stops at information ``info`` (binding boundaries)."""

    def prob(z):
        s = np.array([z * math.sqrt(info)])
        return float(futility_prob(plan, prior, s, np.array([info]), final_score)[0])

    return z_threshold(prob, plan.futility.threshold)


@lru_cache(maxsize=4096)
def _bounds(events: tuple, d: int, alpha, function, gamma, lower: tuple | None) -> np.ndarray:
    ev = np.asarray(events, float)
    t = np.minimum(ev / d, 1.0)
    t[-1] = 1.0
    low = None if lower is None else np.asarray(lower, float)
    return spending_bounds(ev, t, alpha, function, gamma, low, r=SIM_GRID)


def planned_bounds(plan: SequentialPlan, prior: NormalMixture | None = None) -> np.ndarray:
    """Efficacy boundaries (Z) at the planned death counts (binding futility included)."""
    return _spending_bounds(plan, tuple(int(x) for x in plan.targets()), prior)


def _spending_bounds(plan: SequentialPlan, events: tuple, prior) -> np.ndarray:
    e = plan.efficacy
    b = _bounds(events, plan.events, plan.alpha, e.function, e.hsd_gamma(), None)
    if plan.futility is None or not plan.futility.binding or len(events) < 2:
        return b
    # binding: the futility thresholds (at the planned information of each interim look) enter
    # the continuation region; conditional power and the predictive probability depend on the
    # final boundary in turn, so iterate to the fixed point (a few steps; ≤ 1e-7 in Z)
    for _ in range(30):
        final = float(b[-1]) * math.sqrt(plan.events * plan.unit)
        lower = tuple(
            [futility_z(plan, prior, x * plan.unit, final) for x in events[:-1]] + [-np.inf]
        )
        new = _bounds(events, plan.events, plan.alpha, e.function, e.hsd_gamma(), lower)
        if abs(new[-1] - b[-1]) < 1e-7:
            return new
        b = new
    return b


def analyse_sequential(
    sim, plan: SequentialPlan, prior: NormalMixture, method: str = "logrank", stats_=None
) -> SequentialOutcome:
    """Stop / continue at every look of every trial of ``sim``; ``stats_``: precomputed
    ``look_stats`` (to analyse the same trials under several priors)."""
    looks = stats_ if stats_ is not None else look_stats(sim, method)
    k_max, t_count = len(looks), looks[0].score.shape[0]
    perf = np.column_stack([lk.performed for lk in looks])
    score = np.column_stack([lk.score for lk in looks])
    info = np.column_stack([lk.info for lk in looks])
    failed = np.column_stack([lk.failed for lk in looks])
    z = np.where(info > 0, score / np.sqrt(np.maximum(info, 1e-12)), 0.0)
    eff_hit = np.zeros((t_count, k_max), bool)
    if plan.efficacy.kind == "posterior":
        for k in range(k_max):
            eff_hit[:, k] = _p_benefit(prior, score[:, k], info[:, k]) > plan.efficacy.gamma[k]
    else:
        events = np.column_stack([lk.events for lk in looks])
        keys = [tuple(int(x) for x in events[i, perf[i]]) for i in range(t_count)]
        for key in set(keys):
            rows = np.array([kk == key for kk in keys])
            b = _spending_bounds(plan, key, prior)
            cols = np.flatnonzero(perf[rows][0])
            eff_hit[np.ix_(rows, cols)] = z[np.ix_(rows, cols)] >= b[None, :]
    if plan.min_hr is not None:
        with np.errstate(divide="ignore", invalid="ignore"):
            eff_hit &= (-score / info) < math.log(plan.min_hr)
    eff_hit &= perf & ~failed
    fut_hit = np.zeros_like(eff_hit)
    if plan.futility is not None:
        final = final_score_threshold(plan, prior)
        for k in range(k_max - 1):
            p = futility_prob(plan, prior, score[:, k], info[:, k], final)
            fut_hit[:, k] = perf[:, k] & (p < plan.futility.threshold)
    # the first look with a decision stops the trial; else it runs to the final analysis
    stop_any = eff_hit | fut_hit
    stop_any[:, -1] = True
    first = stop_any.argmax(axis=1)
    rows = np.arange(t_count)
    eff = np.zeros_like(eff_hit)
    fut = np.zeros_like(eff_hit)
    eff[rows, first] = eff_hit[rows, first]
    fut[rows, first] = fut_hit[rows, first] & ~eff_hit[rows, first]
    at = lambda a: np.column_stack(a)[rows, first]  # noqa: E731
    return SequentialOutcome(
        success=eff.any(axis=1),
        efficacy=eff,
        futility=fut,
        performed=perf & (np.arange(k_max)[None, :] <= first[:, None]),
        events=at([lk.events for lk in looks]),
        time=at([lk.time for lk in looks]),
        randomised=at([lk.randomised for lk in looks]),
        failed=int(failed[rows, first].sum()),
    )


# ----------------------------------------------------------------------------- closed form
def planned(plan: SequentialPlan, prior: NormalMixture) -> list[PlannedLook]:
    """The design at its planned death counts in closed form (normal approximation of the
    log-rank statistic, information r(1 − r) per death): Lan–DeMets or posterior boundaries,
    α spent, and the stopping probabilities under HR 1 and the design HR."""
    ev = plan.targets()
    info = ev * plan.unit
    if plan.efficacy.kind == "posterior":
        b = np.array(
            [
                z_threshold(lambda x, i=i: float(_p_benefit(prior, [x * math.sqrt(i)], [i])[0]), g)
                for i, g in zip(info, plan.efficacy.gamma)
            ]
        )
    else:
        b = planned_bounds(plan, prior)
    lower = np.full(len(ev), -np.inf)
    if plan.futility is not None:
        final = float(b[-1]) * math.sqrt(info[-1])
        lower[:-1] = [futility_z(plan, prior, i, final) for i in info[:-1]]
    spent = np.cumsum(crossing(info, b).upper)
    h0 = crossing(info, b, lower, 0.0)
    h1 = crossing(info, b, lower, -plan.design_log_hr)
    out = []
    for k in range(len(ev)):
        fz = float(lower[k]) if np.isfinite(lower[k]) else None
        out.append(
            PlannedLook(
                k + 1,
                float(plan.fractions[k]),
                int(ev[k]),
                float(b[k]),
                float(stats.norm.sf(b[k])),
                float(spent[k]),
                fz,
                float(h0.upper[k]),
                float(h0.lower[k]),
                float(h1.upper[k]),
                float(h1.lower[k]),
            )
        )
    return out


def spent_alpha(plan: SequentialPlan) -> np.ndarray:
    """The spending function at the planned fractions (what ``alpha_spent`` should equal)."""
    e = plan.efficacy
    return spending(e.function, plan.alpha, plan.fractions, e.hsd_gamma())
