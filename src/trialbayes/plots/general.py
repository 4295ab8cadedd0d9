"""Figures. Every function takes ``ax=`` (a new figure if None) and returns the Figure; none changes
the matplotlib backend (``style.save`` writes PNGs with any backend). The journal figures (KM with
numbers at risk, HR along a biomarker, prior vs posterior) are in ``journal.py``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from scipy import stats

from ..core.text import eq_text, level_text, prob
from ..results.published import Assurance
from ..results.summaries import HRSummary
from .style import BLUE, FREQ, GREY, ORANGE, hr_axis, new_axes, stamp

#: marker of a forest row by the method of its HR: a posterior, or a frequentist / published
#: estimate with its confidence interval
KIND_STYLE = {"posterior": (BLUE, "o"), "cox": (FREQ, "s"), "published": (FREQ, "s")}
LEGEND = {
    "posterior": "Bayesian posterior median, {level} CrI",
    "cox": "Cox estimate, {level} CI",
    "published": "published estimate, {level} CI",
}


def forest_row(group: str | None, label: str, hr: HRSummary) -> dict:
    """The one way a forest row is made: an HR summary under a group header; a posterior also
    fills the P(HR < 1) column (formatted from its draws: never a certainty)."""
    kind = hr.method if hr.frequentist else "posterior"
    row = {"group": group, "label": label, "hr": hr.median, "lower": hr.lower,
           "upper": hr.upper, "kind": kind}  # fmt: skip
    if kind == "posterior" and "1" in hr.p_hr_below:
        row["p_benefit"], row["n_draws"] = hr.p_benefit, hr.n_draws
    return row


#: the forest's text columns, in points right of the axes (independent of the axes' width)
HR_COL_PT, P_COL_PT = 8, 108


def _column(ax, y, text, offset_pt, weight="normal", va="center"):
    ax.annotate(
        text,
        xy=(1, y),
        xycoords=ax.get_yaxis_transform(),
        xytext=(offset_pt, 0),
        textcoords="offset points",
        va=va,
        ha="left",
        fontsize=8,
        weight=weight,
    )


def _forest_layout(rows: list[dict]) -> tuple[list[tuple[float, dict]], list[tuple[float, str]]]:
    """y positions (top to bottom) of data rows and of group headers (rows' optional ``group``)."""
    placed, headers, y, last = [], [], 0.0, object()
    for r in rows:
        g = r.get("group")
        if g is not None and g != last:
            if placed or headers:
                y -= 0.5
            headers.append((y, str(g)))
            y -= 1
        last = g
        placed.append((y, r))
        y -= 1
    return placed, headers


def forest_plot(
    rows: list[dict],
    ax=None,
    title="Hazard ratios (HR < 1 favours treatment)",
    label=None,
    p_label: str = "P(HR < 1)",
    level: float = 0.95,
):
    """rows: from :func:`forest_row` (label, hr, lower, upper, kind — posterior, cox or published —,
    for a posterior p_benefit = P(HR < 1) printed in its own column, and group: rows are grouped
    under a bold header, in the order given). The legend sits under the axis, never over the
    title."""
    placed, headers = _forest_layout(rows)
    n_lines = len(placed) + len(headers)
    fig, ax = new_axes(ax, (8.2, 0.36 * n_lines + 1.9))
    for yi, r in placed:
        col, mk = KIND_STYLE.get(r.get("kind", "posterior"), (GREY, "o"))
        ax.plot([r["lower"], r["upper"]], [yi, yi], color=col, lw=2)
        ax.plot(r["hr"], yi, mk, color=col, ms=6)
        hr_text = f"{r['hr']:.2f} ({r['lower']:.2f}–{r['upper']:.2f})"
        _column(ax, yi, hr_text, HR_COL_PT)
        if r.get("p_benefit") is not None:
            _column(ax, yi, prob(r["p_benefit"], r.get("n_draws")), P_COL_PT)
    top = max([y for y, _ in placed] + [y for y, _ in headers]) + 0.8
    _column(ax, top, f"HR ({level_text(level)} interval)", HR_COL_PT, weight="bold", va="bottom")
    if any(r.get("p_benefit") is not None for _, r in placed):
        _column(ax, top, p_label, P_COL_PT, weight="bold", va="bottom")
    ax.axvline(1.0, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    hr_axis(ax.xaxis, min(r["lower"] for r in rows), max(r["upper"] for r in rows))
    ax.set_yticks(
        [y for y, _ in placed] + [y for y, _ in headers],
        [r["label"] for _, r in placed] + [h for _, h in headers],
        fontsize=8,
    )
    for t in ax.get_yticklabels()[len(placed) :]:
        t.set_fontweight("bold")
    ax.set_ylim(min(y for y, _ in placed) - 0.7, top + 0.9)
    ax.set_xlabel("hazard ratio (log scale); HR < 1 favours treatment")
    ax.set_title(title, fontsize=10)
    kinds = {r.get("kind", "posterior") for _, r in placed}
    handles = [
        plt.Line2D(
            [],
            [],
            color=KIND_STYLE[k][0],
            marker=KIND_STYLE[k][1],
            label=LEGEND[k].format(level=level_text(level)),
        )  # fmt: skip
        for k in LEGEND
        if k in kinds
    ]
    fig.tight_layout(rect=(0, 0.45 / fig.get_figheight(), 1, 1))
    if handles:
        fig.legend(
            handles=handles,
            fontsize=7.5,
            loc="lower left",
            ncol=2,
            frameon=False,
            bbox_to_anchor=(0.01, 0.0),
        )
    stamp(ax, label)
    return fig


def hr_posterior_plot(
    log_hr: np.ndarray,
    ax=None,
    threshold: float = 1.0,
    title="Posterior of the hazard ratio",
    label=None,
):
    """Density of the log-HR on a log HR axis; HR < threshold shaded and its probability printed."""
    fig, ax = new_axes(ax)
    lh = np.asarray(log_hr, float)
    lo, hi = np.quantile(lh, [0.001, 0.999])
    grid = np.linspace(lo, hi, 400)
    dens = stats.gaussian_kde(lh)(grid)
    hr = np.exp(grid)
    ax.plot(hr, dens, color=BLUE)
    m = hr < threshold
    ax.fill_between(hr[m], dens[m], color=BLUE, alpha=0.3, lw=0)
    p = prob(float((lh < np.log(threshold)).mean()), lh.size)
    ax.axvline(threshold, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    hr_axis(ax.xaxis, float(hr[0]), float(hr[-1]))
    ax.set_xlabel("hazard ratio (log scale)")
    ax.set_ylabel("posterior density of the log-HR")
    ax.set_title(f"{title}\nP(HR < {threshold:g}) {eq_text(p)} (shaded)", fontsize=10)
    fig.tight_layout()
    stamp(ax, label)
    return fig


def prior_grid_heatmap(
    grid: np.ndarray, means, sds, ax=None, title="P(HR < 1)", tipping: list | None = None
):
    """P(HR < 1) over prior mean (x, log-HR) × prior SD (y); contours at 0.5, 0.9 and 0.95;
    tipping SDs marked."""
    fig, ax = new_axes(ax, (5.5, 4.2))
    im = ax.pcolormesh(means, sds, grid, cmap="RdBu", vmin=0, vmax=1, shading="auto")
    cs = ax.contour(means, sds, grid, levels=[0.5, 0.9, 0.95], colors="k", linewidths=0.8)
    ax.clabel(cs, fontsize=7)
    for t in tipping or []:  # TippingPoint: the SD of a centred prior
        if t.sd is not None and sds[0] <= t.sd <= sds[-1]:
            ax.plot(0, t.sd, "o", color="gold", mec="k", ms=6)
    ax.axvline(0, color=GREY, lw=0.6)
    ax.set_xlabel("prior mean (log-HR)")
    ax.set_ylabel("prior SD")
    ax.set_title(title, fontsize=10)
    fig.colorbar(im, ax=ax, label="P(HR < 1)")
    return fig


def prior_grid_panels(grids: dict, means, sds, tipping: dict):
    """One P(HR < 1) heatmap over prior mean × SD per estimate in ``grids``, side by side, with its
    tipping SDs; returns the figure."""
    n = len(grids)
    fig, axes = plt.subplots(1, n, figsize=(5.2 * n, 4.2), squeeze=False)
    for ax, (name, g) in zip(axes[0], grids.items()):
        prior_grid_heatmap(
            g, means, sds, ax=ax, title=f"{name}: P(HR < 1)", tipping=tipping.get(name)
        )
    fig.tight_layout()
    return fig


def assurance_plot(assurance: Assurance, ax=None):
    """Assurance (probability of a significant next trial) against its events, per design."""
    fig, ax = new_axes(ax)
    for (label, d), col in zip(assurance.designs.items(), (BLUE, ORANGE, GREY)):
        ev = [r.events for r in d.by_events]
        ax.plot(ev, [r.assurance for r in d.by_events], "o-", color=col,
                label=f"{label}: assurance")  # fmt: skip
        ax.plot(ev, [r.power_at_posterior_mean for r in d.by_events], ":", color=col,
                label=f"{label}: power at posterior mean")  # fmt: skip
    for y in (0.8, 0.9):
        ax.axhline(y, color=GREY, lw=0.6, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel("events in the next trial")
    ax.set_ylabel("probability of success")
    ax.set_title(f"Probability of success (one-sided α = {assurance.alpha:g})", fontsize=10)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
