"""What report.html shows, in the order a statistician expects: plain-language summary; data;
models and priors; diagnostics; treatment effects; effect modification; subgroups; survival and
RMST; prior sensitivity; model comparison; provenance — rendered from the typed
:class:`~trialbayes.results.model.Results` (the same objects report.md is rendered from).

:func:`patient_view` is the patient-level view (``writer.REPORTS`` picks a view by the run's kind);
published runs are laid out by ``report_views_published``.
"""

from __future__ import annotations

from pathlib import Path

from ..core.text import level_text, with_unit
from ..data.settings import describe_settings
from ..results.model import Results
from .credible import TRUTH_TABLE_CAPTION, curve_detail, truth_rows
from .html import Figures, banners, bullets, cell, h3, note, p, plain, pr, section, table
from .markdown import (
    POOLING_TEXT,
    _no_cox,
    any_pooled,
    pooling_note,
    pooling_word,
    summary_lines,
    timings_text,
)
from .missing import html_blocks as missing_blocks
from .nextphase import html_blocks
from .time_varying import html_blocks as over_time_blocks


def patient_view(r: Results, root: Path) -> dict:
    """The report.html view of a patient-level run: title, banners, sections in order."""
    fig = Figures(root, r.figures, r.figure_captions)
    secs = [
        section(
            "summary",
            "Summary in plain language",
            [bullets(plain(x) for x in summary_lines(r)), p(r.sign_convention + ".")],
        ),
        section("data", "Data", data_blocks(r, fig)),
        *(
            [section("missing", "Missing values", missing_blocks(r))]
            if r.missing_data is not None
            else []
        ),
        section("models", "Models and priors", model_blocks(r)),
        section("diagnostics", "Sampler diagnostics", diagnostics_blocks(r)),
        section("effects", "Treatment effects", effect_blocks(r, fig)),
        section("modification", "Effect modification", modification_blocks(r, fig)),
        section("over_time", "Treatment effect over time", over_time_blocks(r, fig)),
        section("subgroups", "Subgroups", subgroup_blocks(r)),
        section("survival", "Survival and restricted mean survival time", survival_blocks(r, fig)),
        section("sensitivity", "Prior sensitivity", sensitivity_blocks(r, fig)),
        section("comparison", "Model comparison", comparison_blocks(r)),
        section("provenance", "Provenance", provenance_blocks(r)),
    ]
    secs = [s for s in secs if s["id"] != "over_time" or s["blocks"]]  # time-varying models only
    if r.next_phase is not None:  # owned by report/nextphase.py
        secs.insert(
            -1,
            section(
                "next_phase",
                "Next-phase trial simulation",
                html_blocks(r.next_phase, fig, r.time_unit),
            ),
        )
    return {
        "title": r.title,
        "subtitle": f"Bayesian reanalysis — {r.data.source if r.data else r.data_label}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r.provenance.created_at if r.provenance else "",
    }


