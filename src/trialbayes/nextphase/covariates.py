"""A fitted joint distribution of the covariates and the biomarker (``next_phase.covariates:
fitted``): a Gaussian copula with the data's own marginals, matched to the data's correlations.

Columns: the model's standardised covariates (design scale) and the biomarker on its basis scale
(log for log_linear / spline bases, as is for linear). Marginals: a column with at most
``DISCRETE_MAX_LEVELS`` distinct values (binary, counts, coded factors) keeps exactly its
observed values and their frequencies (the step inverse ECDF: a binary column is the latent
normal thresholded at its observed frequency); any other column uses the linearly interpolated
empirical quantile function (smoothed between the observed order statistics, never beyond the
observed range). Dependence: latent normal correlations chosen so that the generated columns have
the data's Pearson correlations (NORTA, Cario & Nelson 1997: for each pair the map from latent to
output correlation is computed on a grid with common random numbers and inverted; the matrix is
then projected to the nearest positive-definite correlation matrix by eigenvalue clipping).

A text covariate of K >= 3 levels (dummy-coded by data.from_frame as ``name[level]`` columns) is
one column of the copula, not K − 1 binary ones (those would put a patient in two levels at
once and get the reference level's share wrong): each level gets a score, the column keeps the
data's level frequencies exactly (one latent normal cut at the cumulative level shares, so each
patient is in exactly one level), and each synthetic patient's level is turned back into dummies.
The scores are the first canonical variate of the dummies against the other columns (optimal
scaling), so the latent normal carries the factor's strongest linear association with the rest;
associations along other directions (a level that is high on one covariate and another level
high on a second) are only approximated (weakened). Without other columns the scores are the
level order, which then carries no dependence.

The simulator resamples patients from a synthetic cohort of ``size`` draws of this distribution,
so a next trial's patients are drawn from the fitted distribution rather than from the
observed patients (up to the negligible discreteness of a cohort of 20 000).
"""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np
from scipy import stats

from ..core.flags import Flag
from .simulate import Population

#: at most this many distinct values: the column keeps its values and frequencies exactly
DISCRETE_MAX_LEVELS = 20
#: common random numbers per pair for the latent-to-output correlation map
NORTA_DRAWS = 20_000
_GRID = np.linspace(-0.995, 0.995, 81)


@dataclass
class Marginal:
    """One column's fitted marginal: its sorted observed values, kept exactly if ``discrete``, else
    interpolated (``quantile`` is the inverse CDF)."""

    values: np.ndarray  # sorted observed values
    discrete: bool

    @classmethod
    def fit(cls, x: np.ndarray) -> Marginal:
        x = np.sort(np.asarray(x, float))
        return cls(x, len(np.unique(x)) <= DISCRETE_MAX_LEVELS)

    def quantile(self, u: np.ndarray) -> np.ndarray:
        n = len(self.values)
        if self.discrete:  # inverse ECDF: P(value ≤ x_(k)) = k / n exactly
            return self.values[np.clip(np.ceil(u * n).astype(int) - 1, 0, n - 1)]
        return np.interp(u, np.linspace(0.0, 1.0, n), self.values)


def _output_corr(a: Marginal, b: Marginal, z1, e) -> np.ndarray:
    """Pearson correlation of the two generated columns at every latent correlation of _GRID."""
    xa = a.quantile(stats.norm.cdf(z1))
    out = np.empty(len(_GRID))
    for k, rho in enumerate(_GRID):
        xb = b.quantile(stats.norm.cdf(rho * z1 + np.sqrt(1 - rho**2) * e))
        out[k] = np.corrcoef(xa, xb)[0, 1] if xa.std() > 0 and xb.std() > 0 else 0.0
    return out


def _nearest_correlation(c: np.ndarray, floor: float = 1e-6) -> np.ndarray:
    w, v = np.linalg.eigh((c + c.T) / 2)
    c = (v * np.maximum(w, floor)) @ v.T
    d = np.sqrt(np.diag(c))
    return c / np.outer(d, d)


