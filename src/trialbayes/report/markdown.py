"""Rendering a patient-level :class:`~trialbayes.results.model.Results`: the CLI headline,
plain-language summary lines and report.md (CSV tables: :mod:`trialbayes.report.tables`). Every
number comes from the typed results; units and the credible level come from the run's resolved
settings."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..core.escape import md_code, md_figure, md_spans, md_text
from ..core.flags import grouped, where
from ..core.text import eq_text, level_text, md_table, plural, prob, with_unit
from ..data.settings import describe_settings
from ..estimands.caution import headline_tag
from ..results.model import HRSummary, ModelResult, Results
from .credible import TRUTH_TABLE_CAPTION, benefit_words, credible_line, curve_detail, truth_rows
from .missing import markdown_lines as missing_markdown
from .nextphase import report_section
from .time_varying import markdown_section as over_time_section
from .time_varying import summary_line as over_time_line

UNRELIABLE = "⚠ UNRELIABLE (failed the sampler diagnostics gate)"


def p_text(s: HRSummary, digits: int = 3) -> str:
    """ "P(HR < 1) = 0.952, P(HR < 0.8) = 0.610, P(HR > 1.1) = 0.015"."""
    parts = [f"P(HR < {k}) {eq_text(prob(v, s.n_draws, digits))}" for k, v in s.p_hr_below.items()]
    parts += [f"P(HR > {k}) {eq_text(prob(v, s.n_draws, digits))}" for k, v in s.p_hr_above.items()]
    return ", ".join(parts)


# ----------------------------------------------------------------------------- headline, summary
def headline(r: Results) -> list[str]:
    """The CLI's lines: one per model (patient level) or per estimate (published)."""
    lines = []
    for name, ev in r.estimates.items():
        ps = ", ".join(
            f"{sc} {prob(v.hr.p_benefit, v.hr.n_draws)}" for sc, v in ev.scenarios.items()
        )
        lines.append(f"  {name:<14} P(HR<1): {ps}{headline_tag(r.all_flags, name)}")
    for name, m in r.models.items():
        te = m.treatment_effect
        flag = ("" if m.reliable else "  [UNRELIABLE]") + headline_tag(r.all_flags, name)
        avg = "  averaged over follow-up (time-varying)" if over_time_line(name, m) else ""
        lines.append(
            f"  {name:<14} HR {te.median:.2f} ({te.lower:.2f}-{te.upper:.2f}, "
            f"{level_text(te.level)} CrI)  "
            f"P(HR<1) {eq_text(prob(te.p_benefit, te.n_draws))}{avg}{flag}"
        )
    for f, models in grouped(r.all_flags):
        at = where(models)
        lines.append(f"  flag [{f.severity}] {at + ': ' if at else ''}{f.message}")
    return lines


def _curve_line(name: str, m: ModelResult) -> str:
    hc = m.hr_curve
    keys = sorted(hc.at, key=float)
    lo, hi = hc.at[keys[0]], hc.at[keys[-1]]
    trend = "rises" if hi.median > lo.median else "falls"
    u = hc.unit
    line = (
        f"{name}: the HR {trend} with {hc.biomarker} ({with_unit(float(keys[0]), u)}: "
        f"{lo.median:.2f}, "
        f"{with_unit(float(keys[-1]), u)}: {hi.median:.2f})"
    )
    line += "; " + benefit_words(hc)
    cross = hc.median_crosses_1_at
    return line + (
        f"; the posterior median HR reaches 1 near {with_unit(cross, u)}." if cross else "."
    )


def summary_lines(r: Results) -> list[str]:
    """The run's key findings in plain sentences, user names as they are (report.md escapes each
    line, report.html's template escapes)."""
    out = []
    for name, m in r.models.items():
        te = m.treatment_effect
        flag = (" (UNRELIABLE fit)" if not m.reliable else "") + headline_tag(r.all_flags, name)
        out.append(f"{name}{flag}: {m.estimand} {te.sentence()}; {p_text(te)}.")
        if (line := over_time_line(name, m)) is not None:
            out.append(line)
        if m.hr_curve is not None:
            out.append(_curve_line(name, m))
            if (line := credible_line(name, m)) is not None:
                out.append(line)
            if m.subgroups:
                parts = [
                    f"{g.label}{' ' + m.subgroups.unit if m.subgroups.unit else ''}: "
                    f"{g.conditional.text()}, P(benefit) "
                    f"{prob(g.conditional.p_benefit, g.conditional.n_draws, 2)} "
                    f"({g.events} {plural(g.events, 'event')}"
                    f"{', too few: flagged' if g.flags else ''})"
                    for g in m.subgroups.groups
                    if g.conditional is not None
                ]
                out.append(
                    f"{name} subgroups by {m.subgroups.biomarker} (conditional HR): "
                    + "; ".join(parts)
                    + "."
                )
    if r.loo is not None and r.loo.verdict:
        out.append(r.loo.verdict)
    if not r.reliable:
        out.append(
            f"Sampler diagnostics failed for {', '.join(r.unreliable_models)}: do not use those "
            "estimates."
        )
    return out


