"""Figures. Every function takes ``ax=`` (a new figure if None) and returns the Figure.

Importing this module never changes the matplotlib backend (the CLI chooses Agg for itself).
Credible levels and units are parameters: labels say "90% credible band", "time (weeks)".
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats


def _pct(level: float) -> str:
    return f"{100 * level:g}%"

BLUE, ORANGE, GREY = "#1f5fa8", "#d9731a", "#555555"


def _ax(ax, size=(7, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    return ax.figure, ax


def _hr_axis(axis, lo: float, hi: float):
    """Readable ticks on a log HR axis (0.25, 0.5, 1, 2, ...) instead of powers of ten."""
    from matplotlib.ticker import FixedLocator, NullFormatter, NullLocator, ScalarFormatter

    ticks = [t for t in (0.05, 0.1, 0.2, 0.25, 0.5, 0.75, 1, 1.5, 2, 3, 4, 6, 8, 12, 16, 32) if lo * 0.9 <= t <= hi * 1.1]
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(ScalarFormatter())
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())


def _stamp(ax, label: str | None):
    if label:
        ax.text(0.99, 0.01, label, transform=ax.transAxes, ha="right", va="bottom", fontsize=7, color="#a00000")


def forest_plot(rows: list[dict], ax=None, title="Hazard ratios (HR < 1 favours treatment)", label=None,
                level: float = 0.95):
    """rows: dicts with label, hr, lower, upper and optional kind ('bayes' / 'cox' / 'unshrunk' ...)."""
    fig, ax = _ax(ax, (7.5, 0.45 * len(rows) + 1.5))
    colours = {"bayes": BLUE, "cox": ORANGE, "unshrunk": ORANGE, "shrunk": BLUE}
    markers = {"bayes": "o", "cox": "s", "unshrunk": "s", "shrunk": "o"}
    y = np.arange(len(rows))[::-1]
    for yi, r in zip(y, rows):
        k = r.get("kind", "bayes")
        ax.plot([r["lower"], r["upper"]], [yi, yi], color=colours.get(k, GREY), lw=2)
        ax.plot(r["hr"], yi, markers.get(k, "o"), color=colours.get(k, GREY), ms=6)
        ax.text(1.02, yi, f"{r['hr']:.2f} ({r['lower']:.2f}–{r['upper']:.2f})", transform=ax.get_yaxis_transform(),
                va="center", fontsize=8)
    ax.axvline(1.0, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    _hr_axis(ax.xaxis, min(r["lower"] for r in rows), max(r["upper"] for r in rows))
    ax.set_yticks(y, [r["label"] for r in rows], fontsize=8)
    ax.set_xlabel("hazard ratio (log scale)")
    ax.set_title(title, fontsize=10, pad=22)
    handles = [plt.Line2D([], [], color=colours[k], marker=markers[k], ls="-", label=lab)
               for k, lab in (("bayes", f"Bayesian posterior median, {_pct(level)} CrI"),
                              ("cox", f"Cox / published, {_pct(level)} CI"))
               if any(r.get("kind", "bayes") in (k, "shrunk" if k == "bayes" else "unshrunk") for r in rows)]
    if handles:
        ax.legend(handles=handles, fontsize=7, loc="lower left", bbox_to_anchor=(0, 1.02), ncol=2, frameon=False)
    _stamp(ax, label)
    fig.tight_layout()
    return fig


def hr_posterior_plot(log_hr: np.ndarray, ax=None, threshold: float = 1.0, title="Posterior of the hazard ratio", label=None):
    """Density of the HR with the region HR < threshold shaded and its probability printed."""
    fig, ax = _ax(ax)
    hr = np.exp(np.asarray(log_hr))
    lo, hi = np.quantile(hr, [0.001, 0.999])
    grid = np.linspace(lo, hi, 400)
    kde = stats.gaussian_kde(np.log(hr))
    dens = kde(np.log(grid)) / grid
    ax.plot(grid, dens, color=BLUE)
    m = grid < threshold
    ax.fill_between(grid[m], dens[m], color=BLUE, alpha=0.3)
    p = float((hr < threshold).mean())
    ax.axvline(threshold, color=GREY, ls="--", lw=1)
    ax.text(0.02, 0.95, f"P(HR < {threshold:g}) = {p:.3f}", transform=ax.transAxes, va="top")
    ax.set_xlabel("hazard ratio")
    ax.set_ylabel("posterior density")
    ax.set_title(title, fontsize=10)
    _stamp(ax, label)
    fig.tight_layout()
    return fig


def hr_curve_plot(curve: pd.DataFrame, ax=None, biomarker="biomarker", cox: pd.DataFrame | None = None,
                  values: np.ndarray | None = None, cutoffs=(), title=None, label=None, log_x=False,
                  cox_label: str = "Cox estimate", unit: str = "", level: float = 0.95):
    """HR(x) with its credible band; optional Cox curve, patient rug and subgroup cut-offs."""
    fig, ax = _ax(ax)
    x = curve["biomarker"]
    ax.fill_between(x, curve["hr_lower"], curve["hr_upper"], color=BLUE, alpha=0.2, label=f"{_pct(level)} credible band")
    ax.plot(x, curve["hr_median"], color=BLUE, label="posterior median")
    if cox is not None:
        ax.plot(cox["biomarker"], cox["hr"], color=ORANGE, ls="--", label=cox_label)
    if values is not None:
        ax.plot(values, np.zeros(len(values)), "|", color=GREY, alpha=0.5, transform=ax.get_xaxis_transform(), ms=8)
    for c in cutoffs:
        ax.axvline(c, color=GREY, ls=":", lw=1)
    ax.axhline(1.0, color=GREY, ls="--", lw=1)
    ax.set_yscale("log")
    _hr_axis(ax.yaxis, float(curve["hr_lower"].min()), float(curve["hr_upper"].max()))
    if log_x:
        ax.set_xscale("log")
    ax.set_xlabel(f"{biomarker} ({unit})" if unit else biomarker)
    ax.set_ylabel("HR, treatment vs control (log scale)")
    ax.set_title(title or f"Treatment hazard ratio by {biomarker}", fontsize=10)
    ax.legend(fontsize=8)
    _stamp(ax, label)
    fig.tight_layout()
    return fig


def survival_plot(curves: pd.DataFrame, km: pd.DataFrame | None = None, ax=None, arm_labels=("control", "treatment"),
                  landmark: float | None = None, title="Standardised survival (posterior) with Kaplan–Meier", label=None,
                  time_unit: str | None = None, level: float = 0.95):
    fig, ax = _ax(ax)
    for arm, col in ((0, GREY), (1, BLUE)):
        c = curves[curves["arm"] == arm]
        ax.fill_between(c["time"], c["lower"], c["upper"], color=col, alpha=0.15)
        ax.plot(c["time"], c["median"], color=col, label=f"{arm_labels[arm]}: posterior ({_pct(level)} band)")
        if km is not None:
            k = km[km["arm"] == arm]
            ax.step(k["time"], k["survival"], where="post", color=col, ls="--", lw=1, label=f"{arm_labels[arm]}: Kaplan–Meier")
    if landmark:
        ax.axvline(landmark, color=GREY, ls=":", lw=1)
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time ({time_unit})" if time_unit else "time")
    ax.set_ylabel("survival probability")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8, loc="lower left")
    _stamp(ax, label)
    fig.tight_layout()
    return fig


def save(fig, path, dpi=110):
    fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)  # release pyplot's reference (figures made with plt.subplots)


def prior_grid_heatmap(grid: np.ndarray, means, sds, ax=None, title="P(HR < 1)", tipping: list[dict] | None = None):
    """P(HR < 1) over prior mean (x, log-HR) × prior SD (y); contours at 0.9 and 0.95; tipping SDs marked."""
    fig, ax = _ax(ax, (5.5, 4.2))
    im = ax.pcolormesh(means, sds, grid, cmap="RdBu", vmin=0, vmax=1, shading="auto")
    cs = ax.contour(means, sds, grid, levels=[0.5, 0.9, 0.95], colors="k", linewidths=0.8)
    ax.clabel(cs, fontsize=7)
    for t in tipping or []:
        if t.get("sd") is not None and sds[0] <= t["sd"] <= sds[-1]:
            ax.plot(0, t["sd"], "o", color="gold", mec="k", ms=6)
    ax.axvline(0, color=GREY, lw=0.6)
    ax.set_xlabel("prior mean (log-HR)")
    ax.set_ylabel("prior SD")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="P(HR < 1)")
    return fig


def prior_grid_panels(grids: dict, means, sds, tipping: dict):
    n = len(grids)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    for ax, (name, g) in zip(axes[0], grids.items()):
        prior_grid_heatmap(g, means, sds, ax=ax, title=f"{name}: P(HR < 1)", tipping=tipping.get(name))
    fig.tight_layout()
    return fig


def assurance_plot(section: dict, ax=None):
    """Assurance (probability of a significant next trial) against the number of events, per design."""
    fig, ax = _ax(ax)
    for (label, d), col in zip(section["designs"].items(), (BLUE, ORANGE, GREY)):
        ev = [r["events"] for r in d["by_events"]]
        ax.plot(ev, [r["assurance"] for r in d["by_events"]], "o-", color=col, label=f"{label}: assurance")
        ax.plot(ev, [r["power_at_posterior_mean"] for r in d["by_events"]], ":", color=col, label=f"{label}: power at posterior mean")
    for lv in (0.8, 0.9):
        ax.axhline(lv, color=GREY, lw=0.6, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel("events in the next trial")
    ax.set_ylabel("probability of success")
    ax.set_title(f"Probability of success (one-sided α = {section['alpha_one_sided']})", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
