"""Writing a patient-level run: CSV tables, PNG figures, posterior netCDF, results.json,
provenance.json and report.md (a short statistical report that links the figures)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from . import figures, plots
from . import report_figures as rf
from .outputs import OutputDir

UNRELIABLE = "⚠ UNRELIABLE (failed the sampler diagnostics gate)"


def fmt_hr(s: dict) -> str:
    return f"{s['hr_median']:.2f} ({s['hr_lower']:.2f}–{s['hr_upper']:.2f})"


def fmt_p(s: dict, key="p_hr_below") -> str:
    return ", ".join(f"P(HR < {k}) = {v:.3f}" for k, v in s[key].items())


def md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    def cell(v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "–"
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v)
        return str(v)

    head = "| " + " | ".join(map(str, df.columns)) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def forest_rows(results: dict) -> list[dict]:
    """Forest rows grouped by model: posterior and Cox treatment HR, then the subgroups."""
    rows = []
    for name, m in results["models"].items():
        te = m["treatment_effect"]
        rows.append({"group": f"model {name}", "label": "treatment (posterior)", "hr": te["hr_median"],
                     "lower": te["hr_lower"], "upper": te["hr_upper"], "kind": "bayes", "p": te["p_hr_below"]["1"]})
        c = m["cox"]["terms"]["treatment"]
        rows.append({"group": f"model {name}", "label": "treatment (Cox)", "hr": c["hr"], "lower": c["hr_lower"],
                     "upper": c["hr_upper"], "kind": "cox"})
        for g in m.get("subgroups", {}).get("groups", []) if m["spec"]["biomarker"] else []:
            if "conditional" in g:
                s = g["conditional"]
                rows.append({"group": f"model {name}", "label": f"{m['subgroups']['biomarker']} {g['subgroup']} (n={g['n']})",
                             "hr": s["hr_median"], "lower": s["hr_lower"], "upper": s["hr_upper"], "kind": "bayes",
                             "p": s["p_hr_below"]["1"]})
    return rows


def write_patient_outputs(out: OutputDir, cfg, data, run, draws_by_model: dict, provenance: dict) -> None:
    results = run.results
    label = "SYNTHETIC DATA" if data.synthetic else None
    results["data"]["median_follow_up_reverse_km"] = figures.median_follow_up(data.frame["time"],
                                                                             data.frame["event"])
    provenance["data_label"] = data.label
    arm_labels = (data.control_label, data.treatment_label)
    figs: dict[str, str] = {}

    coef = pd.DataFrame([r for m in results["models"].values() for r in m["coefficients"]])
    out.write_csv("tables/coefficients.csv", coef)
    sub_rows = []
    for name, m in results["models"].items():
        for g in m.get("subgroups", {}).get("groups", []):
            for kind in ("conditional", "marginal"):
                if kind in g:
                    s = g[kind]
                    sub_rows.append({"model": name, "subgroup": g["subgroup"], "n": g["n"], "events": g["events"],
                                     "type": kind, "hr_median": s["hr_median"], "hr_lower": s["hr_lower"],
                                     "hr_upper": s["hr_upper"], **{f"p_hr_below_{k}": v for k, v in s["p_hr_below"].items()}})
    if sub_rows:
        out.write_csv("tables/subgroups.csv", pd.DataFrame(sub_rows))
    diag = pd.DataFrame([{"model": n, "reliable": m["reliable"], **{k: v for k, v in m["diagnostics"].items()
                                                                  if k not in ("thresholds", "failures")},
                          "failures": "; ".join(m["diagnostics"]["failures"])} for n, m in results["models"].items()])
    out.write_csv("tables/diagnostics.csv", diag)
    out.write_csv("tables/kaplan_meier.csv", run.tables["km"])
    if run.tables["loo"] is not None:
        out.write_csv("tables/loo.csv", run.tables["loo"])

    label_fig = label
    caps: dict[str, str] = {}
    for name, tabs in run.tables["per_model"].items():
        out.write_csv(f"tables/survival_{name}.csv", tabs["survival_curves"])
        if "hr_curve" in tabs:
            out.write_csv(f"tables/hr_curve_{name}.csv", tabs["hr_curve"])
        pem = run.models[name]
        prior = rf.prior_group(pem, cfg.sampler.seed)
        rf.attach_prior(pem.idata, prior)
        pem.idata.attrs["data_label"] = data.label
        pem.idata.to_netcdf(out.path(f"posterior/{name}.nc"), engine="h5netcdf")
        if cfg.report.figures:
            rf.model_figures(out, cfg, data, run, name, draws_by_model[name], prior, figs, caps, label_fig)
    if cfg.report.figures:
        rf._save(out, figs, caps, "forest", plots.forest_plot(forest_rows(results), label=label),
                 rf.forest_caption(), cfg.report.dpi)
    if data.reconstruction is not None:
        from .reconstruct import quality_plot

        out.write_csv("tables/reconstructed_ipd.csv", data.reconstruction["ipd"])
        if cfg.report.figures:
            colours = {data.control_label: plots.ARM_COLOURS[0], data.treatment_label: plots.ARM_COLOURS[1]}
            rf._save(out, figs, caps, "reconstruction_quality",
                     quality_plot(data.reconstruction["ipd"], data.reconstruction["curve"],
                                  data.reconstruction["percent"], colours=colours,
                                  time_unit=rf.units(cfg, data)[0]),
                     "Reconstruction quality: the digitised points (dots) against the Kaplan–Meier curve of "
                     "the reconstructed patient data (steps), per arm.", cfg.report.dpi)
    sens = run.tables.get("sensitivity")
    if sens is not None:
        out.write_csv("tables/sensitivity.csv", sens["table"])
        if len(sens["psense"]):
            out.write_csv("tables/psense.csv", sens["psense"])
        if cfg.report.figures:
            rf.sensitivity_figure(out, cfg, sens, figs, caps, label)

    results["figures"] = figs
    results["figure_captions"] = caps
    results["provenance"] = {k: v for k, v in provenance.items() if k not in ("timings_seconds", "wall_seconds", "config")}
    out.write_json("results.json", results)
    out.write_json("provenance.json", provenance)
    out.write_text("report.md", render_patient_report(results, cfg))
    if cfg.report.html:
        from .html_report import render
        from .report_views import view

        tu, cu = rf.units(cfg, data)
        out.write_text("report.html", render(view(results, out.staging, cfg, tu, cu)))


def summary_lines(r: dict) -> list[str]:
    """The run's key findings in plain sentences (also printed at the top of report.md)."""
    out = []
    for name, m in r["models"].items():
        te = m["treatment_effect"]
        flag = " (UNRELIABLE fit)" if not m["reliable"] else ""
        out.append(f"`{name}`{flag}: {te['estimand']} {fmt_hr(te)}; probability of benefit P(HR < 1) = "
                   f"{te['p_hr_below']['1']:.3f}" + (f", P(HR < 0.8) = {te['p_hr_below']['0.8']:.3f}" if "0.8" in te["p_hr_below"] else "") + ".")
        if "hr_curve" in m:
            hc = m["hr_curve"]
            reg = hc["benefit_region_p_gt_0.9"]
            cross = hc["median_hr_crosses_1_at"]
            at = [v["hr_median"] for v in hc["at"].values()]
            trend = "rises" if at[-1] > at[0] else "falls"
            out.append(f"`{name}`: the HR {trend} with {hc['biomarker']} ({min(hc['at'], key=float)}: {at[0]:.2f}, "
                       f"{max(hc['at'], key=float)}: {at[-1]:.2f})")
            out[-1] += (f"; P(HR < 1) > 0.9 for {hc['biomarker']} {reg[0]:.0f}–{reg[1]:.0f}" if reg else "; P(HR < 1) exceeds 0.9 nowhere")
            out[-1] += (f"; the posterior median HR reaches 1 near {cross:.0f}." if cross else ".")
            if "subgroups" in m:
                parts = [f"{g['subgroup']}: {fmt_hr(g['conditional'])}, P(benefit) {g['conditional']['p_hr_below']['1']:.2f}"
                         for g in m["subgroups"]["groups"] if "conditional" in g]
                out.append(f"`{name}` subgroups by {m['subgroups']['biomarker']} (conditional HR): " + "; ".join(parts) + ".")
    if r.get("loo", {}).get("table"):
        best = r["loo"]["table"][0]
        out.append(f"PSIS-LOO prefers `{best['model']}`" + (f" (difference to the next {r['loo']['table'][1]['elpd_diff']:.1f}, "
                                                           f"SE {r['loo']['table'][1]['dse']:.1f})." if len(r["loo"]["table"]) > 1 else "."))
    if not r["reliable"]:
        out.append(f"Sampler diagnostics failed for {', '.join(r['unreliable_models'])}: do not use those estimates.")
    return out