# ----------------------------------------------------------------------------- report.md
def render_patient_report(r: Results) -> str:
    """report.md of a patient-level run."""
    L = [f"# {md_text(r.title)}"]
    if r.synthetic:
        L.append(
            f"\n> **SYNTHETIC DATA.** {md_text(r.data_label)}. Every number below describes the "
            "synthetic "
            "cohort, not a real trial.\n"
        )
    if not r.reliable:
        L.append(
            f"\n> **{UNRELIABLE}:** {_names(r.unreliable_models)}. Their estimates are shown "
            "but "
            "must not be used.\n"
        )
    for f, models in grouped(r.all_flags):
        at = f", {md_text(where(models))}" if models else ""
        sev, code = md_text(f.severity), md_text(f.code)
        L.append(f"> **{sev}** ({code}{at}): {md_spans(f.message)}.")
    L.append("\n## Summary")
    L.extend(f"- {md_spans(line)}" for line in summary_lines(r))  # user names and units inside
    L += _data_section(r)
    L += missing_markdown(r)
    L += _settings_section(r)
    L += _effect_section(r)
    for name, m in r.models.items():
        L += _model_section(r, name, m)
    L += _sensitivity_section(r)
    L += _loo_section(r)
    if r.next_phase is not None:
        L.append(report_section(r.next_phase, r.figures, r.time_unit))
    if r.synthetic_truth is not None:
        L.append("\n## Synthetic truth")
        L += [f"- {md_text(x)}." for x in r.synthetic_truth.description]
        if rows := truth_rows(r.synthetic_truth.cohort_vs_published):
            L += [f"\n{TRUTH_TABLE_CAPTION}:\n", md_table(pd.DataFrame(rows))]
    p = r.provenance
    if p:
        L.append("\n## Provenance")
        L.append(
            f"Config hash {md_code(p.config_hash[:16])}…; seeds {md_text(p.seeds)}; "
            + ", ".join(f"{md_text(k)} {md_text(v)}" for k, v in p.versions.items())
            + ". Full details in `provenance.json`."
        )
        if p.timings:
            L.append(f"\nSeconds per model: {md_text(timings_text(p.timings))}.")
    return "\n".join(L) + "\n"


def timings_text(timings: dict) -> str:
    """Each model's compile (and where the compiled model came from), sampling and analysis
    seconds: what a user waited for."""

    def one(name: str, t) -> str:
        src = f" ({t.compiled_from})" if t.compiled_from else ""
        ana = f", analysis {t.analyse_s:.1f}" if t.analyse_s is not None else ""
        return f"{name}: compile {t.compile_s:.1f}{src}, sampling {t.sample_s:.1f}{ana}"

    return "; ".join(one(n, t) for n, t in timings.items())


def _data_section(r: Results) -> list[str]:
    d, tu = r.data, md_text(r.time_unit)
    arms = "; ".join(f"{md_text(a)}: n = {v.n}, events = {v.events}" for a, v in d.by_arm.items())
    L = [
        "\n## Data",
        f"{d.n} patients, {d.events} events; {arms}. {_follow_up(d, tu)}"
        f"Source: {md_text(d.source)}. Data sha256 {md_code(d.sha256[:16])}….",
    ]
    L += [f"Note: {md_text(n)}." for n in r.data_notes]
    if r.reconstruction is not None:
        L += _reconstruction_section(r)
    L.append(f"\nSign convention: {md_text(r.sign_convention)}.")
    return L


def _follow_up(d, tu: str) -> str:
    """The follow-up quantities, each named (report.md)."""
    parts = []
    if d.median_follow_up_reverse_km:
        parts.append(
            f"median follow-up {d.median_follow_up_reverse_km:.4g} {tu} (reverse Kaplan–Meier)"
        )
    if d.median_observed_time:
        parts.append(f"median observed time {d.median_observed_time:.4g} {tu}")
    parts.append(f"longest follow-up {d.max_follow_up:g} {tu}")
    return "; ".join(parts).capitalize() + ". "


