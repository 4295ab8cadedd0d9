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
from dataclasses import asdict, dataclass, field, replace

import numpy as np
import pandas as pd

from .executor import Cell, Executor
from .nextphase_analysis import analyse
from .nextphase_config import (
    AnalysisSpec,
    DecisionRule,
    DesignPriorSpec,
    NextPhase,
    PopulationSpec,
)
from .simulate import Population, StatesOfNature, TrialDesign, simulate_trials


# ----------------------------------------------------------------------------- design prior
def design_prior(
    states: StatesOfNature, spec: DesignPriorSpec, rng: np.random.Generator
) -> StatesOfNature:
    """The states of nature under a design prior made from posterior draws (DesignPriorSpec)."""
    if spec.kind == "as_is":
        return replace(states, label=spec.describe())
    if spec.kind == "mixture":
        scept = rng.random(states.n) < spec.weight
        beta = np.where(
            scept, rng.normal(spec.sceptical_mean, spec.sceptical_sd, states.n), states.treatment
        )
        keep = ~scept
        return replace(
            states,
            treatment=beta,
            interaction=states.interaction * keep,
            interaction_spline=states.interaction_spline * keep[:, None],
            label=spec.describe(),
        )
    k = math.sqrt(spec.factor)

    def inflate(a):
        return a.mean(axis=0) + k * (a - a.mean(axis=0))

    return replace(
        states,
        treatment=inflate(states.treatment),
        interaction=inflate(states.interaction),
        interaction_spline=inflate(states.interaction_spline),
        label=spec.describe(),
    )


def trial_design(cfg: NextPhase, pop: PopulationSpec, events: int) -> TrialDesign:
    return TrialDesign(
        events=events,
        n_randomised=math.ceil(events * cfg.patients_per_event),
        accrual_time=cfg.accrual.time,
        accrual_weights=tuple(cfg.accrual.weights),
        dropout_rate=cfg.dropout_rate,
        allocation=cfg.allocation,
        calendar_cut=cfg.calendar_cut,
        population=pop.kind,
        cutoff=pop.cutoff,
    )


# ----------------------------------------------------------------------------- cells
#: the analysis of cells whose arguments name none (bench/, older callers): log-rank
LOGRANK = AnalysisSpec()

def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def assurance_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """Simulate and analyse ``trials`` trials under a design prior; summaries of the decisions."""
    rng = np.random.default_rng(seed)
    states: StatesOfNature = args["states"]
    n = args["trials"]
    st = design_prior(states.take(rng.integers(0, states.n, n)), args["prior"], rng)
    sim = simulate_trials(st, args["population"], args["design"], rng)
    dec = analyse(sim, args.get("analysis") or LOGRANK, args, rng)
    ok = dec.success
    rule: DecisionRule = args["decision"]
    true_hr = np.exp(sim.true_log_hr)
    bad, good = true_hr >= rule.null_hr, true_hr <= rule.target_hr
    p = float(ok.mean())
    return {
        "assurance": p,
        "mc_se": _se(p, n),
        "trials": n,
        "expected_events": float(sim.n_events.mean()),
        "expected_randomised": float(sim.n_randomised.mean()),
        "expected_screened": float(sim.n_screened.mean()),
        "expected_duration": float(sim.analysis_time.mean()),
        "p_events_reached": float((sim.n_events >= args["design"].events).mean()),
        "p_go": p,
        "false_go": float((ok & bad).mean()),
        "false_stop": float((~ok & good).mean()),
        "p_true_hr_below_null": float((~bad).mean()),
        "p_true_hr_below_target": float(good.mean()),
        "true_hr_median": float(np.median(true_hr)),
        **dec.counts(),
    }


def oc_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """P(success | true HR) with the posterior's baseline and prognostic draws."""
    rng = np.random.default_rng(seed)
    states: StatesOfNature = args["states"]
    n = args["trials"]
    st = states.take(rng.integers(0, states.n, n)).with_effect(math.log(args["hr"]), "fixed HR")
    sim = simulate_trials(st, args["population"], args["design"], rng)
    dec = analyse(sim, args.get("analysis") or LOGRANK, args, rng)
    p = float(dec.success.mean())
    return {"p_success": p, "mc_se": _se(p, n), "trials": n, **dec.counts()}


# ----------------------------------------------------------------------------- results
@dataclass
class DesignResult:
    design_prior: str
    population: str
    cutoff: float | None
    events: int
    n_planned: int
    assurance: float
    mc_se: float
    trials: int
    expected_events: float
    expected_randomised: float
    expected_screened: float
    expected_duration: float
    p_events_reached: float
    p_go: float
    false_go: float
    false_stop: float
    p_true_hr_below_null: float
    p_true_hr_below_target: float
    true_hr_median: float
    analysis_failed: int = 0  # trials whose analysis gave no result (counted as no success)
    analysis_divergent: int = 0  # Bayesian analyses with divergent transitions (kept)
    analysis_errors: list[str] = field(default_factory=list)  # first errors of failed analyses
    population_kind: str = ""  # all / below / above ("" in results written before it existed)


