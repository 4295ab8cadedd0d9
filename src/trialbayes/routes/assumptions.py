"""Designs from assumptions, without patient data (``data.kind: assumptions``): the control hazard
and a design prior on the treatment HR become states of nature, and the ``next_phase:`` grid is
simulated from them exactly as from a fitted model's posterior (no covariates, no biomarker).

The design prior: ``point`` (every trial at ``hr``), ``normal`` (log HR ~ N(mean, sd²)), or
``from_published`` — the published route's posterior of one estimate under a prior scenario,
computed on a fine grid (prior density × normal likelihood of the published log HR, 40 001
points over ±14 SE; the quadrature that checks the published route's sampler) and sampled by
inverse CDF. For one-look log-rank designs the simulated assurance is reported beside the
closed form (``estimands.assurance``: Schoenfeld averaged over the design prior's draws).
"""

from __future__ import annotations

import math
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
from scipy import integrate, stats

from ..config.data_sources import AssumptionsSource
from ..config.priors import ScenarioSpec, scenario_prior
from ..config.schema import Config
from ..core import progress
from ..core.interrupts import phase
from ..core.text import shown_path
from ..data.evidence import evidence_of
from ..estimands.assurance import assurance_draws
from ..inference.sampler import stack_versions
from ..models.published import log_prior_density
from ..nextphase.checks import check_grid
from ..nextphase.grid import fingerprint, prune_stale, run_next_phase
from ..nextphase.simulate import Population, StatesOfNature
from ..nextphase.summaries import events_flags, failed_cells_flags
from ..report.nextphase import next_phase_figures, write_next_phase_tables
from ..report.plan import FigurePlan
from ..report.writer import RunResult, write_run
from ..results.model import HRSummary, Results, Setting
from ..results.next_phase import AssumptionsSummary, ClosedFormAssurance
from ..results.sections import Provenance
from .resolve import output_settings
from .validate import check_writable

#: patients of the plain population a design from assumptions resamples (no covariates)
PLAIN_PATIENTS = 1000


class AssumedDesign:
    """The one attribute of a fitted design the grid reads: the baseline intervals' starts."""

    def __init__(self, starts):
        self.starts = np.asarray(starts, float)


def published_posterior_draws(src: AssumptionsSource, n: int, rng) -> tuple[np.ndarray, str]:
    """Draws of the log HR from the published estimate's posterior under the scenario prior."""
    dp = src.design_prior
    est = {e.name: e for e in src.estimates}[dp.estimate]
    ev = evidence_of(est)
    prior = scenario_prior(
        ScenarioSpec(name=dp.scenario, kind=dp.scenario, design_hr=dp.scenario_design_hr)
    )
    grid = np.linspace(ev.log_hr - 14 * ev.se, ev.log_hr + 14 * ev.se, 40_001)
    logp = log_prior_density(prior, grid) + stats.norm.logpdf(ev.log_hr, grid, ev.se)
    w = np.exp(logp - logp.max())
    cdf = integrate.cumulative_trapezoid(w, grid, initial=0.0)
    cdf /= cdf[-1]
    draws = np.interp(rng.random(n), cdf, grid)
    text = (
        f"the posterior of the published estimate '{ev.name}' (HR {math.exp(ev.log_hr):.3g}, "
        f"SE of log HR {ev.se:.3g}) under the '{dp.scenario}' prior"
    )
    return draws, text


def design_states(src: AssumptionsSource, rng) -> tuple[dict, str]:
    """(draws for StatesOfNature.from_draws, the design prior in words)."""
    dp = src.design_prior
    n = src.draws
    if dp.kind == "point":
        t, text = np.full(n, math.log(dp.hr)), f"a fixed HR of {dp.hr:g}"
    elif dp.kind == "normal":
        t = rng.normal(dp.log_hr_mean, dp.log_hr_sd, n)
        text = f"log HR ~ N({dp.log_hr_mean:g}, {dp.log_hr_sd:g}²)"
    else:
        t, text = published_posterior_draws(src, n, rng)
    _, rates = src.control_hazard.starts_and_rates()
    return {"treatment": t, "log_baseline_hazard": np.tile(np.log(rates), (n, 1))}, text


