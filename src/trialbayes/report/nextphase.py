"""Figures, tables and the report section of a next-phase simulation (nextphase.py).

Every figure function takes ``ax=`` (or ``axes=``) and returns the Figure; the error bars are
± 2 Monte Carlo standard errors.
"""

from __future__ import annotations

import pandas as pd

from ..config.next_phase import NextPhase
from ..core.escape import md_code, md_figure, md_text
from ..core.text import md_table, prob_columns
from ..plots.nextphase import assurance_vs_cutoff, assurance_vs_events, oc_curves
from ..results.next_phase import NextPhaseResults
from . import nextphase_design as design_parts
from .html import bullets, cell, p, table

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


def oc_text(res: NextPhaseResults) -> str:
    """What the operating-characteristics table shows (worded for a design from assumptions too)."""
    if res.assumptions is None:
        return OC_TEXT
    return (
        "Operating characteristics P(success | true HR): every trial at the HR of the column, "
        "the assumed control hazard. Max MC SE: the largest Monte Carlo standard error of the row."
    )


def time_unit_of(res: NextPhaseResults, fallback: str = "time units") -> str:
    """The data's time unit (results written before it was stored: ``fallback``)."""
    return res.time_unit if res.time_unit != "time units" else fallback


def duration_column(res: NextPhaseResults, time_unit: str | None = None) -> str:
    """The design table's duration header, with the time unit."""
    return f"duration ({time_unit or time_unit_of(res)}, mean)"


def design_table(res: NextPhaseResults, time_unit: str | None = None) -> pd.DataFrame:
    """The design table as shown (md and HTML): counts and durations rounded to integers; the
    analysis prior as a column when the run borrows."""
    df = design_probabilities(res.designs_table())
    if df.empty:  # every assurance cell failed: the columns, no rows
        df = pd.DataFrame({c: pd.Series(dtype=float) for c in DESIGN_COLUMNS})
    cols = list(DESIGN_COLUMNS)
    if "analysis_prior" in df and (df["analysis_prior"] != "").any():
        cols.insert(2, "analysis_prior")
    t = df[cols].copy()
    for c in COUNTS:
        t[c] = t[c].round().astype(int)
    names = {**DESIGN_COLUMNS, "expected_duration": duration_column(res, time_unit),
             "analysis_prior": "analysis prior"}  # fmt: skip
    return t.rename(columns=names)


#: simulated shares of a design table (of ``trials`` simulated trials each)
DESIGN_PROBABILITIES = ("assurance", "p_events_reached", "p_go", "false_go", "false_stop",
                        "p_true_hr_below_null", "p_true_hr_below_target")  # fmt: skip


def design_probabilities(df: pd.DataFrame) -> pd.DataFrame:
    """Simulated shares written as the reports write probabilities (never "1.000" / "0.000")."""
    if df.empty:
        return df
    return prob_columns(df, "trials", [c for c in DESIGN_PROBABILITIES if c in df])


def design_md(res: NextPhaseResults, time_unit: str | None = None) -> str:
    """The design table in Markdown, or a note that no design finished."""
    return md_table(design_table(res, time_unit)) if res.designs else "(no design finished)"


def failed_text(res: NextPhaseResults) -> str:
    """The failed cells with their errors (a cell is retried once before it counts as failed)."""
    errs = res.failed_errors
    return "; ".join(f"{k} ({errs[k]})" if errs.get(k) else k for k in res.failed_cells)


def oc_wide(oc: pd.DataFrame) -> pd.DataFrame:
    """P(success) at every HR of the OC grid (a column each) and the row's largest MC SE."""
    idx = ["population", "events"]
    if "analysis_prior" in oc and (oc["analysis_prior"] != "").any():
        idx.append("analysis_prior")
    wide = oc.pivot_table(index=idx, columns="true_hr", values="p_success", sort=False)
    wide.columns = [f"HR {c:g}" for c in wide.columns]
    se = oc.groupby(idx, sort=False)["mc_se"].max()
    wide["max MC SE"] = se.reindex(wide.index)
    return wide.reset_index().rename(columns={"analysis_prior": "analysis prior"})


def oc_md(oc: pd.DataFrame) -> str:
    """The operating characteristics in Markdown, one column per true HR (see ``oc_wide``)."""
    return md_table(oc_wide(oc))