@dataclass
class GaussianCopula:
    """The fitted joint distribution of the columns (see the module docstring): marginals, the
    latent normal correlations (NORTA) and the data's Pearson correlations they target."""

    marginals: list[Marginal]
    latent_corr: np.ndarray  # (p, p)
    target_corr: np.ndarray  # the data's Pearson correlations

    @classmethod
    def fit(cls, data: np.ndarray, rng: np.random.Generator) -> GaussianCopula:
        data = np.asarray(data, float)
        p = data.shape[1]
        marg = [Marginal.fit(data[:, j]) for j in range(p)]
        target = np.corrcoef(data, rowvar=False) if p > 1 else np.ones((1, 1))
        target = np.atleast_2d(np.nan_to_num(target))
        latent = np.eye(p)
        z1, e = rng.standard_normal((2, NORTA_DRAWS))
        for i in range(p):
            for j in range(i + 1, p):
                curve = np.maximum.accumulate(_output_corr(marg[i], marg[j], z1, e))
                r = np.clip(target[i, j], curve[0], curve[-1])
                latent[i, j] = latent[j, i] = np.interp(r, curve, _GRID)
        return cls(marg, _nearest_correlation(latent) if p > 1 else latent, target)

    def sample(self, rng: np.random.Generator, m: int) -> np.ndarray:
        p = len(self.marginals)
        z = rng.standard_normal((m, p)) @ np.linalg.cholesky(self.latent_corr).T
        u = stats.norm.cdf(z)
        return np.column_stack([mg.quantile(u[:, j]) for j, mg in enumerate(self.marginals)])


def factor_groups(names: list[str], raw: np.ndarray) -> list[list[int]]:
    """Column indices of each dummy-coded factor of >= 3 levels: the columns ``name[level]`` that
    data.from_frame made from one text covariate (same ``name``, 0/1 values, at most one 1 per
    row). A two-level factor (one dummy) is an ordinary binary column and is not listed."""
    groups: dict[str, list[int]] = {}
    for j, nm in enumerate(names):
        m = re.fullmatch(r"(.+)\[(.+)\]", nm)
        if m:
            groups.setdefault(m.group(1), []).append(j)
    out = []
    for idx in groups.values():
        d = raw[:, idx]
        if len(idx) >= 2 and np.isin(d, (0.0, 1.0)).all() and (d.sum(1) <= 1).all():
            out.append(idx)
    return out


def _factor_scores(dummies: np.ndarray, others: np.ndarray) -> np.ndarray:
    """Scores of the K levels (reference first) of one factor: the first canonical variate of its
    dummies against the other columns (optimal scaling; the one-dimensional coding of the factor
    most correlated with the rest). Without other columns, or without any association: 0..K-1."""
    k = dummies.shape[1] + 1
    scores = np.arange(k, dtype=float)
    if others.shape[1]:
        d = dummies - dummies.mean(0)
        y = others - others.mean(0)
        y = y[:, y.std(0) > 0]
        if y.shape[1]:
            sdd = d.T @ d + 1e-9 * np.eye(d.shape[1])
            sdy = d.T @ y
            syy = y.T @ y + 1e-9 * np.eye(y.shape[1])
            m = np.linalg.solve(sdd, sdy @ np.linalg.solve(syy, sdy.T))
            w, v = np.linalg.eig(m)
            a = np.real(v[:, np.argmax(np.real(w))])
            if np.abs(a).max() > 0 and np.max(np.real(w)) > 1e-12:
                scores = np.concatenate([[0.0], a / np.abs(a).max()])
    order = np.argsort(scores, kind="stable")  # distinct values, in the scores' order
    scores[order] = np.sort(scores) + 1e-6 * np.arange(k)
    return scores


