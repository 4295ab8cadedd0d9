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


#: P(D reached) below this is drawn with a hollow marker (analysed at the cut with fewer deaths)
REACHED = 0.9
REACHED_NOTE = "hollow: P(D reached) < 0.9,\nthose trials analysed at the cut with fewer deaths"


def _curve(ax, x, y, se, i: int, label: str, ls: str = "-", reached=None) -> None:
    """One curve with its ±2 Monte Carlo SE bars, in the i-th colour; points whose P(D reached)
    is below 0.9 are hollow."""
    col = COLOURS[i % len(COLOURS)]
    ax.errorbar(x, y, yerr=2 * se, marker="o", ms=3, ls=ls, capsize=2,
                color=col, label=label)  # fmt: skip
    if reached is not None:
        low = np.asarray(reached, float) < REACHED
        if low.any():
            ax.plot(np.asarray(x)[low], np.asarray(y)[low], "o", ms=6, mfc="white", mec=col,
                    zorder=5)  # fmt: skip


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
        groups = ["population"] + (["analysis_prior"] if _borrows(sub) else [])
        for i, (key, g) in enumerate(sub.groupby(groups, sort=False)):
            g = g.sort_values("events")
            name = " / ".join(k for k in np.atleast_1d(key) if k)
            _curve(ax, g["events"], g["assurance"], g["mc_se"], i, name,
                   "--" if "no borrowing" in name else "-", g["p_events_reached"])  # fmt: skip
        note = f"\n({REACHED_NOTE})" if (sub["p_events_reached"] < REACHED).any() else ""
        ax.set_title(f"design prior: {pr}\n{_wrap(descriptions.get(pr, ''))}{note}", fontsize=8)
        ax.set_xlabel("events at the analysis")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("assurance (P(success))")
    axes[0].legend(fontsize=8, loc="lower right")
    stamp(axes[-1], label)
    _suptitle(fig, analysis)
    return fig


def _borrows(df: pd.DataFrame) -> bool:
    return "analysis_prior" in df and (df["analysis_prior"].fillna("") != "").any()


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
    """Assurance at each enrichment cut-off (enriched designs; the x axis shows exactly the
    cut-offs simulated, equally spaced, "all comers" first), a line per number of events.
    ``biomarker``: the x-axis label (name and unit)."""
    priors = list(dict.fromkeys(df["design_prior"]))
    fig, axes = _axes(axes, len(priors))
    df = df[df["analysis_prior"].fillna("") != "no borrowing"] if _borrows(df) else df
    cuts = sorted({(k, c) for k, c in zip(df.get("population_kind", ""), df["cutoff"])
                   if pd.notna(c)}, key=lambda x: (x[0], x[1]))  # fmt: skip
    ticks = ["all comers"] + [f"{k} {c:g}" for k, c in cuts]
    pos = {t: i for i, t in enumerate(ticks)}
    for ax, pr in zip(axes, priors):
        sub = df[df["design_prior"] == pr]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            keys = [
                "all comers" if pd.isna(c) else f"{k} {c:g}"
                for k, c in zip(g.get("population_kind", [""] * len(g)), g["cutoff"])
            ]
            x = np.array([pos[k] for k in keys])
            order = np.argsort(x)
            _curve(ax, x[order], g["assurance"].to_numpy()[order], g["mc_se"].to_numpy()[order],
                   i, f"D = {ev}", reached=g["p_events_reached"].to_numpy()[order])  # fmt: skip
        ax.set_xticks(range(len(ticks)), ticks, rotation=30, ha="right", fontsize=8)
        note = f"\n({REACHED_NOTE})" if (sub["p_events_reached"] < REACHED).any() else ""
        ax.set_title(f"design prior: {pr}\n{_wrap(descriptions.get(pr, ''))}{note}", fontsize=8)
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
    groups = ["events"] + (["analysis_prior"] if _borrows(oc) else [])
    reached = oc["p_events_reached"] if "p_events_reached" in oc else None
    for ax, pop in zip(axes, pops):
        sub = oc[oc["population"] == pop]
        for i, (key, g) in enumerate(sub.groupby(groups)):
            g = g.sort_values("true_hr")
            key = np.atleast_1d(key)
            name = f"D = {key[0]}" + (f" ({key[1]})" if len(key) > 1 and key[1] else "")
            _curve(ax, g["true_hr"], g["p_success"], g["mc_se"], i, name,
                   "--" if "no borrowing" in name else "-",
                   None if reached is None else g["p_events_reached"])  # fmt: skip
        dotted = "HR 1"
        if alpha is not None:
            ax.axhline(alpha, color="k", lw=0.8, ls=":")
            dotted += f" and α = {alpha:g}"
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.axvline(design_hr, color="#a00000", lw=0.8, ls="--")
        low = reached is not None and (sub["p_events_reached"] < REACHED).any()
        note = f"\n({REACHED_NOTE})" if low else ""
        ax.set_title(f"{pop}\n(dotted: {dotted}; dashed: design HR {design_hr:g}){note}",
                     fontsize=8)  # fmt: skip
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