def setup_items(res: NextPhaseResults, time_unit: str | None = None) -> list[str]:
    """What was simulated, one item each (report.md and report.html)."""
    s, tu = res.settings, time_unit or time_unit_of(res)
    weights = list(s.accrual.weights or [1.0])
    rates = "" if len(weights) == 1 else f" (relative rates {weights} in equal segments)"
    drop, cut = s.dropout_rate, s.calendar_cut
    return [
        f"Simulated trials: {s.trials} per design (design prior × population × events), "
        f"{s.oc_trials} per OC point (population × events × true HR)",
        (
            "Patients: no covariates or biomarker (a design from assumptions): every patient has "
            "the assumed control hazard, times the HR if treated"
            if res.assumptions is not None
            else patients_text(s).capitalize()
        ),
        f"Accrual over {s.accrual.time:g} {tu}{rates}",
        f"Dropout: exponential, {drop:g} per {tu.removesuffix('s')}" if drop else "Dropout: none",
        f"Allocation: {s.allocation:g} of randomised patients to treatment",
        size_text(res),
        "Analysis at the target event count"
        + (f" or at {cut:g} {tu} after the first randomisation, whichever is first" if cut else ""),
        f"Analysis: {res.analysis}",
    ]


def size_text(res: NextPhaseResults) -> str:
    """How many patients each population's trials randomise (per target death, or fixed)."""
    if res.sizing:
        return "Patients randomised per target death: " + "; ".join(
            f"{k}: {v}" for k, v in res.sizing.items()
        )
    return f"Size: {res.settings.patients_per_event:g} patients randomised per target event"


def report_section(
    res: NextPhaseResults, figures: dict[str, str], time_unit: str = "time units"
) -> str:
    """Markdown for report.md: what was simulated, the design table, OC, and the next-phase
    figures among ``figures``."""
    tu = time_unit_of(res, time_unit)
    L = [
        "\n## Next-phase trial simulation",
        "",
        source_text(res, md=True),
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
        design_parts.REACHED_TEXT,
        "",
        oc_text(res),
        "",
        oc_md(res.oc_table()) if res.oc else "(no OC point finished)",
        "",
        analysis_counts(res),
        *design_parts.markdown(res, tu),
    ]
    if res.failed_cells:
        L.append(f"\n**Failed cells (not in the tables):** {md_text(failed_text(res))}")
    for key, name in NEXT_PHASE_FIGURES.items():
        if key in figures:
            L.append("\n" + md_figure(f"{name} ({analysis_short(res)})", figures[key]))
    return "\n".join(L) + "\n"


def source_text(res: NextPhaseResults, md: bool = False) -> str:
    """Where the states of nature come from: a fitted model's posterior or stated assumptions."""
    if res.source:
        return md_text(res.source) if md else res.source
    name = md_code(str(res.model)) if md else str(res.model)
    return (
        f"Model {name}: one state of nature (posterior draw under the design prior) per "
        "simulated trial."
    )


def analysis_short(res: NextPhaseResults) -> str:
    """Method and level (results written before ``analysis_short`` existed: the full text)."""
    return res.analysis_short or res.analysis


def oc_alpha(res: NextPhaseResults) -> float | None:
    """The level to mark on the OC figure: the frequentist analyses' alpha; none for Bayes."""
    return None if res.settings.analysis.method == "bayes" else res.settings.alpha


def biomarker_axis(res: NextPhaseResults) -> str:
    """The biomarker axis label of the next-phase figures: its name and unit."""
    bm = res.biomarker or "biomarker"
    return f"{bm}, {res.biomarker_unit}" if res.biomarker_unit else bm


def patients_text(settings: NextPhase) -> str:
    """Where a simulated trial's patients come from (``next_phase.covariates``)."""
    if settings.covariates == "fitted":
        return (
            "patients drawn from a Gaussian copula fitted to the cohort's covariates and biomarker "
            f"(data marginals and correlations; a synthetic cohort of {settings.fitted_cohort})"
        )
    return "patients resampled from the fitted cohort"


