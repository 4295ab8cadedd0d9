"""Simultaneous inference on the HR curve: the grid over the observed biomarker range, the
simultaneous credible band and the credible subgroups — pure functions of posterior draws.

Simultaneous band (max-|t|; the "asymptotic" method of the ``credsubs`` R package, Schnell et al.
2016, Biometrics 72:1026): with f_s(x) the draws of log HR on the grid, m(x) and s(x) their
posterior mean and SD, T_s = max_x |f_s(x) − m(x)| / s(x) and c the ``level`` quantile of the
T_s (the smallest draw value with at least ``level`` of the draws at or below it), the band is
m(x) ± c·s(x). At least ``level`` of the draws lie wholly inside it, so P(the whole curve lies in
the band | data) ≥ ``level`` up to Monte Carlo error — for any shape of posterior, since only
ranks of T are used.

Credible subgroups for "HR < t": exclusive D = {x : m + c·s < log t}, inclusive
S = {x : m − c·s < log t}. If the curve lies in the band, every x of D has HR < t and every x with
HR < t is in S, so P(D ⊆ {x: HR(x) < t} ⊆ S | data) ≥ ``level``. This is the single-step
procedure; credsubs' default step-down (re-deriving c on the points not yet classified) gives
larger subgroups but its joint guarantee is argued for repeated sampling, not for the posterior,
so it is not used here.

Every point of D has P(HR(x) < t) ≥ ``level`` pointwise (c is at least the pointwise quantile of
|t(x)|), so D lies inside the pointwise region {P(HR < t) > 0.9} whenever ``level`` > 0.9.
"""

from __future__ import annotations

import numpy as np
from scipy import stats

from ..results.credible import CredibleSubgroup, CurveGrid, SimultaneousBand, Span

__all__ = [
    "biomarker_grid",
    "credible_subgroups",
    "curve_grid",
    "grid_spans",
    "max_t_band",
    "simultaneous_band",
]


def biomarker_grid(
    x, log: bool, n: int, quantiles=(0.05, 0.95), offset: float = 0.0
) -> np.ndarray:
    """``n`` values from the ``quantiles[0]`` to the ``quantiles[1]`` quantile of ``x``; for a
    log-scale basis log(x + ``offset``) evenly spaced on that scale (geometrically in x +
    offset, so a curve that bends near zero is drawn where it bends), when the lower end of x +
    offset is > 0; evenly in x otherwise. Missing values are left out."""
    v = np.asarray(x, float)
    v = v[np.isfinite(v)]  # data.missing: impute leaves missing values as NaN
    lo, hi = np.quantile(v, list(quantiles))
    if hi <= lo:  # a biomarker concentrated on one value: nothing to draw a curve over
        return np.array([float(lo)])
    if log and lo + offset > 0:
        g = np.geomspace(lo + offset, hi + offset, n) - offset
        g[0], g[-1] = lo, hi  # the ends exactly (rounding in the shift)
        return g
    return np.linspace(lo, hi, n)


def curve_grid(x, grid: np.ndarray, quantiles, log: bool, offset: float = 0.0) -> CurveGrid:
    """The grid as reported: its range, quantiles, spacing (``log``: even in log(x + offset))
    and the patients outside it."""
    v = np.asarray(x, float)
    v = v[np.isfinite(v)]
    lo, hi = float(grid[0]), float(grid[-1])
    return CurveGrid(
        lower=lo,
        upper=hi,
        quantiles=[float(q) for q in quantiles],
        n_points=int(len(grid)),
        spacing="log" if log and lo + offset > 0 else "linear",
        n_below=int((v < lo).sum()),
        n_above=int((v > hi).sum()),
        n_patients=int(v.size),
    )


def max_t_band(log_hr: np.ndarray, level: float) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(lower, upper, c, share of draws inside) of the max-|t| band; ``log_hr`` is draws × grid.

    A grid value whose draws do not vary (SD 0) has a zero-width band there and does not enter
    the maximum."""
    f = np.asarray(log_hr, float)
    if f.ndim != 2 or f.shape[0] < 2:
        raise ValueError("max_t_band: need a (draws × grid) array with at least two draws")
    m, s = f.mean(axis=0), f.std(axis=0, ddof=1)
    safe = np.where(s > 0, s, 1.0)
    t = np.where(s > 0, np.abs(f - m) / safe, 0.0).max(axis=1)
    c = float(np.quantile(t, level, method="inverted_cdf"))
    return m - c * s, m + c * s, c, float((t <= c).mean())


def simultaneous_band(
    log_hr: np.ndarray, level: float
) -> tuple[SimultaneousBand, np.ndarray, np.ndarray]:
    """The typed band summary and its (lower, upper) on the log-HR scale."""
    lower, upper, c, inside = max_t_band(log_hr, level)
    band = SimultaneousBand(
        level=float(level),
        critical_value=c,
        pointwise_critical_value=float(stats.norm.ppf((1 + level) / 2)),
        coverage_of_draws=inside,
        n_draws=int(np.asarray(log_hr).shape[0]),
    )
    return band, lower, upper


def grid_spans(grid: np.ndarray, mask: np.ndarray) -> list[Span]:
    """Contiguous runs of ``mask`` over ``grid`` as spans, their ends flagged at the grid's."""
    grid, mask = np.asarray(grid, float), np.asarray(mask, bool)
    out, n, i = [], len(grid), 0
    while i < n:
        if not mask[i]:
            i += 1
            continue
        j = i
        while j + 1 < n and mask[j + 1]:
            j += 1
        out.append(Span(float(grid[i]), float(grid[j]), i == 0, j == n - 1))
        i = j + 1
    return out


def _share(values: np.ndarray, spans: list[Span]) -> float:
    if values.size == 0:
        return 0.0
    inside = np.zeros(values.size, bool)
    for s in spans:
        inside |= (values >= s.lower) & (values <= s.upper)
    return float(inside.mean())


def credible_subgroups(
    grid, lower: np.ndarray, upper: np.ndarray, thresholds, level: float, values=()
) -> list[CredibleSubgroup]:
    """Exclusive and inclusive credible subgroups for HR < t, for every t in ``thresholds``, from
    the simultaneous band (``lower``, ``upper``: log-HR scale) on ``grid``; ``values`` are the
    patients' biomarker values (for the shares)."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    out = []
    for t in thresholds:
        lt = np.log(float(t))
        d = grid_spans(grid, np.asarray(upper) < lt)
        s = grid_spans(grid, np.asarray(lower) < lt)
        out.append(
            CredibleSubgroup(
                threshold=float(t),
                level=float(level),
                exclusive=d,
                inclusive=s,
                exclusive_share=_share(v, d),
                inclusive_share=_share(v, s),
            )
        )
    return out
