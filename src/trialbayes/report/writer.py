"""The one writer of every route: route artefacts (tables, figures, posteriors), then
results.json (from the typed :class:`~trialbayes.results.model.Results`), provenance.json and report.md,
all in an atomic :class:`~trialbayes.core.outputs.OutputDir`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.outputs import OutputDir
from ..results.model import Results
from .html import render as render_html
from .html_patient import patient_view
from .html_published import published_view
from .markdown import render_patient_report
from .assumptions import assumptions_view, render_assumptions_report
from .markdown_published import render_published_report

#: the one dispatch on a run's kind: (report.md renderer, report.html view)
REPORTS: dict[str, tuple[Callable[[Results], str], Callable[[Results, Path], dict]]] = {
    "patient_level": (render_patient_report, patient_view),
    "reconstructed": (render_patient_report, patient_view),
    "published": (render_published_report, published_view),
    "assumptions": (render_assumptions_report, assumptions_view),
}


def render_reports(results: Results, root: Path, html: bool = True) -> dict[str, str]:
    """report.md (and report.html, figures under ``root`` embedded) of a run, by its kind."""
    markdown, view = REPORTS[results.kind]
    out = {"report.md": markdown(results)}
    if html:
        out["report.html"] = render_html(view(results, root))
    return out


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
    artefacts: Callable[[OutputDir], None],
    csv_label: str | None = None,
    html: bool = True,
) -> Path:
    """Write a run atomically. ``artefacts(out)`` writes the route's tables / figures and fills
    ``results.figures``; everything else is rendered here from ``results`` (``html``: also the
    self-contained report.html, figures embedded)."""
    with OutputDir(out_root, results.config_name, csv_label=csv_label) as out:
        artefacts(out)
        results.provenance = {
            k: v
            for k, v in provenance.items()
            if k not in ("timings_seconds", "wall_seconds", "config")
        }
        out.write_json("results.json", results.to_dict())
        out.write_json("provenance.json", provenance)
        for name, text in render_reports(results, out.staging, html).items():
            out.write_text(name, text)
        return out.commit()