def _settings_section(r: Results) -> list[str]:
    return [
        "\n## Analysis settings",
        "Resolved for this trial (config values, or derived from its data by the stated rule):\n",
        *[f"- {md_text(x)}" for x in describe_settings(r.settings)],
    ]


def _reconstruction_section(r: Results) -> list[str]:
    q = r.reconstruction
    L = [
        "\n### Reconstruction quality (Guyot et al. 2012)",
        "These patient data were rebuilt from a digitised Kaplan–Meier figure: approximations of "
        "the real ones.\n",
        md_table(
            pd.DataFrame(
                [
                    {
                        "arm": a,
                        "n": v.n,
                        "events": v.events,
                        "published events": v.published_events or "–",
                        "KM max |diff|": v.km_max_abs_diff,
                        "KM RMS diff": v.km_rms_diff,
                        "n at risk max rel. diff": v.n_at_risk_max_rel_diff,
                    }
                    for a, v in q.arms.items()
                ]
            )
        ),
    ]
    if q.cox is not None:
        L.append(
            f"\nCox HR of the reconstructed data ({md_text(q.treatment_arm)} vs the other arm): "
            f"{q.cox.sentence(3)}."
        )
    L.append(
        "\n"
        + (
            "**Poor agreement:** " + "; ".join(md_text(w) for w in q.warnings)
            if q.warnings
            else "Agreement within the thresholds (KM 0.05, numbers at risk and events 5%)."
        )
    )
    if "reconstruction_quality" in r.figures:
        L.append("\n" + md_figure("Reconstruction quality", r.figures["reconstruction_quality"]))
    return L


def pooling_note(m: ModelResult) -> str:
    """What the covariate prior does to the covariates' posteriors beside Cox (report.md and
    report.html, under the coefficient table)."""
    if not m.spec.get("covariates"):
        return "No covariates in this model."
    if m.spec.get("covariate_pooling") == "partial":
        return (
            "Covariate effects are partially pooled (covariate_pooling: partial, the default): "
            "their standardised coefficients share one half-normal scale, which shrinks them "
            "towards no effect — a guard against overfitting when events are few per covariate "
            "(model card). Cox does not pool, so a strongly prognostic covariate lies further "
            "from HR 1 under Cox; the last column gives the gap in posterior SDs. With many "
            "events per covariate, covariate_pooling: none gives independent N(0, 1) priors per "
            "SD and agrees with Cox."
        )
    return (
        "Covariate effects have independent N(0, 1) priors per SD (covariate_pooling: none): "
        "no pooling; the last column is the gap to Cox in posterior SDs."
    )


def pooling_word(m: ModelResult) -> str:
    """The covariate prior of a model in a word or two: "partially pooled", "not pooled" or
    "none" (no covariates)."""
    if not m.spec.get("covariates"):
        return "none"
    return "partially pooled" if m.spec.get("covariate_pooling") == "partial" else "not pooled"


#: said under every table and figure that puts a posterior beside Cox
POOLING_TEXT = (
    "Covariates: partially pooled (covariate_pooling: partial, the default) shrinks the "
    "adjusted models' covariate effects towards no effect, Cox does not: adjusted posterior and "
    "Cox estimates differ by that much more; covariate_pooling: none gives independent priors"
)


def any_pooled(r: Results) -> bool:
    """Whether any model's covariates are partially pooled."""
    return any(pooling_word(m) == "partially pooled" for m in r.models.values())


def _no_cox(m: ModelResult) -> str:
    """Why a model has no Cox numbers (a failed or runaway fit), or '–'."""
    return {"failed": "Cox fit failed", "not_converged": "Cox not converged"}.get(m.cox_status, "–")


def _effect_section(r: Results) -> list[str]:
    rows = []
    for name, m in r.models.items():
        te, cx = m.treatment_effect, (m.coefficients[0].cox if m.coefficients else None)
        rows.append(
            {
                "model": name + ("" if m.reliable else " ⚠"),
                "estimand": m.estimand,
                "covariates": pooling_word(m),
                f"posterior HR ({level_text(te.level)} CrI)": te.text(),
                **{f"P(HR<{k})": prob(v, te.n_draws) for k, v in te.p_hr_below.items()},
                **{f"P(HR>{k})": prob(v, te.n_draws) for k, v in te.p_hr_above.items()},
                f"Cox HR ({level_text(cx.level)} CI)" if cx else "Cox HR": cx.text()
                if cx
                else _no_cox(m),
            }
        )
    L = ["\n## Treatment effect", md_table(pd.DataFrame(rows))]
    if any_pooled(r):
        L.append(f"\n{POOLING_TEXT}.")
    if "forest" in r.figures:
        L.append("\n" + md_figure("Forest plot", r.figures["forest"]))
    return L


