"""Figures of a simulation-based calibration: rank histograms with the band of a uniform count,
and the ECDF difference of the fractional ranks with simultaneous bands."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..calibration.sbc import ecdf_band, fractional_ranks


def rank_histograms(ranks: dict, thin: int, bins: int, axes=None):
    """Histogram of ranks per parameter with the 99% band of a binomial(n, 1/bins) count."""
    params = list(ranks)
    if axes is None:
        fig, axes = plt.subplots(1, len(params), figsize=(3.0 * len(params), 3.0), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, p in zip(axes, params):
        r = np.asarray(ranks[p])
        n = len(r)
        lo, hi = stats.binom.ppf([0.005, 0.995], n, 1 / bins)
        ax.axhspan(lo, hi, color="#cccccc", alpha=0.6, lw=0)
        ax.hist(r, bins=np.linspace(0, thin + 1, bins + 1), color="#1f5fa8", edgecolor="white")
        ax.axhline(n / bins, color="k", lw=0.8)
        ax.set_title(p, fontsize=8)
        ax.set_xlabel(f"rank (0..{thin})", fontsize=8)
    axes[0].set_ylabel("replicates (grey: 99% band)")
    fig.tight_layout()
    return fig


def ecdf_difference(ranks: dict, thin: int, axes=None):
    """ECDF of fractional ranks minus the uniform CDF, with simultaneous 95% bands."""
    params = list(ranks)
    if axes is None:
        fig, axes = plt.subplots(
            1, len(params), figsize=(3.0 * len(params), 3.0), squeeze=False, sharey=True
        )
        axes = axes[0]
    fig = axes[0].figure
    for ax, p in zip(axes, params):
        u = fractional_ranks(ranks[p], thin, np.random.default_rng(0))
        x, diff, lo, hi = ecdf_band(u, 0.95)
        ax.fill_between(x, lo, hi, step="post", color="#cccccc", alpha=0.7, lw=0)
        ax.step(x, diff, where="post", color="#d9731a")
        ax.axhline(0, color="k", lw=0.6)
        ax.set_title(p, fontsize=8)
        ax.set_xlabel("fractional rank", fontsize=8)
    axes[0].set_ylabel("ECDF − uniform")
    fig.suptitle(
        "SBC: ECDF of fractional ranks minus uniform; grey = simultaneous 95% band", fontsize=9
    )
    fig.tight_layout()
    return fig


# ----------------------------------------------------------------------------- writing