def closed_forms(nxt, draws: np.ndarray, cfg) -> list[ClosedFormAssurance]:
    """Simulated vs closed-form assurance of one-look log-rank designs (else none)."""
    npc = cfg.next_phase
    if npc.sequential or npc.analysis.method != "logrank" or npc.min_observed_hr is not None:
        return []
    return [
        ClosedFormAssurance(
            d.events,
            d.design_prior,
            d.assurance,
            d.mc_se,
            assurance_draws(draws, d.events, npc.allocation, npc.alpha),
            d.p_events_reached,
        )  # fmt: skip
        for d in nxt.designs
        if d.design_prior == npc.design_priors[0].name and npc.design_priors[0].kind == "as_is"
    ]


def run_assumptions(
    cfg: Config,
    out_root: str | Path = "outputs",
    config_path: str | None = None,
    write: bool = True,
) -> RunResult:
    """assumptions → states of nature → the next-phase grid → Results → the one writer."""
    t0 = time.perf_counter()
    src: AssumptionsSource = cfg.data
    tu = src.time_unit or "time units"
    if write:
        check_writable(out_root, cfg.name)
    check_grid(cfg.next_phase)  # memory and the Dask scheduler, before any simulation
    rng = np.random.default_rng([src.seed, 11])
    draws, prior_text = design_states(src, rng)
    starts, _ = src.control_hazard.starts_and_rates()
    design = AssumedDesign(starts)
    pop = Population(np.zeros((PLAIN_PATIENTS, 0)), np.zeros(PLAIN_PATIENTS),
                     np.zeros((PLAIN_PATIENTS, 0)))  # fmt: skip
    hazard = src.control_hazard.describe(tu)
    source = (
        f"Design from assumptions (no patient data): control hazard {hazard}; treatment HR "
        f"from {prior_text}; one state of nature per simulated trial"
    )
    npc = cfg.next_phase
    fp = fingerprint(npc, StatesOfNature.from_draws(draws, design.starts), pop)
    store = Path(out_root) / ".cache" / cfg.name / f"next_phase-{fp}"
    with phase("simulating next trials"):
        nxt = run_next_phase(npc, draws, design, store=store if write else None,
                             progress=progress.current().enabled, time_unit=tu, pop=pop,
                             source=source)  # fmt: skip
    if write:
        prune_stale(store)
    nxt.assumptions = AssumptionsSummary(
        hazard, prior_text, HRSummary.from_log_draws(draws["treatment"]),
        closed_forms(nxt, draws["treatment"], cfg),
    )  # fmt: skip
    results = Results(
        kind="assumptions",
        config_name=cfg.name,
        title=cfg.title or cfg.report.title or cfg.name,
        data_label=src.label,
        settings={"time_unit": Setting(tu, "config" if src.time_unit else "default")},
        next_phase=nxt,
        provenance=Provenance(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            config_path=shown_path(config_path),
            config_hash=cfg.hash(),
            data_label=src.label,
            seeds={"assumptions": src.seed, "next_phase": npc.seed},
            seed_rule="design-prior draws: numpy default_rng([seed, 11]); each simulated cell: "
            "the executor's cell stream under next_phase.seed (trialbayes.core.seeds)",
            versions=stack_versions(),
        ),
    )
    results.flags += events_flags(nxt) + failed_cells_flags(nxt)
    run = RunResult(results=results, out_dir=None, reliable=True, tables={"next_phase": nxt})
    plan = FigurePlan()
    if cfg.report.figures:
        next_phase_figures(plan, nxt)
    plan.apply(results)
    if write:
        facts = {
            "config": cfg.shown_dump(),
            "wall_seconds": round(time.perf_counter() - t0, 2),
        }
        with progress.phase("writing outputs"):
            run.out_dir = write_run(
                results, out_root, lambda out: write_next_phase_tables(out, nxt), plan,
                output_settings(cfg), facts,
            )  # fmt: skip
    return run
