"""The published-estimates analysis: scenarios × estimates, prior grid, tipping points, subgroup
shrinkage, probability of success; written like a patient-level run (typed Results, the one
writer: results.json, CSV, PNG, report.md)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import stats

from ..config.priors import default_scenarios, describe, parse_prior, scenario_prior
from ..config.schema import Config
from ..core import progress
from ..data.evidence import evidence_of
from ..estimands.assurance import (
    assurance,
    assurance_draws,
    events_for,
    power,
    prob_estimate_below,
    prob_estimate_below_draws,
)
from ..estimands.caution import published_flags
from ..inference.sampler import stack_versions
from ..models.published import (
    PublishedSampler,
    posterior,
    prior_grid,
    scenario_table_row,
    tipping_point,
)
from ..models.shrinkage import shrink
from ..report.published_artefacts import write_published_outputs
from ..report.writer import RunResult, write_run
from ..results.model import PublishedEstimateResult, Results, Setting
from .resolve import output_settings
from .validate import check_writable


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
    evs = {x.name: evidence_of(x) for x in cfg.data.estimates}
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
            "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
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
                lambda out: write_published_outputs(
                    out, output_settings(cfg), run, chosen, means, sds, shrunk
                ),
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
                return assurance_draws(draws, d, a.allocation, a.alpha)

            def below(d, draws=draws):
                return prob_estimate_below_draws(draws, d, a.target_hr, a.allocation)

            limit = float(np.mean(draws < 0))
        else:  # a closed-form normal posterior

            def at(d, m=m, sd=sd):
                return assurance(m, sd, d, a.allocation, a.alpha)

            def below(d, m=m, sd=sd):
                return prob_estimate_below(m, sd, d, a.target_hr, a.allocation)

            limit = float(stats.norm.cdf(-m / sd))
        by_events = []
        for d in a.events:
            by_events.append(
                {
                    "events": d,
                    "assurance": at(d),
                    "p_hr_estimate_below_target": below(d),
                    "power_at_posterior_mean": power(m, d, a.allocation, a.alpha),
                }
            )
        out["designs"][label] = {
            "posterior": source,
            "log_hr_mean": m,
            "log_hr_sd": sd,
            "share": evs[name].share,
            "by_events": by_events,
            "events_needed": {f"{lv:g}": events_for(at, lv, limit) for lv in a.levels},
            "assurance_limit": limit,
        }
    return out
