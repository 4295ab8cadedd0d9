"""What a run is doing, on stderr: one line per phase with the elapsed time, terminal or not.

    with progress.phase("compiling model adjusted"):
        ...
    # [   0.4 s] compiling model adjusted …
    # [  14.1 s] compiling model adjusted: done in 13.7 s

The CLI turns the lines on (``--quiet`` turns them off); in a notebook or a test nothing is printed
unless :func:`configure` is called. Lines are flushed at once, so a run whose output goes to a file
or a CI log shows what it is doing from its first second. With a terminal attached, the sampler's
progress bar is a single line that names the model (:func:`sampler_bar`).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from dataclasses import dataclass, field
from typing import TextIO

from .interrupts import phase as named


@dataclass
class Progress:
    """Phase lines on ``stream`` (stderr by default); ``enabled=False`` prints nothing."""

    enabled: bool = False
    stream: TextIO | None = None
    start: float = field(default_factory=time.perf_counter)
    lines: list[str] = field(default_factory=list)  # everything printed, for tests and the report

    def elapsed(self) -> float:
        return time.perf_counter() - self.start

    def say(self, text: str) -> None:
        line = f"[{self.elapsed():7.1f} s] {text}"
        self.lines.append(line)
        if self.enabled:
            out = self.stream or sys.stderr
            print(line, file=out, flush=True)

    @contextmanager
    def phase(self, text: str, record: bool = True) -> Iterator[None]:
        """Announce a phase now and say when it ends, with its own duration. ``record``: also name
        it for ``interrupts`` (an interruption or failure inside says "while <text>")."""
        self.say(f"{text} …")
        t0 = time.perf_counter()
        with named(text) if record else nullcontext():
            yield
        self.say(f"{text}: done in {time.perf_counter() - t0:.1f} s")


_current = Progress(enabled=False)


def configure(enabled: bool, stream: TextIO | None = None) -> Progress:
    """Start a new run's clock; the CLI calls this once (``enabled = not --quiet``)."""
    global _current
    _current = Progress(enabled=enabled, stream=stream)
    return _current


def current() -> Progress:
    """The run's :class:`Progress` (the one :func:`configure` last made)."""
    return _current


def phase(text: str, record: bool = True):
    """``with phase(text):`` a phase on the run's progress lines (see :meth:`Progress.phase`)."""
    return _current.phase(text, record)


def say(text: str) -> None:
    """Print one timed line on the run's progress stream."""
    _current.say(text)


def sampling_text(model: str, chains: int, draws: int, tune: int) -> str:
    """The progress line for sampling a model: "sampling model x (4 chains × 1000 draws, ...)"."""
    return f"sampling model {model} ({chains} chains × {draws} draws, {tune} tuning)"


def _bar_line(
    label: str, done: int, total: int, divergences: int, tuning: bool, width: int = 28
) -> str:
    frac = done / total if total else 1.0
    fill = int(round(width * frac))
    stage = "tuning" if tuning else "sampling"
    return (
        f"\r{label}: [{'#' * fill}{'.' * (width - fill)}] {done}/{total} draws, "
        f"{divergences} divergent ({stage})"
    )


def sampler_bar(label: str, stream: TextIO | None = None) -> Callable:
    """A nutpie ``progress_callback`` that draws one terminal line naming the model.

    It receives a list of ``nutpie.ChainProgress`` (finished_draws, total_draws, divergences,
    tuning); the line ends with a newline once every chain has finished."""
    out = stream or sys.stderr
    state = {"closed": False}

    def callback(chains) -> None:
        done = sum(int(c.finished_draws) for c in chains)
        total = sum(int(c.total_draws) for c in chains)
        div = sum(int(c.divergences) for c in chains)
        tuning = any(bool(c.tuning) for c in chains)
        if state["closed"]:
            return
        out.write(_bar_line(label, done, total, div, tuning))
        if total and done >= total:
            out.write("\n")
            state["closed"] = True
        out.flush()

    return callback


class CellProgress:
    """Cells done / total of a many-cell job (executor.py) with the elapsed time, on stderr. On a
    terminal: one line redrawn as cells finish (each redraw blanks what the previous one left),
    with a rough time left once a cell has finished; otherwise (a file, a CI log): a start line
    and a done line only. Times are the job's own (from its start)."""

    def __init__(self, label: str, total: int, stream: TextIO | None = None, how: str = ""):
        self.out = stream or sys.stderr
        self.tty = bool(getattr(self.out, "isatty", lambda: False)())
        self.label, self.total, self.how = label, total, how
        self.t0 = time.perf_counter()
        self.stored, self.width = 0, 0

    def _line(self, done: int) -> str:
        el = time.perf_counter() - self.t0
        line = f"{self.label}: {done}/{self.total} {cells(self.total)} done, {el:.1f} s elapsed"
        ran = done - self.stored
        if self.tty and 0 < ran and done < self.total:
            line += f", about {el / ran * (self.total - done):.0f} s left"
        return line

    def _draw(self, text: str, end: str = "") -> None:
        """A terminal redraw: carriage return, the text, blanks over the previous line's rest."""
        pad = " " * max(self.width - len(text), 0)
        self.width = len(text)
        self.out.write("\r" + text + pad + end)

    def start(self, stored: int) -> None:
        self.stored = stored
        kept = f" ({stored} from the store)" if stored else ""
        how = f" on {self.how}" if self.how else ""
        if self.tty:
            self._draw(self._line(stored) + kept + how)
        else:
            self.out.write(f"{self.label}: {self.total} {cells(self.total)}{kept}{how} …\n")
        self.out.flush()

    def update(self, done: int) -> None:
        if self.tty:
            self._draw(self._line(done))
            self.out.flush()

    def finish(self, done: int, failed: int) -> None:
        fail = f", {failed} failed" if failed else ""
        if self.tty:
            self._draw(self._line(done) + fail, "\n")
        else:
            self.out.write(self._line(done) + fail + "\n")
        self.out.flush()


def cells(n: int) -> str:
    """The noun for ``n`` cells: "cell" or "cells"."""
    return "cell" if n == 1 else "cells"
