"""What writing a run needs besides its results: the output settings resolved from the config,
and the figures' plan (keys, paths, captions decided by the route; drawn by the writer)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

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
        for j in self.jobs:
            save(j.draw(), out.path(j.path), dpi)


def _file_name(key: str) -> str:
    return "".join(c if c.isalnum() or c in "-_." else "_" for c in key)
