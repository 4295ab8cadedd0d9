"""One executor for every many-cell job (trial simulation grids, calibration, refit grids).

A job is a list of :class:`Cell` (a key and picklable arguments) and a module-level function
``fn(args, seed) -> dict`` (JSON-able). Backends: ``inprocess`` (tiny jobs), ``processes`` (a local
spawn process pool, the default; a worker keeps whatever it caches, e.g. one compiled model), and
``dask`` (a Dask distributed ``Client`` at ``scheduler``; with ``scheduler='local'`` or none, a
``LocalCluster`` of ``workers`` single-threaded worker processes, started on first use and closed
with the executor — the progress line says "Dask LocalCluster of N workers").

* Seeds: cell ``key`` gets ``SeedSequence([root_seed, crc32(key)])``: the numbers depend on the
  key only, not on the number of workers, the backend or the order cells finish in.
* Resumable: with ``store``, each finished cell is written at once (``<store>/<key>.json``,
  atomically); a rerun loads finished cells and runs only the others.
* Failures: a cell that raises is retried ``retries`` times, then recorded with status ``failed``
  and its error — never dropped.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import multiprocessing as mp
import os
import re
import signal
import time
import traceback
import warnings
import zlib
from collections.abc import Callable, Iterable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from .cache_trust import user_key
from .outputs import dumps, jsonable, write_atomic
from .progress import CellProgress
from .seeds import child_sequence
from .sidecar import stop_process_pool

#: below this many cells "auto" runs in-process (no worker start-up cost)
INPROCESS_MAX_CELLS = 4


@dataclass
class Cell:
    """One unit of a job: a unique key (naming its seed and its resume file) and its arguments."""

    key: str
    args: dict


@dataclass
class CellResult:
    """What one cell gave: status ``ok`` with its value, or ``failed`` with the error, after
    ``attempts`` tries taking ``seconds``; ``resumed`` if it was loaded from the store, not run."""

    key: str
    status: str  # ok | failed
    value: dict | None = None
    error: str | None = None
    attempts: int = 1
    seconds: float = 0.0
    resumed: bool = False


@dataclass
class JobReport:
    """The cells' results in input order, the backend and worker count used, and the wall time."""

    results: dict[str, CellResult] = field(default_factory=dict)
    backend: str = ""
    workers: int = 1
    wall_seconds: float = 0.0
    total: int = 0

    @property
    def failed(self) -> list[str]:
        return [k for k, r in self.results.items() if r.status != "ok"]

    def values(self) -> dict[str, dict]:
        return {k: r.value for k, r in self.results.items() if r.status == "ok"}

    def summary(self) -> dict:
        return {
            "backend": self.backend,
            "workers": self.workers,
            "cells": len(self.results),
            "failed": self.failed,
            "resumed": sum(r.resumed for r in self.results.values()),
            "wall_seconds": round(self.wall_seconds, 2),
            "first_errors": self.first_errors(),
        }

    def first_errors(self, n: int = 3) -> list[str]:
        """Up to ``n`` distinct errors of the failed cells, each with a cell that raised it."""
        seen: dict[str, str] = {}
        for k, r in self.results.items():
            if r.status != "ok" and r.error and r.error not in seen:
                seen[r.error] = k
        return [f"{k}: {err}" for err, k in list(seen.items())[:n]]


def cell_seed(root_seed: int, key: str) -> np.random.SeedSequence:
    """The cell's own random stream (:mod:`.seeds`)."""
    return child_sequence(root_seed, key)


def run_cell(fn: Callable, args: dict, key: str, root_seed: int) -> tuple[dict, float]:
    """What a worker runs: the cell's function with its own seed; returns (value, seconds)."""
    t0 = time.perf_counter()
    value = fn(args, cell_seed(root_seed, key))
    return value, time.perf_counter() - t0


class StoreWarning(RuntimeWarning):
    """A stored cell that is damaged or was edited: it is computed again."""


