"""Next-phase decisions from a fitted patient-level model: assurance, operating characteristics
and go/no-go rates of candidate next trials, by simulation (simulate.py) and the analysis of each
simulated trial (nextphase_analysis.py: log-rank, Cox, or the Bayesian model refitted per trial).

Grid: design prior × population (all comers / enriched at a biomarker cut-off) × events D. Each
cell simulates ``trials`` trials, one state of nature per trial drawn from the design prior, and is
run by the executor (executor.py) with its own seed. The OC grid (population × D × true HR) keeps
the posterior's baseline and prognostic draws and fixes the treatment HR of every patient.
Results are typed (:class:`NextPhaseResults`) and serialised under one key, ``next_phase``.
"""

from __future__ import annotations

import hashlib
import math
import shutil
from pathlib import Path

import numpy as np

from ..config.next_phase import (
    NextPhase,
    PopulationSpec,
)
from ..core.errors import DataError
from ..core.executor import Cell, Executor
from ..core.progress import current, say
from ..core.text import plural
from ..results.next_phase import DesignResult, NextPhaseResults, OCPoint
from ..results.sections import ExecutorSummary
from .borrowing import power_prior, robust_mixture, vague
from .cells import assurance_cell, design_prior, enrichment_cell, oc_cell
from .checks import check_grid
from .covariates import fitted_population
from .enrichment import EnrichmentPlan
from .group_sequential import SequentialPlan
from .simulate import Population, StatesOfNature
from .sizing import LIGHT_WORK, patients_per_event, trial_design
from .summaries import (
    analysis_short,
    analysis_text,
    borrowing_summaries,
    collect,
    enrichment_results,
    planned_designs,
    recommend,
    sequential_text,
)

__all__ = ["DesignResult", "NextPhaseResults", "OCPoint", "design_prior", "run_next_phase"]


def _analysis_text(cfg: NextPhase) -> str:
    return analysis_text(cfg)


# ----------------------------------------------------------------------------- run
def analysis_priors(cfg: NextPhase, states, pop, ps: PopulationSpec) -> list[tuple[str, object]]:
    """(label, prior) of every analysis of a sequential design: with borrowing, the borrowing
    prior built from the phase 2 posterior of the population's average log-HR, then the same
    trials without it; else the vague prior alone (label "")."""
    a = cfg.analysis.prior
    none = vague(a.vague_mean, a.vague_sd)
    if a.kind == "none":
        return [("", none)]
    m2, s2 = phase2(states, pop, ps)
    built = (
        robust_mixture(m2, s2, a.weight, a.vague_mean, a.vague_sd)
        if a.kind == "robust_mixture"
        else power_prior(m2, s2, a.a0, a.vague_mean, a.vague_sd)
    )
    return [("borrowing", built), ("no borrowing", none)]


def phase2(states: StatesOfNature, pop: Population, ps: PopulationSpec) -> tuple[float, float]:
    """Mean and SD of the phase 2 posterior of the population's average treatment log-HR."""
    lh = states.population_log_hr(pop, pop.eligible(ps.kind, ps.cutoff))
    sd = float(np.std(lh, ddof=1)) if len(lh) > 1 else 0.0
    if not sd > 0:
        raise ValueError(
            "next_phase.analysis.prior: the design prior has no spread (a point HR); borrowing "
            "needs a phase 2 posterior (a model's draws, or a normal / published design prior)"
        )
    return float(np.mean(lh)), sd


def sequential_plan(cfg: NextPhase, events: int) -> SequentialPlan | None:
    if not cfg.sequential and cfg.analysis.prior.kind == "none":
        return None
    return SequentialPlan(
        events=events,
        fractions=tuple(cfg.looks),
        alpha=cfg.alpha,
        allocation=cfg.allocation,
        efficacy=cfg.efficacy_rule(),
        futility=cfg.futility,
        design_log_hr=math.log(cfg.design_hr),
        min_hr=cfg.min_observed_hr,
    )