def _names(v) -> str:
    """A covariate list for prose: escaped names, comma-separated ('all' or 'none' as words)."""
    if not v:
        return "none"
    return md_text(v) if isinstance(v, str) else ", ".join(md_text(x) for x in v)


def _form(spec: dict) -> str:
    if spec.get("treatment_effect") == "time_varying":
        return "with a time-varying treatment effect (one log-HR per interval)"
    return "PH"


def _model_section(r: Results, name: str, m: ModelResult) -> list[str]:
    s, dg, te = m.spec, m.diagnostics, m.treatment_effect
    level_label = level_text(te.level)
    L = [f"\n## Model {md_code(name)}" + ("" if m.reliable else f" — {UNRELIABLE}")]
    L.append(
        f"Piecewise-exponential {_form(s)}, {m.n_intervals} baseline intervals; covariates: "
        f"{_names(s['covariates'])}; centre frailty: {'yes' if s['centre_frailty'] else 'no'}; "
        f"interaction: {md_text(s['interaction'])}"
        + (f" with {md_text(s['biomarker'])}" if s["biomarker"] else "")
        + f". Sampler: {md_text(m.sampler)}; every estimate from the same {te.n_draws} "
        "posterior draws."
    )
    pri = "; ".join(f"{md_text(k)} ~ {md_text(v)}" for k, v in m.priors.items())
    L.append(f"Priors: {pri}.")
    rhat = "undefined" if dg.rhat_max is None else f"{dg.rhat_max:.3f}"
    L.append(
        f"Diagnostics: max R-hat {rhat}, min bulk ESS {dg.ess_bulk_min:.0f}, min tail ESS "
        f"{dg.ess_tail_min:.0f}, divergences {dg.divergences}, min E-BFMI {dg.bfmi_min:.2f}"
        + (" — **failed: " + md_text("; ".join(dg.failures)) + "**" if dg.failures
           else " — passed")  # fmt: skip
        + "."
    )
    L.append(f"\n{md_text(m.estimand)}: **{te.sentence()}**; {p_text(te)}.")
    coef = pd.DataFrame(
        [
            {
                "term": c.term,
                "unit": c.unit,
                f"posterior HR ({level_label} CrI)": c.posterior.text(3),
                "P(HR<1)": prob(c.posterior.p_benefit, c.posterior.n_draws),
                f"Cox HR ({level_label} CI)": c.cox.text(3) if c.cox else _no_cox(m),
                "posterior − Cox (SDs)": "–" if c.gap_sd is None else f"{c.gap_sd:+.2f}",
            }
            for c in m.coefficients
        ]
    )
    L += ["\nCoefficients, posterior beside Cox on the same coding:\n", md_table(coef)]
    L.append("\n" + pooling_note(m))
    L += over_time_section(r, name, m)
    if m.hr_curve is not None:
        L += _curve_section(r, name, m)
    if m.subgroups is not None:
        L += _subgroup_section(m)
    L += _survival_lines(r, m)
    for key, cap in (
        (f"hr_posterior_{name}", "Posterior of the HR"),
        (f"survival_{name}", "Survival"),
    ):
        if key in r.figures:
            L.append("\n" + md_figure(cap, r.figures[key]))
    return L


def _curve_section(r: Results, name: str, m: ModelResult) -> list[str]:
    hc = m.hr_curve
    bm = md_text(hc.biomarker)
    head = f"{hc.biomarker} ({hc.unit})" if hc.unit else hc.biomarker  # md_table escapes it
    level_label = level_text(m.treatment_effect.level)
    L = [
        f"\nHR by {bm} ({md_text(hc.kind)}, {md_text(hc.transform)} scale):",
        md_table(
            pd.DataFrame(
                [
                    {
                        head: k,
                        f"HR ({level_label} CrI)": v.text(),
                        "P(HR<1)": prob(v.p_benefit, v.n_draws),
                    }
                    for k, v in hc.at.items()
                ]
            )
        ),
    ]
    L += [
        "- " + md_text(x[2:]) if x.startswith("- ") else "\n" + md_text(x)
        for x in curve_detail(hc)
    ]
    if f"hr_curve_{name}" in r.figures:
        L.append("\n" + md_figure(f"HR by {hc.biomarker}", r.figures[f"hr_curve_{name}"]))
    return L


