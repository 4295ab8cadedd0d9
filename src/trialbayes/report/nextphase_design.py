"""The parts of the next-phase report that describe designs as they are run: interim looks
(planned boundaries in closed form, simulated stopping per look), borrowing (ESS, type I error and
power with and without it), adaptive enrichment against fixed designs, and the recommended
design. Each part gives Markdown (report.md), HTML blocks (report.html), CSV tables and figures
from the typed results; empty when the run has no such part."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..core.escape import md_text
from ..core.text import md_table
from ..plots.nextphase import enrichment_comparison, oc_with_looks
from ..results.next_phase import NextPhaseResults
from .html import bullets, p, table

REACHED_TEXT = (
    "Where the target deaths D are not reached by the calendar cut (or ever), the trial is "
    "analysed at the cut or the end of follow-up with the deaths it has: its power and "
    "assurance are those of that smaller trial. P(D reached) is in every design table and the "
    "figures draw such designs (P(D reached) < 0.9) with hollow markers."
)


def _f(x, d: int = 3) -> str:
    return "–" if x is None or x != x else f"{x:.{d}f}"


def planned_table(res: NextPhaseResults) -> pd.DataFrame:
    """The closed-form plan per target deaths and look: boundaries, alpha spent, and stopping
    probabilities at HR 1 and at the design HR."""
    rows = []
    for pd_ in res.planned:
        for lk in pd_.looks:
            rows.append(
                {
                    "target deaths": pd_.events,
                    "look": lk.look,
                    "deaths": lk.events,
                    "efficacy Z": _f(lk.efficacy_z),
                    "nominal p": _f(lk.nominal_p, 4),
                    "α spent (cum.)": _f(lk.alpha_spent, 4),
                    "futility Z": _f(lk.futility_z),
                    "P(eff.) HR 1": _f(lk.p_efficacy_null, 4),
                    "P(fut.) HR 1": _f(lk.p_futility_null),
                    "P(eff.) design HR": _f(lk.p_efficacy_design),
                    "P(fut.) design HR": _f(lk.p_futility_design),
                }
            )
    return pd.DataFrame(rows)


def looks_table(res: NextPhaseResults) -> pd.DataFrame:
    """Simulated stopping per look: the design priors' rows, then the OC points at HR 1 and the
    design HR (type I error over all looks and power)."""
    t = res.looks_table()
    if t.empty:
        return t
    hr = res.settings.design_hr
    keep = t["true_hr"].isna() | t["true_hr"].isin([1.0, hr])
    t = t[keep].copy()
    t["under"] = [
        dp if pd.isna(h) else f"HR {h:g}" for dp, h in zip(t["design_prior"], t["true_hr"])
    ]
    cols = ["under", "population", "events", "analysis_prior", "look", "target_events",
            "p_performed", "p_efficacy", "p_futility"]  # fmt: skip
    t = t[cols].rename(columns={"events": "target deaths", "analysis_prior": "analysis prior",
                                "target_events": "deaths at look",
                                "p_performed": "P(look reached)", "p_efficacy": "P(efficacy)",
                                "p_futility": "P(futility)"})  # fmt: skip
    if (t["analysis prior"] == "").all():
        t = t.drop(columns="analysis prior")
    return t


def borrowing_table(res: NextPhaseResults) -> pd.DataFrame:
    """Borrowing per population and target deaths: the analysis prior, its ESS, and type I error,
    power and assurance with and without borrowing."""
    return pd.DataFrame(
        [
            {
                "population": b.population,
                "target deaths": b.events,
                "phase 2 HR": b.phase2.text(),
                "analysis prior (log HR)": b.prior,
                "ESS (ELIR)": f"{b.ess_elir:.0f}",
                "ESS (moment)": f"{b.ess_moment:.1f}",
                "type I: borrowing": _f(b.type_one_error),
                "type I: none": _f(b.type_one_error_none),
                "power: borrowing": _f(b.power),
                "power: none": _f(b.power_none),
                "assurance: borrowing": _f(b.assurance),
                "assurance: none": _f(b.assurance_none),
                "max MC SE": _f(b.mc_se_max),
            }
            for b in res.borrowing
        ]
    )


def enrichment_table(res: NextPhaseResults, tu: str) -> pd.DataFrame:
    """Adaptive enrichment beside the fixed designs, per design prior and target deaths."""
    e = res.enrichment
    return pd.DataFrame(
        [
            {
                "under": r.design_prior,
                "target deaths": r.events,
                "design": r.design,
                "assurance": _f(r.assurance),
                "MC SE": _f(r.mc_se),
                "screened": f"{r.expected_screened:.0f}",
                "randomised": f"{r.expected_randomised:.0f}",
                "deaths": f"{r.expected_events:.0f}",
                f"duration ({tu})": f"{r.expected_duration:.0f}",
                "P(D reached)": _f(r.p_events_reached, 2),
                "false go": _f(r.false_go),
                "P(enrich)": _f(r.p_enrich) if r.design == "adaptive" else "",
                "P(stop)": _f(r.p_stop) if r.design == "adaptive" else "",
                "P(claim subgroup)": _f(r.p_claim_subgroup),
            }
            for r in e.rows
        ]
    )


def false_enrichment_table(res: NextPhaseResults) -> pd.DataFrame:
    """P(enrich) with no interaction per target deaths and true HR: closed form and simulated."""
    return pd.DataFrame(
        [
            {
                "target deaths": f.events,
                "true HR (no interaction)": f"{f.true_hr:g}",
                "P(enrich) closed form": _f(f.closed_form),
                "P(enrich) simulated": _f(f.simulated),
                "MC SE": _f(f.mc_se),
            }
            for f in res.enrichment.false_enrichment
        ]
    )


def recommendation_lines(res: NextPhaseResults) -> list[str]:
    """The recommended design of each design prior, one line each (or why none is)."""
    out = []
    for r in res.recommendation:
        if r.population is None:
            out.append(f"design prior {r.design_prior}: none recommended — {r.note}")
            continue
        prior = f", analysis prior: {r.analysis_prior}" if r.analysis_prior else ""
        t1 = "" if r.type_one_error is None else f", type I error {r.type_one_error:.3f}"
        out.append(
            f"design prior {r.design_prior}: {r.population}, {r.events} target deaths"
            f"{prior} (assurance {r.assurance:.2f}, P(D reached) {r.p_events_reached:.2f}, "
            f"{r.expected_screened:.0f} screened, {r.expected_randomised:.0f} randomised{t1})"
        )
    return out


def closed_form_table(res: NextPhaseResults) -> pd.DataFrame:
    """For a design from assumptions: simulated assurance beside its closed form, per design prior
    and target deaths."""
    return pd.DataFrame(
        [
            {
                "design prior": c.design_prior,
                "target deaths": c.events,
                "assurance (simulated)": _f(c.simulated),
                "MC SE": _f(c.mc_se),
                "assurance (closed form)": _f(c.closed_form),
                "P(D reached)": _f(c.p_events_reached, 2),
            }
            for c in res.assumptions.closed_form
        ]
    )


def sections(res: NextPhaseResults, tu: str) -> list[tuple[str, str, pd.DataFrame | None]]:
    """(heading, text, table) of every part the run has, in report order."""
    out = []
    a = res.assumptions
    if a is not None:
        out.append(
            (
                "Assumptions",
                f"Control hazard: {a.control_hazard}. Treatment HR: {a.design_prior} (median "
                f"{a.design_hr.sentence()}, P(HR < 1) {a.design_hr.p_benefit:.3f}). "
                + (
                    "Simulated assurance beside the closed form (Schoenfeld's approximation "
                    "averaged over the design prior; it ignores the calendar cut and the "
                    "log-rank test's small-sample behaviour):"
                    if a.closed_form
                    else ""
                ),
                closed_form_table(res) if a.closed_form else None,
            )
        )
    if res.sequential:
        out.append(
            (
                "Interim looks: the planned design (closed form)",
                f"Rules: {res.sequential}. Boundaries and probabilities at the planned death "
                "counts, normal approximation of the log-rank statistic (information r(1 − r) "
                "per death), no borrowing; Z is benefit-positive.",
                planned_table(res),
            )
        )
        out.append(
            (
                "Interim looks: simulated stopping per look",
                "Share of simulated trials that reached each look and stopped there for "
                "efficacy or futility, under each design prior and at HR 1 (the type I error "
                "over all looks of the log-rank / Cox analysis is the sum of P(efficacy) at "
                "HR 1) and the design HR (power).",
                looks_table(res),
            )
        )
    if res.borrowing:
        out.append(
            (
                "Borrowing the phase 2 posterior",
                "The analysis prior of the next trial built from the phase 2 posterior of each "
                "population's average log-HR (its summary in the table), its effective sample "
                "size in deaths (ELIR: Neuenschwander et al. 2020, RBesT's default; moment "
                "matching beside it; reference scale 1/(r(1 − r)) per death), and the operating "
                "characteristics a regulator asks for, with and without borrowing, on the same "
                "simulated trials.",
                borrowing_table(res),
            )
        )
    if res.enrichment is not None:
        e = res.enrichment
        out.append(
            (
                f"Adaptive enrichment ({e.subgroup}, prevalence {e.prevalence:.2f})",
                f"Rule: {e.rule}. Fixed all comers, fixed enriched and adaptive designs on the "
                "same simulated patients, each randomising the all-comers number of patients "
                "for the target deaths (fixed enriched and the enriched stage screen for the "
                "subgroup); the fixed designs are analysed once at D deaths (one-sided log-rank "
                "at α; the section's looks and stopping rules do not apply here); false go: "
                "success while the true HR of the population claimed is ≥ the null HR. "
                "P(D reached) of the adaptive design: among trials not stopped "
                "(after enrichment, D subgroup deaths).",
                enrichment_table(res, tu),
            )
        )
        out.append(
            (
                "False enrichment (zero interaction)",
                "P(enrich) when the treatment effect is the same in the subgroup and its "
                f"complement: stated (closed form, the largest over the OC grid: "
                f"{e.stated_false_enrichment:.3f}) and simulated.",
                false_enrichment_table(res),
            )
        )
    return out


def markdown(res: NextPhaseResults, tu: str) -> list[str]:
    """This module's parts of the next-phase section of report.md, with the recommendation."""
    lines = [""]
    for head, text, t in sections(res, tu):
        lines += [f"### {md_text(head)}", "", md_text(text), ""]
        if t is not None and len(t):
            lines += [md_table(t), ""]
    if res.recommendation:
        crit = md_text(res.recommendation[0].criterion)
        lines += ["### Recommended design", "", f"Criterion: {crit}.",
                  "", *[f"- {md_text(x)}." for x in recommendation_lines(res)], ""]  # fmt: skip
    return lines


