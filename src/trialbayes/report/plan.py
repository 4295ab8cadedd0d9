"""What writing a run needs besides its results: the output settings resolved from the config,
and the figures' plan (keys, paths, captions decided by the route; drawn by the writer)."""

from __future__ import annotations

from collections.abc import Callable
from concurrent.futures import Future
from dataclasses import dataclass, field

import cloudpickle
import matplotlib as mpl

from ..core import sidecar
from ..core.outputs import OutputDir
from ..plots.style import save
from ..results.model import Results


@dataclass(frozen=True)
class OutputSettings:
    """What writing a run needs of its config (resolved by the route): figures and their
    resolution, report.html, the credible level of figure bands, and the seed and config hash
    recorded in posterior files."""

    dpi: int = 110
    figures: bool = True
    html: bool = True
    level: float = 0.95
    seed: int = 0
    config_hash: str = ""


@dataclass
class FigureJob:
    """One planned figure: its key, path in the output folder, caption, and what draws it."""

    key: str
    path: str  # relative to the output folder
    caption: str  # what the figure shows (report.html, report.md)
    draw: Callable[[], object]  # makes the matplotlib Figure


@dataclass
class FigurePlan:
    """The figures of a run, decided by the route before anything is written: their keys, paths
    and captions go into the results (so a run returns what results.json will hold); the writer
    draws them."""

    jobs: list[FigureJob] = field(default_factory=list)

    def add(self, key: str, caption: str, draw: Callable[[], object]) -> None:
        self.jobs.append(FigureJob(key, f"figures/{_file_name(key)}.png", caption, draw))

    def apply(self, results: Results) -> None:
        """Record every figure's path and caption in ``results``."""
        for j in self.jobs:
            results.figures[j.key] = j.path
            results.figure_captions[j.key] = j.caption

    def render(self, out: OutputDir, dpi: int) -> None:
        self.finish(self.start(out, dpi), out, dpi)

    def start(self, out: OutputDir, dpi: int) -> list[tuple[FigureJob, Future]]:
        """Hand every figure to the sidecar process (core.sidecar) when one runs, so that it
        draws them while this process writes the rest; figures that cannot be pickled stay
        here. Returns the pending (job, future) pairs for :meth:`finish`."""
        pending: list[tuple[FigureJob, Future]] = []
        if not sidecar.running():
            return pending
        for j in self.jobs:
            try:
                payload = cloudpickle.dumps(j.draw)
            except Exception:  # noqa: BLE001 - drawn here instead
                continue
            fut = sidecar.submit(draw_and_save, payload, str(out.path(j.path)), dpi)
            if fut is not None:
                pending.append((j, fut))
        return pending

    def finish(self, pending: list[tuple[FigureJob, Future]], out: OutputDir, dpi: int) -> None:
        """Draw here every figure the sidecar has not started (the last first, while it works
        from the first), then wait for the rest; one the sidecar failed on is drawn here."""
        futures = {id(j): f for j, f in pending}
        for j in reversed(self.jobs):
            f = futures.get(id(j))
            if f is None or f.cancel():
                save(j.draw(), out.path(j.path), dpi)
        for j, f in pending:
            if f.cancelled():
                continue
            try:
                f.result()
            except Exception:  # noqa: BLE001 - the same figure drawn here (raises if it must)
                save(j.draw(), out.path(j.path), dpi)


def draw_and_save(payload: bytes, path: str, dpi: int) -> None:
    """In the sidecar: unpickle a figure's draw function, draw it, write the PNG; every text plain
    (no mathtext), as the CLI's own process draws them."""
    with mpl.rc_context({"text.parse_math": False}):
        fig = cloudpickle.loads(payload)()
    save(fig, path, dpi)


def _file_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