def _cells(cfg: NextPhase, states, pop, sizes: dict | None = None) -> tuple[list, list]:
    """The assurance and OC cells; ``sizes``: patients per death by population label (None: from
    the config, which must then not be ``auto``)."""
    sizes = sizes or {ps.label(): patients_per_event(cfg, ps) for ps in cfg.populations}
    designs = {
        (ps.label(), d): trial_design(cfg, ps, d, sizes[ps.label()][0])
        for ps in cfg.populations
        for d in cfg.events
    }
    common = {
        "states": states,
        "population": pop,
        "alpha": cfg.alpha,
        "min_hr": cfg.min_observed_hr,
        "analysis": cfg.analysis,
        # the Bayesian analysis model's fixed shape: the grid's largest trial (one compilation)
        "n_model": max(x.n_randomised for x in designs.values()),
        "events_hint": max(cfg.events),
    }
    main, oc = [], []
    for ps in cfg.populations:
        priors = analysis_priors(cfg, states, pop, ps) if cfg.sequential else None
        for d in cfg.events:
            design = designs[(ps.label(), d)]
            seq = {"plan": sequential_plan(cfg, d), "priors": priors} if priors else {}
            for pr in cfg.design_priors:
                main.append(
                    Cell(
                        f"assurance|{pr.name}|{ps.label()}|{d}",
                        {
                            **common,
                            **seq,
                            "design": design,
                            "prior": pr,
                            "trials": cfg.trials,
                            "decision": cfg.decision,
                        },
                    )
                )
            for hr in cfg.oc_grid():
                oc.append(
                    Cell(
                        f"oc|{ps.label()}|{d}|{hr:g}",
                        {**common, **seq, "design": design, "hr": hr, "trials": cfg.oc_trials},
                    )
                )
    return main, oc


def _enrichment_cells(cfg: NextPhase, states, pop, sizes: dict) -> list[Cell]:
    r = cfg.enrichment
    if r is None:
        return []
    ppe = sizes[PopulationSpec().label()][0] if PopulationSpec().label() in sizes else None
    out = []
    for d in cfg.events:
        n = cfg.patients or math.ceil(d * (ppe or _number(cfg.patients_per_event, 2.0)))
        plan = EnrichmentPlan(
            d, n, cfg.accrual.time, tuple(cfg.accrual.weights), cfg.dropout_rate,
            cfg.allocation, cfg.calendar_cut, r, cfg.alpha,
        )  # fmt: skip
        base = {"states": states, "population": pop, "plan": plan, "decision": cfg.decision}
        trials = r.trials or cfg.trials
        for pr in cfg.design_priors:
            out.append(Cell(f"enrichment|{pr.name}|{d}", {**base, "prior": pr, "trials": trials}))
        for hr in cfg.oc_grid():
            out.append(
                Cell(f"enrichment_oc|{d}|{hr:g}", {**base, "hr": hr, "trials": cfg.oc_trials})
            )
    return out


def _number(x, default: float) -> float:
    return float(x) if isinstance(x, int | float) else default


def _work(cells: list[Cell]) -> int:
    def n(c):
        if "design" in c.args:
            return c.args["design"].n_randomised
        return 2 * c.args["plan"].n_randomised  # adaptive enrichment: two patient streams

    return sum(c.args["trials"] * n(c) for c in cells)


def fingerprint(cfg: NextPhase, states: StatesOfNature, pop: Population) -> str:
    """Identifies a grid's inputs, so a resumable store is never reused for other inputs."""
    h = hashlib.sha256(cfg.model_dump_json(exclude={"executor", "scheduler", "workers"}).encode())
    for a in (
        states.log_baseline,
        states.treatment,
        states.interaction,
        states.covariate_effects,
        pop.X,
        pop.bm_z,
    ):
        h.update(np.ascontiguousarray(a).tobytes())
    return h.hexdigest()[:16]


def population(cfg: NextPhase, design) -> Population:
    """The patients a next trial draws from: the fitted cohort itself (``covariates: resample``)
    or a synthetic cohort from the Gaussian copula fitted to it (``fitted``; seeded by ``seed``)."""
    if cfg.covariates == "resample":
        return Population.from_design(design)

    rng = np.random.default_rng([cfg.seed & 0xFFFFFFFF, 1])
    return fitted_population(design, rng, cfg.fitted_cohort)