def data_blocks(r: Results, fig) -> list:
    """The Data section: patients, events and follow-up, patients and events by arm, notes and,
    for reconstructed data, the reconstruction quality."""
    d, tu = r.data, r.time_unit
    rows = [[arm, v.n, v.events] for arm, v in d.by_arm.items()] + [["all", d.n, d.events]]
    med = d.median_follow_up_reverse_km
    out = [
        p(
            f"{d.n} patients, {d.events} events; "
            + (f"median follow-up {med:.4g} {tu} (reverse Kaplan–Meier), " if med else "")
            + (
                f"median observed time {d.median_observed_time:.4g} {tu} (to event or censoring), "
                if d.median_observed_time
                else ""
            )
            + f"longest follow-up {d.max_follow_up:g} {tu}. Source: {d.source}. "
            f"Data SHA-256 {d.sha256[:16]}…"
        ),
        table(["arm", "patients", "events"], rows, "Patients and events by arm"),
    ]
    out.append(
        p(
            "Missing values: none in the columns used."
            if r.missing_data is None
            else "Missing values: see the section Missing values."
        )
    )
    out += [p(f"Note: {n}.") for n in r.data_notes]
    if r.reconstruction is not None:
        q = r.reconstruction
        out.append(h3("Reconstruction from a digitised Kaplan–Meier figure (Guyot et al. 2012)"))
        out.append(
            table(
                [
                    "arm",
                    "patients",
                    "events",
                    "published events",
                    "KM max |difference|",
                    "KM RMS difference",
                    "n at risk, max relative difference",
                ],
                [
                    [
                        a,
                        v.n,
                        v.events,
                        v.published_events,
                        v.km_max_abs_diff,
                        v.km_rms_diff,
                        v.n_at_risk_max_rel_diff,
                    ]
                    for a, v in q.arms.items()
                ],
                "Reconstruction quality",
            )
        )
        if q.cox is not None:
            out.append(
                p(
                    f"Cox HR of the reconstructed data ({q.treatment_arm} vs the other arm): "
                    f"{q.cox.sentence(3)}."
                )
            )
        if q.warnings:
            out.append(note("Poor agreement: " + "; ".join(q.warnings), "unreliable"))
        out += fig("reconstruction_quality")
    return out


def model_blocks(r: Results) -> list:
    """The Models section: each model's covariates and their prior, centre frailty, effect
    modification, treatment effect over time, baseline intervals and sampler; the priors by model;
    the analysis settings."""
    rows = []
    for name, m in r.models.items():
        s = m.spec
        covs = list(  # each term once (a continuous covariate has a row per SD and per unit)
            dict.fromkeys(
                c.term
                for c in m.coefficients[1:]
                if not (c.term.endswith("(main)") or c.term.startswith("treatment"))
            )
        )
        rows.append(
            [
                name,
                ", ".join(covs) or "none",
                pooling_word(m),
                "yes" if s["centre_frailty"] else "no",
                s["interaction"] + (f" with {s['biomarker']}" if s["biomarker"] else ""),
                s.get("treatment_effect", "constant").replace("_", "-"),
                m.n_intervals,
                m.sampler or "–",
            ]
        )
    out = [
        p(
            "Piecewise-exponential proportional-hazards models (log-hazard constant within each "
            "baseline "
            "interval, a random walk across intervals), fitted by NUTS. Covariates are "
            "standardised. A time-varying treatment effect has one treatment log-HR per baseline "
            "interval (a random walk too) instead of proportional hazards."
        ),
        table(
            [
                "model",
                "covariates",
                "covariate prior",
                "centre frailty",
                "effect modification",
                "treatment effect over time",
                "baseline intervals",
                "sampler",
            ],
            rows,
            "Models",
        ),
    ]
    terms = sorted({t for m in r.models.values() for t in m.priors})
    out.append(
        table(
            ["term", *r.models],
            [[t, *[m.priors.get(t, "–") for m in r.models.values()]] for t in terms],
            "Priors by model (log-HR scale for effects)",
        )
    )
    out.append(
        h3("Analysis settings (from the config, or derived from the data by the stated rule)")
    )
    out.append(bullets(describe_settings(r.settings)))
    return out


def diagnostics_blocks(r: Results) -> list:
    """The Sampler diagnostics section: the gate, and each model's R-hat, ESS, divergences, E-BFMI
    and verdict."""
    th = next(iter(r.models.values())).diagnostics.thresholds
    out = [
        p(
            f"The gate: max R-hat ≤ {th.rhat_max}, bulk and tail ESS ≥ {th.ess_bulk_min:g} / "
            f"{th.ess_tail_min:g}, at most {th.max_divergences} divergent transitions, "
            f"E-BFMI ≥ {th.bfmi_min}. A model that fails is marked UNRELIABLE everywhere."
        )
    ]
    rows = []
    for name, m in r.models.items():
        d = m.diagnostics
        verdict = "passed" if not d.failures else "FAILED: " + "; ".join(d.failures)
        rows.append(
            [
                name,
                cell(d.rhat_max),
                cell(d.ess_bulk_min, 0),
                cell(d.ess_tail_min, 0),
                d.divergences,
                cell(d.bfmi_min, 2),
                d.n_draws,
                cell(verdict, bad=bool(d.failures)),
            ]
        )
    out.append(
        table(
            [
                "model",
                "max R-hat",
                "min bulk ESS",
                "min tail ESS",
                "divergences",
                "min E-BFMI",
                "draws",
                "gate",
            ],
            rows,
            "Diagnostics per model",
        )
    )
    return out


