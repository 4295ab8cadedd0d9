"""Estimands: pure functions of posterior draws (and, where needed, the design's patient arrays).

Sign convention: log-HR < 0 (HR < 1) is benefit of treatment over control.
``draws`` is a dict of NumPy arrays with the draw axis first, as made by :func:`flatten_draws`.
Marginal quantities are standardised over patients (average the per-patient predictions first).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ..data.design import BiomarkerBasis, Design
from ..results.model import SubgroupResult, SurvivalSummary
from ..results.summaries import HRSummary, Quantity, equal_tailed
from .imputed import add_covariate_cells, imputed_biomarker


def flatten_draws(posterior, names, max_draws: int | None = None) -> dict[str, np.ndarray]:
    """Stack (chain, draw) into one leading axis, thinning evenly to at most ``max_draws``."""
    out = {}
    for n in names:
        if n not in posterior:
            continue
        da = posterior[n]
        arr = np.asarray(da.values).reshape((-1,) + da.shape[2:])
        if max_draws and arr.shape[0] > max_draws:
            idx = np.linspace(0, arr.shape[0] - 1, max_draws).round().astype(int)
            arr = arr[idx]
        out[n] = arr
    return out


def hr_summary(
    log_hr: np.ndarray, thresholds=(1.0, 0.8), harm=1.1, level: float = 0.95
) -> HRSummary:
    """Posterior summary of a hazard ratio from draws of its log (see :class:`HRSummary`)."""
    return HRSummary.from_log_draws(log_hr, thresholds, harm, level)


def log_hr_at(draws: dict, basis: BiomarkerBasis | None, x) -> np.ndarray:
    """Treatment log-HR at biomarker values ``x``: β + δ·z(x) + P(x)·δ_pen. Shape (draws, len(x))."""
    beta = draws["treatment"][:, None]
    x = np.atleast_1d(np.asarray(x, float))
    if basis is None:
        return np.repeat(beta, len(x), axis=1)
    z, pen = basis.evaluate(x)
    out = beta + draws["interaction"][:, None] * z[None, :]
    if pen.shape[1]:
        out = out + draws["interaction_spline"] @ pen.T
    return out


def hr_curve(
    draws: dict, basis: BiomarkerBasis, grid, thresholds=(1.0,), level: float = 0.95
) -> pd.DataFrame:
    """HR as a function of the biomarker with a pointwise credible band and P(HR < t)."""
    lh = log_hr_at(draws, basis, grid)
    lo, med, hi = equal_tailed(lh, level, axis=0)
    df = pd.DataFrame(
        {
            "biomarker": np.asarray(grid, float),
            "median": np.exp(med),
            "lower": np.exp(lo),
            "upper": np.exp(hi),
        }
    )
    for t in thresholds:
        df[f"p_hr_below_{t:g}"] = (lh < np.log(t)).mean(0)
    return df


def baseline_cumhaz(draws: dict, starts: np.ndarray, times, shift=None) -> np.ndarray:
    """H0(t) for each draw at ``times`` (draws × T), from the piecewise-constant log hazards;
    ``shift`` (draws × K) is added to them first (the treated arm's β_k of a time-varying
    effect: then the result is Σ_k exp(α_k + β_k) Δ_k(t))."""
    alpha = draws["log_baseline_hazard"]
    if shift is not None:
        alpha = alpha + shift
    lam = np.exp(alpha)
    widths = np.diff(starts)
    cum_start = np.concatenate(
        [np.zeros((lam.shape[0], 1)), np.cumsum(lam[:, :-1] * widths, axis=1)], axis=1
    )
    times = np.asarray(times, float)
    k = np.searchsorted(starts[1:], times, side="left")
    return cum_start[:, k] + lam[:, k] * (times - starts[k])[None, :]


def prognostic_eta(draws: dict, design: Design) -> np.ndarray:
    """Linear predictor without the treatment part: xᵀγ + f(b) + centre frailty. (draws × N)."""
    s = draws["treatment"].shape[0]
    eta = np.zeros((s, design.n))
    if design.cov_names:
        eta += draws["covariate_effects"] @ design.X.T
        add_covariate_cells(eta, draws, design)  # data.missing: impute (0 in X until then)
    if design.basis is not None:
        eta += draws["biomarker_effect"][:, None] * design.bm_z[None, :]
        if design.bm_pen.shape[1]:
            eta += draws["biomarker_spline"] @ design.bm_pen.T
        imp = imputed_biomarker(draws, design)
        if imp is not None:
            rows, z, pen = imp
            eta[:, rows] += draws["biomarker_effect"][:, None] * z
            if pen.shape[2]:
                eta[:, rows] += np.einsum("smp,sp->sm", pen, draws["biomarker_spline"])
    if design.centre_labels:
        eta += draws["centre_frailty"][:, design.centre_idx]
    return eta


def patient_log_hr(draws: dict, design: Design) -> np.ndarray:
    """Each patient's conditional treatment log-HR (draws × N); for a time-varying effect the
    event-weighted average over the intervals (its ``treatment`` parameter) plus g(b_i)."""
    if design.basis is None:
        return np.repeat(draws["treatment"][:, None], design.n, axis=1)
    imp = imputed_biomarker(draws, design)
    if imp is None:
        return log_hr_at(draws, design.basis, design.biomarker_values)
    # the design's z and spline columns (0 where imputed), then each draw's imputed values
    out = draws["treatment"][:, None] + draws["interaction"][:, None] * design.bm_z[None, :]
    if design.bm_pen.shape[1]:
        out = out + draws["interaction_spline"] @ design.bm_pen.T
    rows, z, pen = imp
    out[:, rows] = draws["treatment"][:, None] + draws["interaction"][:, None] * z
    if pen.shape[2]:
        out[:, rows] += np.einsum("smp,sp->sm", pen, draws["interaction_spline"])
    return out


def treatment_shift(draws: dict, design: Design) -> np.ndarray | None:
    """The time-varying treatment log-HR per interval (draws × K), or None for a constant one."""
    return draws["treatment_over_time"] if design.time_varying else None


def constant_log_hr(draws: dict, design: Design) -> np.ndarray:
    """The part of each patient's treatment log-HR that is the same in every interval (draws × N):
    all of it for a constant effect; g(b_i) alone for a time-varying one, whose β_k enter through
    the treated arm's cumulative hazard (:func:`baseline_cumhaz` with ``shift``)."""
    plh = patient_log_hr(draws, design)
    return plh - draws["treatment"][:, None] if design.time_varying else plh


