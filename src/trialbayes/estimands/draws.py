"""Estimands: pure functions of posterior draws (and, where needed, the design's patient arrays).

Sign convention: log-HR < 0 (HR < 1) is benefit of treatment over control.
``draws`` is a dict of NumPy arrays with the draw axis first, as made by :func:`flatten_draws`.
Marginal quantities are standardised over patients (average the per-patient predictions first).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..data.design import BiomarkerBasis, Design
from ..results.model import SubgroupResult, SurvivalSummary
from ..results.summaries import HRSummary, Quantity, equal_tailed
from .imputed import add_covariate_cells, imputed_biomarker
from .kernels import (
    cumulative_hazard,
    curve_survival,
    map_blocks,
    mean_survival,
    patient_patterns,
    survival_rmst,
)

#: numbers per draw and pattern in kernels.survival_rmst's arrays (its blocks' size)
RMST_CELLS = 6


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
    """Treatment log-HR at biomarker values ``x``: β + δ·z(x) + P(x)·δ_pen. Shape (draws,
    len(x))."""
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
    """HR as a function of the biomarker with a pointwise credible band at ``level`` (a column)
    and P(HR < t)."""
    lh = log_hr_at(draws, basis, grid)
    lo, med, hi = equal_tailed(lh, level, axis=0)
    df = pd.DataFrame(
        {
            "biomarker": np.asarray(grid, float),
            "median": np.exp(med),
            "lower": np.exp(lo),
            "upper": np.exp(hi),
            "level": level,
        }
    )
    for t in thresholds:
        df[f"p_hr_below_{t:g}"] = (lh < np.log(t)).mean(0)
    return df


def baseline_cumhaz(draws: dict, starts: np.ndarray, times, shift=None) -> np.ndarray:
    """H0(t) for each draw at ``times`` (draws × T), from the piecewise-constant log hazards;
    ``shift`` (draws × K) is added to them first (the treated arm's β_k of a time-varying
    effect: then the result is Σ_k exp(α_k + β_k) Δ_k(t))."""
    return cumulative_hazard(arm_hazards(draws, shift), starts, times)


def arm_hazards(draws: dict, shift=None) -> np.ndarray:
    """exp(α_k (+ β_k)) per draw and interval (draws × K): the baseline hazards, or the treated
    arm's under a time-varying effect (``shift`` = its β_k)."""
    alpha = draws["log_baseline_hazard"]
    return np.exp(alpha if shift is None else alpha + shift)


def _subset(design: Design, rows):
    """(index of the patients ``rows``, or a full slice; each patient's position among ``rows``
    (−1 if absent), or None for all patients)."""
    if rows is None:
        return slice(None), None
    idx = np.asarray(rows, "int64")
    pos = np.full(design.n, -1, "int64")
    pos[idx] = np.arange(len(idx))
    return idx, pos


def _imputed_biomarker_at(draws: dict, design: Design, pos):
    """:func:`.imputed.imputed_biomarker` restricted to the patients of ``pos`` (see
    :func:`_subset`), their positions among them instead of their rows; None without any."""
    imp = imputed_biomarker(draws, design)
    if imp is None or pos is None:
        return imp
    rows, z, pen = imp
    keep = pos[rows] >= 0
    return pos[rows[keep]], z[:, keep], pen[:, keep]


def prognostic_eta(draws: dict, design: Design, rows=None) -> np.ndarray:
    """Linear predictor without the treatment part: xᵀγ + f(b) + centre frailty. (draws × N), or
    draws × len(rows) for the patients ``rows``; imputed values (data.missing: impute) are each
    draw's (:mod:`.imputed`)."""
    sel, pos = _subset(design, rows)
    s = draws["treatment"].shape[0]
    eta = np.zeros((s, design.n if rows is None else len(sel)))
    if design.cov_names:
        eta += draws["covariate_effects"] @ design.X[sel].T
        add_covariate_cells(eta, draws, design, pos)  # data.missing: impute (0 in X until then)
    if design.basis is not None:
        eta += draws["biomarker_effect"][:, None] * design.bm_z[None, sel]
        if design.bm_pen.shape[1]:
            eta += draws["biomarker_spline"] @ design.bm_pen[sel].T
        imp = _imputed_biomarker_at(draws, design, pos)
        if imp is not None:
            at, z, pen = imp
            eta[:, at] += draws["biomarker_effect"][:, None] * z
            if pen.shape[2]:
                eta[:, at] += np.einsum("smp,sp->sm", pen, draws["biomarker_spline"])
    if design.centre_labels:
        eta += draws["centre_frailty"][:, design.centre_idx[sel]]
    return eta