def effect_blocks(r: Results, fig) -> list:
    """The Treatment effects section: each model's posterior HR and probabilities beside the Cox HR,
    the forest plot, and every model's coefficients, posterior beside Cox."""
    first = next(iter(r.models.values())).treatment_effect
    below, above, level_label = (
        list(first.p_hr_below),
        list(first.p_hr_above),
        level_text(first.level),
    )
    rows = []
    for name, m in r.models.items():
        te, cx = m.treatment_effect, (m.coefficients[0].cox if m.coefficients else None)
        rows.append(
            [
                name + ("" if m.reliable else " (UNRELIABLE)"),
                m.estimand,
                pooling_word(m),
                te.text(),
                *[pr(te.p_hr_below[k], te) for k in below],
                *[pr(te.p_hr_above[k], te) for k in above],
                cx.text() if cx else _no_cox(m),
            ]
        )
    out = [
        table(
            [
                "model",
                "estimand",
                "covariates",
                f"posterior HR ({level_label} CrI)",
                *[f"P(HR < {k})" for k in below],
                *[f"P(HR > {k})" for k in above],
                f"Cox HR ({level_label} CI)",
            ],
            rows,
            "Treatment hazard ratio, by model",
        )
    ]
    if any_pooled(r):
        out.append(note(POOLING_TEXT + "."))
    out += fig("forest")
    for name, m in r.models.items():
        out.append(h3(f"Model {name}: all coefficients, posterior beside Cox"))
        out.append(
            table(
                [
                    "term",
                    "per",
                    f"posterior HR ({level_label} CrI)",
                    "P(HR < 1)",
                    f"Cox HR ({level_label} CI)",
                    "Cox p",
                    "posterior − Cox (SDs)",
                ],
                [
                    [
                        c.term,
                        c.unit,
                        c.posterior.text(3),
                        pr(c.posterior.p_benefit, c.posterior),
                        c.cox.text(3) if c.cox else _no_cox(m),
                        c.cox.p_value if c.cox else None,
                        c.gap_sd,
                    ]
                    for c in m.coefficients
                ],
            )
        )
        out.append(note(pooling_note(m)))
        out += fig(f"hr_posterior_{name}")
    return out


def modification_blocks(r: Results, fig) -> list:
    """The Effect modification section: each interaction model's HR along the biomarker, where
    P(HR < 1) > 0.9, and its HR-curve figure."""
    out = []
    for name, m in r.models.items():
        hc = m.hr_curve
        if hc is None:
            continue
        u = f" ({hc.unit})" if hc.unit else ""
        out.append(
            h3(f"Model {name}: HR along {hc.biomarker}{u} ({hc.kind} on the {hc.transform} scale)")
        )
        lines = curve_detail(hc)
        out += [p(x) for x in lines if not x.startswith("- ")]
        if items := [x[2:] for x in lines if x.startswith("- ")]:
            out.append(bullets(items))
        if hc.median_crosses_1_at:
            cross = with_unit(hc.median_crosses_1_at, hc.unit)
            out.append(p(f"The posterior median HR reaches 1 near {cross}."))
        ks = list(next(iter(hc.at.values())).p_hr_below)
        level_label = level_text(m.treatment_effect.level)
        out.append(
            table(
                [f"{hc.biomarker}{u}", f"HR ({level_label} CrI)", *[f"P(HR < {k})" for k in ks]],
                [[x, v.text(), *[pr(v.p_hr_below[k], v) for k in ks]] for x, v in hc.at.items()],
            )
        )
        out += fig(f"hr_curve_{name}")
    return out or [p("No model has a treatment × biomarker interaction.")]


