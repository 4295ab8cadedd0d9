"""Figures of a next-phase simulation: assurance against the number of events and against the
enrichment cut-off, and operating-characteristic curves; each ±2 Monte Carlo SE, one panel per
design prior or population."""

from __future__ import annotations

import textwrap

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd

from .style import stamp

COLOURS = ["#1f5fa8", "#d9731a", "#2a9d55", "#a23b72", "#555555", "#8c6d1f"]


def _axes(axes, n, size=(4.6, 3.8)):
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False, sharey=True)
        return fig, list(axes[0])
    axes = list(np.atleast_1d(axes))
    return axes[0].figure, axes


def _curve(ax, x, y, se, i: int, label: str, ls: str = "-") -> None:
    """One curve with its ±2 Monte Carlo SE bars, in the i-th colour."""
    ax.errorbar(x, y, yerr=2 * se, marker="o", ms=3, ls=ls, capsize=2,
                color=COLOURS[i % len(COLOURS)], label=label)  # fmt: skip


def assurance_vs_events(
    df: pd.DataFrame,
    descriptions: dict[str, str],
    axes=None,
    label: str | None = None,
    analysis: str = "",
):
    """Assurance against the number of events; one panel per design prior, a line per population.
    ``analysis``: the method of each simulated trial's analysis (in the figure title)."""
    priors = list(dict.fromkeys(df["design_prior"]))
    fig, axes = _axes(axes, len(priors))
    for ax, pr in zip(axes, priors):
        sub = df[df["design_prior"] == pr]
        for i, (pop, g) in enumerate(sub.groupby("population", sort=False)):
            g = g.sort_values("events")
            _curve(ax, g["events"], g["assurance"], g["mc_se"], i, pop)
        ax.set_title(f"design prior: {pr}\n{_wrap(descriptions.get(pr, ''))}", fontsize=8)
        ax.set_xlabel("events at the analysis")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("assurance (P(success))")
    axes[0].legend(fontsize=8, loc="lower right")
    stamp(axes[-1], label)
    _suptitle(fig, analysis)
    return fig


def _suptitle(fig, analysis: str) -> None:
    if analysis:
        text = f"analysis of each simulated trial: {analysis}"
        if len(text) > fig.get_figwidth() * 12:  # about what fits on a line at 9 pt
            text = f"analysis of each simulated trial:\n{analysis}"
        fig.suptitle(text, fontsize=9)
    fig.tight_layout()


def _kind(rows: pd.DataFrame, kind: str) -> pd.Series:
    """Rows of enriched populations of ``kind`` (below / above)."""
    if "population_kind" in rows and (rows["population_kind"] != "").all():
        return rows["population_kind"] == kind
    return rows["population"].str.startswith(kind)  # results written before population_kind


def assurance_vs_cutoff(
    df: pd.DataFrame,
    descriptions: dict[str, str],
    axes=None,
    label: str | None = None,
    analysis: str = "",
    biomarker: str = "biomarker",
):
    """Assurance against the enrichment cut-off (enriched designs), a line per number of events;
    all comers as dashed horizontal lines of the same colour. ``biomarker``: the x-axis label
    (name and unit)."""
    priors = list(dict.fromkeys(df["design_prior"]))
    fig, axes = _axes(axes, len(priors))
    for ax, pr in zip(axes, priors):
        sub = df[df["design_prior"] == pr]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            col = COLOURS[i % len(COLOURS)]
            enr = g[g["cutoff"].notna()].sort_values("cutoff")
            for kind, ls in (("below", "-"), ("above", ":")):
                e = enr[_kind(enr, kind)]
                if len(e):
                    _curve(ax, e["cutoff"], e["assurance"], e["mc_se"], i, f"D = {ev} ({kind})", ls)
            allc = g[g["cutoff"].isna()]
            if len(allc):
                ax.axhline(float(allc["assurance"].iloc[0]), color=col, ls="--", lw=0.9)
        ax.set_title(
            f"design prior: {pr} (dashed: all comers)\n{_wrap(descriptions.get(pr, ''))}",
            fontsize=8,
        )
        ax.set_xlabel(f"enrichment cut-off ({biomarker})")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("assurance (P(success))")
    axes[0].legend(fontsize=7, loc="lower right")
    stamp(axes[-1], label)
    _suptitle(fig, analysis)
    return fig


def oc_curves(
    oc: pd.DataFrame,
    alpha: float | None,
    design_hr: float,
    axes=None,
    label: str | None = None,
    analysis: str = "",
):
    """P(success | true HR) per population (panels), a line per number of events. ``alpha``: the
    one-sided level of a frequentist analysis, drawn as a dotted line (None for the Bayesian
    rule, which has no nominal level: nothing is marked)."""
    pops = list(dict.fromkeys(oc["population"]))
    fig, axes = _axes(axes, len(pops))
    for ax, pop in zip(axes, pops):
        sub = oc[oc["population"] == pop]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            g = g.sort_values("true_hr")
            _curve(ax, g["true_hr"], g["p_success"], g["mc_se"], i, f"D = {ev}")
        dotted = "HR 1"
        if alpha is not None:
            ax.axhline(alpha, color="k", lw=0.8, ls=":")
            dotted += f" and α = {alpha:g}"
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.axvline(design_hr, color="#a00000", lw=0.8, ls="--")
        ax.set_title(f"{pop}\n(dotted: {dotted}; dashed: design HR {design_hr:g})", fontsize=8)
        ax.set_xlabel("true conditional HR (every patient)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(success | true HR)")
    axes[0].legend(fontsize=8)
    stamp(axes[-1], label)
    _suptitle(fig, analysis)
    return fig


def _wrap(s: str, width: int = 60) -> str:
    return "\n".join(textwrap.wrap(s, width))
