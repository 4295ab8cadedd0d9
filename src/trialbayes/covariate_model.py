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

The simulator resamples patients from a synthetic cohort of ``size`` draws of this distribution,
so a next trial's patients are drawn from the fitted distribution rather than from the
observed patients (up to the negligible discreteness of a cohort of 20 000).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

#: at most this many distinct values: the column keeps its values and frequencies exactly
DISCRETE_MAX_LEVELS = 20
#: common random numbers per pair for the latent-to-output correlation map
NORTA_DRAWS = 20_000
_GRID = np.linspace(-0.995, 0.995, 81)


@dataclass
class Marginal:
    values: np.ndarray  # sorted observed values
    discrete: bool

    @classmethod
    def fit(cls, x: np.ndarray) -> "Marginal":
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
    marginals: list[Marginal]
    latent_corr: np.ndarray  # (p, p)
    target_corr: np.ndarray  # the data's Pearson correlations

    @classmethod
    def fit(cls, data: np.ndarray, rng: np.random.Generator) -> "GaussianCopula":
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


def fitted_population(design, rng: np.random.Generator, size: int = 20_000):
    """A synthetic cohort of ``size`` patients from the copula fitted to ``design``'s covariates
    (standardised) and biomarker (on its basis scale), as a simulate.Population."""
    from .simulate import Population

    p = design.X.shape[1]
    cols = [design.X]
    basis = design.basis
    if basis is not None:
        g = np.log(design.biomarker_values) if basis.log else design.biomarker_values
        cols.append(np.asarray(g, float)[:, None])
    data = np.column_stack(cols) if cols else np.zeros((design.n, 0))
    if data.shape[1] == 0:
        return Population(np.zeros((size, 0)), np.zeros(size), np.zeros((size, 0)))
    sim = GaussianCopula.fit(data, rng).sample(rng, size)
    if basis is None:
        return Population(sim[:, :p], np.zeros(size), np.zeros((size, 0)))
    bm = np.exp(sim[:, p]) if basis.log else sim[:, p]
    z, pen = basis.evaluate(bm)
    return Population(sim[:, :p], z, pen, bm, design.spec.biomarker)