def patient_log_hr(draws: dict, design: Design, rows=None) -> np.ndarray:
    """Each patient's conditional treatment log-HR (draws × N, or × len(rows)); for a
    time-varying effect the event-weighted average over the intervals (its ``treatment``
    parameter) plus g(b_i)."""
    sel, pos = _subset(design, rows)
    n = design.n if rows is None else len(sel)
    if design.basis is None:
        return np.repeat(draws["treatment"][:, None], n, axis=1)
    imp = _imputed_biomarker_at(draws, design, pos)
    if imp is None:
        return log_hr_at(draws, design.basis, design.biomarker_values[sel])
    # the design's z and spline columns (0 where imputed), then each draw's imputed values
    out = draws["treatment"][:, None] + draws["interaction"][:, None] * design.bm_z[None, sel]
    if design.bm_pen.shape[1]:
        out = out + draws["interaction_spline"] @ design.bm_pen[sel].T
    at, z, pen = imp
    out[:, at] = draws["treatment"][:, None] + draws["interaction"][:, None] * z
    if pen.shape[2]:
        out[:, at] += np.einsum("smp,sp->sm", pen, draws["interaction_spline"])
    return out


def treatment_shift(draws: dict, design: Design) -> np.ndarray | None:
    """The time-varying treatment log-HR per interval (draws × K), or None for a constant one."""
    return draws["treatment_over_time"] if design.time_varying else None


def constant_log_hr(draws: dict, design: Design, rows=None) -> np.ndarray:
    """The part of each patient's treatment log-HR that is the same in every interval (draws × N,
    or × len(rows)): all of it for a constant effect; g(b_i) alone for a time-varying one, whose
    β_k enter through the treated arm's cumulative hazard (:func:`baseline_cumhaz` with
    ``shift``)."""
    plh = patient_log_hr(draws, design, rows)
    return plh - draws["treatment"][:, None] if design.time_varying else plh


def patient_features(design: Design) -> np.ndarray:
    """Per patient, every value the prognostic linear predictor and the treatment log-HR depend
    on (patients × values): patients with equal rows have equal standardised-survival terms. A
    patient with an imputed value (data.missing: impute) has values that change from draw to
    draw: a column of its own id makes it a pattern of its own."""
    cols = [design.X]
    if design.basis is not None:
        cols += [design.bm_z[:, None], design.bm_pen, design.biomarker_values[:, None]]
    if design.centre_labels:
        cols.append(design.centre_idx[:, None].astype(float))
    if design.missing is not None:
        own = np.zeros(design.n)
        imputed = design.missing.rows_imputed()
        own[imputed] = np.arange(1, len(imputed) + 1)
        cols.append(own[:, None])
    f = np.column_stack(cols) if sum(c.shape[1] for c in cols) else np.zeros((design.n, 0))
    return np.nan_to_num(f)  # an imputed biomarker is NaN in the data (its own id tells it)


@dataclass(frozen=True)
class ArmBlock:
    """One block of draws over the distinct patients (kernels.patient_patterns): ``eta`` the
    control arm's linear predictor (draws × U); ``lhr`` what the treated arm adds to it (the
    patient's log-HR, or g(b) alone under a time-varying effect); ``lam0`` / ``lam1`` each arm's
    interval hazards (draws × K; equal under a constant effect); ``weights`` (U × groups);
    ``average`` the time-varying effect's average log-HR β (draws), or None."""

    eta: np.ndarray
    lhr: np.ndarray
    lam0: np.ndarray
    lam1: np.ndarray
    weights: np.ndarray
    average: np.ndarray | None

    def mean_log_hr(self) -> np.ndarray:
        """Each group's mean conditional log-HR (draws × groups), as :func:`patient_log_hr`."""
        m = self.lhr @ self.weights
        return m if self.average is None else m + self.average[:, None]


def _by_arm(draws: dict, design: Design, groups: list[np.ndarray], fn: Callable, cells: int):
    """``fn(ArmBlock)`` for each block of draws, over the distinct patients of ``groups`` (masks;
    see kernels.patient_patterns): the prognostic predictor and the log-HR are computed once for
    both arms."""
    pat = patient_patterns(patient_features(design), groups)
    tv = design.time_varying

    def one(sl: slice):
        d = {k: v[sl] for k, v in draws.items()}
        lam0 = arm_hazards(d)
        lam1 = arm_hazards(d, treatment_shift(d, design)) if tv else lam0
        return fn(
            ArmBlock(
                eta=prognostic_eta(d, design, pat.rows),
                lhr=constant_log_hr(d, design, pat.rows),
                lam0=lam0,
                lam1=lam1,
                weights=pat.weights,
                average=d["treatment"] if tv else None,
            )
        )

    return map_blocks(one, draws["log_baseline_hazard"].shape[0], cells * len(pat.rows))