@dataclass
class OCPoint:
    population: str
    events: int
    true_hr: float
    p_success: float
    mc_se: float
    analysis_failed: int = 0
    analysis_divergent: int = 0
    analysis_errors: list[str] = field(default_factory=list)


@dataclass
class NextPhaseResults:
    model: str
    design_priors: dict[str, str]  # name -> what it is (stated in every output)
    analysis: str
    decision_rule: str
    settings: dict
    designs: list[DesignResult] = field(default_factory=list)
    oc: list[OCPoint] = field(default_factory=list)
    failed_cells: list[str] = field(default_factory=list)
    failed_errors: dict[str, str] = field(default_factory=dict)  # cell -> its error (one line)
    executor: dict = field(default_factory=dict)
    time_unit: str = "time units"  # the data's (data.time_unit): calendar cut, accrual, durations
    biomarker: str | None = None  # the model's biomarker (enriched populations' labels)
    biomarker_unit: str = ""
    analysis_short: str = ""  # method and level in a few words (figure titles)

    def designs_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(d) for d in self.designs])

    def oc_table(self) -> pd.DataFrame:
        return pd.DataFrame([asdict(o) for o in self.oc])

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "NextPhaseResults":
        """Back from ``to_dict()`` / results.json."""
        d = dict(d)
        d["designs"] = [DesignResult(**x) for x in d.get("designs", [])]
        d["oc"] = [OCPoint(**x) for x in d.get("oc", [])]
        return cls(**d)


def _analysis_text(cfg: NextPhase) -> str:
    return cfg.analysis.describe(cfg.alpha, cfg.min_observed_hr)


# ----------------------------------------------------------------------------- run
def _cells(cfg: NextPhase, states, pop) -> tuple[list[Cell], list[Cell]]:
    common = {
        "states": states,
        "population": pop,
        "alpha": cfg.alpha,
        "min_hr": cfg.min_observed_hr,
        "analysis": cfg.analysis,
        # the Bayesian analysis model's fixed shape: the grid's largest trial (one compilation)
        "n_model": math.ceil(max(cfg.events) * cfg.patients_per_event),
        "events_hint": max(cfg.events),
    }
    main, oc = [], []
    for ps in cfg.populations:
        for d in cfg.events:
            design = trial_design(cfg, ps, d)
            for pr in cfg.design_priors:
                main.append(
                    Cell(
                        f"assurance|{pr.name}|{ps.label()}|{d}",
                        {
                            **common,
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
                        {**common, "design": design, "hr": hr, "trials": cfg.oc_trials},
                    )
                )
    return main, oc


#: simulated patient-trials below which ``executor: auto`` runs in-process (about 30 s of numpy)
LIGHT_WORK = 150_000_000


def _work(cells: list[Cell]) -> int:
    return sum(c.args["trials"] * c.args["design"].n_randomised for c in cells)


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
    from .covariate_model import fitted_population

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
) -> NextPhaseResults:
    """The whole grid for one fitted model's draws (``PiecewiseExponentialModel.draws()``)
    and design; ``time_unit`` and ``units`` (the data's) label the outputs."""
    states = StatesOfNature.from_draws(draws, design.starts)
    pop = population(cfg, design)
    for ps in cfg.populations:  # before any simulation: every population must have patients
        if not pop.eligible(ps.kind, ps.cutoff).any():
            raise ValueError(
                f"next_phase.populations: no patient of the fitted data is {ps.label()}"
            )
    main, oc = _cells(cfg, states, pop)
    light = cfg.analysis.method != "bayes" and _work(main) + _work(oc) < LIGHT_WORK
    if cfg.analysis.method == "bayes":
        from .progress import say

        say(refits_text(cfg, main + oc))
    with Executor(cfg.executor, cfg.workers, cfg.scheduler, store, progress=progress) as ex:
        rep_main = ex.map(assurance_cell, main, cfg.seed, light, "next phase: assurance")
        rep_oc = ex.map(oc_cell, oc, cfg.seed, light, "next phase: operating characteristics")
    res = NextPhaseResults(
        model=cfg.model,
        design_priors={p.name: p.describe() for p in cfg.design_priors},
        analysis=_analysis_text(cfg),
        decision_rule=(
            f"go = the next trial succeeds ({_analysis_text(cfg)}); false go: true HR of the "
            f"enrolled population >= {cfg.decision.null_hr:g}; false stop: true HR <= "
            f"{cfg.decision.target_hr:g} (joint probabilities over the design prior)"
        ),
        settings=cfg.model_dump(mode="json", exclude={"executor", "scheduler", "workers"}),
        failed_cells=rep_main.failed + rep_oc.failed,
        failed_errors={
            k: (r.error or "").splitlines()[-1][:300]
            for rep in (rep_main, rep_oc)
            for k, r in rep.results.items()
            if r.status != "ok"
        },
        executor={"assurance": rep_main.summary(), "oc": rep_oc.summary()},
        time_unit=time_unit,
        biomarker=pop.biomarker_name,
        biomarker_unit=(units or {}).get(pop.biomarker_name or "", ""),
        analysis_short=cfg.analysis.short(cfg.alpha),
    )
    labels = {ps.label(): ps.describe(res.biomarker, res.biomarker_unit) for ps in cfg.populations}
    vals = rep_main.values()
    for c in main:
        if c.key in vals:
            a = c.args
            res.designs.append(
                DesignResult(
                    a["prior"].name,
                    labels[a["design"].label()],
                    a["design"].cutoff,
                    a["design"].events,
                    a["design"].n_randomised,
                    **vals[c.key],
                    population_kind=a["design"].population,
                )
            )
    vals = rep_oc.values()
    for c in oc:
        if c.key in vals:
            a, v = c.args, vals[c.key]
            res.oc.append(
                OCPoint(labels[a["design"].label()], a["design"].events, a["hr"], **_oc_values(v))
            )
    return res