def subgroup_blocks(r: Results) -> list:
    """The Subgroups section: each model's conditional and marginal HR per biomarker subgroup,
    with the subgroups' flags."""
    out = []
    for name, m in r.models.items():
        sg = m.subgroups
        if sg is None:
            continue
        level_label = level_text(m.treatment_effect.level)
        rows = [
            [
                f"{sg.biomarker} {g.label}",
                g.n,
                g.events,
                g.conditional.text(),
                pr(g.conditional.p_benefit, g.conditional),
                g.marginal.text(),
                pr(g.marginal.p_benefit, g.marginal),
                cell("; ".join(f.message for f in g.flags), bad=True) if g.flags else "",
            ]
            for g in sg.groups
            if g.conditional is not None
        ]
        if rows:
            u = f" ({sg.unit})" if sg.unit else ""
            out.append(
                table(
                    [
                        f"subgroup{u}",
                        "patients",
                        "events",
                        f"conditional HR ({level_label} CrI)",
                        "P(HR < 1), conditional",
                        f"marginal HR ({level_label} CrI)",
                        "P(HR < 1), marginal",
                        "flag",
                    ],
                    rows,
                    f"Model {name}: cut-offs {', '.join(f'{c:g}' for c in sg.cutoffs)}"
                    f"{u} ({sg.cutoffs_source})",
                )
            )
    if out:
        out.insert(
            0,
            p(
                "Conditional: the mean patient log-HR in the subgroup; marginal: standardised "
                "over the "
                "subgroup's patients at the landmark. A P(benefit) resting on few events is "
                "flagged."
            ),
        )
    return out or [p("No biomarker subgroups.")]


def survival_blocks(r: Results, fig) -> list:
    """The Survival section: standardised survival and RMST differences at the landmark per model,
    the Kaplan–Meier values there, and the survival figures."""
    rows, tu = [], r.time_unit
    for name, m in r.models.items():
        s = m.survival
        sd, rd = s.survival_difference, s.rmst_difference
        rows.append(
            [
                name,
                s.survival_control.median,
                s.survival_treatment.median,
                f"{sd.median:+.3f} ({sd.lower:+.3f} to {sd.upper:+.3f})",
                pr(sd.p_positive, sd),
                f"{rd.median:+.3g} ({rd.lower:+.3g} to {rd.upper:+.3g})",
                pr(rd.p_positive, rd),
            ]
        )
    s0 = next(iter(r.models.values())).survival
    level_label = level_text(s0.survival_difference.level)
    lm_src = r.settings["landmark"].text() if "landmark" in r.settings else ""
    out = [
        table(
            [
                "model",
                "control survival",
                "treatment survival",
                f"difference ({level_label} CrI)",
                "P(difference > 0)",
                f"RMST difference, {tu} ({level_label} CrI)",
                "P(RMST difference > 0)",
            ],
            rows,
            f"Standardised survival at the landmark ({s0.landmark:g} {tu}; {lm_src}) and RMST up "
            "to it",
        )
    ]
    km = r.kaplan_meier
    if km is not None:
        out.append(
            p(
                f"Kaplan–Meier at {km.landmark:g} {tu}: control {km.survival_control:.3f}, "
                f"treatment {km.survival_treatment:.3f}."
            )
        )
    for name in r.models:
        out += fig(f"survival_{name}")
    return out


