"""What report.html shows, in the order a statistician expects: plain-language summary; data;
models and priors; diagnostics; treatment effects; effect modification; subgroups; survival and
RMST; prior sensitivity; model comparison; provenance.

:func:`view` is the one adapter from a run's results (the ``results.json`` content) to the report
view rendered by ``html_report``; it dispatches on the route (patient-level — including
reconstructed data — or published estimates). Published runs are in ``report_views_published``.
"""

from __future__ import annotations

from pathlib import Path

from .html_report import Figures, bullets, cell, h3, note, p, section, table

MISSING = {
    "error": "no missing values allowed: a missing value in a used column stops the run "
    "before fitting",
    "complete_case": "complete-case analysis: rows with a missing value in a used column "
    "are dropped",
}


def hr_text(s: dict) -> str:
    return f"{s['hr_median']:.2f} ({s['hr_lower']:.2f} to {s['hr_upper']:.2f})"


def plain(line: str) -> str:
    return line.replace("`", "")


def view(
    results: dict,
    root: Path,
    cfg=None,
    time_unit: str = "time units",
    col_units: dict | None = None,
) -> dict:
    """The report view of a run (patient-level or published); ``root`` holds its figures."""
    if results.get("kind") == "published":
        from .report_views_published import published_view

        return published_view(results, root)
    return patient_view(results, root, cfg, time_unit, col_units or {})


def banners(r: dict) -> list[dict]:
    out = []
    if r.get("synthetic"):
        out.append(
            {
                "kind": "synthetic",
                "text": f"SYNTHETIC DATA. {r['data_label']}. Every number below "
                "describes the synthetic cohort, not a real trial.",
            }
        )
    if not r["reliable"]:
        out.append(
            {
                "kind": "unreliable",
                "text": "UNRELIABLE: "
                + ", ".join(r["unreliable_models"])
                + " failed the sampler diagnostics gate. Their estimates are shown but must not "
                "be used.",
            }
        )
    return out


def patient_view(r: dict, root: Path, cfg, tu: str, cu: dict) -> dict:
    from .report import summary_lines

    fig = Figures(root, r.get("figures", {}), r.get("figure_captions", {}))
    secs = [
        section(
            "summary",
            "Summary in plain language",
            [bullets(plain(x) for x in summary_lines(r)), p(r["sign_convention"] + ".")],
        ),
        section("data", "Data", data_blocks(r, cfg, tu, fig)),
        section("models", "Models and priors", model_blocks(r)),
        section("diagnostics", "Sampler diagnostics", diagnostics_blocks(r)),
        section("effects", "Treatment effects", effect_blocks(r, fig)),
        section("modification", "Effect modification", modification_blocks(r, cu, fig)),
        section("subgroups", "Subgroups", subgroup_blocks(r, cu)),
        section(
            "survival", "Survival and restricted mean survival time", survival_blocks(r, tu, fig)
        ),
        section("sensitivity", "Prior sensitivity", sensitivity_blocks(r, fig)),
        section("comparison", "Model comparison", comparison_blocks(r)),
        section("provenance", "Provenance", provenance_blocks(r)),
    ]
    return {
        "title": r["title"],
        "subtitle": f"Bayesian reanalysis — {r['data']['source']}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r["provenance"].get("created_at", ""),
    }


def data_blocks(r, cfg, tu, fig) -> list:
    d = r["data"]
    rows = [[arm, v["n"], v["events"]] for arm, v in d["by_arm"].items()] + [
        ["all", d["n"], d["events"]]
    ]
    out = [
        p(
            f"{d['n']} patients, {d['events']} events; "
            + (
                f"median follow-up {d['median_follow_up_reverse_km']:.4g} {tu} (reverse Kaplan–Meier), "
                if d.get("median_follow_up_reverse_km")
                else ""
            )
            + f"longest follow-up {d['max_follow_up']:g} {tu}. "
            f"Source: {d['source']}. Data SHA-256 {d['sha256'][:16]}…"
        ),
        table(["arm", "patients", "events"], rows, "Patients and events by arm"),
    ]
    how = MISSING.get(getattr(getattr(cfg, "data", None), "missing", "error"), "")
    dropped = d.get("n_dropped_incomplete") or 0
    out.append(
        p(
            f"Missing values: {how}"
            + (f"; {dropped} rows were dropped." if dropped else "; none were dropped.")
        )
    )
    out += [p(f"Note: {n}.") for n in r.get("data_notes", [])]
    if "reconstruction" in r:
        q = r["reconstruction"]
        out.append(h3("Reconstruction from a digitised Kaplan–Meier figure (Guyot et al. 2012)"))
        out.append(
            note(
                "These patient data were rebuilt from a published figure: an approximation of the "
                "real ones."
            )
        )
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
                        v["n"],
                        v["events"],
                        v.get("published_events"),
                        v["km_max_abs_diff"],
                        v["km_rms_diff"],
                        v["n_at_risk_max_rel_diff"],
                    ]
                    for a, v in q["arms"].items()
                ],
                "Reconstruction quality",
            )
        )
        if q.get("warnings"):
            out.append(note("Poor agreement: " + "; ".join(q["warnings"]), "unreliable"))
        out += fig("reconstruction_quality")
    return out