#: seconds per Bayesian refit at N = 500, 2 chains × (500 draws + 500 tuning) (README benchmark,
#: 1.06 s on a loaded 2-core machine): the start line's estimate scales it
REFIT_SECONDS = 1.0


def refits_text(cfg: NextPhase, cells: list[Cell]) -> str:
    """The start line of a Bayesian-analysis grid: how many refits and a rough duration."""
    fits = sum(c.args["trials"] for c in cells)
    a = cfg.analysis
    n_model = cells[0].args["n_model"] if cells else 500
    per = REFIT_SECONDS * max(n_model, 100) / 500 * a.chains * (
        a.draws + a.tune
    ) / 2000
    workers = 1 if cfg.executor == "inprocess" else cfg.workers
    minutes = fits * per / workers / 60
    return (
        f"next phase: {fits} simulated trials in {len(cells)} {plural(len(cells), 'cell')}, "
        f"each refitted by the Bayesian model; roughly {minutes:.0f} min with {workers} "
        f"{plural(workers, 'worker')} (~{per:.1f} s a fit; cells finished are stored)"
    )


def plural(n: int, word: str) -> str:
    return word if n == 1 else word + "s"


def _oc_values(v: dict) -> dict:
    keys = ("p_success", "mc_se", "analysis_failed", "analysis_divergent", "analysis_errors")
    return {k: v[k] for k in keys if k in v}


# ----------------------------------------------------------------------------- pipeline wiring
def check_data(cfg: NextPhase, data, models) -> None:
    """Before any fit: every enriched population has patients in the data (DataError otherwise),
    the grid fits in memory and its Dask scheduler answers (ConfigError otherwise)."""
    from .data import DataError
    from .nextphase_checks import check_grid

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
    of the same config are removed after the run)."""
    from pathlib import Path

    pem = models[cfg.model]
    draws = pem.draws()
    fp = fingerprint(
        cfg, StatesOfNature.from_draws(draws, pem.design.starts), Population.from_design(pem.design)
    )
    store = Path(out_root) / ".cache" / config_name / f"next_phase-{fp}"
    if progress is None:  # the run's progress lines (off under --quiet)
        from .progress import current

        progress = current().enabled
    res = run_next_phase(
        cfg, draws, pem.design, store=store, progress=progress, time_unit=time_unit, units=units
    )
    prune_stale(store)
    return res


def prune_stale(store) -> list:
    """Remove the other ``next_phase-<fingerprint>`` stores of the same config (older inputs,
    never reused) after a finished run; the current one is kept. Returns what was removed."""
    import shutil
    from pathlib import Path

    store = Path(store)
    stale = [p for p in store.parent.glob("next_phase-*") if p.is_dir() and p != store]
    for p in stale:
        shutil.rmtree(p, ignore_errors=True)
    return stale


def failed_cells_flags(res: NextPhaseResults) -> list:
    """A warning when cells of the grid failed (listed in the next-phase section)."""
    from .flags import Flag

    if not res.failed_cells:
        return []
    n, total = len(res.failed_cells), len(res.designs) + len(res.oc) + len(res.failed_cells)
    first = next(iter(res.failed_errors.values()), "")
    return [
        Flag(
            "next_phase_failed_cells",
            f"next phase: {n} of {total} simulation cells failed"
            + (" (every cell)" if n == total else "")
            + (f", e.g. {first}" if first else "")
            + "; they are listed in the next-phase section and missing from its tables",
            "warning",
            detail={"failed": n, "cells": total},
        )
    ]


def headline(d: dict) -> list[str]:
    """CLI lines: the design with the highest assurance under each design prior."""
    out = []
    for prior in d.get("design_priors", {}):
        rows = [x for x in d["designs"] if x["design_prior"] == prior]
        if rows:
            b = max(rows, key=lambda x: x["assurance"])
            out.append(
                f"  next phase ({prior}): best {b['population']}, {b['events']} events: "
                f"assurance {b['assurance']:.2f} (MC SE {b['mc_se']:.3f})"
            )
    return out
