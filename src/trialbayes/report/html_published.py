"""The report.html view of a published-estimates run (typed :class:`~trialbayes.results.model.Results`),
in the same section order as a patient-level report; sections that need patient data say why
they are empty."""

from __future__ import annotations

from pathlib import Path

from ..core.text import level_text
from ..results.model import Results
from .html import Figures, banners, bullets, cell, h3, note, p, plain, pr, section, table
from .markdown_published import published_summary

NO_IPD = (
    "Not available from published estimates: this needs patient-level data "
    "(or a digitised Kaplan–Meier figure)."
)


def published_view(r: Results, root: Path) -> dict:
    fig = Figures(root, r.figures, r.figure_captions)
    secs = [
        section(
            "summary",
            "Summary in plain language",
            [bullets(plain(x) for x in published_summary(r)), p(r.sign_convention + ".")],
        ),
        section("data", "Data: the published estimates", data_blocks(r)),
        section("models", "Models and priors", model_blocks(r)),
        section("diagnostics", "Sampler diagnostics", diagnostics_blocks(r)),
        section("effects", "Treatment effects", effect_blocks(r, fig)),
        section("modification", "Effect modification", modification_blocks(r)),
        section("subgroups", "Subgroups", subgroup_blocks(r, fig)),
        section("survival", "Survival and restricted mean survival time", [p(NO_IPD)]),
        section("sensitivity", "Prior sensitivity", sensitivity_blocks(r, fig)),
        section("comparison", "Model comparison and the next trial", next_trial_blocks(r, fig)),
        section("provenance", "Provenance", provenance_blocks(r)),
    ]
    return {
        "title": r.title,
        "subtitle": f"Bayesian reanalysis of published estimates — {r.data_label}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r.provenance.get("created_at", ""),
    }


def data_blocks(r: Results) -> list:
    rows = [
        [n, e.hr, e.log_hr, e.se, e.subgroup or "all patients", e.share]
        for n, e in r.estimates.items()
    ]
    return [
        p(f"Evidence model: {r.sections.get('evidence_model', '')}."),
        table(
            [
                "estimate",
                "published HR",
                "log-HR",
                "SE of log-HR",
                "population",
                "share of patients",
            ],
            rows,
            "Published estimates analysed",
        ),
    ]


def model_blocks(r: Results) -> list:
    return [
        p(
            "Each published log-HR is combined with a prior on the log-HR under every named "
            "scenario: closed "
            "form for normal and flat priors, NUTS (checked against numerical quadrature) for "
            "Student-t and "
            "mixture priors."
        ),
        table(
            ["scenario", "kind", "prior on the log-HR"],
            [[s["name"], s["kind"], s["prior"]] for s in r.sections.get("scenarios", [])],
            "Prior scenarios",
        ),
    ]


def diagnostics_blocks(r: Results) -> list:
    rows = []
    for name, ev in r.estimates.items():
        for sc, s in ev.scenarios.items():
            d = s.diagnostics
            if d is None:
                continue
            q = s.quadrature_check or {}
            verdict = "passed" if not d["failures"] else "FAILED: " + "; ".join(d["failures"])
            rows.append(
                [
                    name,
                    sc,
                    cell(d["rhat_max"]),
                    cell(d["ess_bulk_min"], 0),
                    d["divergences"],
                    q.get("max_abs_diff_p"),
                    cell(verdict, bad=bool(d["failures"])),
                ]
            )
    out = [
        table(
            [
                "estimate",
                "scenario",
                "max R-hat",
                "min bulk ESS",
                "divergences",
                "max |P − quadrature P|",
                "gate",
            ],
            rows,
            "Sampled posteriors (the others are closed form)",
        )
        if rows
        else p("Every posterior is in closed form: nothing was sampled.")
    ]
    sg = r.sections.get("subgroup_shrinkage")
    if sg:
        d = sg["diagnostics"]
        out.append(
            p(
                f"Subgroup shrinkage model: max R-hat {d['rhat_max']:.3f}, min bulk ESS "
                f"{d['ess_bulk_min']:.0f}, "
                f"{d['divergences']} divergences — "
                + ("passed." if not d["failures"] else "FAILED: " + "; ".join(d["failures"]) + ".")
            )
        )
    return out


def effect_blocks(r: Results, fig) -> list:
    out = []
    for name, ev in r.estimates.items():
        h0 = next(iter(ev.scenarios.values())).hr
        below, above, lv = list(h0.p_hr_below), list(h0.p_hr_above), level_text(h0.level)
        out.append(
            h3(
                f"{name}"
                + (f" — {ev.subgroup}" if ev.subgroup else "")
                + f": published HR {ev.hr:.2f}"
            )
        )
        out.append(
            table(
                [
                    "scenario",
                    "prior",
                    "method",
                    f"posterior HR ({lv} CrI)",
                    *[f"P(HR < {k})" for k in below],
                    *[f"P(HR > {k})" for k in above],
                ],
                [
                    [
                        sc,
                        s.prior,
                        s.method,
                        s.hr.text(),
                        *[pr(s.hr.p_hr_below[k], s.hr) for k in below],
                        *[pr(s.hr.p_hr_above[k], s.hr) for k in above],
                    ]
                    for sc, s in ev.scenarios.items()
                ],
            )
        )
    return out + fig("forest_scenarios")