def analysis_counts(res: NextPhaseResults, md: bool = True) -> str:
    """One sentence: simulated trials whose analysis failed (no success) or diverged."""
    rows = [*res.designs, *res.oc]
    failed = sum(r.analysis_failed for r in rows)
    div = sum(r.analysis_divergent for r in rows)
    total = sum(d.trials for d in res.designs) + len(res.oc) * res.settings.oc_trials
    text = (
        f"Analyses without a result (counted as no success): {failed} of {total} simulated trials"
    )
    if res.settings.analysis.method == "bayes":
        text += f"; Bayesian fits with divergent transitions (kept): {div}"
    errors = [e for r in rows for e in r.analysis_errors]
    if not errors:
        return text + "."

    return text + f". First error: {md_text(errors[0]) if md else errors[0]}"


def csv_designs(res: NextPhaseResults) -> pd.DataFrame:
    """tables/next_phase_designs.csv: the duration column names the time unit."""
    tu = time_unit_of(res).replace(" ", "_")
    t = design_probabilities(res.designs_table())
    return t.rename(columns={"expected_duration": f"expected_duration_{tu}"})


def write_next_phase_tables(out, res: NextPhaseResults) -> None:
    """tables/next_phase_designs.csv and tables/next_phase_oc.csv."""
    out.write_csv("tables/next_phase_designs.csv", csv_designs(res))
    oc = res.oc_table()
    cols = [c for c in ("p_success", "p_events_reached") if c in oc]
    out.write_csv("tables/next_phase_oc.csv", prob_columns(oc, res.settings.oc_trials, cols))
    design_parts.write_tables(out, res)


#: next-phase figure keys (in results.figures) and their titles in the reports
NEXT_PHASE_FIGURES = {
    "next_phase_events": "assurance vs events",
    "next_phase_cutoff": "assurance vs cut-off",
    "next_phase_oc": "operating characteristics",
}


def next_phase_figures(plan, res: NextPhaseResults, label: str | None = None) -> None:
    """The next-phase figures, each with its caption."""
    df, oc, how = res.designs_table(), res.oc_table(), analysis_short(res)
    if len(df):
        plan.add(
            "next_phase_events",
            f"Assurance against the number of events, per design prior and population "
            f"(±2 Monte Carlo SE); analysis of each simulated trial: {how}.",
            lambda: assurance_vs_events(df, res.design_priors, label=label, analysis=how),
        )
        if df["cutoff"].notna().any():
            plan.add(
                "next_phase_cutoff",
                "Assurance against the enrichment cut-off, per number of events; dashed: all "
                f"comers (±2 Monte Carlo SE); analysis: {how}.",
                lambda: assurance_vs_cutoff(
                    df, res.design_priors, label=label, analysis=how, biomarker=biomarker_axis(res)
                ),
            )
    if len(oc):
        plan.add(
            "next_phase_oc",
            "Operating characteristics: P(success | true HR) per population and number of events "
            f"(±2 Monte Carlo SE); analysis: {how}.",
            lambda: oc_curves(oc, oc_alpha(res), res.settings.design_hr, label=label, analysis=how),
        )
    design_parts.figures(plan, res, label, time_unit_of(res), oc_alpha(res), how)


def _html_rows(t: pd.DataFrame, digits: dict[str, int] | None = None) -> list[list]:
    """Table cells: ints without decimals, floats with 3 (or ``digits[column]``)."""
    dig = [(digits or {}).get(c, 3) for c in t.columns]
    return [
        [cell(v.item() if hasattr(v, "item") else v, d) for v, d in zip(r, dig)]
        for r in t.itertuples(index=False)
    ]


def html_blocks(res: NextPhaseResults, fig, time_unit: str = "time units") -> list:
    """Blocks of the report.html section (``html_report`` helpers; ``fig`` numbers the figures):
    the same content as report.md's section."""
    tu = time_unit_of(res, time_unit)
    t = design_table(res, tu)
    out = [
        p(source_text(res)),
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
        p(design_parts.REACHED_TEXT),
        p(oc_text(res)),
    ]
    if res.oc:
        w = oc_wide(res.oc_table())
        out.append(table(list(w.columns), _html_rows(w), "P(success | true HR)"))
    for key, name in NEXT_PHASE_FIGURES.items():
        out += fig(key, f"Next phase: {name} ({analysis_short(res)})")
    out.append(p(analysis_counts(res, md=False)))  # the template escapes
    out += design_parts.html(res, tu, fig, _html_rows)
    if res.failed_cells:
        out.append(p(f"Failed cells (not in the tables): {failed_text(res)}"))
    return out