def sensitivity_blocks(r: Results, fig) -> list:
    """The Prior sensitivity section: prior-versus-posterior figures, the scenario refits' treatment
    HRs, and the power-scaling sensitivity table."""
    out = []
    for name in r.models:
        out += fig(f"prior_posterior_{name}")
    sv = r.sensitivity
    if sv is None:
        return out + [p("No prior-scenario refits were requested (sensitivity.enabled: false).")]
    out.append(
        table(
            ["scenario", "kind", "treatment prior"],
            [[s.name, s.kind, s.prior] for s in sv.scenarios],
            "Prior scenarios",
        )
    )
    ks = list(sv.refits[0].treatment.p_hr_below) if sv.refits else []
    rows = [
        [
            x.model,
            x.scenario,
            x.treatment.text(),
            *[pr(x.treatment.p_hr_below[k], x.treatment) for k in ks],
            cell("yes" if x.reliable else "no", bad=not x.reliable),
        ]  # fmt: skip
        for x in sv.refits
    ]
    head = ["model", "scenario", f"HR ({level_text(r.level)} CrI)", *[f"P(HR < {k})" for k in ks]]
    out.append(table([*head, "reliable"], rows, "Treatment HR under each scenario"))
    out += fig("sensitivity")
    if sv.psense:
        out.append(
            table(
                ["model", "parameter", "prior", "likelihood", "diagnosis"],
                [[x.model, x.parameter, x.prior, x.likelihood, x.diagnosis] for x in sv.psense],
                "Power-scaling sensitivity (ArviZ psense; above 0.05 flags sensitivity)",
            )
        )
    return out


def comparison_blocks(r: Results) -> list:
    """The Model comparison section: the PSIS-LOO table, its verdict, and Pareto k warnings."""
    if r.loo is None or not r.loo.table:
        return [p("One model only: no comparison.")]
    rows = [[x.model, x.elpd, x.se, x.elpd_diff, x.dse, x.p_loo, x.weight] for x in r.loo.table]
    out = [
        table(
            [
                "model",
                "ELPD (LOO)",
                "SE",
                "ELPD difference",
                "SE of difference",
                "effective parameters",
                "stacking weight",
            ],
            rows,
            "PSIS-LOO comparison (higher ELPD predicts better)",
        ),
        p(plain(r.loo.verdict)),
    ]
    bad = {n: v for n, v in r.loo.pareto_k.items() if v.n_k_above_0_7}
    if bad:
        out.append(
            note(
                "Pareto k > 0.7 for some patients (LOO less reliable there): "
                + ", ".join(f"{n}: {v.n_k_above_0_7}" for n, v in bad.items()),
                "synthetic",
            )
        )
    return out


def provenance_table(r: Results) -> dict:
    """The provenance table of every route's report.html: creation time, config and data hashes,
    seeds and their rule, schema and package versions, seconds per model (when models ran)."""
    pv = r.provenance
    rows = [
        ["created", pv.created_at],
        ["config", pv.config_path],
        ["config hash", pv.config_hash],
        *([["data SHA-256", pv.data_sha256]] if pv.data_sha256 else []),
        ["seeds", ", ".join(f"{k}: {v}" for k, v in pv.seeds.items())],
        ["seed rule", pv.seed_rule],
        ["results schema", r.schema_version],
        *[[k, v] for k, v in pv.versions.items()],
    ]
    if pv.timings:
        rows.append(["seconds per model", timings_text(pv.timings)])
    return table(["item", "value"], rows, "Provenance (full details in provenance.json)")


def provenance_blocks(r: Results) -> list:
    """The Provenance section: the provenance table and the synthetic truth of synthetic data."""
    if r.provenance is None:
        return [p("No provenance recorded.")]
    out = [provenance_table(r)]
    if r.synthetic_truth is not None:
        out.append(p("Synthetic truth: " + "; ".join(r.synthetic_truth.description) + "."))
        if rows := truth_rows(r.synthetic_truth.cohort_vs_published):
            out.append(table(list(rows[0]), [list(x.values()) for x in rows], TRUTH_TABLE_CAPTION))
    return out
