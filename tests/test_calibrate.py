"""Simulation-based calibration: the rank statistics and the uniformity checks."""

from __future__ import annotations

import numpy as np

from trialbayes.calibrate import fractional_ranks, rank_uniformity


def test_rank_of_a_calibrated_posterior_is_uniform():
    """Exact conjugate SBC: θ ~ N(0,1), y ~ N(θ,1) → posterior N(y/2, 1/2), L = 99 draws. 400
    replicates; the chi-square p-value is uniform, so p > 1e-4 fails with probability 1e-4."""
    rng = np.random.default_rng()
    theta = rng.normal(size=400)
    y = theta + rng.normal(size=400)
    post = y[:, None] / 2 + np.sqrt(0.5) * rng.normal(size=(400, 99))
    ranks = (post < theta[:, None]).sum(1)
    u = rank_uniformity(ranks, 99, 10)
    assert u["chi2_p"] > 1e-4


def test_rank_of_an_overconfident_posterior_is_detected():
    """Posterior SD 1/4 of the truth's: ranks pile up at 0 and L. With 400 replicates the expected
    chi-square is ≈ 1200 (df 9); p < 1e-6 fails only if the counts are near equal, probability
    far below 1e-6 (binomial tails: each end bin has mean ≈ 150 against 40 under uniformity)."""
    rng = np.random.default_rng()
    theta = rng.normal(size=400)
    y = theta + rng.normal(size=400)
    post = y[:, None] / 2 + 0.25 * np.sqrt(0.5) * rng.normal(size=(400, 99))
    ranks = (post < theta[:, None]).sum(1)
    u = rank_uniformity(ranks, 99, 10)
    assert u["chi2_p"] < 1e-6 and u["outside"]


def test_fractional_ranks_are_uniform_on_unit_interval():
    """Uniform ranks 0..L spread to (0,1): KS p > 1e-4 (false failure 1e-4)."""
    from scipy import stats

    rng = np.random.default_rng()
    u = fractional_ranks(rng.integers(0, 100, 5000), 99, rng)
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4