def run_next_phase(
    cfg: NextPhase,
    draws: dict,
    design,
    store=None,
    progress: bool = False,
    time_unit: str = "time units",
    units: dict | None = None,
    pop: Population | None = None,
    source: str = "",
) -> NextPhaseResults:
    """The whole grid for one fitted model's draws (``PiecewiseExponentialModel.draws()``)
    and design; ``time_unit`` and ``units`` (the data's) label the outputs. ``pop``: the patients
    (default: from ``design`` by ``next_phase.covariates``); ``source``: what the draws are."""
    states = StatesOfNature.from_draws(draws, design.starts)
    pop = pop if pop is not None else population(cfg, design)
    for ps in cfg.populations:  # before any simulation: every population must have patients
        if not pop.eligible(ps.kind, ps.cutoff).any():
            raise ValueError(
                f"next_phase.populations: no patient of the fitted data is {ps.label()}"
            )
    sizes = {ps.label(): patients_per_event(cfg, ps, states, pop) for ps in cfg.populations}
    if cfg.enrichment is not None and PopulationSpec().label() not in sizes:
        sizes[PopulationSpec().label()] = patients_per_event(cfg, PopulationSpec(), states, pop)
    main, oc = _cells(cfg, states, pop, sizes)
    enr = _enrichment_cells(cfg, states, pop, sizes)
    light = cfg.analysis.method != "bayes" and _work(main) + _work(oc) + _work(enr) < LIGHT_WORK
    if cfg.analysis.method == "bayes":
        say(refits_text(cfg, main + oc))
    with Executor(cfg.executor, cfg.workers, cfg.scheduler, store, progress=progress) as ex:
        rep_main = ex.map(assurance_cell, main, cfg.seed, light, "next phase: assurance")
        rep_oc = ex.map(oc_cell, oc, cfg.seed, light, "next phase: operating characteristics")
        rep_enr = (
            ex.map(enrichment_cell, enr, cfg.seed, light, "next phase: adaptive enrichment")
            if enr
            else None
        )
    text = _analysis_text(cfg)
    res = NextPhaseResults(
        model=cfg.model,
        design_priors={p.name: p.describe() for p in cfg.design_priors},
        analysis=text,
        decision_rule=(
            f"go = the next trial succeeds ({text}); false go: true HR of the "
            f"enrolled population >= {cfg.decision.null_hr:g}; false stop: true HR <= "
            f"{cfg.decision.target_hr:g} (joint probabilities over the design prior)"
        ),
        settings=cfg.model_copy(update={"executor": "auto", "scheduler": None, "workers": 2}),
        failed_cells=rep_main.failed + rep_oc.failed + (rep_enr.failed if rep_enr else []),
        failed_errors={
            k: (r.error or "").splitlines()[-1][:300] if r.error else ""
            for rep in (rep_main, rep_oc, rep_enr)
            if rep is not None
            for k, r in rep.results.items()
            if r.status != "ok"
        },
        executor={"assurance": ExecutorSummary(**rep_main.summary()),
                  "oc": ExecutorSummary(**rep_oc.summary())}  # fmt: skip
        | ({"enrichment": ExecutorSummary(**rep_enr.summary())} if rep_enr else {}),
        time_unit=time_unit,
        biomarker=pop.biomarker_name,
        biomarker_unit=(units or {}).get(pop.biomarker_name or "", ""),
        analysis_short=analysis_short(cfg),
        sequential=sequential_text(cfg),
        sizing={
            ps.describe(pop.biomarker_name, (units or {}).get(pop.biomarker_name or "", "")): (
                f"{cfg.patients} patients (next_phase.patients)" if cfg.patients else how
            )
            for ps in cfg.populations
            for how in [sizes[ps.label()][1]]
        },
        source=source,
    )
    labels = {ps.label(): ps.describe(res.biomarker, res.biomarker_unit) for ps in cfg.populations}
    collect(res, cfg, main, rep_main.values(), oc, rep_oc.values(), labels)
    if cfg.sequential:
        res.planned = planned_designs(cfg, states, pop)
    if cfg.analysis.prior.kind != "none":
        res.borrowing = borrowing_summaries(cfg, states, pop, res, labels)
    if rep_enr is not None:
        res.enrichment = enrichment_results(cfg, enr, rep_enr.values(), res)
    res.recommendation = recommend(res, cfg.recommend)
    return res


