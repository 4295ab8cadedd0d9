"""Probability of success of a next (phase 3) trial, closed form on the log-HR scale.

A trial with D events and allocation fraction r to treatment estimates the log-HR with
θ̂ | θ ~ N(θ, σ_D²), σ_D² = 1 / (D·r·(1 − r)) (Schoenfeld). It succeeds (one-sided level α,
benefit = θ < 0) when θ̂ < −z_α·σ_D. Averaging over the current posterior of θ:

    assurance = E_θ[Φ((−z_α σ_D − θ) / σ_D)]  = Φ((−z_α σ_D − m) / √(v + σ_D²))  for θ ~ N(m, v)

With a point-mass prior (v = 0) this is the classical power of the log-rank test.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import optimize, stats

from ..results.published import AssuranceAtEvents, AssuranceDesign


def trial_se(events: float, allocation: float = 0.5) -> float:
    """Schoenfeld SE of the log-HR of a trial with ``events`` events, ``allocation`` treated."""
    return 1.0 / math.sqrt(events * allocation * (1 - allocation))


def assurance(
    mean: float, sd: float, events: float, allocation: float = 0.5, alpha: float = 0.025
) -> float:
    """Probability that a trial with ``events`` events succeeds (one-sided ``alpha``, benefit =
    HR < 1) when its log-HR is N(``mean``, ``sd``²); ``sd`` = 0 gives the classical power."""
    s = trial_se(events, allocation)
    return float(stats.norm.cdf((-stats.norm.ppf(1 - alpha) * s - mean) / math.sqrt(sd**2 + s**2)))


def assurance_draws(
    draws: np.ndarray, events: float, allocation: float = 0.5, alpha: float = 0.025
) -> float:
    """The same expectation over posterior draws (any posterior shape)."""
    s = trial_se(events, allocation)
    return float(stats.norm.cdf((-stats.norm.ppf(1 - alpha) * s - np.asarray(draws)) / s).mean())


def power(log_hr: float, events: float, allocation: float = 0.5, alpha: float = 0.025) -> float:
    """Classical power of the log-rank test (Schoenfeld): Φ(|log HR|·√(D r (1−r)) − z_α) for
    benefit."""
    return float(stats.norm.cdf(-log_hr / trial_se(events, allocation) - stats.norm.ppf(1 - alpha)))


def prob_estimate_below_draws(
    draws: np.ndarray, events: float, target_hr: float, allocation: float = 0.5
) -> float:
    """P(the next trial's estimated HR < target_hr), averaged over posterior draws."""
    s = trial_se(events, allocation)
    return float(stats.norm.cdf((math.log(target_hr) - np.asarray(draws)) / s).mean())


def prob_estimate_below(
    mean: float, sd: float, events: float, target_hr: float, allocation: float = 0.5
) -> float:
    """P(the next trial's estimated HR < target_hr), averaged over the posterior."""
    s = trial_se(events, allocation)
    return float(stats.norm.cdf((math.log(target_hr) - mean) / math.sqrt(sd**2 + s**2)))


def events_for(assurance_at, level: float, limit: float, max_events: float = 1e6) -> int | None:
    """Fewest whole events D with ``assurance_at(D)`` ≥ level (assurance rises with D towards
    ``limit``, the posterior P(θ < 0)); None when the level is unreachable within
    ``max_events``."""
    if limit <= level or assurance_at(max_events) < level:
        return None
    if assurance_at(1.0) >= level:
        return 1
    return math.ceil(optimize.brentq(lambda d: assurance_at(d) - level, 1.0, max_events))


def design_assurance(
    spec, mean: float, sd: float, draws: np.ndarray | None, posterior: str, share: float | None
) -> AssuranceDesign:
    """One next-trial design (``spec``: the config's ``published.assurance``) over a log-HR
    posterior: normal (``mean``, ``sd``) or, when ``draws`` are given, averaged over them."""
    a = spec
    if draws is not None:

        def at(d):
            return assurance_draws(draws, d, a.allocation, a.alpha)

        def below(d):
            return prob_estimate_below_draws(draws, d, a.target_hr, a.allocation)

        limit = float(np.mean(draws < 0))
    else:

        def at(d):
            return assurance(mean, sd, d, a.allocation, a.alpha)

        def below(d):
            return prob_estimate_below(mean, sd, d, a.target_hr, a.allocation)

        limit = float(stats.norm.cdf(-mean / sd))
    rows = [
        AssuranceAtEvents(d, at(d), below(d), power(mean, d, a.allocation, a.alpha))
        for d in a.events
    ]
    return AssuranceDesign(
        posterior=posterior,
        log_hr_mean=mean,
        log_hr_sd=sd,
        share=share,
        by_events=rows,
        events_needed={f"{q:g}": events_for(at, q, limit) for q in a.levels},
        assurance_limit=limit,
    )