def _covariates(m) -> str:
    skip = ("treatment",)
    names = [
        c["term"] for c in m["coefficients"] if c["term"] not in skip and "(per SD" not in c["term"]
    ]
    return ", ".join(names) or "none"


def model_blocks(r) -> list:
    rows = []
    for name, m in r["models"].items():
        s = m["spec"]
        rows.append(
            [
                name,
                _covariates(m),
                "yes" if s["centre_frailty"] else "no",
                s["interaction"] + (f" with {s['biomarker']}" if s["biomarker"] else ""),
                m["n_intervals"],
                m["sampler"] or "–",
            ]
        )
    out = [
        p(
            "Piecewise-exponential proportional-hazards models (log-hazard constant within each "
            "baseline "
            "interval, a random walk across intervals), fitted by NUTS. Covariates are "
            "standardised."
        ),
        table(
            [
                "model",
                "covariates",
                "centre frailty",
                "effect modification",
                "baseline intervals",
                "sampler",
            ],
            rows,
            "Models",
        ),
    ]
    terms = sorted({t for m in r["models"].values() for t in m["priors"]})
    prow = [[t] + [m["priors"].get(t, "–") for m in r["models"].values()] for t in terms]
    out.append(
        table(["term"] + list(r["models"]), prow, "Priors by model (log-HR scale for effects)")
    )
    return out


