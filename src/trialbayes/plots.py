"""Figures. Every function takes ``ax=`` (a new figure if None) and returns the Figure; none
changes the matplotlib backend (``save`` writes PNGs with any backend). The journal figures (KM with
numbers at risk, HR along a biomarker, prior vs posterior) are in ``figures.py``."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

BLUE, ORANGE, GREY = "#1f5fa8", "#d9731a", "#555555"
#: one colour per arm in every figure: 0 = control, 1 = treatment
ARM_COLOURS = {0: ORANGE, 1: BLUE}
#: frequentist / published estimates (Cox, published CIs) beside the Bayesian posteriors
FREQ = "#222222"


def pct(level: float) -> str:
    """0.95 -> "95%", 0.9 -> "90%"."""
    return f"{100 * level:g}%"


def _ax(ax, size=(7, 4.5)):
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    return ax.figure, ax


def hr_ticks(lo: float, hi: float) -> list[float]:
    """Round HR ticks for a log axis covering [lo, hi] (one tick at or beyond each end), spaced so
    that their labels cannot collide."""
    lo, hi = max(lo, 1e-6), max(hi, lo * 1.01)
    fine = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20)
    coarse = (0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000, 10000)
    decades = np.log10(hi / lo)
    if decades > 3.5:
        cands = (0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000)
    else:
        cands = fine if decades <= 1.4 and 0.05 <= lo and hi <= 20 else coarse
    below = [t for t in cands if t <= lo * 1.03]
    above = [t for t in cands if t >= hi * 0.97]
    first = below[-1] if below else cands[0]
    last = above[0] if above else cands[-1]
    return [t for t in cands if first <= t <= last]


def _hr_axis(axis, lo: float, hi: float):
    """Readable ticks on a log HR axis (0.1, 0.2, 0.5, 1, 2, ...) instead of powers of ten; the
    axis spans from the first to the last tick."""
    from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

    ticks = hr_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
    lim = (min(ticks[0], lo) / 1.08, max(ticks[-1], hi) * 1.08)
    (axis.axes.set_xlim if axis.axis_name == "x" else axis.axes.set_ylim)(*lim)


def stamp_figure(fig, label: str | None):
    """The data label (e.g. SYNTHETIC DATA) in the bottom-right margin, outside the axes."""
    if label:
        fig.text(0.995, 0.004, label, ha="right", va="bottom", fontsize=7, color="#a00000")


def _stamp(ax, label: str | None):
    stamp_figure(ax.figure, label)


KIND_STYLE = {
    "bayes": (BLUE, "o"),
    "shrunk": (BLUE, "o"),
    "cox": (FREQ, "s"),
    "unshrunk": (FREQ, "s"),
}


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
    """rows: dicts with label, hr, lower, upper; optional kind ('bayes' / 'cox' / 'unshrunk' /
    'shrunk'), p (P(HR < 1), printed in its own column) and group (rows are grouped under a
    bold header, in the order given). The legend sits under the axis, never over the title."""
    placed, headers = _forest_layout(rows)
    n_lines = len(placed) + len(headers)
    fig, ax = _ax(ax, (8.2, 0.36 * n_lines + 1.9))
    for yi, r in placed:
        col, mk = KIND_STYLE.get(r.get("kind", "bayes"), (GREY, "o"))
        ax.plot([r["lower"], r["upper"]], [yi, yi], color=col, lw=2)
        ax.plot(r["hr"], yi, mk, color=col, ms=6)
        hr_text = f"{r['hr']:.2f} ({r['lower']:.2f}–{r['upper']:.2f})"
        _column(ax, yi, hr_text, HR_COL_PT)
        if r.get("p") is not None:
            _column(ax, yi, f"{r['p']:.3f}", P_COL_PT)
    top = max([y for y, _ in placed] + [y for y, _ in headers]) + 0.8
    _column(ax, top, f"HR ({pct(level)} interval)", HR_COL_PT, weight="bold", va="bottom")
    if any(r.get("p") is not None for _, r in placed):
        _column(ax, top, p_label, P_COL_PT, weight="bold", va="bottom")
    ax.axvline(1.0, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    _hr_axis(ax.xaxis, min(r["lower"] for r in rows), max(r["upper"] for r in rows))
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
    kinds = {r.get("kind", "bayes") for _, r in placed}
    handles = []
    if kinds & {"bayes", "shrunk"}:
        handles.append(
            plt.Line2D(
                [], [], color=BLUE, marker="o", label=f"Bayesian posterior median, {pct(level)} CrI"
            )
        )
    if kinds & {"cox", "unshrunk"}:
        handles.append(
            plt.Line2D(
                [], [], color=FREQ, marker="s", label=f"Cox / published estimate, {pct(level)} CI"
            )
        )
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
    _stamp(ax, label)
    return fig


def hr_posterior_plot(
    log_hr: np.ndarray,
    ax=None,
    threshold: float = 1.0,
    title="Posterior of the hazard ratio",
    label=None,
):
    """Density of the log-HR on a log HR axis; HR < threshold shaded and its probability printed."""
    fig, ax = _ax(ax)
    lh = np.asarray(log_hr, float)
    lo, hi = np.quantile(lh, [0.001, 0.999])
    grid = np.linspace(lo, hi, 400)
    dens = stats.gaussian_kde(lh)(grid)
    hr = np.exp(grid)
    ax.plot(hr, dens, color=BLUE)
    m = hr < threshold
    ax.fill_between(hr[m], dens[m], color=BLUE, alpha=0.3, lw=0)
    p = float((lh < np.log(threshold)).mean())
    ax.axvline(threshold, color=GREY, ls="--", lw=1)
    ax.set_xscale("log")
    _hr_axis(ax.xaxis, float(hr[0]), float(hr[-1]))
    ax.set_xlabel("hazard ratio (log scale)")
    ax.set_ylabel("posterior density of the log-HR")
    ax.set_title(f"{title}\nP(HR < {threshold:g}) = {p:.3f} (shaded)", fontsize=10)
    fig.tight_layout()
    _stamp(ax, label)
    return fig


def hr_curve_plot(
    curve: pd.DataFrame,
    ax=None,
    biomarker="biomarker",
    cox: pd.DataFrame | None = None,
    values: np.ndarray | None = None,
    cutoffs=(),
    title=None,
    label=None,
    log_x=False,
    cox_label: str = "Cox estimate",
    unit: str = "",
    level: float = 0.95,
):
    """HR(x) with its credible band; optional Cox curve, patient rug and subgroup cut-offs."""
    fig, ax = _ax(ax)
    x = curve["biomarker"]
    ax.fill_between(
        x,
        curve["hr_lower"],
        curve["hr_upper"],
        color=BLUE,
        alpha=0.2,
        label=f"{pct(level)} credible band",
    )
    ax.plot(x, curve["hr_median"], color=BLUE, label="posterior median")
    if cox is not None:
        ax.plot(cox["biomarker"], cox["hr"], color=FREQ, ls="--", label=cox_label)
    if values is not None:
        ax.plot(
            values,
            np.zeros(len(values)),
            "|",
            color=GREY,
            alpha=0.5,
            transform=ax.get_xaxis_transform(),
            ms=8,
        )
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


def save(fig, path, dpi=110):
    """Write a PNG. Every text is drawn as plain text: a ``$`` in a user's column name, unit or
    label is never parsed as mathtext (which can fail, after all the sampling, or restyle it)."""
    from matplotlib.text import Text

    for t in fig.findobj(Text):
        t.set_parse_math(False)
    with plt.rc_context({"text.parse_math": False}):  # texts made while drawing (tick labels)
        fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)


def prior_grid_heatmap(
    grid: np.ndarray, means, sds, ax=None, title="P(HR < 1)", tipping: list[dict] | None = None
):
    """P(HR < 1) over prior mean (x, log-HR) × prior SD (y); contours at 0.5, 0.9 and 0.95;
    tipping SDs marked."""
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
        prior_grid_heatmap(
            g, means, sds, ax=ax, title=f"{name}: P(HR < 1)", tipping=tipping.get(name)
        )
    fig.tight_layout()
    return fig


def assurance_plot(section: dict, ax=None):
    """Assurance (probability of a significant next trial) against its events, per design."""
    fig, ax = _ax(ax)
    for (label, d), col in zip(section["designs"].items(), (BLUE, ORANGE, GREY)):
        ev = [r["events"] for r in d["by_events"]]
        ax.plot(
            ev,
            [r["assurance"] for r in d["by_events"]],
            "o-",
            color=col,
            label=f"{label}: assurance",
        )
        ax.plot(
            ev,
            [r["power_at_posterior_mean"] for r in d["by_events"]],
            ":",
            color=col,
            label=f"{label}: power at posterior mean",
        )
    for lv in (0.8, 0.9):
        ax.axhline(lv, color=GREY, lw=0.6, ls="--")
    ax.set_ylim(0, 1)
    ax.set_xlabel("events in the next trial")
    ax.set_ylabel("probability of success")
    ax.set_title(
        f"Probability of success (one-sided α = {section['alpha_one_sided']})", fontsize=10
    )
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig
