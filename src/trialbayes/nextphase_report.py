"""Figures, tables and the report section of a next-phase simulation (nextphase.py).

Every figure function takes ``ax=`` (or ``axes=``) and returns the Figure; the error bars are
± 2 Monte Carlo standard errors.
"""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from .nextphase import NextPhaseResults  # noqa: E402

COLOURS = ["#1f5fa8", "#d9731a", "#2a9d55", "#a23b72", "#555555", "#8c6d1f"]


def _axes(axes, n, size=(4.6, 3.8)):
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(size[0] * n, size[1]), squeeze=False, sharey=True)
        return fig, list(axes[0])
    axes = list(np.atleast_1d(axes))
    return axes[0].figure, axes


def assurance_vs_events(
    df: pd.DataFrame, descriptions: dict[str, str], axes=None, label: str | None = None
):
    """Assurance against the number of events; one panel per design prior, a line per population."""
    priors = list(dict.fromkeys(df["design_prior"]))
    fig, axes = _axes(axes, len(priors))
    for ax, pr in zip(axes, priors):
        sub = df[df["design_prior"] == pr]
        for i, (pop, g) in enumerate(sub.groupby("population", sort=False)):
            g = g.sort_values("events")
            ax.errorbar(
                g["events"],
                g["assurance"],
                yerr=2 * g["mc_se"],
                marker="o",
                ms=3,
                capsize=2,
                color=COLOURS[i % len(COLOURS)],
                label=pop,
            )
        ax.set_title(f"design prior: {pr}\n{_wrap(descriptions.get(pr, ''))}", fontsize=8)
        ax.set_xlabel("events at the analysis")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("assurance (P(success))")
    axes[0].legend(fontsize=8, loc="lower right")
    _stamp(axes[-1], label)
    fig.tight_layout()
    return fig


