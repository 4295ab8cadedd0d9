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
    _stamp(axes[-1], label)
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
    _stamp(axes[-1], label)
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
    _stamp(axes[-1], label)
    _suptitle(fig, analysis)
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
COUNTS = ("expected_randomised", "expected_screened", "expected_duration")

OC_TEXT = (
    "Operating characteristics P(success | true HR): every patient's conditional HR is set to "
    "the value (the posterior's baseline and prognostic draws kept); the unadjusted analysis "
    "targets the marginal HR, which prognostic heterogeneity pulls towards 1, so power is "
    "below Schoenfeld's at the same HR. Each row: the probability at every HR of the OC grid; "
    "max MC SE: the largest Monte Carlo standard error of the row."
)


def time_unit_of(res: NextPhaseResults, fallback: str = "time units") -> str:
    """The data's time unit (results written before it was stored: ``fallback``)."""
    return res.time_unit if res.time_unit != "time units" else fallback


def duration_column(res: NextPhaseResults, time_unit: str | None = None) -> str:
    return f"duration ({time_unit or time_unit_of(res)}, mean)"


def design_table(res: NextPhaseResults, time_unit: str | None = None) -> pd.DataFrame:
    """The design table as shown (md and HTML): counts and durations rounded to integers."""
    df = res.designs_table()
    if df.empty:  # every assurance cell failed: the columns, no rows
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in DESIGN_COLUMNS})
    t = df[list(DESIGN_COLUMNS)].copy()
    for c in COUNTS:
        t[c] = t[c].round().astype(int)
    names = {**DESIGN_COLUMNS, "expected_duration": duration_column(res, time_unit)}
    return t.rename(columns=names)


def design_md(res: NextPhaseResults, time_unit: str | None = None) -> str:
    from .render import md_table

    return md_table(design_table(res, time_unit)) if res.designs else "(no design finished)"


def failed_text(res: NextPhaseResults) -> str:
    """The failed cells with their errors (a cell is retried once before it counts as failed)."""
    errs = res.failed_errors
    return "; ".join(f"{k} ({errs[k]})" if errs.get(k) else k for k in res.failed_cells)


def oc_wide(oc: pd.DataFrame) -> pd.DataFrame:
    """P(success) at every HR of the OC grid (a column each) and the row's largest MC SE."""
    wide = oc.pivot_table(
        index=["population", "events"], columns="true_hr", values="p_success", sort=False
    )
    wide.columns = [f"HR {c:g}" for c in wide.columns]
    se = oc.groupby(["population", "events"], sort=False)["mc_se"].max()
    wide["max MC SE"] = se.reindex(wide.index)
    return wide.reset_index()


def oc_md(oc: pd.DataFrame) -> str:
    from .render import md_table

    return md_table(oc_wide(oc))


def setup_items(res: NextPhaseResults, time_unit: str | None = None) -> list[str]:
    """What was simulated, one item each (report.md and report.html)."""
    s, tu = res.settings, time_unit or time_unit_of(res)
    acc = s["accrual"]
    weights = list(acc.get("weights", [1.0]))
    rates = "" if len(weights) == 1 else f" (relative rates {weights} in equal segments)"
    drop = s["dropout_rate"]
    cut = s.get("calendar_cut")
    return [
        f"Simulated trials: {s['trials']} per design (design prior × population × events), "
        f"{s['oc_trials']} per OC point (population × events × true HR)",
        patients_text(s).capitalize(),
        f"Accrual over {acc['time']:g} {tu}{rates}",
        f"Dropout: exponential, {drop:g} per {tu.removesuffix('s')}" if drop else "Dropout: none",
        f"Allocation: {s['allocation']:g} of randomised patients to treatment",
        f"Size: {s['patients_per_event']:g} patients randomised per target event",
        "Analysis at the target event count"
        + (f" or at {cut:g} {tu} after the first randomisation, whichever is first" if cut else ""),
        f"Analysis: {res.analysis}",
    ]


def report_section(
    res: NextPhaseResults | dict, figures: dict[str, str], time_unit: str = "time units"
) -> str:
    """Markdown for report.md (from the results or their results.json form): what was simulated,
    the design table, OC, and the next-phase figures among ``figures``."""
    from .escape import md_code, md_figure, md_text

    if isinstance(res, dict):
        res = NextPhaseResults.from_dict(res)
    figures = {
        k.removeprefix("next_phase: "): v
        for k, v in figures.items()
        if k.startswith("next_phase: ")
    }
    tu = time_unit_of(res, time_unit)
    L = [
        "\n## Next-phase trial simulation",
        "",
        f"Model {md_code(res.model)}: one state of nature (posterior draw under the design "
        "prior) per simulated trial.",
        "",
        *[f"- {md_text(x)}." for x in setup_items(res, tu)],
        "",
        "Design priors:",
        "",
        *[f"- {md_code(k)}: {md_text(v)}" for k, v in res.design_priors.items()],
        "",
        f"Decision rule: {md_text(res.decision_rule)}.",
        "",
        design_md(res, tu),
        "",
        OC_TEXT,
        "",
        oc_md(res.oc_table()) if res.oc else "(no OC point finished)",
        "",
        analysis_counts(res),
    ]
    if res.failed_cells:
        L.append(f"\n**Failed cells (not in the tables):** {md_text(failed_text(res))}")
    for name, path in figures.items():
        L.append("\n" + md_figure(f"{name} ({analysis_short(res)})", path))
    return "\n".join(L) + "\n"