class CellStore:
    """Finished cells as JSON files, one per cell, written atomically, each with an HMAC-SHA256
    of its content (this user's key, :mod:`cache_trust`; SHA-256 if the key is unusable). A file
    that is truncated, edited or not a cell is computed again, with one warning."""

    def __init__(self, root: str | Path):
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        try:
            self._key = user_key()
        except OSError:
            self._key = None

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.=-]", "_", key)
        return self.root / f"{safe}-{zlib.crc32(key.encode()):08x}.json"

    def _tag(self, payload: dict) -> str:
        blob = json.dumps(jsonable(payload), sort_keys=True, separators=(",", ":"))
        blob = b"trialbayes-cell-v1\0" + blob.encode()
        if self._key is None:
            return "sha256:" + hashlib.sha256(blob).hexdigest()
        return "hmac:" + hmac.new(self._key, blob, hashlib.sha256).hexdigest()

    def load(self, key: str) -> CellResult | None:
        p = self._path(key)
        if not p.is_file():
            return None
        try:
            d = json.loads(p.read_text(encoding="utf-8"))
            tag = d.pop("checksum")
            if not hmac.compare_digest(str(tag), self._tag(d)) or d.get("key") != key:
                raise ValueError("its checksum does not match its content")
            res = CellResult(**d)
        except Exception as exc:  # noqa: BLE001 - anything unreadable is recomputed
            why = f"{type(exc).__name__}: {exc}"[:160]
            warnings.warn(
                f"resume store: cell '{key}' ({p.name}) not used ({why}); computing it again",
                StoreWarning,
                stacklevel=2,
            )
            return None
        return res if res.status == "ok" else None  # failed cells are run again

    def save(self, res: CellResult) -> None:
        d = jsonable(asdict(res))
        write_atomic(self._path(res.key), dumps({**d, "checksum": self._tag(d)}))


