"""Group-sequential boundaries and their crossing probabilities (numerical integration).

No maintained Python library computes Lan–DeMets boundaries (2026: PyPI's ``gsdesign`` 0.1.5 is an
alpha port of gsDesign's integration grid only, ``earlysign`` 0.2.0 and ``gsmethods`` 0.0.2 ship
no code), so the recursion of Jennison & Turnbull (2000), ch. 19 (Armitage, McPherson & Rowe 1969)
is implemented here and checked against published tables (tests/test_sequential.py: classical
Pocock and O'Brien–Fleming constants for 2–5 looks, Lan–DeMets O'Brien–Fleming and Pocock-type
boundaries as gsDesign / rpact print them, and an exact bivariate-normal oracle at 2 looks).

Scale: the benefit-positive canonical form. At look k with information I_k the statistic
Z_k = S_k / √I_k, S_k the score (−(O − E) of the log-rank test for the treated arm, so S > 0 is
benefit), S_k ~ N(θ I_k, I_k) with independent increments, θ = −log HR. For a log-rank test
I ≈ D·r(1 − r) (D deaths, allocation r); only ratios of information matter for boundaries.

Grid (J&T §19.2): 6r − 1 points on the Z scale centred at the look's mean, truncated to the
continuation region, with Simpson weights at the points and their midpoints; r = 32 by default
(crossing probabilities accurate to ~1e-8 against the bivariate-normal oracle).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import optimize, stats

#: spending functions by name (config ``efficacy.function``)
SPENDING_FUNCTIONS = ("obrien_fleming", "pocock", "hsd")


def spending(function: str, alpha: float, t, gamma: float = -4.0) -> np.ndarray:
    """Cumulative α spent by information fraction ``t`` (one-sided α; Lan & DeMets 1983):

    * ``obrien_fleming``: 2 − 2Φ(z_{1−α/2} / √t)   (gsDesign ``sfLDOF``)
    * ``pocock``: α·log(1 + (e − 1)t)               (``sfLDPocock``)
    * ``hsd``: α(1 − e^{−γt}) / (1 − e^{−γ}), α·t at γ = 0 (Hwang, Shih & DeCani 1990; ``sfHSD``)
    """
    t = np.clip(np.asarray(t, float), 0.0, 1.0)
    if function == "obrien_fleming":
        with np.errstate(divide="ignore"):
            out = 2 * stats.norm.sf(stats.norm.isf(alpha / 2) / np.sqrt(t))
    elif function == "pocock":
        out = alpha * np.log1p((math.e - 1) * t)
    elif function == "hsd":
        out = alpha * t if gamma == 0 else alpha * np.expm1(-gamma * t) / math.expm1(-gamma)
    else:
        raise ValueError(f"unknown spending function '{function}'; one of {SPENDING_FUNCTIONS}")
    return np.where(t >= 1.0, alpha, out)


def grid(mu: float, a: float, b: float, r: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """Points and Simpson weights on (a, b) for integrating against a density centred near ``mu``
    (J&T §19.2.1: dense in mu ± 3, logarithmically spaced tails to mu ± (3 + 4 log r))."""
    i = np.arange(1, 6 * r)
    x = np.where(
        i < r,
        mu - 3 - 4 * np.log(r / i),
        np.where(i <= 5 * r, mu - 3 + 3 * (i - r) / (2 * r), mu + 3 + 4 * np.log(r / (6 * r - i))),
    )
    inside = x[(x > a) & (x < b)]
    lo = [a] if np.isfinite(a) and a > x[0] else []
    hi = [b] if np.isfinite(b) and b < x[-1] else []
    x = np.concatenate([lo, inside, hi])
    if len(x) < 2:  # a narrow continuation region: Simpson on [a, b] alone
        x = np.array([a, b]) if np.isfinite(a) and np.isfinite(b) else np.array([mu - 1, mu + 1])
    z = np.empty(2 * len(x) - 1)
    z[0::2], z[1::2] = x, (x[:-1] + x[1:]) / 2
    h = np.diff(x)
    w = np.zeros(len(z))
    w[0:-1:2] += h / 6
    w[2::2] += h / 6
    w[1::2] = 4 * h / 6
    return z, w


@dataclass(frozen=True)
class Crossing:
    """Per-look probabilities of stopping at that look (and not before): efficacy (upper) and
    futility (lower); ``continuing`` after the last look is what neither took."""

    upper: np.ndarray
    lower: np.ndarray

    @property
    def total_upper(self) -> float:
        return float(self.upper.sum())


def crossing(info, upper, lower=None, theta: float = 0.0, r: int = 32) -> Crossing:
    """P(first crossing of ``upper`` / ``lower`` at look k) for Z_k with information ``info`` and
    drift θ per unit information (θ = 0: the null). ``upper`` may hold inf (no efficacy stop) and
    ``lower`` −inf (no futility stop; the default everywhere)."""
    info = np.asarray(info, float)
    upper = np.asarray(upper, float)
    lower = np.full(len(info), -np.inf) if lower is None else np.asarray(lower, float)
    k_max = len(info)
    up, lo = np.zeros(k_max), np.zeros(k_max)
    mean = theta * math.sqrt(info[0])
    up[0] = stats.norm.sf(upper[0] - mean)
    lo[0] = stats.norm.cdf(lower[0] - mean)
    z, w = grid(mean, lower[0], upper[0], r)
    h = w * stats.norm.pdf(z - mean)  # weighted density on the continuation region
    for k in range(1, k_max):
        d = info[k] - info[k - 1]
        sd = math.sqrt(d)
        shift = z * math.sqrt(info[k - 1]) + theta * d  # E[S_k | z_{k-1}]
        sk_hi = upper[k] * math.sqrt(info[k])
        sk_lo = lower[k] * math.sqrt(info[k])
        up[k] = float(h @ stats.norm.sf((sk_hi - shift) / sd))
        lo[k] = float(h @ stats.norm.cdf((sk_lo - shift) / sd))
        if k < k_max - 1:
            mean_k = theta * math.sqrt(info[k])
            zn, wn = grid(mean_k, lower[k], upper[k], r)
            dens = stats.norm.pdf((zn[:, None] * math.sqrt(info[k]) - shift[None, :]) / sd)
            h = wn * (dens @ h) * math.sqrt(info[k]) / sd
            z = zn
    return Crossing(up, lo)


def spending_bounds(
    info,
    fractions,
    alpha: float,
    function: str = "obrien_fleming",
    gamma: float = -4.0,
    lower=None,
    r: int = 32,
) -> np.ndarray:
    """Efficacy boundaries (Z scale) that spend α(t_k) − α(t_{k−1}) at look k under the null.
    ``fractions``: the information fractions t_k the spending function is evaluated at (the last
    one 1 spends all of α); ``lower``: binding futility bounds kept in the continuation region
    (None: non-binding, the boundaries ignore futility stops)."""
    info = np.asarray(info, float)
    cum = spending(function, alpha, fractions, gamma)
    inc = np.diff(np.concatenate([[0.0], cum]))
    lower = np.full(len(info), -np.inf) if lower is None else np.asarray(lower, float)
    bounds = np.full(len(info), np.inf)
    for k in range(len(info)):
        if inc[k] <= 1e-15:
            continue

        def excess(b, k=k):
            trial = bounds.copy()
            trial[k] = b
            return crossing(info[: k + 1], trial[: k + 1], lower[: k + 1], 0.0, r).upper[k] - inc[k]

        bounds[k] = optimize.brentq(excess, -10.0, 40.0, xtol=1e-10)
    return bounds


def constant_bound(info, alpha: float, shape: str = "pocock", r: int = 32) -> np.ndarray:
    """Classical boundaries with exact level α: Pocock's constant c, or O'Brien–Fleming's
    c·√(I_K / I_k) (the tables of J&T, Tables 2.1 and 2.3, are these at equal spacing)."""
    info = np.asarray(info, float)
    form = np.ones(len(info)) if shape == "pocock" else np.sqrt(info[-1] / info)

    def excess(c):
        return crossing(info, c * form, None, 0.0, r).total_upper - alpha

    return optimize.brentq(excess, 0.5, 10.0, xtol=1e-10) * form


# ----------------------------------------------------------------------------- interim rules
def conditional_power(z, t, final_bound: float, drift) -> np.ndarray:
    """P(Z_K > final_bound | Z_k = z) at information fraction t = I_k / I_K when the final
    statistic's mean is ``drift`` (θ√I_K): the B-value formula (Lan & Wittes 1988),
    1 − Φ((b_K − z√t − drift(1 − t)) / √(1 − t)). ``drift = z / √t``: under the current trend."""
    z, t = np.asarray(z, float), np.asarray(t, float)
    rest = np.sqrt(np.maximum(1 - t, 1e-12))
    return stats.norm.sf((final_bound - z * np.sqrt(t) - drift * (1 - t)) / rest)


def z_threshold(fn, target: float, lo: float = -12.0, hi: float = 12.0) -> float:
    """The z where an increasing function of z (a posterior or predictive probability, a
    conditional power) equals ``target``; ±inf when it never does on [lo, hi]."""
    if fn(lo) >= target:
        return -np.inf
    if fn(hi) <= target:
        return np.inf
    return float(optimize.brentq(lambda x: fn(x) - target, lo, hi, xtol=1e-10))