#: seconds per Bayesian refit at N = 500, 2 chains × (500 draws + 500 tuning) (README benchmark,
#: 1.06 s on a loaded 2-core machine): the start line's estimate scales it
REFIT_SECONDS = 1.0


def refits_text(cfg: NextPhase, cells: list[Cell]) -> str:
    """The start line of a Bayesian-analysis grid: how many refits and a rough duration."""
    fits = sum(c.args["trials"] for c in cells)
    a = cfg.analysis
    n_model = cells[0].args["n_model"] if cells else 500
    per = REFIT_SECONDS * max(n_model, 100) / 500 * a.chains * (a.draws + a.tune) / 2000
    workers = 1 if cfg.executor == "inprocess" else cfg.workers
    minutes = fits * per / workers / 60
    return (
        f"next phase: {fits} simulated trials in {len(cells)} {plural(len(cells), 'cell')}, "
        f"each refitted by the Bayesian model; roughly {minutes:.0f} min with {workers} "
        f"{plural(workers, 'worker')} (~{per:.1f} s a fit; cells finished are stored)"
    )


# ----------------------------------------------------------------------------- pipeline wiring
def check_data(cfg: NextPhase, data, models) -> None:
    """Before any fit: every enriched population has patients in the data (DataError otherwise),
    the grid fits in memory and its Dask scheduler answers (ConfigError otherwise)."""
    check_grid(cfg)
    spec = {m.name: m for m in models}[cfg.model]
    for ps in cfg.populations:
        if ps.kind == "all":
            continue
        x = data.frame[spec.biomarker].to_numpy(float)
        n = int(((x < ps.cutoff) if ps.kind == "below" else (x > ps.cutoff)).sum())
        if n == 0:
            raise DataError(f"next_phase.populations: no patient has {spec.biomarker} {ps.label()}")


def run_for_models(
    cfg: NextPhase,
    models: dict,
    out_root,
    config_name: str,
    progress: bool | None = None,
    time_unit: str = "time units",
    units: dict | None = None,
) -> NextPhaseResults:
    """Run the grid on the configured fitted model; finished cells are kept (resumable) in
    ``<out_root>/.cache/<config name>/next_phase-<fingerprint>/`` (other fingerprints' folders
    of the same config are removed after the run); ``out_root`` None keeps nothing."""
    pem = models[cfg.model]
    draws = pem.draws()
    fp = fingerprint(
        cfg, StatesOfNature.from_draws(draws, pem.design.starts), Population.from_design(pem.design)
    )
    store = (
        None if out_root is None else Path(out_root) / ".cache" / config_name / f"next_phase-{fp}"
    )
    if progress is None:  # the run's progress lines (off under --quiet)
        progress = current().enabled
    res = run_next_phase(
        cfg, draws, pem.design, store=store, progress=progress, time_unit=time_unit, units=units
    )
    if store is not None:
        prune_stale(store)
    return res


def prune_stale(store) -> list:
    """Remove the other ``next_phase-<fingerprint>`` stores of the same config (older inputs,
    never reused) after a finished run; the current one is kept. Returns what was removed."""

    store = Path(store)
    stale = [p for p in store.parent.glob("next_phase-*") if p.is_dir() and p != store]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def headline(res: NextPhaseResults) -> list[str]:
    """CLI lines: the design recommended under each design prior by the stated criterion
    (never simply the largest trial)."""
    out = []
    for r in res.recommendation:
        if r.population is None:
            out.append(f"  next phase ({r.design_prior}): no design recommended: {r.note}")
            continue
        out.append(
            f"  next phase ({r.design_prior}): recommended {r.population}, {r.events} "
            f"deaths: assurance {r.assurance:.2f}, P(D reached) {r.p_events_reached:.2f}, "
            f"~{r.expected_screened:.0f} screened ({r.criterion})"
        )
    return out
