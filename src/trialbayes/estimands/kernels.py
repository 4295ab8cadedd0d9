"""Vectorised kernels of the standardised-survival estimands: draws × patients × times.

The callers (:mod:`.draws`) keep the estimands' definitions; this module only makes them fast:

* **Blocks of draws.** Every array a kernel makes holds about :data:`BLOCK_CELLS` numbers
  (draws × patients × times of one block), whatever the number of draws, patients or times; the
  blocks run on a few threads (NumPy releases the GIL inside its array loops). Each draw's numbers
  come from that draw alone, so the results do not depend on the block size or the threads.
* **Patients computed once per pattern.** Patients who share every value their linear predictor
  depends on (covariates, biomarker, centre) have the same survival curve: it is computed once and
  weighted (:func:`patient_patterns`); an unadjusted model has one pattern.
* **The RMST in closed form.** Under piecewise-constant hazards a patient's survival is
  exponential inside each baseline interval, so its integral there is closed-form
  (:func:`survival_rmst`): one exponential per interval instead of one per point of a time grid,
  and exact instead of a quadrature (tests/test_estimand_kernels.py checks it against numerical
  integration and closed forms).
* **Curves by steps.** Along an increasing time grid a patient's survival is multiplied by one
  factor per step, the same factor for every step of the usual spacing inside one baseline
  interval (:func:`curve_survival`): a multiplication per time instead of an exponential.

A patient's cumulative hazard at ``t`` is ``exp(η_i)·H(t)`` with ``H`` the piecewise-linear
cumulative hazard of the per-draw interval hazards ``lam`` (draws × K): a per-arm ``lam`` covers
any effect that multiplies the baseline by interval.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
from threadpoolctl import threadpool_limits

#: the largest array of one block of draws (numbers): 2**18 float64 = 2 MB, so that a block's
#: arrays stay in the CPU's cache between passes (measured 1.6–2x faster than 16 MB blocks)
BLOCK_CELLS = 1 << 18

#: relative tolerance within which grid spacings count as equal (a linspace's rounding)
SPACING_RTOL = 1e-9


def n_threads() -> int:
    """Threads for the blocks: the CPUs this process may use (at most 4), or
    ``TRIALBAYES_THREADS``."""
    env = os.environ.get("TRIALBAYES_THREADS", "")
    if env.isdigit() and int(env) > 0:
        return int(env)
    cpus = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    return max(1, min(4, cpus or 1))


def draw_blocks(n_draws: int, cells_per_draw: int, threads: int = 1) -> list[slice]:
    """Consecutive slices of draws, each at most BLOCK_CELLS cells (at least one draw), and at
    least ``threads`` of them when there are that many draws."""
    size = max(1, BLOCK_CELLS // max(1, cells_per_draw))
    size = min(size, max(1, -(-n_draws // threads)))
    return [slice(a, min(a + size, n_draws)) for a in range(0, n_draws, size)]


def map_blocks(fn: Callable[[slice], object], n_draws: int, cells_per_draw: int) -> list:
    """``fn(block)`` for every block of draws, in order (threads when there are several)."""
    threads = n_threads()
    blocks = draw_blocks(n_draws, cells_per_draw, threads)
    # one BLAS thread per block: the blocks already use the cores
    with threadpool_limits(1, user_api="blas"):
        if threads == 1 or len(blocks) == 1:
            return [fn(b) for b in blocks]
        with ThreadPoolExecutor(min(threads, len(blocks))) as pool:
            return list(pool.map(fn, blocks))


@dataclass(frozen=True)
class PatientPatterns:
    """Distinct patients: ``rows`` (one representative patient per pattern) and ``weights``
    (patterns × groups: each group's share of patients with that pattern; a column sums to 1)."""

    rows: np.ndarray
    weights: np.ndarray


def patient_patterns(features: np.ndarray, groups: list[np.ndarray]) -> PatientPatterns:
    """The distinct rows of ``features`` (patients × values their prediction depends on) and each
    group's (boolean mask over patients, non-empty) weight on each of them."""
    n = features.shape[0]
    if features.shape[1] == 0:
        rows, inverse = np.zeros(1, "int64"), np.zeros(n, "int64")
    else:
        _, rows, inverse = np.unique(features, axis=0, return_index=True, return_inverse=True)
        inverse = inverse.ravel()
    w = np.zeros((len(rows), len(groups)))
    for g, mask in enumerate(groups):
        np.add.at(w[:, g], inverse[mask], 1.0)
        w[:, g] /= mask.sum()
    return PatientPatterns(rows, w)


def cumulative_hazard(lam: np.ndarray, starts: np.ndarray, times) -> np.ndarray:
    """H(t) for each draw at ``times`` (draws × T) from piecewise-constant hazards ``lam``
    (draws × K) on intervals starting at ``starts``."""
    widths = np.diff(starts)
    cum_start = np.concatenate(
        [np.zeros((lam.shape[0], 1)), np.cumsum(lam[:, :-1] * widths, axis=1)], axis=1
    )
    times = np.asarray(times, float)
    k = np.searchsorted(starts[1:], times, side="left")
    return cum_start[:, k] + lam[:, k] * (times - starts[k])[None, :]


def mean_survival(
    eta: np.ndarray, lam: np.ndarray, starts: np.ndarray, times, weights: np.ndarray
) -> np.ndarray:
    """Σ_u w_ug exp(−exp(η_u) H(t)) for one block: (draws × T × groups), from η (draws × U),
    hazards ``lam`` (draws × K) and pattern weights (U × groups)."""
    minus_h = -cumulative_hazard(lam, starts, times)
    x = np.multiply(np.exp(eta)[:, None, :], minus_h[:, :, None])  # draws × T × U
    np.exp(x, out=x)
    return x @ weights


def curve_survival(
    eta: np.ndarray, lam: np.ndarray, starts: np.ndarray, times, weights: np.ndarray
) -> np.ndarray:
    """:func:`mean_survival` at increasing ``times`` (draws × T × groups), walking along them:
    S(t_j) = S(t_{j−1})·exp(−r·ΔH_j), where the factor of a step inside one baseline interval with
    the grid's usual spacing is computed once per interval (a multiplication per time instead of an
    exponential; the product of the steps' factors equals the direct value to a few ulp per step).
    """
    t = np.asarray(times, float)
    r = np.exp(eta)  # draws × U
    h = cumulative_hazard(lam, starts, t)  # draws × T
    out = np.empty((eta.shape[0], len(t), weights.shape[1]))
    v = np.multiply(r, -h[:, :1])
    np.exp(v, out=v)
    out[:, 0] = v @ weights
    if len(t) < 2:
        return out
    d = np.diff(t)
    k = np.searchsorted(starts, t[:-1], side="right") - 1
    inside = t[1:] <= np.append(starts[1:], np.inf)[k]
    usual = float(np.median(d))
    factor, factor_k = np.empty_like(r), -1  # exp(−r·λ_k·usual) of the interval being walked
    step = np.empty_like(r)
    for j in range(1, len(t)):
        kk = int(k[j - 1])
        if inside[j - 1] and abs(d[j - 1] - usual) <= SPACING_RTOL * usual:
            if kk != factor_k:  # the times increase: an interval's steps come together
                np.multiply(r, -lam[:, kk : kk + 1] * usual, out=factor)
                np.exp(factor, out=factor)
                factor_k = kk
            v *= factor
        else:
            np.multiply(r, -(h[:, j : j + 1] - h[:, j - 1 : j]), out=step)
            v *= np.exp(step, out=step)
        out[:, j] = v @ weights
    return out


def survival_rmst(
    eta: np.ndarray, lam: np.ndarray, starts: np.ndarray, landmark: float, weights: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """(RMST to ``landmark``, survival at ``landmark``), each draws × groups, of the standardised
    survival Σ_u w_ug exp(−exp(η_u) H(t)), for one block of draws; exact under the model's
    piecewise-constant hazards (``starts[0]`` = 0).

    Per pattern (r = exp(η_u)), walking over the baseline intervals from S(0) = 1: interval k cut
    at the landmark, [a, b), with x = r·λ_k·(b − a), adds ∫_a^b S = S(a)·(b − a)·(1 − e^{−x})/x
    (S(a)·(b − a) when x = 0) and leaves S(b) = S(a)·e^{−x}: one expm1 per interval and
    pattern."""
    r = np.exp(eta)  # draws × U
    surv, total = np.ones_like(r), np.zeros_like(r)
    x, em = np.empty_like(r), np.empty_like(r)
    ends = np.append(starts[1:], np.inf)
    for k in range(len(starts)):
        if starts[k] >= landmark:
            break
        w = float(min(ends[k], landmark) - starts[k])
        np.multiply(r, lam[:, k : k + 1] * w, out=x)
        zero = None if x.all() else x == 0.0  # λ or r underflowed (a NaN stays NaN)
        np.negative(x, out=em)
        np.expm1(em, out=em)  # e^{−x} − 1
        with np.errstate(invalid="ignore", divide="ignore"):
            np.divide(em, x, out=x)  # −(1 − e^{−x})/x
        if zero is not None:
            x[zero] = -1.0  # its limit as x → 0
        x *= surv
        total -= x * w
        em *= surv
        surv += em
    return total @ weights, surv @ weights