def diagnostics_blocks(r) -> list:
    first = next(iter(r["models"].values()))["diagnostics"]["thresholds"]
    out = [
        p(
            f"The gate: max R-hat ≤ {first['rhat_max']}, bulk and tail ESS ≥ "
            f"{first['ess_bulk_min']:g} / "
            f"{first['ess_tail_min']:g}, at most {first['max_divergences']} divergent "
            "transitions, E-BFMI ≥ "
            f"{first['bfmi_min']}. A model that fails is marked UNRELIABLE everywhere."
        )
    ]
    rows = []
    for name, m in r["models"].items():
        d = m["diagnostics"]
        rows.append(
            [
                name,
                cell(d["rhat_max"]),
                cell(d["ess_bulk_min"], 0),
                cell(d["ess_tail_min"], 0),
                d["divergences"],
                cell(d["bfmi_min"], 2),
                d["n_draws"],
                cell(
                    "passed" if not d["failures"] else "FAILED: " + "; ".join(d["failures"]),
                    bad=bool(d["failures"]),
                ),
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


def effect_blocks(r, fig) -> list:
    thr = sorted(
        {k for m in r["models"].values() for k in m["treatment_effect"]["p_hr_below"]},
        key=float,
        reverse=True,
    )
    harm = sorted(
        {k for m in r["models"].values() for k in m["treatment_effect"]["p_hr_above"]}, key=float
    )
    rows = []
    for name, m in r["models"].items():
        te, cx = m["treatment_effect"], m["cox"]["terms"]["treatment"]
        rows.append(
            [
                name + ("" if m["reliable"] else " (UNRELIABLE)"),
                te["estimand"],
                hr_text(te),
                *[te["p_hr_below"].get(k) for k in thr],
                *[te["p_hr_above"].get(k) for k in harm],
                hr_text(
                    {"hr_median": cx["hr"], "hr_lower": cx["hr_lower"], "hr_upper": cx["hr_upper"]}
                ),
            ]
        )
    lvl = next(iter(r["models"].values()))["treatment_effect"]["cri_level"]
    out = [
        table(
            [
                "model",
                "estimand",
                f"posterior HR ({lvl:.0%} CrI)",
                *[f"P(HR < {k})" for k in thr],
                *[f"P(HR > {k})" for k in harm],
                "Cox HR (95% CI)",
            ],
            rows,
            "Treatment hazard ratio, by model",
        )
    ]
    out += fig("forest")
    for name, m in r["models"].items():
        out.append(
            h3(f"Model {name}: all coefficients (HR per SD for covariates), posterior beside Cox")
        )
        out.append(
            table(
                [
                    "term",
                    "posterior HR median",
                    "posterior 95% CrI",
                    "P(HR < 1)",
                    "Cox HR",
                    "Cox 95% CI",
                    "Cox p",
                ],
                [
                    [
                        c["term"],
                        c["post_hr_median"],
                        f"{c['post_hr_lower']:.3f} to {c['post_hr_upper']:.3f}",
                        c["post_p_hr_below_1"],
                        c["cox_hr"],
                        f"{c['cox_hr_lower']:.3f} to {c['cox_hr_upper']:.3f}"
                        if c["cox_hr"] is not None
                        else None,
                        c["cox_p"],
                    ]
                    for c in m["coefficients"]
                ],
            )
        )
        out += fig(f"hr_posterior_{name}")
    return out


def modification_blocks(r, cu, fig) -> list:
    out = []
    for name, m in r["models"].items():
        if "hr_curve" not in m:
            continue
        hc = m["hr_curve"]
        b = hc["biomarker"]
        unit = f" ({cu[b]})" if b in cu else ""
        out.append(
            h3(f"Model {name}: HR along {b}{unit} ({hc['kind']} on the {hc['transform']} scale)")
        )
        reg = hc["benefit_region_p_gt_0.9"]
        out.append(
            p(
                (
                    f"P(HR < 1) > 0.9 for {b} from {reg[0]:.0f} to {reg[1]:.0f}{unit}"
                    if reg
                    else f"P(HR < 1) exceeds 0.9 nowhere on the observed {b} range"
                )
                + (
                    f"; the posterior median HR reaches 1 near {hc['median_hr_crosses_1_at']:.0f}."
                    if hc["median_hr_crosses_1_at"]
                    else "."
                )
            )
        )
        ks = sorted(next(iter(hc["at"].values()))["p_hr_below"], key=float, reverse=True)
        out.append(
            table(
                [f"{b}{unit}", "HR (95% CrI)", *[f"P(HR < {k})" for k in ks]],
                [[x, hr_text(v), *[v["p_hr_below"][k] for k in ks]] for x, v in hc["at"].items()],
            )
        )
        out += fig(f"hr_curve_{name}")
    return out or [p("No model has a treatment × biomarker interaction.")]


def subgroup_blocks(r, cu) -> list:
    out = []
    for name, m in r["models"].items():
        if "subgroups" not in m:
            continue
        sg = m["subgroups"]
        rows = [
            [
                f"{sg['biomarker']} {g['subgroup']}",
                g["n"],
                g["events"],
                hr_text(g["conditional"]),
                g["conditional"]["p_hr_below"]["1"],
                hr_text(g["marginal"]),
                g["marginal"]["p_hr_below"]["1"],
            ]
            for g in sg["groups"]
            if "conditional" in g
        ]
        if rows:
            unit = f" ({cu[sg['biomarker']]})" if sg["biomarker"] in cu else ""
            out.append(
                table(
                    [
                        "subgroup" + unit,
                        "patients",
                        "events",
                        "conditional HR (95% CrI)",
                        "P(HR < 1), conditional",
                        "marginal HR (95% CrI)",
                        "P(HR < 1), marginal",
                    ],
                    rows,
                    f"Model {name}",
                )
            )
    if out:
        out.insert(
            0,
            p(
                "Conditional: the mean patient log-HR in the subgroup; marginal: standardised "
                "over the "
                "subgroup's patients at the landmark."
            ),
        )
    return out or [p("No biomarker subgroups were requested.")]


def survival_blocks(r, tu, fig) -> list:
    rows = []
    for name, m in r["models"].items():
        s = m["survival"]
        sd, rd = s["survival_difference"], s["rmst_difference"]
        rows.append(
            [
                name,
                s["survival_control"]["median"],
                s["survival_treatment"]["median"],
                f"{sd['median']:+.3f} ({sd['lower']:+.3f} to {sd['upper']:+.3f})",
                sd["p_positive"],
                f"{rd['median']:+.1f} ({rd['lower']:+.1f} to {rd['upper']:+.1f})",
                rd["p_positive"],
            ]
        )
    lm = next(iter(r["models"].values()))["survival"]["landmark"]
    out = [
        table(
            [
                "model",
                "control survival",
                "treatment survival",
                "difference (95% CrI)",
                "P(difference > 0)",
                f"RMST difference, {tu} (95% CrI)",
                "P(RMST difference > 0)",
            ],
            rows,
            f"Standardised survival at the landmark ({lm:g} {tu}) and RMST up to it",
        )
    ]
    km = r["kaplan_meier"]
    if km["survival_control"] is not None:
        out.append(
            p(
                f"Kaplan–Meier at {km['landmark']:g} {tu}: control {km['survival_control']:.3f}, "
                f"treatment {km['survival_treatment']:.3f}."
            )
        )
    for name in r["models"]:
        out += fig(f"survival_{name}")
    return out


def sensitivity_blocks(r, fig) -> list:
    out = []
    for name in r["models"]:
        out += fig(f"prior_posterior_{name}")
    sv = r.get("sensitivity")
    if not sv:
        out.append(p("No prior-scenario refits were requested (sensitivity.enabled: false)."))
        return out
    out.append(
        table(
            ["scenario", "kind", "treatment prior"],
            [[s["name"], s["kind"], s["treatment_prior"]] for s in sv["scenarios"]],
            "Prior scenarios",
        )
    )
    ps = [k for k in sv["table"][0] if k.startswith("p_hr_below_") and "_at_" not in k]
    out.append(
        table(
            [
                "model",
                "scenario",
                "HR (95% CrI)",
                *[f"P(HR < {k.removeprefix('p_hr_below_')})" for k in ps],
                "reliable",
            ],
            [
                [t["model"], t["scenario"], hr_text(t), *[t[k] for k in ps], t["reliable"]]
                for t in sv["table"]
            ],
            "Treatment HR under each scenario",
        )
    )
    out += fig("sensitivity")
    if sv.get("psense"):
        cols = list(sv["psense"][0])
        out.append(
            table(
                cols,
                [[row[c] for c in cols] for row in sv["psense"]],
                "Power-scaling sensitivity (ArviZ psense; above 0.05 flags sensitivity)",
            )
        )
    return out


def comparison_blocks(r) -> list:
    t = r["loo"]["table"]
    if not t:
        return [p("One model only: no comparison.")]
    rows = [
        [x["model"], x["elpd"], x["se"], x["elpd_diff"], x["dse"], x["p"], x["weight"]] for x in t
    ]
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
        )
    ]
    bad = {n: v for n, v in r["loo"]["pareto_k"].items() if v["n_k_above_0.7"]}
    if bad:
        out.append(
            note(
                "Pareto k > 0.7 for some patients (LOO less reliable there): "
                + ", ".join(f"{n}: {v['n_k_above_0.7']}" for n, v in bad.items()),
                "synthetic",
            )
        )
    return out


def provenance_blocks(r) -> list:
    pv = r["provenance"]
    rows = [
        ["created", pv.get("created_at")],
        ["config", pv.get("config_path")],
        ["config hash", pv.get("config_hash")],
        ["data SHA-256", pv.get("data_sha256")],
        [
            "seeds",
            ", ".join(f"{k}: {v}" for k, v in pv.get("seeds", {}).items())
            if "seeds" in pv
            else pv.get("seed"),
        ],
    ]
    rows += [[k, v] for k, v in pv.get("versions", {}).items()]
    out = [table(["item", "value"], rows, "Provenance (full details in provenance.json)")]
    if r.get("synthetic_truth"):
        t = r["synthetic_truth"]
        out.append(
            p(
                f"Synthetic truth: log HR(x) = {t['log_hr_intercept']:.3f} + "
                f"{t['log_hr_slope_per_pgml']:g}·x "
                "(x = pNFH, pg/mL)."
            )
        )
    return out
