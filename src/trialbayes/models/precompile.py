"""Compile a run's later models in a background process while the run compiles and samples its
first one.

Compiling is single-threaded: on a machine whose compile cache does not hold a run's models yet
(a first run; a new PyMC, PyTensor or nutpie), the models compiled one after another leave the
other cores idle for most of the run. :func:`start` hands every model after the first that the
cache does not hold to worker processes (spawned, ``cpus − 1`` of them, at most one per model),
which build the same model and compile it into the disk compile cache
(:mod:`~trialbayes.inference.compile_cache`); the run loads each model from the cache when it gets
there, waiting on the cache's per-model lock if a worker is still compiling it. Nothing else is
shared: a worker that fails or is stopped only means that the run compiles that model itself.
Nothing starts when every later model is cached (a warm run), with one model, with the compile
cache off or nutpie's own compilation (``TRIALBAYES_COMPILER=nutpie``), and — the switch
``TRIALBAYES_BACKGROUND_COMPILE`` (``auto``, the default; ``on``; ``off``; core.sidecar.wanted) —
under ``auto`` without an idle CPU (the 1-minute load average leaves less than one free: a busy
machine gains nothing and pays for the compilations both processes make of PyTensor's shared
kernels).
"""

from __future__ import annotations

import multiprocessing as mp
import os
import warnings
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

from ..config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from ..core.sidecar import idle_cpus, stop_process_pool, wanted
from ..data.table import TrialData
from ..inference.compile_cache import COMPILER_ENV_VAR, configured_cache_dir, is_cached
from .pem import PiecewiseExponentialModel


@dataclass(frozen=True)
class CompileCase:
    """What a worker needs to build the run's model exactly as the run does."""

    spec: ModelSpec
    priors: dict
    baseline: Baseline
    sampler: SamplerSpec
    gate: Diagnostics
    data: TrialData


def compile_case(case: CompileCase) -> str:
    """Build and compile one model (in a worker): where the compiled model came from."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pem = PiecewiseExponentialModel(
            case.spec, case.priors, case.baseline, case.sampler, case.gate
        ).build(case.data)
        pem.sampler.compile()
    return str(pem.sampler.compile_source)


class Precompiler:
    """The worker processes compiling models in the background (:func:`start`); leaving the
    ``with`` block ends them (``close(stop=True)``); ``close()`` alone only cancels what is queued
    (a compile in progress finishes)."""

    def __init__(self, cases: list[CompileCase], workers: int):
        self.names = [c.spec.name for c in cases]
        self._pool = ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn"))
        self.futures = [self._pool.submit(compile_case, c) for c in cases]

    def close(self, stop: bool = False) -> None:
        """Stop queued compilations; ``stop``: also end the workers now (an interrupted run)."""
        if self._pool is None:
            return
        if stop:
            stop_process_pool(self._pool)
        else:
            self._pool.shutdown(wait=False, cancel_futures=True)
        self._pool = None

    def __enter__(self):
        return self

    def __exit__(self, exc_type, *exc):
        # the run's models are all compiled or loaded by now: a compile still running would only
        # write an entry the run no longer needs, and a worker left alive outlives a run that
        # ends with os._exit (cli.main): stop them (cache writes are a rename; locks die too)
        self.close(stop=True)
        return False


#: auto | on | off (core.sidecar.wanted)
ENV_VAR = "TRIALBAYES_BACKGROUND_COMPILE"


def start(
    pems: list[PiecewiseExponentialModel], priors: dict, data: TrialData
) -> Precompiler | None:
    """Compile in the background every model after the first that the compile cache does not
    hold; None when there is nothing to gain (see the module docstring)."""
    if len(pems) < 2 or not wanted(ENV_VAR):
        return None
    if os.environ.get(COMPILER_ENV_VAR, "").lower() == "nutpie":
        return None
    first = pems[0].sampler_config
    if first.backend != "nutpie" or not configured_cache_dir(first.cache_dir):
        return None
    todo = [p for p in pems[1:] if not is_cached(p.model, configured_cache_dir(first.cache_dir))]
    if not todo:
        return None
    cases = [CompileCase(p.spec, priors, p.baseline, p.sampler_config, p.gate, data) for p in todo]
    return Precompiler(cases, min(max(idle_cpus(), 1), len(cases)))
