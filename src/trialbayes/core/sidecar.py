"""A helper process beside a run, for single-threaded work that can proceed in parallel with the
run's own (the CLI draws figures in it while it writes tables and posterior files).

:func:`start` spawns one worker process (not forked: no copies of threaded runtimes) that
imports the modules named in ``warm`` at once, while the run imports its own: on a 2-core machine
both imports proceed together. :func:`submit` runs ``fn(*args)`` there and returns a Future, or
None when no sidecar runs; callers always keep a way to do the work themselves (a job that
cannot be pickled, a worker that failed). :func:`stop` ends it.

It starts only when it can use a CPU nobody else uses: with 2 or more CPUs and a 1-minute load
average that leaves one idle (on a busy machine a second process importing and drawing only
slows both). ``TRIALBAYES_SIDECAR``: ``auto`` (that rule, the default), ``on`` (whenever there
are 2 CPUs), ``off``.
"""

from __future__ import annotations

import importlib
import multiprocessing as mp
import os
import time
from concurrent.futures import Future, ProcessPoolExecutor

_POOL: list[ProcessPoolExecutor] = []


def _warm(modules: tuple[str, ...], env: dict[str, str]) -> None:
    """The worker's initializer: the environment, then the modules its jobs will need."""
    os.environ.update(env)
    for name in modules:
        importlib.import_module(name)


ENV_VAR = "TRIALBAYES_SIDECAR"


def cpus() -> int:
    """The CPUs this process may use."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1


def idle_cpus() -> int:
    """CPUs the machine's 1-minute load leaves idle besides the one the caller uses: the load
    rounded to whole CPUs (2 CPUs at load 0.4: one idle; at load 0.6: none). Truncating instead
    would call a CPU idle only at a load of exactly 0, never on a 2-core machine in use."""
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else 0.0
    return max(0, round(cpus() - load) - 1)


def wanted(env_var: str) -> bool:
    """The ``auto``/``on``/``off`` rule of an environment switch: ``auto`` (or unset) when a CPU
    is idle, ``on`` with 2 or more CPUs, ``off`` never."""
    mode = os.environ.get(env_var, "auto").strip().lower()
    if mode in ("off", "0", "false", "no") or cpus() < 2:
        return False
    return mode in ("on", "1", "true", "yes") or idle_cpus() >= 1


def start(warm: tuple[str, ...] = (), env: dict[str, str] | None = None) -> bool:
    """Start the sidecar (once) when :func:`wanted`; whether one runs."""
    if _POOL:
        return True
    if not wanted(ENV_VAR):
        return False
    pool = ProcessPoolExecutor(
        1, mp_context=mp.get_context("spawn"), initializer=_warm, initargs=(warm, env or {})
    )
    pool.submit(int)  # spawn the worker now, so that its imports run beside the caller's
    _POOL.append(pool)
    return True


def running() -> bool:
    """Whether a sidecar process runs."""
    return bool(_POOL)


def submit(fn, *args) -> Future | None:
    """``fn(*args)`` in the sidecar (a Future), or None without one (or if it broke)."""
    if not _POOL:
        return None
    try:
        return _POOL[0].submit(fn, *args)
    except RuntimeError:  # a broken or shut-down pool: the caller does the work
        return None


def stop() -> None:
    """End the sidecar: queued jobs are cancelled, the worker process ended."""
    while _POOL:
        stop_process_pool(_POOL.pop())


def stop_process_pool(pool, grace: float = 1.0) -> None:
    """Stop a ``ProcessPoolExecutor`` now: queued work cancelled, workers terminated (killed
    after ``grace`` seconds), and its management thread joined, so that the pool's queues and
    their semaphores are freed before the process exits (an exit without that, e.g. os._exit
    after Ctrl-C, leaves them to the resource tracker's "leaked semaphore" warning)."""
    procs = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)  # shutdown() forgets it
    pool.shutdown(wait=False, cancel_futures=True)
    for p in procs:
        if p.is_alive():
            p.terminate()
    deadline = time.monotonic() + grace
    for p in procs:
        p.join(max(0.0, deadline - time.monotonic()))
        if p.is_alive():
            p.kill()
            p.join(1.0)
    if manager is not None:  # it sees the workers gone, ends and lets the queues go
        manager.join(grace + 1.0)