def standardized_survival(
    draws: dict, design: Design, times, arm: int, patients=None
) -> np.ndarray:
    """S̄_a(t) = mean over patients of exp(−exp(η_i(a)) H_a(t)): draws × T, everyone set to arm
    ``a``; H_1 = H0 under a constant effect, Σ_k exp(α_k + β_k) Δ_k(t) under a time-varying one."""
    sel = np.arange(design.n) if patients is None else np.flatnonzero(patients)
    eta = prognostic_eta(draws, design)[:, sel]
    shift = None
    if arm == 1:
        eta = eta + constant_log_hr(draws, design)[:, sel]
        shift = treatment_shift(draws, design)
    risk = np.exp(eta)
    h0 = baseline_cumhaz(draws, design.starts, times, shift)
    out = np.empty_like(h0)
    for j in range(h0.shape[1]):
        out[:, j] = np.exp(-risk * h0[:, j : j + 1]).mean(axis=1)
    return out


def rmst(times: np.ndarray, surv: np.ndarray) -> np.ndarray:
    """Restricted mean survival time to times[-1] by the trapezoid rule (times must start at 0)."""
    times = np.asarray(times, float)
    if times[0] != 0:
        raise ValueError("rmst: the time grid must start at 0")
    return np.trapezoid(surv, times, axis=-1)


def time_grid(landmark: float, design: Design, n: int = 200) -> np.ndarray:
    """A grid from 0 to the landmark that contains every cut point below it (exact for kinks)."""
    g = np.union1d(np.linspace(0.0, landmark, n), design.starts[design.starts < landmark])
    return g


def survival_estimands(
    draws: dict,
    design: Design,
    landmark: float,
    level: float = 0.95,
    n_grid: int = 200,
    time_unit: str = "time units",
) -> SurvivalSummary:
    """Standardised survival per arm, their difference at the landmark, and the RMST difference."""
    grid = time_grid(landmark, design, n_grid)
    s1 = standardized_survival(draws, design, grid, 1)
    s0 = standardized_survival(draws, design, grid, 0)
    r1, r0 = rmst(grid, s1), rmst(grid, s0)

    def q(v, with_p=False):
        return Quantity.from_draws(v, level, with_p)

    return SurvivalSummary(
        landmark=float(landmark),
        time_unit=time_unit,
        survival_treatment=q(s1[:, -1]),
        survival_control=q(s0[:, -1]),
        survival_difference=q(s1[:, -1] - s0[:, -1], True),
        rmst_treatment=q(r1),
        rmst_control=q(r0),
        rmst_difference=q(r1 - r0, True),
    )


