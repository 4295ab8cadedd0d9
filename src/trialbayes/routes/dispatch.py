"""The one dispatch from a config to its route (the CLI's ``run`` and ``trialbayes.run``)."""

from __future__ import annotations

from pathlib import Path

from ..config.schema import Config
from ..report.writer import RunResult
from .assumptions import run_assumptions
from .patient_level import run_patient_level
from .published import run_published


def run_config(
    cfg: Config,
    out_root: str | Path = "outputs",
    config_path: str | None = None,
    write: bool = True,
) -> RunResult:
    """Run ``cfg`` by its data kind: published estimates, or patient-level data (a file, the
    synthetic cohort or a digitised Kaplan–Meier figure), or design assumptions."""
    route = {"published": run_published, "assumptions": run_assumptions}.get(
        cfg.data.kind, run_patient_level
    )
    return route(cfg, out_root, config_path, write=write)
