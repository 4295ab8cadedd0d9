"""Checks of a ``next_phase:`` grid before anything is fitted: the memory its cells will need,
and the Dask scheduler it names (contacted with a short timeout). Both are input errors (exit 2)
when they fail, so a run never fits its models to then die in the grid."""

from __future__ import annotations

import math

from ..config.next_phase import NextPhase
from ..core.errors import ConfigError
from ..core.executor import scheduler_problem
from ..data.checks import available_memory
from .sizing import LIGHT_WORK

#: bytes a cell holds per simulated patient-trial (trial × patient arrays and the analysis'
#: temporaries; measured 110 with the log-rank and Cox analyses by tracemalloc, at 400 to 1600
#: patients and 400 to 16 000 trials: linear)
BYTES_PER_PATIENT_TRIAL = 120
#: what a worker holds besides its cell for the Bayesian analysis (one compiled model)
BAYES_WORKER_BYTES = 0.5e9
MEMORY_SHARE = 0.5


def _gb(x: float) -> str:
    return f"{x / 1e9:,.1f} GB" if x < 1e12 else f"{x / 1e12:,.1f} TB"


def _patients_per_event(cfg: NextPhase) -> float:
    """The largest stated patients per target death (``auto`` counts as 1: a lower bound, the
    derived value is known only from the fitted model)."""
    given = [cfg.patients_per_event] + [p.patients_per_event for p in cfg.populations]
    return max([float(x) for x in given if isinstance(x, int | float)] + [1.0])


def memory_need(cfg: NextPhase) -> tuple[float, int, int, int]:
    """(bytes at once, concurrent cells, trials of the largest cell, its patients)."""
    ppe = _patients_per_event(cfg)
    size = (lambda e: cfg.patients) if cfg.patients else (lambda e: math.ceil(e * ppe))
    n = size(max(cfg.events))
    trials = max(cfg.trials, cfg.oc_trials)
    per_cell = BYTES_PER_PATIENT_TRIAL * trials * n
    work = sum(size(e) for e in cfg.events) * len(cfg.populations) * (
        cfg.trials * len(cfg.design_priors) + cfg.oc_trials * len(cfg.oc_grid())
    )
    light = cfg.analysis.method != "bayes" and work < LIGHT_WORK
    one = cfg.executor == "inprocess" or (cfg.executor == "auto" and light and not cfg.scheduler)
    at_once = 1 if one else cfg.workers
    extra = BAYES_WORKER_BYTES * at_once if cfg.analysis.method == "bayes" else 0.0
    return per_cell * at_once + extra, at_once, trials, n


def check_memory(cfg: NextPhase, available: float | None = None) -> str | None:
    """Why the grid would not fit in half the available memory, with the estimate; or None. Cells
    on a remote Dask scheduler run elsewhere and are not counted."""
    if cfg.scheduler not in (None, "local"):
        return None
    avail = available_memory() if available is None else available
    need, at_once, trials, n = memory_need(cfg)
    if need <= MEMORY_SHARE * avail:
        return None
    return (
        f"next_phase: a cell simulates {trials:,} trials × {n:,} patients, about "
        f"{_gb(need / at_once)} each"
        + (f", {_gb(need)} with {at_once} workers at once" if at_once > 1 else "")
        + f": more than half the available memory ({_gb(avail)}); lower next_phase.trials / "
        "oc_trials (or events, patients_per_event, workers)"
    )


def check_grid(cfg: NextPhase) -> None:
    """Memory and scheduler, before any fit (ConfigError: exit 2)."""
    why = check_memory(cfg)
    if why:
        raise ConfigError(why)
    if cfg.executor in ("auto", "dask"):
        why = scheduler_problem(cfg.scheduler)
        if why:
            raise ConfigError(
                f"next_phase.scheduler: the Dask scheduler {cfg.scheduler} cannot be used "
                f"({why}); nothing was fitted"
            )