def survival_curves(
    draws: dict, design: Design, t_max: float, n: int = 60, level: float = 0.95
) -> pd.DataFrame:
    """Standardised survival curves per arm with pointwise bands, for plotting and CSV."""
    grid = np.linspace(0.0, t_max, n)
    rows = []
    for arm in (0, 1):
        s = standardized_survival(draws, design, grid, arm)
        lo, med, hi = equal_tailed(s, level, axis=0)
        rows.append(
            pd.DataFrame({"arm": arm, "time": grid, "median": med, "lower": lo, "upper": hi})
        )
    return pd.concat(rows, ignore_index=True)


def subgroup_masks(values: np.ndarray, cutoffs) -> list[tuple[str, np.ndarray]]:
    """Subgroups of a biomarker by cut-offs: x < c1, c1 ≤ x ≤ c2, …, x > c_last (published
    convention); with one cut-off x < c and x ≥ c, so that every patient is in a group."""
    cuts = list(cutoffs)
    if len(cuts) == 1:
        c = cuts[0]
        return [(f"< {c:g}", values < c), (f"≥ {c:g}", values >= c)]
    edges = [-np.inf] + cuts + [np.inf]
    out = []
    for i, (a, b) in enumerate(zip(edges[:-1], edges[1:])):
        if i == 0:
            lab, m = f"< {b:g}", values < b
        elif i == len(edges) - 2:
            lab, m = f"> {a:g}", values > a
        elif i == len(edges) - 3:  # the last middle group is closed: c_{k-1} ≤ x ≤ c_k
            lab, m = f"{a:g}–{b:g}", (values >= a) & (values <= b)
        else:
            lab, m = f"{a:g} to < {b:g}", (values >= a) & (values < b)
        out.append((lab, m))
    return out


def subgroup_effects(
    draws: dict,
    design: Design,
    values: np.ndarray,
    cutoffs,
    landmark: float,
    thresholds=(1.0, 0.8),
    harm=1.1,
    level: float = 0.95,
) -> list[SubgroupResult]:
    """Per subgroup: conditional HR (mean patient log-HR) and marginal HR (standardised), P(benefit).

    Marginal HR of a subgroup G at landmark τ: H̄_1(τ) / H̄_0(τ), with H̄_a = −log mean_{i∈G} S_i(τ | a):
    the ratio of the cumulative hazards of the subgroup's standardised survival curves.
    """
    plh = patient_log_hr(draws, design)
    out = []
    for label, mask in subgroup_masks(values, cutoffs):
        n = int(mask.sum())
        row = SubgroupResult(
            label=label, n=n, share=n / len(values), events=int(design.event[mask].sum())
        )
        out.append(row)
        if n == 0:
            continue
        cond = plh[:, mask].mean(axis=1)
        s1 = standardized_survival(draws, design, [landmark], 1, mask)[:, 0]
        s0 = standardized_survival(draws, design, [landmark], 0, mask)[:, 0]
        marg = np.log(np.log(s1) / np.log(s0))
        row.conditional = hr_summary(cond, thresholds, harm, level)
        row.marginal = hr_summary(marg, thresholds, harm, level)
    return out


def pointwise_loglik(draws: dict, design: Design) -> np.ndarray:
    """Per-draw, per-patient log-likelihood (draws × N), the model's O(N + K) formula in NumPy:
    d_i (α_{j_i} + η_i) − exp(η_i) H0(t_i); for a time-varying effect the treated patients'
    α and H0 carry β_k. Used for PSIS-LOO and power-scaling (no compilation)."""
    times = design.starts[design.interval] + design.offset
    treat = design.treat[None, :]
    eta = prognostic_eta(draws, design) + treat * constant_log_hr(draws, design)
    h0 = baseline_cumhaz(draws, design.starts, times)
    alpha = draws["log_baseline_hazard"][:, design.interval]
    shift = treatment_shift(draws, design)
    if shift is not None:
        h1 = baseline_cumhaz(draws, design.starts, times, shift)
        h0 = np.where(treat == 1, h1, h0)
        alpha = alpha + treat * shift[:, design.interval]
    return design.event[None, :] * (alpha + eta) - np.exp(eta) * h0
