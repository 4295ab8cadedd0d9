"""The published-estimates analysis: scenarios × estimates, prior grid, tipping points, subgroup
shrinkage, probability of success; written like a patient-level run (results.json, CSV, PNG, report)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import assurance as pos
from . import plots, progress
from .analysis import SCHEMA_VERSION, RunResult
from .config import Config
from .inference import stack_versions
from .outputs import OutputDir
from .priors import default_scenarios, describe, parse_prior, scenario_prior
from .published import PublishedSampler, posterior, prior_grid, scenario_table_row, tipping_point
from .report import md_table
from .subgroups import shrink


def run_published(cfg: Config, out_root: str | Path = "outputs", config_path: str | None = None,
                  write: bool = True) -> RunResult:
    t0 = time.perf_counter()
    p, e = cfg.published, cfg.estimands
    thr, harm, prob = tuple(e.hr_thresholds), e.harm_threshold, e.ci_prob
    evs = {x.name: x.evidence() for x in cfg.data.estimates}
    chosen = [evs[n] for n in (p.estimates or list(evs))]
    scenarios = p.scenarios or default_scenarios(p.design_hr)
    sampler = PublishedSampler(chains=4, draws=p.nuts_draws // 4, tune=1000, seed=cfg.sampler.seed)

    with progress.phase(f"posteriors of {len(chosen)} estimates under {len(scenarios)} prior scenarios"):
        posteriors, table = scenario_posteriors(chosen, scenarios, (thr, harm, prob), sampler, cfg.sampler.seed)

    means, sds = p.grid_mean.values(), p.grid_sd.values()
    grids = {ev.name: prior_grid(ev, means, sds) for ev in chosen}
    tipping = {ev.name: [tipping_point(ev, lv, p.design_hr) for lv in p.tipping_levels] for ev in chosen}

    results = {
        "schema_version": SCHEMA_VERSION, "config_name": cfg.name, "title": cfg.title or cfg.name, "kind": "published",
        "synthetic": False, "data_label": cfg.data.label,
        "sign_convention": "HR = hazard(treatment) / hazard(control); HR < 1 favours treatment",
        "evidence_model": "log HR_hat ~ N(log HR, se^2); se from the CI as (log upper - log lower) / (2 z)",
        "scenarios": [{"name": s.name, "kind": s.kind, "prior": describe(scenario_prior(s))} for s in scenarios],
        "posteriors": posteriors,
        "tipping_points": tipping,
        "prior_grid": {"means": means.tolist(), "sds": sds.tolist(), "threshold": 1.0},
        "nuts_compilations": sampler.compile_count,
    }
    shrunk = None
    if p.subgroups is not None:
        progress.say("subgroup shrinkage (hierarchical model)")
        names = p.subgroups.estimates or [n for n, v in evs.items() if v.subgroup]
        if len(names) >= 2:
            mu_prior = parse_prior("treatment", p.subgroups.mu_prior) if p.subgroups.mu_prior else None
            shrunk = shrink([evs[n] for n in names], p.subgroups.tau_sigma, mu_prior, thr, harm, prob, seed=cfg.sampler.seed)
            results["subgroup_shrinkage"] = {k: v for k, v in shrunk.items() if not k.startswith("_")}
    if p.assurance is not None:
        results["assurance"] = assurance_section(p.assurance, evs, posteriors, shrunk)
    reliable = all(s.get("diagnostics", {}).get("reliable", True) for ev in posteriors.values() for s in ev["scenarios"].values())
    if shrunk is not None:
        reliable = reliable and shrunk["diagnostics"]["reliable"]
    results["reliable"] = reliable
    results["unreliable_models"] = [] if reliable else ["published NUTS posteriors (see diagnostics)"]
    run = RunResult(results=results, out_dir=None, reliable=reliable, tables={"posteriors": table, "grids": grids})
    if write:
        provenance = {"created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"), "config_path": config_path,
                      "config_hash": cfg.hash(), "config": cfg.model_dump(mode="json"), "seed": cfg.sampler.seed,
                      "versions": stack_versions(), "wall_seconds": round(time.perf_counter() - t0, 2)}
        with progress.phase("writing tables, figures and reports"), OutputDir(out_root, cfg.name) as out:
            _write(out, cfg, run, chosen, means, sds, shrunk, provenance)
            run.out_dir = out.commit()
    return run


def scenario_posteriors(chosen, scenarios, summary: tuple, sampler, seed: int) -> tuple[dict, pd.DataFrame]:
    """Posterior of every estimate under every scenario; ``summary`` = (thresholds, harm, prob)."""
    thr, harm, prob = summary
    posteriors: dict[str, dict] = {}
    rows = []
    for ev in chosen:
        posteriors[ev.name] = {"evidence": {"log_hr": ev.log_hr, "se": ev.se, "hr": ev.hr, "subgroup": ev.subgroup,
                                            "share": ev.share}, "scenarios": {}}
        for i, sc in enumerate(scenarios):
            prior = scenario_prior(sc)
            post = posterior(ev, prior, thr, harm, prob, sampler, seed=seed + i)
            posteriors[ev.name]["scenarios"][sc.name] = {"prior": describe(prior), "kind": sc.kind, **post}
            rows.append(scenario_table_row(ev, sc.name, prior, post))
    return posteriors, pd.DataFrame(rows)


def _posterior_of(name, scenario, posteriors, shrunk):
    """(mean, sd, draws or None) of a log-HR posterior used for assurance."""
    if shrunk is not None and name in [g["name"] for g in shrunk["groups"]]:
        j = [g["name"] for g in shrunk["groups"]].index(name)
        d = shrunk["_draws"]["theta"][:, j]
        return float(d.mean()), float(d.std(ddof=1)), d, f"shrunken subgroup posterior ({name})"
    s = posteriors[name]["scenarios"][scenario]
    return s["log_hr_mean"], s["log_hr_sd"], None, f"{name} under the {scenario} prior"


def assurance_section(a, evs, posteriors, shrunk) -> dict:
    designs = {"all-comers": a.overall}
    if a.enriched:
        designs[f"enriched ({a.enriched})"] = a.enriched
    out = {"alpha_one_sided": a.alpha, "allocation": a.allocation, "target_hr": a.target_hr, "designs": {}}
    for label, name in designs.items():
        m, sd, draws, source = _posterior_of(name, a.scenario, posteriors, shrunk)
        if draws is not None:  # the shrunken subgroup posterior: average over its draws
            def at(d, draws=draws):
                return pos.assurance_draws(draws, d, a.allocation, a.alpha)

            def below(d, draws=draws):
                return pos.prob_estimate_below_draws(draws, d, a.target_hr, a.allocation)
            limit = float(np.mean(draws < 0))
        else:  # a closed-form normal posterior
            def at(d, m=m, sd=sd):
                return pos.assurance(m, sd, d, a.allocation, a.alpha)

            def below(d, m=m, sd=sd):
                return pos.prob_estimate_below(m, sd, d, a.target_hr, a.allocation)
            limit = float(stats.norm.cdf(-m / sd))
        by_events = []
        for d in a.events:
            by_events.append({"events": d, "assurance": at(d), "p_hr_estimate_below_target": below(d),
                              "power_at_posterior_mean": pos.power(m, d, a.allocation, a.alpha)})
        out["designs"][label] = {
            "posterior": source, "log_hr_mean": m, "log_hr_sd": sd, "share": evs[name].share,
            "by_events": by_events,
            "events_needed": {f"{lv:g}": pos.events_for(at, lv, limit) for lv in a.levels},
            "assurance_limit": limit,
        }
    return out


def _write(out: OutputDir, cfg, run: RunResult, chosen, means, sds, shrunk, provenance) -> None:
    r = run.results
    dpi = cfg.report.dpi
    out.write_csv("tables/posteriors.csv", run.tables["posteriors"])
    grid_rows = [{"estimate": n, "prior_mean": m, "prior_sd": s, "p_hr_below_1": g[i, j]}
                 for n, g in run.tables["grids"].items() for i, s in enumerate(sds) for j, m in enumerate(means)]
    out.write_csv("tables/prior_grid.csv", pd.DataFrame(grid_rows))
    out.write_csv("tables/tipping_points.csv", pd.DataFrame([{"estimate": n, **{k: v for k, v in t.items()}}
                                                             for n, ts in r["tipping_points"].items() for t in ts]))
    figs, caps = {}, {}
    if cfg.report.figures:
        plots.save(plots.forest_plot(scenario_forest_rows(r, chosen, cfg.estimands.ci_prob),
                                     title="Published estimates: posterior HR by prior scenario"),
                   out.path("figures/forest_scenarios.png"), dpi)
        figs["forest_scenarios"] = "figures/forest_scenarios.png"
        caps["forest_scenarios"] = ("Each published estimate (square, its confidence interval) and its posterior "
                                    "under every prior scenario (circle, median and 95% CrI), grouped by estimate; "
                                    "right: posterior P(HR < 1).")
        fig = plots.prior_grid_panels(run.tables["grids"], means, sds, r["tipping_points"])
        plots.save(fig, out.path("figures/prior_grid.png"), dpi)
        figs["prior_grid"] = "figures/prior_grid.png"
        caps["prior_grid"] = ("P(HR < 1) over a grid of normal priors on the log-HR (mean across, SD up), per "
                              "estimate; contours at 0.5, 0.9 and 0.95; dots: tipping-point SDs of a centred prior.")
    if shrunk is not None:
        sg = r["subgroup_shrinkage"]
        srows = []
        for g in sg["groups"]:
            u, s = g["unshrunk"], g["shrunk"]
            srows.append({"estimate": g["name"], "subgroup": g["subgroup"], "share": g["share"],
                          "unshrunk_hr": u["hr_median"], "unshrunk_lower": u["hr_lower"], "unshrunk_upper": u["hr_upper"],
                          "unshrunk_p_hr_below_1": u["p_hr_below"]["1"], "shrunk_hr": s["hr_median"],
                          "shrunk_lower": s["hr_lower"], "shrunk_upper": s["hr_upper"], "shrunk_p_hr_below_1": s["p_hr_below"]["1"]})
        out.write_csv("tables/subgroup_shrinkage.csv", pd.DataFrame(srows))
        if cfg.report.figures:
            rows = []
            for g in sg["groups"]:
                u, s = g["unshrunk"], g["shrunk"]
                grp = g["name"] + (f" ({g['subgroup']})" if g.get("subgroup") else "")
                rows.append({"group": grp, "label": "as published", "hr": u["hr_median"], "lower": u["hr_lower"],
                             "upper": u["hr_upper"], "kind": "unshrunk", "p": u["p_hr_below"]["1"]})
                rows.append({"group": grp, "label": "shrunk", "hr": s["hr_median"], "lower": s["hr_lower"],
                             "upper": s["hr_upper"], "kind": "shrunk", "p": s["p_hr_below"]["1"]})
            o = sg["overall_mu"]
            rows.append({"group": "overall", "label": "μ (mean of the subgroups)", "hr": o["hr_median"],
                         "lower": o["hr_lower"], "upper": o["hr_upper"], "kind": "shrunk", "p": o["p_hr_below"]["1"]})
            plots.save(plots.forest_plot(rows, title="Subgroup shrinkage (hierarchical model)"), out.path("figures/subgroup_shrinkage.png"), dpi)
            figs["subgroup_shrinkage"] = "figures/subgroup_shrinkage.png"
            caps["subgroup_shrinkage"] = ("Subgroup hazard ratios as published (squares, 95% CI) and after "
                                          "hierarchical shrinkage (circles, 95% CrI), with the overall mean μ.")
    if "assurance" in r:
        arows = [{"design": lab, **row} for lab, d in r["assurance"]["designs"].items() for row in d["by_events"]]
        out.write_csv("tables/assurance.csv", pd.DataFrame(arows))
        if cfg.report.figures:
            plots.save(plots.assurance_plot(r["assurance"]), out.path("figures/assurance.png"), dpi)
            figs["assurance"] = "figures/assurance.png"
            caps["assurance"] = ("Probability that a next trial is significant (assurance, solid) and its power "
                                 "at the posterior mean (dotted) against its number of events, per design.")
    r["figures"] = figs
    r["figure_captions"] = caps
    r["provenance"] = {k: v for k, v in provenance.items() if k not in ("wall_seconds", "config")}
    out.write_json("results.json", r)
    out.write_json("provenance.json", provenance)
    out.write_text("report.md", render_published_report(r))
    if cfg.report.html:
        from .html_report import render
        from .report_views import view

        out.write_text("report.html", render(view(r, out.staging)))


def scenario_forest_rows(r: dict, chosen, ci_prob: float) -> list[dict]:
    """Forest rows grouped by estimate: the published estimate, then its posterior per scenario."""
    z = stats.norm.ppf((1 + ci_prob) / 2)
    rows = []
    for ev in chosen:
        rows.append({"group": ev.name, "label": "published", "hr": ev.hr, "lower": float(np.exp(ev.log_hr - z * ev.se)),
                     "upper": float(np.exp(ev.log_hr + z * ev.se)), "kind": "cox"})
        for sc, s in r["posteriors"][ev.name]["scenarios"].items():
            rows.append({"group": ev.name, "label": sc, "hr": s["hr_median"], "lower": s["hr_lower"],
                         "upper": s["hr_upper"], "kind": "bayes", "p": s["p_hr_below"]["1"]})
    return rows


def _fmt(s):
    return f"{s['hr_median']:.3f} ({s['hr_lower']:.3f}–{s['hr_upper']:.3f})"


def published_summary(r: dict) -> list[str]:
    """Key findings in plain sentences."""
    out = []
    for name, ev in r["posteriors"].items():
        sc = ev["scenarios"]
        p = ", ".join(f"{k} {v['p_hr_below']['1']:.3f}" for k, v in sc.items())
        lo = min(sc.items(), key=lambda kv: kv[1]["p_hr_below"]["1"])
        out.append(f"{name} (published HR {ev['evidence']['hr']:.2f}): P(HR < 1) by scenario — {p}; lowest under {lo[0]}.")
    if "subgroup_shrinkage" in r:
        for c in r["subgroup_shrinkage"]["contrasts"]:
            out.append(f"Contrast {c['contrast']}: ratio of HRs {c['ratio_median']:.2f} ({c['ratio_lower']:.2f}–{c['ratio_upper']:.2f}) "
                       f"after shrinkage, P(< 1) = {c['p_ratio_below_1']:.3f} (unshrunk {c['unshrunk_ratio']:.2f}, "
                       f"P = {c['unshrunk_p_ratio_below_1']:.3f}).")
    if "assurance" in r:
        for lab, d in r["assurance"]["designs"].items():
            need = d["events_needed"]
            txt = ", ".join(f"{float(k):.0%}: {v:.0f} events" if v else f"{float(k):.0%}: not reachable" for k, v in need.items())
            out.append(f"Next trial, {lab}: assurance {txt} (limit {d['assurance_limit']:.3f}).")
    return out


def render_published_report(r: dict) -> str:
    L = [f"# {r['title']}", f"\nSource: {r['data_label']}. {r['sign_convention']}.",
         f"Evidence model: {r['evidence_model']}.", "\n## Summary"]
    L.extend(f"- {line}" for line in published_summary(r))
    L.append("\n## Prior scenarios (log-HR scale)")
    L.append(md_table(pd.DataFrame(r["scenarios"])))
    if not r["reliable"]:
        L.append("\n> **⚠ UNRELIABLE:** a sampled posterior failed the diagnostics gate; see results.json.")
    L.append("\n## Posterior by estimate and scenario")
    for name, ev in r["posteriors"].items():
        e = ev["evidence"]
        L.append(f"\n### {name}" + (f" — {e['subgroup']}" if e["subgroup"] else "")
                 + f"\nPublished HR {e['hr']:.2f}, log-HR {e['log_hr']:.3f}, SE {e['se']:.3f}.\n")
        rows = [{"scenario": sc, "prior": s["prior"], "method": s["method"], "median HR (95% CrI)": _fmt(s),
                 **{f"P(HR<{k})": v for k, v in s["p_hr_below"].items()}, **{f"P(HR>{k})": v for k, v in s["p_hr_above"].items()}}
                for sc, s in ev["scenarios"].items()]
        L.append(md_table(pd.DataFrame(rows)))
        tps = r["tipping_points"][name]
        L.append("\nTipping point (centred sceptical prior N(0, s²)): " + "; ".join(
            f"P(HR<1) < {t['level']} once s < {t['sd']:.3f}" if t["sd"] is not None else f"below {t['level']} even with a flat prior"
            for t in tps) + ".")
    for key, cap in (("forest_scenarios", "Posterior HR by scenario"), ("prior_grid", "P(HR < 1) over prior mean × SD")):
        if key in r["figures"]:
            L.append(f"\n![{cap}]({r['figures'][key]})")
    if "subgroup_shrinkage" in r:
        sg = r["subgroup_shrinkage"]
        L.append("\n## Subgroup shrinkage")
        L.append(f"Model: {sg['model']}. Between-subgroup SD τ: median {sg['tau']['median']:.3f} "
                 f"(95% CrI {sg['tau']['lower']:.3f}–{sg['tau']['upper']:.3f}). Overall μ: HR {_fmt(sg['overall_mu'])}.\n")
        L.append(md_table(pd.DataFrame([{"subgroup": g["name"], "unshrunk HR": _fmt(g["unshrunk"]), "P(HR<1) unshrunk": g["unshrunk"]["p_hr_below"]["1"],
                                         "shrunk HR": _fmt(g["shrunk"]), "P(HR<1) shrunk": g["shrunk"]["p_hr_below"]["1"]} for g in sg["groups"]])))
        L.append("\n" + md_table(pd.DataFrame(sg["contrasts"])))
        if "subgroup_shrinkage" in r["figures"]:
            L.append(f"\n![Subgroup shrinkage]({r['figures']['subgroup_shrinkage']})")
    if "assurance" in r:
        a = r["assurance"]
        L.append(f"\n## Probability of success of a next trial (one-sided α = {a['alpha_one_sided']}, allocation {a['allocation']})")
        for lab, d in a["designs"].items():
            need = ", ".join(f"{k}: {v:.0f} events" if v else f"{k}: not reachable (limit {d['assurance_limit']:.3f})"
                             for k, v in d["events_needed"].items())
            L.append(f"\n**{lab}** — posterior: {d['posterior']} (log-HR {d['log_hr_mean']:.3f} ± {d['log_hr_sd']:.3f}). Events needed for assurance {need}.\n")
            L.append(md_table(pd.DataFrame(d["by_events"])))
        if "assurance" in r["figures"]:
            L.append(f"\n![Assurance]({r['figures']['assurance']})")
    p = r["provenance"]
    L.append(f"\n## Provenance\nConfig hash `{p['config_hash'][:16]}…`; seed {p['seed']}; "
             + ", ".join(f"{k} {v}" for k, v in p["versions"].items()) + ".")
    return "\n".join(L) + "\n"