def _subgroup_section(m: ModelResult) -> list[str]:
    sg = m.subgroups
    level_label = level_text(m.treatment_effect.level)
    u = f" {sg.unit}" if sg.unit else ""  # table cells: md_table escapes them
    bm, mu = md_text(sg.biomarker), md_text(u)
    rows = [
        {
            "subgroup": f"{sg.biomarker} {g.label}{u}",
            "n": g.n,
            "events": g.events,
            f"conditional HR ({level_label} CrI)": g.conditional.text(),
            "P(HR<1) cond.": prob(g.conditional.p_benefit, g.conditional.n_draws),
            f"marginal HR ({level_label} CrI)": g.marginal.text(),
            "P(HR<1) marg.": prob(g.marginal.p_benefit, g.marginal.n_draws),
            "flag": f"⚠ {g.events} {plural(g.events, 'event')}" if g.flags else "",
        }
        for g in sg.groups
        if g.conditional is not None
    ]
    cut = ", ".join(f"{c:g}" for c in sg.cutoffs)
    return [
        f"\nSubgroups by {bm} (cut-offs {cut}{mu}, {md_text(sg.cutoffs_source)}; conditional: "
        "mean patient "
        "log-HR; marginal: standardised over the subgroup at the landmark). A P(benefit) resting "
        "on fewer "
        "than 10 events is flagged:\n",
        md_table(pd.DataFrame(rows)),
    ]


def _survival_lines(r: Results, m: ModelResult) -> list[str]:
    sv, tu = m.survival, md_text(m.survival.time_unit)
    d, rd = sv.survival_difference, sv.rmst_difference
    level_label = level_text(d.level)
    return [
        f"\nStandardised survival at {sv.landmark:g} {tu} "
        f"({md_text(r.settings['landmark'].text())}): "
        "treatment "
        f"{sv.survival_treatment.median:.3f}, control {sv.survival_control.median:.3f}, difference "
        f"{d.median:+.3f} ({level_label} CrI {d.lower:+.3f} to {d.upper:+.3f}); restricted mean "
        "survival "
        "time to "
        f"{sv.landmark:g} {tu}: difference {rd.median:+.3g} {tu} ({rd.lower:+.3g} to "
        f"{rd.upper:+.3g})."
    ]


def _sensitivity_section(r: Results) -> list[str]:
    sv = r.sensitivity
    if sv is None:
        return []
    comp = ", ".join(
        f"{md_text(k)}: {v.compilations} ({v.during_scenarios} during the refits)"
        for k, v in sv.compilations.items()
    )
    L = [
        "\n## Prior sensitivity",
        "Each model refitted under named scenarios for its treatment (and interaction) "
        f"coefficient; compilations per model: {comp}.\n",
        md_table(pd.DataFrame([asdict(s) for s in sv.scenarios])),
    ]
    rows = [
        {
            "model": x.model,
            "scenario": x.scenario,
            f"treatment HR ({level_text(x.treatment.level)} CrI)": x.treatment.text(),
            **{
                f"P(HR<{k})": prob(v, x.treatment.n_draws)
                for k, v in x.treatment.p_hr_below.items()
            },
            "reliable": "yes" if x.reliable else "⚠ no",
        }
        for x in sv.refits
    ]
    L.append("\n" + md_table(pd.DataFrame(rows)))
    if sv.unreliable_refits:
        bad = ", ".join(f"{x.model}/{x.scenario}" for x in sv.unreliable_refits)
        L.append(f"\n⚠ Refits that failed the diagnostics gate: {bad}")
    if sv.psense:
        L.append(
            "\nPower-scaling sensitivity (ArviZ psense; a value above 0.05 flags sensitivity):\n"
        )
        L.append(md_table(pd.DataFrame([asdict(x) for x in sv.psense])))
    if "sensitivity" in r.figures:
        L.append("\n" + md_figure("Prior sensitivity", r.figures["sensitivity"]))
    return L


def _loo_section(r: Results) -> list[str]:
    L = []
    km, tu = r.kaplan_meier, md_text(r.time_unit)
    if km is not None:
        L.append(
            f"\nKaplan–Meier at {km.landmark:g} {tu}: control {km.survival_control:.3f}, "
            f"treatment {km.survival_treatment:.3f}."
        )
    if r.loo is not None and r.loo.table:
        L += [
            "\n## Model comparison (PSIS-LOO)",
            md_table(pd.DataFrame([asdict(x) for x in r.loo.table])),
            "\n" + md_spans(r.loo.verdict),
        ]
        bad = {n: v for n, v in r.loo.pareto_k.items() if v.n_k_above_0_7}
        if bad:
            L.append(
                "\nPareto k > 0.7 for some patients (LOO less reliable): "
                + ", ".join(f"{md_text(n)}: {v.n_k_above_0_7}" for n, v in bad.items())
            )
    return L
