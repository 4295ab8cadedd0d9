"""The published-estimates analysis: scenarios × estimates, prior grid, tipping points, subgroup
shrinkage, probability of success; written like a patient-level run (typed Results, the one
writer: results.json, CSV, PNG, report.md)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from . import assurance as pos
from . import plots, progress
from .caution import published_flags
from .checks import check_writable
from .config import Config
from .escape import md_code, md_figure, md_text
from .inference import stack_versions
from .outputs import OutputDir
from .priors import default_scenarios, describe, parse_prior, scenario_prior
from .published import PublishedSampler, posterior, prior_grid, scenario_table_row, tipping_point
from .render import md_table, prob
from .results import PublishedEstimateResult, Results, Setting, level_text
from .subgroups import shrink
from .writer import RunResult, write_run


def run_published(
    cfg: Config,
    out_root: str | Path = "outputs",
    config_path: str | None = None,
    write: bool = True,
) -> RunResult:
    """load → validate (the config) → fit → estimands → Results → write, like a patient-level run.
    Honours ``sampler`` (backend, chains, tune, seed; draws = published.nuts_draws in all) and
    ``diagnostics`` (the gate of every sampled posterior)."""
    t0 = time.perf_counter()
    if write:
        check_writable(out_root, cfg.name)
    p, e, sc_cfg = cfg.published, cfg.estimands, cfg.sampler
    thr, harm, prob = tuple(e.hr_thresholds), e.harm_threshold, e.ci_prob
    evs = {x.name: x.evidence() for x in cfg.data.estimates}
    chosen = [evs[n] for n in (p.estimates or list(evs))]
    scenarios = p.scenarios or default_scenarios(p.design_hr)
    sampler = PublishedSampler(
        chains=sc_cfg.chains,
        draws=max(p.nuts_draws // sc_cfg.chains, 100),
        tune=sc_cfg.tune,
        seed=sc_cfg.seed,
        backend=sc_cfg.backend,
    )
    means, sds = p.grid_mean.values(), p.grid_sd.values()
    results = Results(
        kind="published",
        config_name=cfg.name,
        title=cfg.title or cfg.report.title or cfg.name,
        data_label=cfg.data.label,
        settings={
            "level": Setting(prob, "config" if "ci_prob" in e.model_fields_set else "default")
        },
    )
    with progress.phase(
        f"posteriors of {len(chosen)} estimates under {len(scenarios)} prior scenarios"
    ):
        rows = []
        events = {x.name: x.events for x in cfg.data.estimates}
        for ev in chosen:
            per, priors = {}, {}
            for i, sc in enumerate(scenarios):
                prior = scenario_prior(sc)
                post = posterior(
                    ev, prior, thr, harm, prob, sampler, seed=sc_cfg.seed + i, gate=cfg.diagnostics
                )
                post.kind = sc.kind
                per[sc.name], priors[sc.name] = post, (prior, post.hr)
                rows.append(scenario_table_row(ev, sc.name, prior, post))
            results.estimates[ev.name] = PublishedEstimateResult(
                ev.name,
                ev.log_hr,
                ev.se,
                ev.hr,
                ev.subgroup,
                ev.share,
                per,
                [tipping_point(ev, lv, p.design_hr) for lv in p.tipping_levels],
            )
            results.flags += published_flags(ev.name, events[ev.name], priors)
    grids = {ev.name: prior_grid(ev, means, sds) for ev in chosen}
    results.sections.update(
        {
            "evidence_model": "log HR_hat ~ N(log HR, se^2); se from the CI as (log upper - log lower) / (2 z)",
            "scenarios": [
                {"name": s.name, "kind": s.kind, "prior": describe(scenario_prior(s))}
                for s in scenarios
            ],
            "prior_grid": {"means": means.tolist(), "sds": sds.tolist(), "threshold": 1.0},
            "nuts_compilations": sampler.compile_count,
        }
    )
    with progress.phase("subgroup shrinkage"):
        shrunk = _shrinkage(cfg, evs, results, thr, harm, prob)
    if p.assurance is not None:
        results.sections["assurance"] = assurance_section(
            p.assurance, evs, results.estimates, shrunk
        )
    _reliability(results, shrunk)
    run = RunResult(
        results=results,
        out_dir=None,
        reliable=results.reliable,
        tables={"posteriors": pd.DataFrame(rows), "grids": grids},
    )
    if write:
        provenance = {
            "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "config_path": config_path,
            "config_hash": cfg.hash(),
            "config": cfg.model_dump(mode="json"),
            "seed": sc_cfg.seed,
            "versions": stack_versions(),
            "wall_seconds": round(time.perf_counter() - t0, 2),
        }
        with progress.phase("writing outputs"):
            run.out_dir = write_run(
                results,
                provenance,
                out_root,
                render_published_report,
                lambda out: _write(out, cfg, run, chosen, means, sds, shrunk),
                html=cfg.report.html,
            )
    return run


def _shrinkage(cfg, evs, results: Results, thr, harm, prob):
    p = cfg.published
    if p.subgroups is None:
        return None
    names = p.subgroups.estimates or [n for n, v in evs.items() if v.subgroup]
    if len(names) < 2:
        return None
    mu_prior = parse_prior("treatment", p.subgroups.mu_prior) if p.subgroups.mu_prior else None
    s = cfg.sampler
    shrunk = shrink(
        [evs[n] for n in names],
        p.subgroups.tau_sigma,
        mu_prior,
        thr,
        harm,
        prob,
        seed=s.seed,
        chains=s.chains,
        tune=max(s.tune, 2000),
        draws=max(p.nuts_draws // s.chains, 100),
        backend=s.backend,
        gate=cfg.diagnostics,
    )
    results.sections["subgroup_shrinkage"] = {
        k: v for k, v in shrunk.items() if not k.startswith("_")
    }
    return shrunk


def _reliability(results: Results, shrunk) -> None:
    bad = [
        f"{n}/{sc}"
        for n, ev in results.estimates.items()
        for sc, post in ev.scenarios.items()
        if post.diagnostics is not None and not post.diagnostics["reliable"]
    ]
    if shrunk is not None and not shrunk["diagnostics"]["reliable"]:
        bad.append("subgroup shrinkage")
    results.reliable = not bad
    results.unreliable_models = bad


def _posterior_of(name, scenario, posteriors, shrunk):
    """(mean, sd, draws or None) of a log-HR posterior used for assurance."""
    if shrunk is not None and name in [g["name"] for g in shrunk["groups"]]:
        j = [g["name"] for g in shrunk["groups"]].index(name)
        d = shrunk["_draws"]["theta"][:, j]
        return float(d.mean()), float(d.std(ddof=1)), d, f"shrunken subgroup posterior ({name})"
    s = posteriors[name].scenarios[scenario].hr
    return s.log_mean, s.log_sd, None, f"{name} under the {scenario} prior"


def assurance_section(a, evs, posteriors, shrunk) -> dict:
    designs = {"all-comers": a.overall}
    if a.enriched:
        designs[f"enriched ({a.enriched})"] = a.enriched
    out = {
        "alpha_one_sided": a.alpha,
        "allocation": a.allocation,
        "target_hr": a.target_hr,
        "designs": {},
    }
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
            by_events.append(
                {
                    "events": d,
                    "assurance": at(d),
                    "p_hr_estimate_below_target": below(d),
                    "power_at_posterior_mean": pos.power(m, d, a.allocation, a.alpha),
                }
            )
        out["designs"][label] = {
            "posterior": source,
            "log_hr_mean": m,
            "log_hr_sd": sd,
            "share": evs[name].share,
            "by_events": by_events,
            "events_needed": {f"{lv:g}": pos.events_for(at, lv, limit) for lv in a.levels},
            "assurance_limit": limit,
        }
    return out


def _write(out: OutputDir, cfg, run: RunResult, chosen, means, sds, shrunk) -> None:
    r: Results = run.results
    dpi, lv = cfg.report.dpi, cfg.estimands.ci_prob
    out.write_csv("tables/posteriors.csv", run.tables["posteriors"])
    grid_rows = [
        {"estimate": n, "prior_mean": m, "prior_sd": s, "p_hr_below_1": g[i, j]}
        for n, g in run.tables["grids"].items()
        for i, s in enumerate(sds)
        for j, m in enumerate(means)
    ]
    out.write_csv("tables/prior_grid.csv", pd.DataFrame(grid_rows))
    out.write_csv(
        "tables/tipping_points.csv",
        pd.DataFrame(
            [{"estimate": n, **t} for n, ev in r.estimates.items() for t in ev.tipping_points]
        ),
    )
    if cfg.report.figures:
        z = stats.norm.ppf((1 + lv) / 2)
        rows = []
        for (
            ev
        ) in chosen:  # grouped by estimate: the published estimate, then each scenario's posterior
            rows.append(
                {
                    "group": ev.name,
                    "label": "published",
                    "hr": ev.hr,
                    "kind": "cox",
                    "lower": float(np.exp(ev.log_hr - z * ev.se)),
                    "upper": float(np.exp(ev.log_hr + z * ev.se)),
                }
            )
            for sc, post in r.estimates[ev.name].scenarios.items():
                h = post.hr
                rows.append(
                    {
                        "group": ev.name,
                        "label": sc,
                        "hr": h.median,
                        "lower": h.lower,
                        "upper": h.upper,
                        "kind": "bayes",
                        "p": h.p_benefit,
                    }
                )
        plots.save(
            plots.forest_plot(
                rows, title="Published estimates: posterior HR by prior scenario", level=lv
            ),
            out.path("figures/forest_scenarios.png"),
            dpi,
        )
        r.figures["forest_scenarios"] = "figures/forest_scenarios.png"
        r.figure_captions["forest_scenarios"] = (
            "Each published estimate (square, its confidence interval) and its posterior under every prior "
            "scenario (circle, median and credible interval), grouped by estimate; right: posterior P(HR < 1)."
        )
        tips = {n: ev.tipping_points for n, ev in r.estimates.items()}
        plots.save(
            plots.prior_grid_panels(run.tables["grids"], means, sds, tips),
            out.path("figures/prior_grid.png"),
            dpi,
        )
        r.figures["prior_grid"] = "figures/prior_grid.png"
        r.figure_captions["prior_grid"] = (
            "P(HR < 1) over a grid of normal priors on the log-HR (mean across, SD up), per estimate; contours "
            "at 0.5, 0.9 and 0.95; dots: tipping-point SDs of a centred prior."
        )
    if shrunk is not None:
        _write_shrinkage(out, cfg, r)
    if "assurance" in r.sections:
        a = r.sections["assurance"]
        out.write_csv(
            "tables/assurance.csv",
            pd.DataFrame(
                [
                    {"design": lab, **row}
                    for lab, d in a["designs"].items()
                    for row in d["by_events"]
                ]
            ),
        )
        if cfg.report.figures:
            plots.save(plots.assurance_plot(a), out.path("figures/assurance.png"), dpi)
            r.figures["assurance"] = "figures/assurance.png"
            r.figure_captions["assurance"] = (
                "Probability that a next trial is significant (assurance, solid) and its power at the posterior "
                "mean (dotted) against its number of events, per design."
            )


def _write_shrinkage(out: OutputDir, cfg, r: Results) -> None:
    sg = r.sections["subgroup_shrinkage"]
    srows = [
        {
            "estimate": g["name"],
            "subgroup": g["subgroup"],
            "share": g["share"],
            **g["unshrunk"].flat("unshrunk_"),
            **g["shrunk"].flat("shrunk_"),
        }
        for g in sg["groups"]
    ]
    out.write_csv("tables/subgroup_shrinkage.csv", pd.DataFrame(srows))
    if not cfg.report.figures:
        return
    rows = []
    for g in sg["groups"]:
        grp = g["name"] + (f" ({g['subgroup']})" if g.get("subgroup") else "")
        for kind, lab in (("unshrunk", "as published"), ("shrunk", "shrunk")):
            h = g[kind]
            rows.append(
                {
                    "group": grp,
                    "label": lab,
                    "hr": h.median,
                    "lower": h.lower,
                    "upper": h.upper,
                    "kind": kind,
                    "p": h.p_benefit,
                }
            )
    o = sg["overall_mu"]
    rows.append(
        {
            "group": "overall",
            "label": "μ (mean of the subgroups)",
            "hr": o.median,
            "lower": o.lower,
            "upper": o.upper,
            "kind": "shrunk",
            "p": o.p_benefit,
        }
    )
    plots.save(
        plots.forest_plot(
            rows, title="Subgroup shrinkage (hierarchical model)", level=cfg.estimands.ci_prob
        ),
        out.path("figures/subgroup_shrinkage.png"),
        cfg.report.dpi,
    )
    r.figures["subgroup_shrinkage"] = "figures/subgroup_shrinkage.png"
    r.figure_captions["subgroup_shrinkage"] = (
        "Subgroup hazard ratios as published (squares, confidence interval) and after hierarchical shrinkage "
        "(circles, credible interval), with the overall mean μ; right: P(HR < 1)."
    )


def published_summary(r: Results) -> list[str]:
    """Key findings in plain sentences."""
    out = []
    for name, ev in r.estimates.items():
        sc = ev.scenarios
        p = ", ".join(f"{k} {prob(v.hr.p_benefit, v.hr.n_draws)}" for k, v in sc.items())
        lo = min(sc.items(), key=lambda kv: kv[1].hr.p_benefit)
        out.append(
            f"{name} (published HR {ev.hr:.2f}): P(HR < 1) by scenario — {p}; lowest under {lo[0]}."
        )
    for c in r.sections.get("subgroup_shrinkage", {}).get("contrasts", []):
        out.append(
            f"Contrast {c['contrast']}: ratio of HRs {c['ratio_median']:.2f} "
            f"({c['ratio_lower']:.2f}–"
            f"{c['ratio_upper']:.2f}) after shrinkage, P(< 1) = {c['p_ratio_below_1']:.3f} "
            "(unshrunk "
            f"{c['unshrunk_ratio']:.2f}, P = {c['unshrunk_p_ratio_below_1']:.3f})."
        )
    for lab, d in r.sections.get("assurance", {}).get("designs", {}).items():
        need = d["events_needed"]
        txt = ", ".join(
            f"{float(k):.0%}: {v:.0f} events" if v else f"{float(k):.0%}: not reachable"
            for k, v in need.items()
        )
        out.append(f"Next trial, {lab}: assurance {txt} (limit {d['assurance_limit']:.3f}).")
    return out


def render_published_report(r: Results) -> str:
    lv = level_text(r.setting("level", 0.95))
    L = [
        f"# {md_text(r.title)}",
        f"\nSource: {md_text(r.data_label)}. {md_text(r.sign_convention)}.",
        f"Evidence model: {md_text(r.sections['evidence_model'])}.",
    ]
    for f in r.all_flags:
        where = f", {md_text(f.model)}" if f.model else ""
        L.append(
            f"\n> **{md_text(f.severity)}** ({md_text(f.code)}{where}): {md_text(f.message)}."
        )
    L.append("\n## Summary")
    L.extend(f"- {md_text(line)}" for line in published_summary(r))
    L += ["\n## Prior scenarios (log-HR scale)", md_table(pd.DataFrame(r.sections["scenarios"]))]
    if not r.reliable:
        L.append(
            "\n> **⚠ UNRELIABLE:** failed the diagnostics gate: "
            f"{md_text(', '.join(r.unreliable_models))}."
        )
    L.append("\n## Posterior by estimate and scenario")
    for name, ev in r.estimates.items():
        L.append(
            f"\n### {md_text(name)}"
            + (f" — {md_text(ev.subgroup)}" if ev.subgroup else "")
            + f"\nPublished HR {ev.hr:.2f}, log-HR {ev.log_hr:.3f}, SE {ev.se:.3f}.\n"
        )
        rows = [
            {
                "scenario": sc,
                "prior": s.prior,
                "method": s.method,
                f"median HR ({lv} CrI)": s.hr.text(3),
                **{f"P(HR<{k})": v for k, v in s.hr.p_hr_below.items()},
                **{f"P(HR>{k})": v for k, v in s.hr.p_hr_above.items()},
            }
            for sc, s in ev.scenarios.items()
        ]
        L.append(md_table(pd.DataFrame(rows)))
        L.append(
            "\nTipping point (centred sceptical prior N(0, s²)): "
            + "; ".join(
                f"P(HR<1) < {md_text(t['level'])} once s < {t['sd']:.3f}"
                if t["sd"] is not None
                else f"below {md_text(t['level'])} even with a flat prior"
                for t in ev.tipping_points
            )
            + "."
        )
    for key, cap in (
        ("forest_scenarios", "Posterior HR by scenario"),
        ("prior_grid", "P(HR < 1) over prior mean × SD"),
    ):
        if key in r.figures:
            L.append("\n" + md_figure(cap, r.figures[key]))
    L += _shrinkage_md(r, lv) + _assurance_md(r)
    p = r.provenance
    L.append(
        f"\n## Provenance\nConfig hash {md_code(str(p['config_hash'])[:16])}…; seed "
        f"{md_text(p['seed'])}; "
        + ", ".join(f"{md_text(k)} {md_text(v)}" for k, v in p["versions"].items())
        + "."
    )
    return "\n".join(L) + "\n"


def _shrinkage_md(r: Results, lv: str) -> list[str]:
    sg = r.sections.get("subgroup_shrinkage")
    if not sg:
        return []
    t = sg["tau"]
    L = [
        "\n## Subgroup shrinkage",
        f"Model: {md_text(sg['model'])}. Between-subgroup SD τ: median {t['median']:.3f} "
        f"({lv} CrI "
        f"{t['lower']:.3f}–"
        f"{t['upper']:.3f}). Overall μ: HR {sg['overall_mu'].text(3)}.\n",
        md_table(
            pd.DataFrame(
                [
                    {
                        "subgroup": g["name"],
                        "unshrunk HR": g["unshrunk"].text(3),
                        "P(HR<1) unshrunk": g["unshrunk"].p_benefit,
                        "shrunk HR": g["shrunk"].text(3),
                        "P(HR<1) shrunk": g["shrunk"].p_benefit,
                    }
                    for g in sg["groups"]
                ]
            )
        ),
        "\n" + md_table(pd.DataFrame(sg["contrasts"])),
    ]
    if "subgroup_shrinkage" in r.figures:
        L.append("\n" + md_figure("Subgroup shrinkage", r.figures["subgroup_shrinkage"]))
    return L


def _assurance_md(r: Results) -> list[str]:
    a = r.sections.get("assurance")
    if not a:
        return []
    L = [
        "\n## Probability of success of a next trial (one-sided α = "
        f"{md_text(a['alpha_one_sided'])}, allocation {md_text(a['allocation'])})"
    ]
    for lab, d in a["designs"].items():
        need = ", ".join(
            f"{md_text(k)}: {v:.0f} events"
            if v
            else f"{md_text(k)}: not reachable (limit {d['assurance_limit']:.3f})"
            for k, v in d["events_needed"].items()
        )
        L.append(
            f"\n**{md_text(lab)}** — posterior: {md_text(d['posterior'])} "
            f"(log-HR {d['log_hr_mean']:.3f} ± "
            f"{d['log_hr_sd']:.3f}). Events needed for assurance {need}.\n"
        )
        L.append(md_table(pd.DataFrame(d["by_events"])))
    if "assurance" in r.figures:
        L.append("\n" + md_figure("Assurance", r.figures["assurance"]))
    return L