def standardized_survival(
    draws: dict, design: Design, times, arm: int, patients=None
) -> np.ndarray:
    """S̄_a(t) = mean over patients of exp(−exp(η_i(a)) H_a(t)): draws × T, everyone set to arm
    ``a`` (``patients``: a mask of the patients averaged over); H_1 = H0 under a constant effect,
    Σ_k exp(α_k + β_k) Δ_k(t) under a time-varying one."""
    sel = np.ones(design.n, bool) if patients is None else np.asarray(patients, bool)
    times = np.atleast_1d(np.asarray(times, float))
    starts = design.starts

    def block(b: ArmBlock):
        if arm == 1:
            return mean_survival(b.eta + b.lhr, b.lam1, starts, times, b.weights)[..., 0]
        return mean_survival(b.eta, b.lam0, starts, times, b.weights)[..., 0]

    return np.concatenate(_by_arm(draws, design, [sel], block, len(times)))


def survival_estimands(
    draws: dict,
    design: Design,
    landmark: float,
    level: float = 0.95,
    time_unit: str = "time units",
) -> SurvivalSummary:
    """Standardised survival per arm, their difference at the landmark, and the RMST difference
    (the exact integral of the standardised survival to the landmark, kernels.survival_rmst)."""
    starts = design.starts

    def block(b: ArmBlock):
        return survival_rmst(b.eta + b.lhr, b.lam1, starts, landmark, b.weights), survival_rmst(
            b.eta, b.lam0, starts, landmark, b.weights
        )

    out = _by_arm(draws, design, [np.ones(design.n, bool)], block, RMST_CELLS)
    (r1, s1), (r0, s0) = (
        [np.concatenate([o[a][i][:, 0] for o in out]) for i in (0, 1)] for a in (0, 1)
    )

    def q(v, with_p=False):
        return Quantity.from_draws(v, level, with_p)

    return SurvivalSummary(
        landmark=float(landmark),
        time_unit=time_unit,
        survival_treatment=q(s1),
        survival_control=q(s0),
        survival_difference=q(s1 - s0, True),
        rmst_treatment=q(r1),
        rmst_control=q(r0),
        rmst_difference=q(r1 - r0, True),
    )


def survival_curves(
    draws: dict, design: Design, t_max: float, n: int = 60, level: float = 0.95
) -> pd.DataFrame:
    """Standardised survival curves per arm with pointwise bands, for plotting and CSV."""
    grid = np.linspace(0.0, t_max, n)
    starts = design.starts

    def block(b: ArmBlock):
        return [
            curve_survival(b.eta, b.lam0, starts, grid, b.weights)[..., 0],
            curve_survival(b.eta + b.lhr, b.lam1, starts, grid, b.weights)[..., 0],
        ]

    out = _by_arm(draws, design, [np.ones(design.n, bool)], block, 4)
    rows = []
    for arm in (0, 1):
        s = np.concatenate([o[arm] for o in out])
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
    """Per subgroup: conditional HR (mean patient log-HR) and marginal HR (standardised),
    P(benefit).

    Marginal HR of a subgroup G at landmark τ: H̄_1(τ) / H̄_0(τ), with
    H̄_a = −log mean_{i∈G} S_i(τ | a): the ratio of the cumulative hazards of the subgroup's
    standardised survival curves.
    """
    masks = subgroup_masks(values, cutoffs)
    groups = [m for _, m in masks if m.any()]
    t, starts = [float(landmark)], design.starts

    def block(b: ArmBlock):
        s1 = mean_survival(b.eta + b.lhr, b.lam1, starts, t, b.weights)[:, 0, :]
        s0 = mean_survival(b.eta, b.lam0, starts, t, b.weights)[:, 0, :]
        return b.mean_log_hr(), np.log(np.log(s1) / np.log(s0))

    per = _by_arm(draws, design, groups, block, 3) if groups else []
    cond_all = np.concatenate([p[0] for p in per]) if per else None
    marg_all = np.concatenate([p[1] for p in per]) if per else None
    out, g = [], 0
    for label, mask in masks:
        n = int(mask.sum())
        row = SubgroupResult(
            label=label, n=n, share=n / len(values), events=int(design.event[mask].sum())
        )
        out.append(row)
        if n == 0:
            continue
        row.conditional = hr_summary(cond_all[:, g], thresholds, harm, level)
        row.marginal = hr_summary(marg_all[:, g], thresholds, harm, level)
        g += 1
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