def assurance_vs_cutoff(
    df: pd.DataFrame, descriptions: dict[str, str], axes=None, label: str | None = None
):
    """Assurance against the enrichment cut-off (enriched designs), a line per number of events;
    all comers as dashed horizontal lines of the same colour."""
    priors = list(dict.fromkeys(df["design_prior"]))
    fig, axes = _axes(axes, len(priors))
    for ax, pr in zip(axes, priors):
        sub = df[df["design_prior"] == pr]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            col = COLOURS[i % len(COLOURS)]
            enr = g[g["cutoff"].notna()].sort_values("cutoff")
            for kind, ls in (("below", "-"), ("above", ":")):
                e = enr[enr["population"].str.startswith(kind)]
                if len(e):
                    ax.errorbar(
                        e["cutoff"],
                        e["assurance"],
                        yerr=2 * e["mc_se"],
                        marker="o",
                        ms=3,
                        ls=ls,
                        capsize=2,
                        color=col,
                        label=f"D = {ev} ({kind})",
                    )
            allc = g[g["cutoff"].isna()]
            if len(allc):
                ax.axhline(float(allc["assurance"].iloc[0]), color=col, ls="--", lw=0.9)
        ax.set_title(
            f"design prior: {pr} (dashed: all comers)\n{_wrap(descriptions.get(pr, ''))}",
            fontsize=8,
        )
        ax.set_xlabel("enrichment cut-off (biomarker)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("assurance (P(success))")
    axes[0].legend(fontsize=7, loc="lower right")
    _stamp(axes[-1], label)
    fig.tight_layout()
    return fig


def oc_curves(
    oc: pd.DataFrame, alpha: float, design_hr: float, axes=None, label: str | None = None
):
    """P(success | true HR) per population (panels), a line per number of events."""
    pops = list(dict.fromkeys(oc["population"]))
    fig, axes = _axes(axes, len(pops))
    for ax, pop in zip(axes, pops):
        sub = oc[oc["population"] == pop]
        for i, (ev, g) in enumerate(sub.groupby("events")):
            g = g.sort_values("true_hr")
            ax.errorbar(
                g["true_hr"],
                g["p_success"],
                yerr=2 * g["mc_se"],
                marker="o",
                ms=3,
                capsize=2,
                color=COLOURS[i % len(COLOURS)],
                label=f"D = {ev}",
            )
        ax.axhline(alpha, color="k", lw=0.8, ls=":")
        ax.axvline(1.0, color="k", lw=0.8, ls=":")
        ax.axvline(design_hr, color="#a00000", lw=0.8, ls="--")
        ax.set_title(
            f"{pop}\n(dotted: HR 1 and α = {alpha:g}; dashed: design HR {design_hr:g})", fontsize=8
        )
        ax.set_xlabel("true conditional HR (every patient)")
        ax.set_ylim(0, 1)
        ax.grid(alpha=0.3)
    axes[0].set_ylabel("P(success | true HR)")
    axes[0].legend(fontsize=8)
    _stamp(axes[-1], label)
    fig.tight_layout()
    return fig


def _wrap(s: str, width: int = 60) -> str:
    import textwrap

    return "\n".join(textwrap.wrap(s, width))


def _stamp(ax, label):
    if label:
        ax.text(
            0.99,
            0.01,
            label,
            transform=ax.transAxes,
            ha="right",
            va="bottom",
            fontsize=7,
            color="#a00000",
        )


# ----------------------------------------------------------------------------- report
DESIGN_COLUMNS = {
    "design_prior": "design prior",
    "population": "population",
    "events": "events",
    "assurance": "assurance",
    "mc_se": "MC SE",
    "expected_events": "events (mean)",
    "p_events_reached": "P(D reached)",
    "expected_randomised": "randomised",
    "expected_screened": "screened",
    "expected_duration": "duration",
    "false_go": "false go",
    "false_stop": "false stop",
}


def design_md(df: pd.DataFrame) -> str:
    from .render import md_table

    t = df[list(DESIGN_COLUMNS)].rename(columns=DESIGN_COLUMNS)
    for c in ("randomised", "screened", "duration"):
        t[c] = t[c].round().astype(int)
    return md_table(t)


def oc_md(oc: pd.DataFrame, hrs: list[float]) -> str:
    from .render import md_table

    sel = oc[oc["true_hr"].isin(hrs)]
    wide = sel.pivot_table(
        index=["population", "events"], columns="true_hr", values="p_success", sort=False
    )
    wide.columns = [f"HR {c:g}" for c in wide.columns]
    return md_table(wide.reset_index())


def report_section(
    res: NextPhaseResults | dict, figures: dict[str, str], time_unit: str = "time units"
) -> str:
    """Markdown for report.md (from the results or their results.json form): what was simulated,
    the design table, OC, and the next-phase figures among ``figures``."""
    if isinstance(res, dict):
        res = NextPhaseResults.from_dict(res)
    figures = {
        k.removeprefix("next_phase: "): v
        for k, v in figures.items()
        if k.startswith("next_phase: ")
    }
    s = res.settings
    L = [
        "\n## Next-phase trial simulation",
        f"Model `{res.model}`: one state of nature (posterior draw under the design prior) per "
        f"simulated trial; {patients_text(s)}; {s['trials']} trials per "
        f"design ({s['oc_trials']} per OC point). Analysis: {res.analysis}. Accrual over "
        f"{s['accrual']['time']:g} {time_unit}, dropout rate {s['dropout_rate']:g} per "
        f"{time_unit.removesuffix('s')}, "
        f"allocation {s['allocation']:g}, "
        f"{s['patients_per_event']:g} patients randomised per target event; analysis at the target "
        f"event count" + (f" or at {s['calendar_cut']:g}" if s["calendar_cut"] else "") + ".",
        "",
        "Design priors:",
    ]
    L += [f"- `{k}`: {v}" for k, v in res.design_priors.items()]
    L += [
        "",
        f"Decision rule: {res.decision_rule}.",
        "",
        design_md(res.designs_table()),
        "",
        "Operating characteristics P(success | true HR): every patient's conditional HR is set to "
        "the value (the posterior's baseline and prognostic draws kept); the unadjusted analysis "
        "targets the marginal HR, which prognostic heterogeneity pulls towards 1, so power is "
        "below Schoenfeld's at the same HR.",
        "",
        oc_md(res.oc_table(), sorted({1.0, s["design_hr"], 0.8})),
    ]
    L.append(analysis_counts(res))
    if res.failed_cells:
        L.append(f"\n**Failed cells (not in the tables):** {', '.join(res.failed_cells)}")
    for name, path in figures.items():
        L.append(f"\n![{name}]({path})")
    return "\n".join(L) + "\n"


def patients_text(settings: dict) -> str:
    """Where a simulated trial's patients come from (``next_phase.covariates``)."""
    if settings.get("covariates", "resample") == "fitted":
        return (
            "patients drawn from a Gaussian copula fitted to the cohort's covariates and biomarker "
            f"(data marginals and correlations; a synthetic cohort of {settings['fitted_cohort']})"
        )
    return "patients resampled from the fitted cohort"


def analysis_counts(res: NextPhaseResults, md: bool = True) -> str:
    """One sentence: simulated trials whose analysis failed (no success) or diverged."""
    rows = [*res.designs, *res.oc]
    failed = sum(r.analysis_failed for r in rows)
    div = sum(r.analysis_divergent for r in rows)
    total = sum(d.trials for d in res.designs) + len(res.oc) * res.settings["oc_trials"]
    text = f"Analyses without a result (counted as no success): {failed} of {total} simulated trials"
    if res.settings.get("analysis", {}).get("method") == "bayes":
        text += f"; Bayesian fits with divergent transitions (kept): {div}"
    errors = [e for r in rows for e in r.analysis_errors]
    if not errors:
        return text + "."
    from .escape import md_text

    return text + f". First error: {md_text(errors[0]) if md else errors[0]}"


def write_next_phase(
    out, res: NextPhaseResults, dpi: int = 110, figures: bool = True, label: str | None = None
) -> dict[str, str]:
    """Tables and figures into an OutputDir; returns the figure paths by title."""
    from .plots import save

    df, oc = res.designs_table(), res.oc_table()
    out.write_csv("tables/next_phase_designs.csv", df)
    out.write_csv("tables/next_phase_oc.csv", oc)
    figs = {}
    if figures and len(df):
        save(
            assurance_vs_events(df, res.design_priors, label=label),
            out.path("figures/next_phase_events.png"),
            dpi,
        )
        figs["assurance vs events"] = "figures/next_phase_events.png"
        if df["cutoff"].notna().any():
            save(
                assurance_vs_cutoff(df, res.design_priors, label=label),
                out.path("figures/next_phase_cutoff.png"),
                dpi,
            )
            figs["assurance vs cut-off"] = "figures/next_phase_cutoff.png"
    if figures and len(oc):
        save(
            oc_curves(oc, res.settings["alpha"], res.settings["design_hr"], label=label),
            out.path("figures/next_phase_oc.png"),
            dpi,
        )
        figs["operating characteristics"] = "figures/next_phase_oc.png"
    return figs


def html_blocks(d: dict, fig) -> list:
    """Blocks of the report.html section (``html_report`` helpers; ``fig`` numbers the figures)."""
    from .html_report import bullets, p, table

    res = NextPhaseResults.from_dict(d)
    df = res.designs_table()
    out = [
        p(
            f"Model {res.model}: one state of nature per simulated trial; "
            f"{patients_text(res.settings)}. Analysis: {res.analysis}."
        ),
        bullets(f"{k}: {v}" for k, v in res.design_priors.items()),
        p(f"Decision rule: {res.decision_rule}."),
        table(
            list(DESIGN_COLUMNS.values()),
            [[r[c] for c in DESIGN_COLUMNS] for r in df.to_dict(orient="records")],
            "Assurance and expected size of each design",
        ),
    ]
    for key in ("assurance vs events", "assurance vs cut-off", "operating characteristics"):
        out += fig(f"next_phase: {key}", f"Next phase: {key}")
    out.append(p(analysis_counts(res, md=False)))  # the template escapes
    if res.failed_cells:
        out.append(p(f"Failed cells (not in the tables): {', '.join(res.failed_cells)}"))
    return out
