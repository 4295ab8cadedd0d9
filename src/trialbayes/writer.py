"""The one writer of every route: route artefacts (tables, figures, posteriors), then
results.json (from the typed :class:`~trialbayes.results.Results`), provenance.json and report.md,
all in an atomic :class:`~trialbayes.outputs.OutputDir`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from .outputs import OutputDir
from .results import Results


@dataclass
class RunResult:
    """What a route returns: the typed results, where they were written, and the live objects
    (fitted models, tables) for interactive use."""

    results: Results
    out_dir: Path | None
    reliable: bool
    models: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)


def write_run(
    results: Results,
    provenance: dict,
    out_root: str | Path,
    render: Callable[[Results], str],
    artefacts: Callable[[OutputDir], None],
    csv_label: str | None = None,
) -> Path:
    """Write a run atomically. ``artefacts(out)`` writes the route's tables / figures and fills
    ``results.figures``; everything else is rendered here from ``results``."""
    with OutputDir(out_root, results.config_name, csv_label=csv_label) as out:
        artefacts(out)
        results.provenance = {
            k: v
            for k, v in provenance.items()
            if k not in ("timings_seconds", "wall_seconds", "config")
        }
        out.write_json("results.json", results.to_dict())
        out.write_json("provenance.json", provenance)
        out.write_text("report.md", render(results))
        return out.commit()