def html(res: NextPhaseResults, tu: str, fig, cell_rows) -> list:
    """This module's parts of the next-phase section of report.html, with their figures."""
    out = []
    for head, text, t in sections(res, tu):
        out.append(p(f"{head}. {text}"))
        if t is not None and len(t):
            out.append(table(list(t.columns), cell_rows(t), head))
    if res.recommendation:
        out.append(p(f"Recommended design (criterion: {res.recommendation[0].criterion}):"))
        out.append(bullets(recommendation_lines(res)))
    for key, name in FIGURES.items():
        out += fig(key, f"Next phase: {name}")
    return out


def write_tables(out, res: NextPhaseResults) -> None:
    """CSV tables of the parts the run has."""
    if res.planned:
        out.write_csv("tables/next_phase_planned.csv", planned_table(res))
    lk = res.looks_table()
    if len(lk):
        out.write_csv("tables/next_phase_looks.csv", lk)
    if res.borrowing:
        out.write_csv("tables/next_phase_borrowing.csv", borrowing_table(res))
    if res.enrichment is not None:
        out.write_csv("tables/next_phase_enrichment.csv", enrichment_rows(res))
        out.write_csv("tables/next_phase_false_enrichment.csv", false_enrichment_table(res))


def enrichment_rows(res: NextPhaseResults) -> pd.DataFrame:
    """The adaptive-enrichment rows as they are in the results (the CSV and the figure)."""
    assert res.enrichment is not None
    return pd.DataFrame([asdict(r) for r in res.enrichment.rows])


#: figure keys (results.figures) of these parts and their titles in the reports
FIGURES = {
    "next_phase_oc_looks": "OC with looks",
    "next_phase_enrichment": "adaptive enrichment",
}


def figures(plan, res: NextPhaseResults, label, tu: str, alpha, how: str) -> None:
    """The figures of the parts the run has, each with its caption (drawn by the writer)."""
    lk = res.looks_table()
    if len(lk) and lk["true_hr"].notna().any():
        plan.add(
            "next_phase_oc_looks",
            "Operating characteristics of designs with interim looks: P(success | true HR) and "
            f"where trials stop (±2 Monte Carlo SE); analysis: {how}.",
            lambda: oc_with_looks(lk, alpha, res.settings.design_hr, label=label, analysis=how),
        )
    if res.enrichment is not None and res.enrichment.rows:
        rows, sub = enrichment_rows(res), res.enrichment.subgroup
        plan.add(
            "next_phase_enrichment",
            f"Adaptive enrichment ({sub}) against fixed designs: assurance and expected size "
            "(±2 Monte Carlo SE).",
            lambda: enrichment_comparison(
                rows, tu, label=label, title=f"Adaptive enrichment ({sub}) vs fixed designs"
            ),
        )