def render_patient_report(r: dict, cfg) -> str:
    L = []
    title = r["title"]
    L.append(f"# {title}")
    if r["synthetic"]:
        L.append(f"\n> **SYNTHETIC DATA.** {r['data_label']}. Every number below describes the synthetic cohort, not MIROCALS.\n")
    if not r["reliable"]:
        L.append(f"\n> **{UNRELIABLE}:** {', '.join(r['unreliable_models'])}. Their estimates are shown but must not be used.\n")
    L.append("## Summary")
    L.extend(f"- {line}" for line in summary_lines(r))
    d = r["data"]
    arms = d["by_arm"]
    L.append("\n## Data")
    L.append(f"{d['n']} patients, {d['events']} events; " + "; ".join(f"{a}: n = {v['n']}, events = {v['events']}" for a, v in arms.items())
             + f". Longest follow-up {d['max_follow_up']:g}. Source: {d['source']}. Data sha256 `{d['sha256'][:16]}…`.")
    if d["n_dropped_incomplete"]:
        L.append(f"Complete-case analysis: {d['n_dropped_incomplete']} incomplete rows were dropped.")
    for note in r.get("data_notes", []):
        L.append(f"Note: {note}.")
    if "reconstruction" in r:
        q = r["reconstruction"]
        L.append("\n### Reconstruction quality (Guyot et al. 2012)")
        L.append("These patient data were rebuilt from a digitised Kaplan–Meier figure: approximations of the real ones.\n")
        L.append(md_table(pd.DataFrame([{"arm": a, "n": v["n"], "events": v["events"], "published events": v.get("published_events", "–"),
                                         "KM max |diff|": v["km_max_abs_diff"], "KM RMS diff": v["km_rms_diff"],
                                         "n at risk max rel. diff": v["n_at_risk_max_rel_diff"]} for a, v in q["arms"].items()])))
        if "cox" in q:
            c = q["cox"]
            L.append(f"\nCox HR of the reconstructed data ({c['treatment_arm']} vs the other arm): {c['hr']:.3f} ({c['hr_lower']:.3f}–{c['hr_upper']:.3f}).")
        L.append("\n" + ("**Poor agreement:** " + "; ".join(q["warnings"]) if q["warnings"] else "Agreement within the thresholds (KM 0.05, numbers at risk and events 5%)."))
        if "reconstruction_quality" in r.get("figures", {}):
            L.append(f"\n![Reconstruction quality]({r['figures']['reconstruction_quality']})")
    L.append(f"\nSign convention: {r['sign_convention']}.")

    L.append("\n## Treatment effect")
    rows = []
    for name, m in r["models"].items():
        te, cx = m["treatment_effect"], m["cox"]["terms"]["treatment"]
        rows.append({"model": name + ("" if m["reliable"] else " ⚠"), "estimand": te["estimand"], "posterior HR (95% CrI)": fmt_hr(te),
                     **{f"P(HR<{k})": v for k, v in te["p_hr_below"].items()},
                     "Cox HR (95% CI)": f"{cx['hr']:.2f} ({cx['hr_lower']:.2f}–{cx['hr_upper']:.2f})"})
    L.append(md_table(pd.DataFrame(rows)))
    if "forest" in r.get("figures", {}):
        L.append(f"\n![Forest plot]({r['figures']['forest']})")

    for name, m in r["models"].items():
        L.append(f"\n## Model `{name}`" + ("" if m["reliable"] else f" — {UNRELIABLE}"))
        s = m["spec"]
        covs = s["covariates"] if s["covariates"] != "all" else "all"
        L.append(f"Piecewise-exponential PH, {m['n_intervals']} baseline intervals; covariates: {covs or 'none'}; "
                 f"centre frailty: {'yes' if s['centre_frailty'] else 'no'}; interaction: {s['interaction']}"
                 + (f" with {s['biomarker']}" if s["biomarker"] else "") + f". Sampler: {m['sampler']}.")
        L.append("Priors: " + "; ".join(f"{k} ~ {v}" for k, v in m["priors"].items()) + ".")
        dg = m["diagnostics"]
        L.append(f"Diagnostics: max R-hat {dg['rhat_max']:.3f}, min bulk ESS {dg['ess_bulk_min']:.0f}, min tail ESS "
                 f"{dg['ess_tail_min']:.0f}, divergences {dg['divergences']}, min E-BFMI {dg['bfmi_min']:.2f}"
                 + (" — **failed: " + "; ".join(dg["failures"]) + "**" if dg["failures"] else " — passed") + ".")
        te = m["treatment_effect"]
        L.append(f"\n{te['estimand']}: **{fmt_hr(te)}**; {fmt_p(te)}; {fmt_p(te, 'p_hr_above')}.")
        coef = pd.DataFrame(m["coefficients"])[["term", "post_hr_median", "post_hr_lower", "post_hr_upper", "post_p_hr_below_1",
                                                "cox_hr", "cox_hr_lower", "cox_hr_upper"]]
        L.append("\nCoefficients (HR per SD for covariates), posterior beside Cox:\n")
        L.append(md_table(coef))
        if "hr_curve" in m:
            hc = m["hr_curve"]
            L.append(f"\nHR by {hc['biomarker']} ({hc['kind']}, {hc['transform']} scale):")
            L.append(md_table(pd.DataFrame([{hc["biomarker"]: k, "HR (95% CrI)": fmt_hr(v), "P(HR<1)": v["p_hr_below"]["1"]}
                                            for k, v in hc["at"].items()])))
            reg = hc["benefit_region_p_gt_0.9"]
            L.append(f"\nP(HR < 1) > 0.9 for {hc['biomarker']} in {reg[0]:.0f}–{reg[1]:.0f}." if reg else
                     f"\nP(HR < 1) exceeds 0.9 nowhere on the {hc['biomarker']} range.")
            if f"hr_curve_{name}" in r.get("figures", {}):
                L.append(f"\n![HR by {hc['biomarker']}]({r['figures'][f'hr_curve_{name}']})")
        if "subgroups" in m:
            sg = m["subgroups"]
            rows = []
            for g in sg["groups"]:
                if "conditional" not in g:
                    continue
                rows.append({"subgroup": f"{sg['biomarker']} {g['subgroup']}", "n": g["n"], "events": g["events"],
                             "conditional HR": fmt_hr(g["conditional"]), "P(HR<1) cond.": g["conditional"]["p_hr_below"]["1"],
                             "marginal HR": fmt_hr(g["marginal"]), "P(HR<1) marg.": g["marginal"]["p_hr_below"]["1"]})
            L.append("\nSubgroups (conditional: mean patient log-HR; marginal: standardised over the subgroup at the landmark):\n")
            L.append(md_table(pd.DataFrame(rows)))
        sv = m["survival"]
        L.append(f"\nStandardised survival at {sv['landmark']:g}: treatment {sv['survival_treatment']['median']:.3f}, control "
                 f"{sv['survival_control']['median']:.3f}, difference {sv['survival_difference']['median']:+.3f} "
                 f"({sv['survival_difference']['lower']:+.3f} to {sv['survival_difference']['upper']:+.3f}); "
                 f"RMST difference {sv['rmst_difference']['median']:+.1f} ({sv['rmst_difference']['lower']:+.1f} to "
                 f"{sv['rmst_difference']['upper']:+.1f}) time units.")
        for key, cap in ((f"hr_posterior_{name}", "Posterior of the HR"), (f"survival_{name}", "Survival")):
            if key in r.get("figures", {}):
                L.append(f"\n![{cap}]({r['figures'][key]})")

    if "sensitivity" in r:
        sv = r["sensitivity"]
        L.append("\n## Prior sensitivity")
        L.append("Each model refitted under named scenarios for its treatment (and interaction) coefficient; "
                 "compilations per model: " + ", ".join(f"{k}: {v['compilations']} ({v['during_scenarios']} during the refits)"
                                                     for k, v in sv["compile_counts"].items()) + ".\n")
        L.append(md_table(pd.DataFrame(sv["scenarios"])))
        keep = ["model", "scenario", "hr_median", "hr_lower", "hr_upper"] + [k for k in sv["table"][0] if k.startswith("p_hr_below")] + ["reliable"]
        L.append("\n" + md_table(pd.DataFrame(sv["table"])[[k for k in keep if k in sv["table"][0]]]))
        if sv["unreliable_refits"]:
            L.append(f"\n⚠ Refits that failed the diagnostics gate: {sv['unreliable_refits']}")
        if sv["psense"]:
            L.append("\nPower-scaling sensitivity (ArviZ psense; a value above 0.05 flags sensitivity):\n")
            L.append(md_table(pd.DataFrame(sv["psense"])))
        if "sensitivity" in r.get("figures", {}):
            L.append(f"\n![Prior sensitivity]({r['figures']['sensitivity']})")
    km = r["kaplan_meier"]
    if km["survival_control"] is not None:
        L.append(f"\nKaplan–Meier at {km['landmark']:g}: control {km['survival_control']:.3f}, treatment {km['survival_treatment']:.3f}.")
    if r["loo"]["table"]:
        L.append("\n## Model comparison (PSIS-LOO)")
        L.append(md_table(pd.DataFrame(r["loo"]["table"])))
        bad = {n: v for n, v in r["loo"]["pareto_k"].items() if v["n_k_above_0.7"]}
        if bad:
            L.append("\nPareto k > 0.7 for some patients (LOO less reliable): " + ", ".join(f"{n}: {v['n_k_above_0.7']}" for n, v in bad.items()))
    if r.get("synthetic_truth"):
        t = r["synthetic_truth"]
        L.append("\n## Synthetic truth")
        L.append(f"Generated with log HR(x) = {t['log_hr_intercept']:.3f} + {t['log_hr_slope_per_pgml']:g}·x (x = pNFH, pg/mL); "
                 f"true HR at 2000 pg/mL = {np.exp(t['log_hr_intercept'] + 2000 * t['log_hr_slope_per_pgml']):.2f}, "
                 f"at 5000 = {np.exp(t['log_hr_intercept'] + 5000 * t['log_hr_slope_per_pgml']):.2f}.")
    p = r["provenance"]
    L.append("\n## Provenance")
    L.append(f"Config hash `{p['config_hash'][:16]}…`; seeds {p['seeds']}; "
             + ", ".join(f"{k} {v}" for k, v in p["versions"].items()) + ". Full details in `provenance.json`.")
    return "\n".join(L) + "\n"
