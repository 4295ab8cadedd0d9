"""`trialbayes calibrate CONFIG`: run simulation-based calibration through the executor and write
outputs/<name>_calibration/ (calibration.json, tables, rank histograms, ECDF-difference plot,
report.md) atomically. Finished replicates are kept in outputs/.cache/ (a rerun resumes)."""

from __future__ import annotations

import hashlib
from dataclasses import asdict
from pathlib import Path

from ..calibration.sbc import CalibrationCase, CalibrationResults, sbc_cell, summarise
from ..config.calibration import CalibrationSettings, time_varying_refusal
from ..config.schema import Config
from ..core.errors import ConfigError
from ..core.executor import Cell, Executor
from ..core.outputs import OutputDir
from ..report.calibration import write_calibration
from .validate import check_writable, preflight


def calibration_case(cfg: Config, model: str) -> CalibrationCase:
    """What a calibration replicate of ``model`` needs of the config."""
    spec = {m.name: m for m in cfg.models}[model]
    return CalibrationCase(
        cfg.hash(), spec, cfg.priors, cfg.baseline, cfg.sampler, cfg.diagnostics, cfg.data
    )


def run_calibration(
    cfg,
    s: CalibrationSettings,
    out_root="outputs",
    backend="auto",
    workers=2,
    scheduler=None,
    progress=False,
) -> tuple[CalibrationResults, Path]:
    if s.model not in {m.name for m in cfg.models}:
        raise ConfigError(
            f"calibrate: unknown model '{s.model}'; models are {[m.name for m in cfg.models]}"
        )
    if {m.name: m for m in cfg.models}[s.model].time_varying:
        raise ConfigError("calibrate: " + time_varying_refusal(s.model, "--model"))
    preflight(cfg)
    check_writable(out_root, f"{cfg.name}_calibration")
    fp = hashlib.sha256(f"{cfg.hash()}{sorted(asdict(s).items())}".encode()).hexdigest()[:16]
    store = Path(out_root) / ".cache" / f"{cfg.name}_calibration" / f"sbc-{fp}"
    case = calibration_case(cfg, s.model)
    cells = [Cell(f"sbc-{i:04d}", {"case": case, "settings": s}) for i in range(s.fits)]
    with Executor(backend, workers, scheduler, store, progress=progress) as ex:
        rep = ex.map(sbc_cell, cells, s.seed, label="calibration replicates")
    res = summarise(rep.values(), s)
    res.failed_cells, res.executor = rep.failed, rep.summary()
    with OutputDir(out_root, f"{cfg.name}_calibration") as out:
        write_calibration(out, res, cfg.report.dpi)
        path = out.commit()
    return res, path