class Executor:
    """Runs the cells of many-cell jobs on one backend (in-process, a process pool or Dask), with
    per-key seeds, retries and an optional resume store; a context manager closing its workers."""

    def __init__(
        self,
        backend: str = "auto",
        workers: int = 2,
        scheduler: str | None = None,
        store: str | Path | None = None,
        retries: int = 1,
        progress: bool = False,
    ):
        if backend not in ("auto", "inprocess", "processes", "dask"):
            raise ValueError(f"unknown executor backend '{backend}'")
        self.backend = "dask" if scheduler and backend == "auto" else backend
        self.workers, self.scheduler, self.retries, self.progress = (
            workers,
            scheduler,
            retries,
            progress,
        )
        self.store = CellStore(store) if store else None
        self._pool = self._client = self._cluster = None
        self._bar: CellProgress | None = None
        self._on_cell: Callable[[CellResult], None] | None = None

    # ------------------------------------------------------------------ lifetime
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False

    def close(self) -> None:
        """Shut down the process pool / Dask client kept between ``map`` calls."""
        if self._pool is not None:
            self._pool.shutdown()
            self._pool = None
        self._close_dask()

    def map(
        self,
        fn: Callable,
        cells: Iterable[Cell],
        root_seed: int,
        light: bool = False,
        label: str = "cells",
        on_cell: Callable[[CellResult], None] | None = None,
    ) -> JobReport:
        """Run every cell (``light``: quick cells, run in-process under ``auto``); with
        ``progress``, cells done / total on stderr under ``label`` (progress.CellProgress);
        ``on_cell(result)`` is called in this process as each cell finishes (not for cells
        loaded from the store)."""
        cells = list(cells)
        keys = [c.key for c in cells]
        if len(set(keys)) != len(keys):
            raise ValueError("cell keys must be unique")
        t0 = time.perf_counter()
        backend = "inprocess" if light and self.backend == "auto" else self.backend_for(len(cells))
        report = JobReport(backend=backend, workers=1 if backend == "inprocess" else self.workers)
        report.total = len(cells)
        todo = []
        for c in cells:
            done = self.store.load(c.key) if self.store else None
            if done is not None:
                done.resumed = True
                report.results[c.key] = done
            else:
                todo.append(c)
        how = self._how(backend)
        self._on_cell = on_cell
        self._bar = CellProgress(label, len(cells), how=how) if self.progress else None
        if self._bar:
            self._bar.start(len(cells) - len(todo))
        if todo:
            runner = {
                "inprocess": self._inprocess,
                "processes": self._processes,
                "dask": self._dask,
            }
            runner[report.backend](fn, todo, root_seed, report)
        report.results = {k: report.results[k] for k in keys}
        report.wall_seconds = time.perf_counter() - t0
        if self._bar:
            self._bar.finish(len(report.results), len(report.failed))
        return report

    def _how(self, backend: str) -> str:
        """Where the cells run, for the progress line."""
        n = f"{self.workers} worker" + ("" if self.workers == 1 else "s")
        if backend == "dask":
            if self.scheduler in (None, "local"):
                return f"Dask LocalCluster of {n}"
            return f"Dask scheduler {self.scheduler}"
        return "a process pool of " + n if backend == "processes" else ""

    def backend_for(self, n: int) -> str:
        """The backend ``map`` uses for ``n`` cells (``auto``: in-process for a few cells or one
        worker, else a process pool)."""
        if self.backend != "auto":
            return self.backend
        return "inprocess" if n <= INPROCESS_MAX_CELLS or self.workers == 1 else "processes"

    # ------------------------------------------------------------------ bookkeeping
    def _finish(self, report: JobReport, res: CellResult) -> None:
        report.results[res.key] = res
        if self.store:
            self.store.save(res)
        if self._bar:
            self._bar.update(len(report.results))
        if self._on_cell is not None:
            self._on_cell(res)

    def _outcome(
        self, cell: Cell, attempt: int, value=None, seconds=0.0, exc=None
    ) -> CellResult | None:
        """A finished CellResult, or None when the cell should be retried."""
        if exc is None:
            return CellResult(cell.key, "ok", value, None, attempt, seconds)
        if attempt <= self.retries:
            return None
        msg = "".join(traceback.format_exception_only(type(exc), exc)).strip()
        return CellResult(cell.key, "failed", None, msg, attempt)

    # ------------------------------------------------------------------ backends
    def _inprocess(self, fn, cells, root_seed, report):
        for c in cells:
            attempt = 0
            while True:
                attempt += 1
                try:
                    value, sec = run_cell(fn, c.args, c.key, root_seed)
                    res = self._outcome(c, attempt, value, sec)
                except Exception as exc:  # noqa: BLE001 - recorded, never dropped
                    res = self._outcome(c, attempt, exc=exc)
                if res is not None:
                    self._finish(report, res)
                    break

    def _drive(self, submit, cells, report, wait_any=None, on_stop=None):
        """Common loop for pool-like backends: ``submit(cell) -> future`` with .result().

        Stopped (Ctrl-C, SIGTERM: any ``BaseException`` that is not an ``Exception``), it keeps
        every cell already finished (stored at once, so a rerun resumes from them), then
        ``on_stop(pending futures)`` cancels the rest and stops the workers, and re-raises."""
        wait_any = wait_any or (lambda fs: wait(fs, return_when=FIRST_COMPLETED)[0])
        pending: dict = {}
        try:
            for c in cells:
                pending[submit(c)] = (c, 1)
            while pending:
                for fut in wait_any(list(pending)):
                    c, attempt = pending.pop(fut)
                    res = self._collect(fut, c, attempt)
                    if res is None:
                        pending[submit(c)] = (c, attempt + 1)
                    else:
                        self._finish(report, res)
        except BaseException as exc:
            if isinstance(exc, Exception):
                raise
            for fut, (c, attempt) in list(pending.items()):
                if fut.done() and not fut.cancelled():
                    del pending[fut]
                    res = self._collect(fut, c, attempt)
                    if res is not None and res.status == "ok":
                        self._finish(report, res)
            if on_stop is not None:
                on_stop(list(pending))
            raise

    def _collect(self, fut, c: Cell, attempt: int) -> CellResult | None:
        try:
            value, sec = fut.result()
            return self._outcome(c, attempt, value, sec)
        except Exception as exc:  # noqa: BLE001 - recorded, never dropped
            return self._outcome(c, attempt, exc=exc)

    def _processes(self, fn, cells, root_seed, report):
        if self._pool is None:  # spawn: no forked copies of threaded runtimes (BLAS, nutpie)
            self._pool = ProcessPoolExecutor(
                self.workers, mp_context=mp.get_context("spawn"), initializer=_worker_init
            )
        pool = self._pool
        self._drive(
            lambda c: pool.submit(run_cell, fn, c.args, c.key, root_seed),
            cells,
            report,
            on_stop=lambda _: self._stop_pool(),
        )

    def _stop_pool(self) -> None:
        """Now, not after the running cells: pending cells cancelled, workers terminated."""
        pool, self._pool = self._pool, None
        if pool is not None:
            stop_process_pool(pool)

    def _dask_client(self):
        from distributed import Client, LocalCluster  # lazy: only a Dask executor needs it

        if self._client is None:
            if self.scheduler in (None, "local"):
                self._cluster = LocalCluster(
                    n_workers=self.workers,
                    threads_per_worker=1,
                    processes=True,
                    dashboard_address=None,
                )
                self._client = Client(self._cluster)
            else:
                self._client = Client(self.scheduler)
        return self._client

    def _dask(self, fn, cells, root_seed, report):
        from distributed import wait as dwait  # lazy: only a Dask executor needs it

        client = self._dask_client()
        report.workers = len(client.scheduler_info()["workers"])

        def stop(pending):
            try:
                client.cancel(pending)
            finally:
                self._close_dask(timeout=2)

        self._drive(
            lambda c: client.submit(run_cell, fn, c.args, c.key, root_seed, pure=False),
            cells,
            report,
            wait_any=lambda fs: dwait(fs, return_when="FIRST_COMPLETED").done,
            on_stop=stop,
        )

    def _close_dask(self, timeout: float | None = None) -> None:
        client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        if client is not None:
            client.close(**({} if timeout is None else {"timeout": timeout}))
        if cluster is not None:
            cluster.close(**({} if timeout is None else {"timeout": timeout}))


