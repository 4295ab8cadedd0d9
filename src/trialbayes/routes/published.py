"""The published-estimates route: scenarios × estimates, prior grid, tipping points, subgroup
shrinkage, probability of success — computed into typed Results (figures' paths and captions and
provenance included) and written by the one writer, like a patient-level run."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

from ..config.priors import default_scenarios, describe, parse_prior, scenario_prior
from ..config.schema import Config
from ..core import progress
from ..core.seeds import child_seed
from ..core.text import shown_path
from ..data.evidence import Evidence, evidence_of
from ..estimands.assurance import design_assurance
from ..estimands.caution import published_flags
from ..inference.sampler import stack_versions
from ..models.published import (
    PublishedSampler,
    posterior,
    prior_grid,
    summary_normal,
    tipping_point,
)
from ..models.shrinkage import shrink
from ..report.plan import FigurePlan
from ..report.published_artefacts import published_figures, write_published_tables
from ..report.writer import RunResult, write_run
from ..results.model import Results, Setting
from ..results.published import (
    Assurance,
    PriorGrid,
    PublishedEstimateResult,
    PublishedSections,
    Shrinkage,
)
from ..results.sections import Provenance, ScenarioInfo
from .resolve import output_settings
from .validate import check_writable

EVIDENCE_MODEL = (
    "log HR_hat ~ N(log HR, se^2); se from the CI as (log upper - log lower) / (2 z), or from "
    "the events per arm as sqrt(1/d1 + 1/d0)"
)


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
    p, e = cfg.published, cfg.estimands
    evs = {x.name: evidence_of(x) for x in cfg.data.estimates}
    chosen = [evs[n] for n in (p.estimates or list(evs))]
    scenarios = p.scenarios or default_scenarios(p.design_hr)
    results = Results(
        kind="published",
        config_name=cfg.name,
        title=cfg.title or cfg.report.title or cfg.name,
        data_label=cfg.data.label,
        settings={
            "level": Setting(e.level, "config" if "level" in e.model_fields_set else "default")
        },
    )
    label = f"posteriors of {len(chosen)} estimates under {len(scenarios)} prior scenarios"
    with progress.phase(label):
        compilations = _posteriors(cfg, chosen, scenarios, results)
    means, sds = p.grid_mean.values(), p.grid_sd.values()
    grids = {ev.name: prior_grid(ev, means, sds) for ev in chosen}
    results.published = PublishedSections(
        evidence_model=EVIDENCE_MODEL,
        scenarios=[ScenarioInfo(s.name, s.kind, describe(scenario_prior(s))) for s in scenarios],
        prior_grid=PriorGrid(means.tolist(), sds.tolist(), 1.0),
        compilations=compilations,
    )
    with progress.phase("subgroup shrinkage"):
        shrinkage, theta = _shrinkage(cfg, evs)
    results.published.shrinkage = shrinkage
    if p.assurance is not None:
        results.published.assurance = _assurance(p.assurance, evs, results, shrinkage, theta)
    _reliability(results)
    results.provenance = Provenance(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config_path=shown_path(config_path),
        config_hash=cfg.hash(),
        data_label=cfg.data.label,
        seeds={"sampler": cfg.sampler.seed},
        seed_rule="child_seed(sampler.seed, 'published', estimate, scenario); 'shrinkage' "
        "(trialbayes.core.seeds)",
        versions=stack_versions(),
    )
    run = RunResult(
        results=results, out_dir=None, reliable=results.reliable, tables={"grids": grids}
    )
    s = output_settings(cfg)
    plan = FigurePlan()
    if s.figures:
        published_figures(plan, results, grids, s.level)
    plan.apply(results)
    if write:
        with progress.phase("writing outputs"):
            run.out_dir = write_run(
                results,
                out_root,
                lambda out: write_published_tables(out, results, grids),
                plan,
                s,
                {
                    "config": cfg.shown_dump(),
                    "wall_seconds": round(time.perf_counter() - t0, 2),
                },  # fmt: skip
            )
    return run


def _posteriors(cfg: Config, chosen: list[Evidence], scenarios, results: Results) -> int:
    """Every estimate's posterior under every scenario into ``results``; NUTS compilations."""
    p, e, s = cfg.published, cfg.estimands, cfg.sampler
    thr, harm, level = tuple(e.hr_thresholds), e.harm_threshold, e.level
    sampler = PublishedSampler(
        chains=s.chains,
        draws=max(p.nuts_draws // s.chains, 100),
        tune=s.tune,
        seed=s.seed,
        backend=s.backend,
    )
    events = {x.name: x.events for x in cfg.data.estimates}
    for ev in chosen:
        per, priors = {}, {}
        for sc in scenarios:
            prior = scenario_prior(sc)
            seed = child_seed(s.seed, "published", ev.name, sc.name)
            post = posterior(ev, prior, thr, harm, level, sampler, seed=seed, gate=cfg.diagnostics)
            post.kind = sc.kind
            per[sc.name], priors[sc.name] = post, (prior, post.hr)
        results.estimates[ev.name] = PublishedEstimateResult(
            name=ev.name,
            estimate=summary_normal(ev.log_hr, ev.se, (), (), level, method="published"),
            subgroup=ev.subgroup,
            share=ev.share,
            scenarios=per,
            tipping_points=[tipping_point(ev, q, p.design_hr) for q in p.tipping_levels],
        )
        results.flags += published_flags(ev.name, events[ev.name], priors)
    return sampler.compile_count


def _shrinkage(cfg: Config, evs: dict[str, Evidence]) -> tuple[Shrinkage | None, dict]:
    p, e, s = cfg.published, cfg.estimands, cfg.sampler
    if p.subgroups is None:
        return None, {}
    names = p.subgroups.estimates or [n for n, v in evs.items() if v.subgroup]
    if len(names) < 2:
        return None, {}
    mu_prior = parse_prior("treatment", p.subgroups.mu_prior) if p.subgroups.mu_prior else None
    shrunk, draws = shrink(
        [evs[n] for n in names],
        p.subgroups.tau_sigma,
        mu_prior,
        tuple(e.hr_thresholds),
        e.harm_threshold,
        e.level,
        seed=child_seed(s.seed, "shrinkage"),
        chains=s.chains,
        tune=max(s.tune, 2000),
        draws=max(p.nuts_draws // s.chains, 100),
        backend=s.backend,
        gate=cfg.diagnostics,
    )
    return shrunk, {g.name: draws["theta"][:, j] for j, g in enumerate(shrunk.groups)}


def _reliability(results: Results) -> None:
    bad = [
        f"{n}/{sc}"
        for n, ev in results.estimates.items()
        for sc, post in ev.scenarios.items()
        if post.diagnostics is not None and not post.diagnostics.reliable
    ]
    sg = results.published.shrinkage
    if sg is not None and not sg.diagnostics.reliable:
        bad.append("subgroup shrinkage")
    results.reliable = not bad
    results.unreliable_models = bad


def _assurance(a, evs, results: Results, shrinkage, theta: dict) -> Assurance:
    """Each design over its posterior: a shrunken subgroup's draws, else the estimate's
    closed-form posterior under the chosen scenario."""
    designs = {"all-comers": a.overall}
    if a.enriched:
        designs[f"enriched ({a.enriched})"] = a.enriched
    out = Assurance(alpha=a.alpha, allocation=a.allocation, target_hr=a.target_hr, designs={})
    for label, name in designs.items():
        if name in theta:
            d = theta[name]
            m, sd, source = (
                float(d.mean()),
                float(d.std(ddof=1)),
                f"shrunken subgroup posterior ({name})",
            )
        else:
            h = results.estimates[name].scenarios[a.scenario].hr
            d, m, sd, source = None, h.log_mean, h.log_sd, f"{name} under the {a.scenario} prior"
        out.designs[label] = design_assurance(a, m, sd, d, source, evs[name].share)
    return out
