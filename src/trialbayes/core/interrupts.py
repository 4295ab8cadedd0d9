"""Run phases and interruptions: Ctrl-C (SIGINT) and SIGTERM stop a run, never truncate it.

``handle_signals()`` (installed by the CLI around every command) turns SIGINT and SIGTERM into an
:class:`Interrupted` exception. It derives from ``BaseException``, not ``KeyboardInterrupt``, so
no library's ``except KeyboardInterrupt`` / ``except Exception`` can swallow it and carry on with
a partial result (nutpie returns the draws so far on KeyboardInterrupt). The signal is also
remembered, so that :func:`raise_if_interrupted` stops the run after any call that swallowed it
anyway. The CLI turns it into exit status 128 + signal number (130 SIGINT, 143 SIGTERM); the
output folder is only ever replaced by a completed run (``outputs.OutputDir``).

``phase(name)`` records what the run is doing, so that an interruption or an unexpected failure
names the phase ("sampling model 'adjusted'").
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from contextlib import contextmanager

import numpy as np

from .errors import Interrupted, SamplingIncomplete

_received: int | None = None
_phase: list[str] = []


_deferring = 0  # > 0 inside deferred(): a signal is held until the block is done
_pending: int | None = None


def _handler(signum, frame):  # noqa: ARG001 - signal handler signature
    global _received, _pending
    _received = signum
    if _deferring:
        _pending = signum
        return
    raise Interrupted(signum)


_committed: list = []  # output folders swapped into place by this command


def note_committed(path) -> None:
    """Record that ``path`` now holds this command's complete outputs."""
    _committed.append(path)


def committed() -> list:
    """Output folders this command completed (so an interruption can say so)."""
    return list(_committed)


def received() -> int | None:
    """The signal number received since handlers were installed, or None."""
    return _received


def raise_if_interrupted() -> None:
    """Re-raise an interruption that a library caught and swallowed (or one held back by
    :func:`deferred`, which is then not raised a second time)."""
    global _pending
    if _received is not None:
        _pending = None
        raise Interrupted(_received)


@contextmanager
def handle_signals() -> Iterator[None]:
    """Install the SIGINT / SIGTERM handlers for the duration of a command (main thread only)."""
    global _received, _pending
    _received = _pending = None
    _committed.clear()
    old = {s: signal.signal(s, _handler) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for s, h in old.items():
            signal.signal(s, h)
        _received = _pending = None  # handled: nothing leaks into the next command


@contextmanager
def deferred() -> Iterator[None]:
    """Hold SIGINT / SIGTERM back for a few renames (a commit is all or nothing). The hold is in
    the Python handler, not a thread's signal mask: any thread may receive a process signal,
    but its Python handler always runs in the main thread, which this flag governs."""
    global _deferring, _pending
    _deferring += 1
    try:
        yield
    finally:
        _deferring -= 1
    if not _deferring and _pending is not None:
        signum, _pending = _pending, None
        raise Interrupted(signum)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """``with phase("sampling model 'x'"):`` names what the run is doing; an exception escaping
    it is tagged with the innermost phase it came from (see :func:`failure_phase`)."""
    _phase.append(name)
    try:
        yield
    except BaseException as exc:
        if getattr(exc, "_trialbayes_phase", None) is None:
            try:
                exc._trialbayes_phase = " / ".join(_phase)
            except AttributeError:
                pass
        raise
    finally:
        _phase.pop()


def current_phase() -> str:
    """The phases the run is in now, outermost first (``"a / b"``), or ``"starting"``."""
    return " / ".join(_phase) if _phase else "starting"


def failure_phase(exc: BaseException) -> str:
    """The phase an exception was raised in (recorded on it while unwinding), else the current."""
    return getattr(exc, "_trialbayes_phase", None) or current_phase()


def check_complete(idata, chains: int, draws: int, var_names: list[str]) -> None:
    """Refuse a trace that is shorter than asked or holds non-finite draws (a truncated run)."""
    raise_if_interrupted()

    post = idata.posterior
    got = (int(post.sizes.get("chain", 0)), int(post.sizes.get("draw", 0)))
    if got != (chains, draws):
        raise SamplingIncomplete(
            f"the sampler returned {got[0]} chains × {got[1]} draws, "
            f"not {chains} × {draws}; the run was cut short"
        )
    for v in var_names:
        if v in post and not np.isfinite(np.asarray(post[v])).all():
            raise SamplingIncomplete(
                f"non-finite posterior draws of '{v}': the sampler did not finish"
            )
