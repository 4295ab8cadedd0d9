"""The one writer of every route: route artefacts (tables, figures, posteriors), then
results.json (from the typed :class:`~trialbayes.results.model.Results`), provenance.json and
report.md, all in an atomic :class:`~trialbayes.core.outputs.OutputDir`."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..core.outputs import OutputDir
from ..results.model import Results
from .assumptions import assumptions_view, render_assumptions_report
from .calibration import calibration_view, render_calibration_report
from .html import render as render_html
from .html_patient import patient_view
from .html_published import published_view
from .markdown import render_patient_report
from .markdown_published import render_published_report
from .plan import FigurePlan, OutputSettings

#: the one dispatch on a run's kind: (report.md renderer, report.html view)
REPORTS: dict[str, tuple[Callable[[Results], str], Callable[[Results, Path], dict]]] = {
    "patient_level": (render_patient_report, patient_view),
    "reconstructed": (render_patient_report, patient_view),
    "published": (render_published_report, published_view),
    "calibration": (render_calibration_report, calibration_view),
    "assumptions": (render_assumptions_report, assumptions_view),
}


def render_reports(results: Results, root: Path, html: bool = True) -> dict[str, str]:
    """report.md (and report.html, figures under ``root`` embedded) of a run, by its kind."""
    markdown, view = REPORTS[results.kind]
    out = {"report.md": markdown(results)}
    if html:
        out["report.html"] = render_html(view(results, root))
    return out


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
    out_root: str | Path,
    artefacts: Callable[[OutputDir], None],
    figures: FigurePlan,
    settings: OutputSettings,
    run_facts: dict | None = None,
    csv_label: str | None = None,
) -> Path:
    """Write a run atomically, changing nothing in ``results``: ``artefacts(out)`` writes the
    route's tables and posterior files, ``figures`` are drawn, then results.json (exactly
    ``results.to_dict()``), provenance.json (the provenance, the whole config and ``run_facts``
    such as wall times) and the reports rendered from ``results``."""
    with OutputDir(out_root, results.config_name, csv_label=csv_label) as out:
        pending = figures.start(out, settings.dpi)  # drawn by the sidecar meanwhile, if any
        artefacts(out)
        figures.finish(pending, out, settings.dpi)
        data = results.to_dict()
        out.write_json("results.json", data)
        out.write_json("provenance.json", {**(data["provenance"] or {}), **(run_facts or {})})
        for name, text in render_reports(results, out.staging, settings.html).items():
            out.write_text(name, text)
        return out.commit()