def modification_blocks(r: Results) -> list:
    c = r.sections.get("subgroup_shrinkage", {}).get("contrasts", [])
    if not c:
        return [p("No subgroup contrasts. " + NO_IPD)]
    return [
        p(
            "From published subgroup estimates only the ratio of subgroup HRs can be assessed (no "
            "HR along a "
            "continuous biomarker without patient data)."
        ),
        table(
            [
                "contrast",
                "ratio of HRs after shrinkage (CrI)",
                "P(ratio < 1)",
                "unshrunk ratio",
                "P(ratio < 1), unshrunk",
            ],
            [
                [
                    x["contrast"],
                    f"{x['ratio_median']:.2f} ({x['ratio_lower']:.2f} to {x['ratio_upper']:.2f})",
                    x["p_ratio_below_1"],
                    x["unshrunk_ratio"],
                    x["unshrunk_p_ratio_below_1"],
                ]
                for x in c
            ],
            "Ratio of subgroup hazard ratios",
        ),
    ]


def subgroup_blocks(r: Results, fig) -> list:
    sg = r.sections.get("subgroup_shrinkage")
    if not sg:
        return [p("No subgroup shrinkage was requested.")]
    t, mu = sg["tau"], sg["overall_mu"]
    return [
        p(
            f"Hierarchical model: {sg['model']}. Between-subgroup SD τ: median {t['median']:.3f} "
            f"(CrI {t['lower']:.3f} to {t['upper']:.3f}). Overall μ: HR {mu.text()}."
        ),
        table(
            [
                "subgroup",
                "share",
                "unshrunk HR (CI)",
                "P(HR < 1), unshrunk",
                "shrunk HR (CrI)",
                "P(HR < 1), shrunk",
            ],
            [
                [
                    g["subgroup"] or g["name"],
                    g["share"],
                    g["unshrunk"].text(),
                    pr(g["unshrunk"].p_benefit, g["unshrunk"]),
                    g["shrunk"].text(),
                    pr(g["shrunk"].p_benefit, g["shrunk"]),
                ]
                for g in sg["groups"]
            ],
            "Subgroup estimates before and after shrinkage",
        ),
        *fig("subgroup_shrinkage"),
    ]


def sensitivity_blocks(r: Results, fig) -> list:
    rows = [
        [name, t["level"], t["p_flat"], t["sd"], t.get("note") or ""]
        for name, ev in r.estimates.items()
        for t in ev.tipping_points
    ]
    return [
        p(
            "Tipping point: the SD s of a centred sceptical prior N(0, s²) below which P(HR < 1) "
            "falls under "
            "each level."
        ),
        table(
            [
                "estimate",
                "level of P(HR < 1)",
                "P(HR < 1), flat prior",
                "tipping prior SD (log-HR)",
                "note",
            ],
            rows,
            "Tipping points",
        ),
        *fig("prior_grid"),
    ]


def next_trial_blocks(r: Results, fig) -> list:
    out = [p("One evidence model per estimate: there are no competing models to compare.")]
    a = r.sections.get("assurance")
    if not a:
        return out
    out.append(
        h3(
            f"Probability of success of a next trial (one-sided α = {a['alpha_one_sided']}, "
            f"allocation {a['allocation']})"
        )
    )
    for lab, d in a["designs"].items():
        need = ", ".join(
            f"{float(k):.0%}: {v:.0f} events" if v else f"{float(k):.0%}: not reachable"
            for k, v in d["events_needed"].items()
        )
        out.append(
            p(
                f"{lab} — posterior: {d['posterior']}. Events needed for assurance {need} "
                f"(limit {d['assurance_limit']:.3f})."
            )
        )
        out.append(
            table(
                [
                    "events",
                    "assurance",
                    f"P(HR estimate < {a['target_hr']})",
                    "power at the posterior mean",
                ],
                [
                    [
                        x["events"],
                        x["assurance"],
                        x["p_hr_estimate_below_target"],
                        x["power_at_posterior_mean"],
                    ]
                    for x in d["by_events"]
                ],
                lab,
            )
        )
    return out + fig("assurance")


def provenance_blocks(r: Results) -> list:
    pv = r.provenance
    rows = [
        ["created", pv.get("created_at")],
        ["config", pv.get("config_path")],
        ["config hash", pv.get("config_hash")],
        ["seed", pv.get("seed")],
        ["results schema", r.schema_version],
    ]
    rows += [[k, v] for k, v in pv.get("versions", {}).items()]
    return [
        table(["item", "value"], rows, "Provenance (full details in provenance.json)"),
        note("NUTS compilations in this run: " + str(r.sections.get("nuts_compilations", "–"))),
    ]