def analysis_short(res: NextPhaseResults) -> str:
    """Method and level (results written before ``analysis_short`` existed: the full text)."""
    return res.analysis_short or res.analysis


def oc_alpha(res: NextPhaseResults) -> float | None:
    """The level to mark on the OC figure: the frequentist analyses' alpha; none for Bayes."""
    bayes = res.settings.get("analysis", {}).get("method") == "bayes"
    return None if bayes else res.settings["alpha"]


def biomarker_axis(res: NextPhaseResults) -> str:
    bm = res.biomarker or "biomarker"
    return f"{bm}, {res.biomarker_unit}" if res.biomarker_unit else bm


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
    text = (
        f"Analyses without a result (counted as no success): {failed} of {total} simulated trials"
    )
    if res.settings.get("analysis", {}).get("method") == "bayes":
        text += f"; Bayesian fits with divergent transitions (kept): {div}"
    errors = [e for r in rows for e in r.analysis_errors]
    if not errors:
        return text + "."
    from .escape import md_text

    return text + f". First error: {md_text(errors[0]) if md else errors[0]}"


def csv_designs(res: NextPhaseResults) -> pd.DataFrame:
    """tables/next_phase_designs.csv: the duration column names the time unit."""
    tu = time_unit_of(res).replace(" ", "_")
    return res.designs_table().rename(columns={"expected_duration": f"expected_duration_{tu}"})


def write_next_phase(
    out, res: NextPhaseResults, dpi: int = 110, figures: bool = True, label: str | None = None
) -> dict[str, str]:
    """Tables and figures into an OutputDir; returns the figure paths by title."""
    from .plots import save

    df, oc = res.designs_table(), res.oc_table()
    out.write_csv("tables/next_phase_designs.csv", csv_designs(res))
    out.write_csv("tables/next_phase_oc.csv", oc)
    figs, how = {}, analysis_short(res)
    if figures and len(df):
        fig = assurance_vs_events(df, res.design_priors, label=label, analysis=how)
        save(fig, out.path("figures/next_phase_events.png"), dpi)
        figs["assurance vs events"] = "figures/next_phase_events.png"
        if df["cutoff"].notna().any():
            fig = assurance_vs_cutoff(
                df, res.design_priors, label=label, analysis=how, biomarker=biomarker_axis(res)
            )
            save(fig, out.path("figures/next_phase_cutoff.png"), dpi)
            figs["assurance vs cut-off"] = "figures/next_phase_cutoff.png"
    if figures and len(oc):
        fig = oc_curves(oc, oc_alpha(res), res.settings["design_hr"], label=label, analysis=how)
        save(fig, out.path("figures/next_phase_oc.png"), dpi)
        figs["operating characteristics"] = "figures/next_phase_oc.png"
    return figs


def _html_rows(t: pd.DataFrame, digits: dict[str, int] | None = None) -> list[list]:
    """Table cells: ints without decimals, floats with 3 (or ``digits[column]``)."""
    from .html_report import cell

    dig = [(digits or {}).get(c, 3) for c in t.columns]
    return [
        [cell(v.item() if hasattr(v, "item") else v, d) for v, d in zip(r, dig)]
        for r in t.itertuples(index=False)
    ]


def html_blocks(d: dict, fig, time_unit: str = "time units") -> list:
    """Blocks of the report.html section (``html_report`` helpers; ``fig`` numbers the figures):
    the same content as report.md's section."""
    from .html_report import bullets, p, table

    res = NextPhaseResults.from_dict(d)
    tu = time_unit_of(res, time_unit)
    t = design_table(res, tu)
    out = [
        p(
            f"Model {res.model}: one state of nature (posterior draw under the design prior) per "
            "simulated trial."
        ),
        bullets(setup_items(res, tu)),
        p("Design priors:"),
        bullets(f"{k}: {v}" for k, v in res.design_priors.items()),
        p(f"Decision rule: {res.decision_rule}."),
        table(
            list(t.columns),
            _html_rows(t, {"events (mean)": 1}),
            "Assurance and expected size of each design",
        )
        if res.designs
        else p("(no design finished)"),
        p(OC_TEXT),
    ]
    if res.oc:
        w = oc_wide(res.oc_table())
        out.append(table(list(w.columns), _html_rows(w), "P(success | true HR)"))
    for key in ("assurance vs events", "assurance vs cut-off", "operating characteristics"):
        out += fig(f"next_phase: {key}", f"Next phase: {key} ({analysis_short(res)})")
    out.append(p(analysis_counts(res, md=False)))  # the template escapes
    if res.failed_cells:
        out.append(p(f"Failed cells (not in the tables): {failed_text(res)}"))
    return out
