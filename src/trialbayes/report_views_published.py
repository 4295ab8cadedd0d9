"""The report.html view of a published-estimates run, in the same section order as a patient-level
report; sections that need patient data say why they are empty."""

from __future__ import annotations

from pathlib import Path

from .html_report import Figures, bullets, cell, h3, note, p, section, table
from .report_views import banners, hr_text, plain

NO_IPD = (
    "Not available from published estimates: this needs patient-level data "
    "(or a digitised KM figure)."
)


def published_view(r: dict, root: Path) -> dict:
    from .published_run import published_summary

    fig = Figures(root, r.get("figures", {}), r.get("figure_captions", {}))
    secs = [
        section(
            "summary",
            "Summary in plain language",
            [bullets(plain(x) for x in published_summary(r)), p(r["sign_convention"] + ".")],
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
        "title": r["title"],
        "subtitle": f"Bayesian reanalysis of published estimates — {r['data_label']}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r["provenance"].get("created_at", ""),
    }


def data_blocks(r) -> list:
    rows = []
    for name, ev in r["posteriors"].items():
        e = ev["evidence"]
        rows.append(
            [
                name,
                e["hr"],
                e["log_hr"],
                e["se"],
                e.get("subgroup") or "all patients",
                e.get("share"),
            ]
        )
    return [
        p(f"Evidence model: {r['evidence_model']}."),
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


def model_blocks(r) -> list:
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
            [[s["name"], s["kind"], s["prior"]] for s in r["scenarios"]],
            "Prior scenarios",
        ),
    ]


def diagnostics_blocks(r) -> list:
    rows = []
    for name, ev in r["posteriors"].items():
        for sc, s in ev["scenarios"].items():
            d = s.get("diagnostics")
            if d is None:
                continue
            q = s.get("quadrature_check", {})
            rows.append(
                [
                    name,
                    sc,
                    cell(d["rhat_max"]),
                    cell(d["ess_bulk_min"], 0),
                    d["divergences"],
                    q.get("max_abs_diff_p"),
                    cell(
                        "passed" if not d["failures"] else "FAILED: " + "; ".join(d["failures"]),
                        bad=bool(d["failures"]),
                    ),
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
    if "subgroup_shrinkage" in r:
        d = r["subgroup_shrinkage"]["diagnostics"]
        out.append(
            p(
                f"Subgroup shrinkage model: max R-hat {d['rhat_max']:.3f}, min bulk ESS "
                f"{d['ess_bulk_min']:.0f}, "
                f"{d['divergences']} divergences — "
                + ("passed." if not d["failures"] else "FAILED: " + "; ".join(d["failures"]) + ".")
            )
        )
    return out


def effect_blocks(r, fig) -> list:
    out = []
    for name, ev in r["posteriors"].items():
        e = ev["evidence"]
        first = next(iter(ev["scenarios"].values()))
        below = sorted(first["p_hr_below"], key=float, reverse=True)
        above = sorted(first["p_hr_above"], key=float)
        out.append(
            h3(
                f"{name}"
                + (f" — {e['subgroup']}" if e.get("subgroup") else "")
                + f": published HR {e['hr']:.2f}"
            )
        )
        out.append(
            table(
                [
                    "scenario",
                    "prior",
                    "method",
                    "posterior HR (95% CrI)",
                    *[f"P(HR < {k})" for k in below],
                    *[f"P(HR > {k})" for k in above],
                ],
                [
                    [
                        sc,
                        s["prior"],
                        s["method"],
                        hr_text(s),
                        *[s["p_hr_below"][k] for k in below],
                        *[s["p_hr_above"][k] for k in above],
                    ]
                    for sc, s in ev["scenarios"].items()
                ],
            )
        )
    return out + fig("forest_scenarios")


def modification_blocks(r) -> list:
    c = r.get("subgroup_shrinkage", {}).get("contrasts", [])
    if not c:
        return [p("No subgroup contrasts: " + NO_IPD)]
    return [
        p(
            "From published subgroup estimates only the ratio of subgroup HRs can be assessed (no "
            "HR along a "
            "continuous biomarker without patient data)."
        ),
        table(
            [
                "contrast",
                "ratio of HRs after shrinkage (95% CrI)",
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


def subgroup_blocks(r, fig) -> list:
    sg = r.get("subgroup_shrinkage")
    if not sg:
        return [p("No subgroup shrinkage was requested.")]
    return [
        p(
            f"Hierarchical model: {sg['model']}. Between-subgroup SD τ: median "
            f"{sg['tau']['median']:.3f} "
            f"(95% CrI {sg['tau']['lower']:.3f} to {sg['tau']['upper']:.3f}). Overall μ: HR "
            f"{hr_text(sg['overall_mu'])}."
        ),
        table(
            [
                "subgroup",
                "share",
                "unshrunk HR (95% CI)",
                "P(HR < 1), unshrunk",
                "shrunk HR (95% CrI)",
                "P(HR < 1), shrunk",
            ],
            [
                [
                    g["subgroup"] or g["name"],
                    g["share"],
                    hr_text(g["unshrunk"]),
                    g["unshrunk"]["p_hr_below"]["1"],
                    hr_text(g["shrunk"]),
                    g["shrunk"]["p_hr_below"]["1"],
                ]
                for g in sg["groups"]
            ],
            "Subgroup estimates before and after shrinkage",
        ),
        *fig("subgroup_shrinkage"),
    ]


def sensitivity_blocks(r, fig) -> list:
    rows = []
    for name, ts in r["tipping_points"].items():
        for t in ts:
            rows.append([name, t["level"], t["p_flat"], t["sd"], t.get("note") or ""])
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


def next_trial_blocks(r, fig) -> list:
    out = [p("One evidence model per estimate: there are no competing models to compare.")]
    a = r.get("assurance")
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


def provenance_blocks(r) -> list:
    pv = r["provenance"]
    rows = [
        ["created", pv.get("created_at")],
        ["config", pv.get("config_path")],
        ["config hash", pv.get("config_hash")],
        ["seed", pv.get("seed")],
    ] + [[k, v] for k, v in pv.get("versions", {}).items()]
    return [
        table(["item", "value"], rows, "Provenance (full details in provenance.json)"),
        note("NUTS compilations in this run: " + str(r.get("nuts_compilations", "–"))),
    ]