def oc_with_looks(
    looks: pd.DataFrame, alpha: float | None, design_hr: float, axes=None, label=None,
    analysis: str = "",
):  # fmt: skip
    """The OC curve with looks: per population (panels) and target deaths D, P(stop for
    efficacy by look k) against the true HR (solid: cumulative to each look, the last one is
    the power curve) and P(stop for futility at an interim look) (dotted)."""
    lk = looks[looks["true_hr"].notna()]
    borrowing = "analysis_prior" in lk and (lk["analysis_prior"] != "").any()
    if borrowing:
        lk = lk[lk["analysis_prior"] == "borrowing"]
    pops = list(dict.fromkeys(lk["population"]))
    fig, axes = _axes(axes, len(pops))
    for ax, pop in zip(axes, pops):
        sub = lk[lk["population"] == pop]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            col = COLOURS[i % len(COLOURS)]
            w = g.pivot_table(index="true_hr", columns="look", values="p_efficacy").sort_index()
            f = g.pivot_table(index="true_hr", columns="look", values="p_futility").sort_index()
            cum = w.cumsum(axis=1)
            for k in cum.columns:
                last = k == cum.columns[-1]
                name = f"D = {ev}: efficacy by look {k}" if last or k == 1 else None
                ax.plot(cum.index, cum[k], marker="o", ms=3, color=col,
                        lw=1.6 if last else 0.9, alpha=1 if last else 0.6, label=name)  # fmt: skip
            interim = [k for k in f.columns if k != f.columns[-1]]
            if interim and f[interim].to_numpy().sum() > 0:
                ax.plot(f.index, f[interim].sum(axis=1), ls=":", marker="x", ms=3, color=col,
                        label=f"D = {ev}: futility stop")  # fmt: skip
        if alpha is not None:
            ax.axhline(alpha, color="k", lw=0.8, ls=":")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.axvline(design_hr, color="#a00000", lw=0.8, ls="--")
        ax.set_title(f"{pop}{' (with borrowing)' if borrowing else ''}\n(thin: efficacy by an "
                     "interim look; thick: power over all looks)", fontsize=8)  # fmt: skip
        ax.set_xlabel("true conditional HR (every patient)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(stop by look)")
    axes[0].legend(fontsize=7)
    stamp(axes[-1], label)
    _suptitle(fig, analysis)
    return fig


def enrichment_comparison(rows: pd.DataFrame, time_unit: str, axes=None, label=None, title=""):
    """Fixed all comers, fixed enriched and adaptive enrichment side by side, per design prior
    and target deaths: assurance (±2 MC SE, false go as a cross), expected numbers screened and
    randomised, and duration (rows at a fixed true HR — ``true_hr`` set — are left to the
    tables)."""
    if "true_hr" in rows:
        rows = rows[rows["true_hr"].isna()]
    if axes is None:
        n = len(set(zip(rows["design_prior"], rows["events"])))
        fig, axes = plt.subplots(1, 3, figsize=(max(12, 1.6 * n * 3), 4.2))
    fig = np.atleast_1d(axes)[0].figure
    ax_a, ax_n, ax_t = axes
    keys = list(dict.fromkeys(zip(rows["design_prior"], rows["events"])))
    designs = list(dict.fromkeys(rows["design"]))
    width = 0.8 / len(designs)
    for j, des in enumerate(designs):
        sub = rows[rows["design"] == des].set_index(["design_prior", "events"]).reindex(keys)
        x = np.arange(len(keys)) + (j - (len(designs) - 1) / 2) * width
        col = COLOURS[j % len(COLOURS)]
        ax_a.bar(x, sub["assurance"], width, yerr=2 * sub["mc_se"], color=col, label=des,
                 capsize=2, alpha=0.85)  # fmt: skip
        ax_a.plot(x, sub["false_go"], "x", color="k", ms=5,
                  label="false go" if j == 0 else None)  # fmt: skip
        ax_n.bar(x, sub["expected_screened"], width, color=col, alpha=0.35)
        ax_n.bar(x, sub["expected_randomised"], width, color=col, label=des)
        ax_t.bar(x, sub["expected_duration"], width, color=col, label=des)
    names = [f"{p}\nD = {e}" for p, e in keys]
    for ax in axes:
        ax.set_xticks(range(len(keys)), names, fontsize=8)
        ax.grid(alpha=0.3, axis="y")
    ax_a.set_ylim(0, 1)
    ax_a.set_ylabel("assurance / P(success)")
    ax_a.legend(fontsize=7)
    ax_n.set_ylabel("patients (solid: randomised; light: screened)")
    ax_t.set_ylabel(f"duration ({time_unit}, mean)")
    stamp(ax_t, label)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    return fig