#: seconds a Dask scheduler has to answer before any fitting starts
SCHEDULER_TIMEOUT = 5.0


def scheduler_problem(address: str | None, timeout: float = SCHEDULER_TIMEOUT) -> str | None:
    """Why the Dask scheduler at ``address`` cannot be used, or None (``local`` / none: a
    LocalCluster, nothing to contact). Asks it who it is, and gives up after ``timeout``
    seconds, also when something listens but never answers."""
    if address in (None, "local"):
        return None

    async def ask():
        from distributed.comm import connect  # lazy: only a Dask scheduler check needs it

        comm = await connect(address, timeout=timeout)
        try:
            await comm.write({"op": "identity"})
            return await comm.read()
        finally:
            comm.abort()

    try:
        answer = asyncio.run(asyncio.wait_for(ask(), timeout + 1))
    except TimeoutError:
        return f"no answer within {timeout + 1:g} s"
    except Exception as exc:  # noqa: BLE001 - any failure to talk to it
        return f"{type(exc).__name__}: {str(exc)[:160]}"
    if not isinstance(answer, dict) or answer.get("type") != "Scheduler":
        return f"it answered, but not as a Dask scheduler ({str(answer)[:80]})"
    return None


def _worker_init() -> None:
    """A pool worker leaves Ctrl-C to the main process (which stops the pool itself): a terminal's
    SIGINT reaches the whole process group, and workers must not die mid-cell with tracebacks."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def probe_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """A tiny cell for tests and bench/: normal draws from the cell's seed, optional CPU work
    (``work`` matrix products) and ``fail_times`` failures counted in the file ``fail_file``."""
    if args.get("fail_file"):
        p = Path(args["fail_file"])
        n = int(p.read_text()) if p.exists() else 0
        p.write_text(str(n + 1))
        if n < args.get("fail_times", 0):
            raise RuntimeError(f"probe failure {n + 1}")
    rng = np.random.default_rng(seed)
    a = rng.normal(size=(200, 200))
    for _ in range(int(args.get("work", 0))):
        a = np.tanh(a @ a / 200.0)
    return {
        "draws": rng.normal(size=int(args.get("n", 3))).tolist(),
        "work": float(a.sum()),
        "pid": os.getpid(),
    }