def _copula_columns(design, names, X_raw):
    """The copula's columns: every non-factor covariate (standardised), one scored column per
    factor of >= 3 levels, then the biomarker (basis scale). Returns (data, decode) where decode
    maps a sample back to the design's standardised covariates."""
    groups = factor_groups(names, X_raw)
    in_group = {j for g in groups for j in g}
    plain = [j for j in range(len(names)) if j not in in_group]
    cols = [design.X[:, plain]]
    factors = []
    for g in groups:
        others = np.delete(np.column_stack([design.X] + _bm_col(design)), g, axis=1)
        s = _factor_scores(X_raw[:, g], others)
        level = np.where(X_raw[:, g].any(1), X_raw[:, g].argmax(1) + 1, 0)
        cols.append(s[level][:, None])
        factors.append((g, s))

    def decode(sim: np.ndarray) -> np.ndarray:
        out = np.empty((len(sim), len(names)))
        out[:, plain] = sim[:, : len(plain)]
        for k, (g, s) in enumerate(factors):
            level_idx = np.abs(sim[:, len(plain) + k][:, None] - s[None, :]).argmin(1)
            dum = (level_idx[:, None] == np.arange(1, len(s))[None, :]).astype(float)
            out[:, g] = (dum - design.cov_mean[g]) / design.cov_sd[g]  # the design's scale
        return out

    return cols, decode


def _bm_col(design) -> list[np.ndarray]:
    if design.basis is None:
        return []
    return [np.asarray(design.basis.g(design.biomarker_values), float)[:, None]]


def fitted_population(design, rng: np.random.Generator, size: int = 20_000):
    """A synthetic cohort of ``size`` patients from the copula fitted to ``design``'s covariates
    (standardised; a factor of >= 3 levels as one scored column, so that every patient is in
    exactly one level) and biomarker (on its basis scale), as a simulate.Population."""
    p = design.X.shape[1]
    basis = design.basis
    if p == 0 and basis is None:
        return Population(np.zeros((size, 0)), np.zeros(size), np.zeros((size, 0)))
    names = list(getattr(design, "cov_names", None) or [f"x{j}" for j in range(p)])
    sd, mean = getattr(design, "cov_sd", np.ones(p)), getattr(design, "cov_mean", np.zeros(p))
    x_raw = design.X * sd + mean
    cols, decode = _copula_columns(design, names, np.round(x_raw, 9))
    data = np.column_stack(cols + _bm_col(design))
    sim = GaussianCopula.fit(data, rng).sample(rng, size)
    x = decode(sim)
    if basis is None:
        return Population(x, np.zeros(size), np.zeros((size, 0)))
    bm = basis.g_inverse(sim[:, -1])
    z, pen = basis.evaluate(bm)
    return Population(x, z, pen, bm, design.spec.biomarker)


def enrichment_flags(cfg, data, models) -> list:
    """A flag (flags.Flag) for every enriched population of ``next_phase.populations`` that holds
    every patient of the data (e.g. ``below 19`` when the biomarker's maximum is 18): it is
    accepted (the next trial may recruit a wider range) but is all comers in the fitted cohort."""
    spec = {m.name: m for m in models}[cfg.model]
    out = []
    for ps in cfg.populations:
        if ps.kind == "all" or not spec.biomarker:
            continue
        x = data.frame[spec.biomarker].to_numpy(float)
        keep = (x < ps.cutoff) if ps.kind == "below" else (x > ps.cutoff)
        if keep.all():
            lo, hi = np.min(x), np.max(x)
            out.append(Flag(
                "enrichment_holds_everyone",
                f"next_phase population '{spec.biomarker} {ps.kind} {ps.cutoff:g}' holds every "
                f"patient of the data ({spec.biomarker} ranges {lo:g} to {hi:g}): in the "
                "simulation it is the all-comers population, not an enrichment",
                detail={"cutoff": ps.cutoff, "kind": ps.kind, "min": float(lo), "max": float(hi)},
            ))  # fmt: skip
    return out
