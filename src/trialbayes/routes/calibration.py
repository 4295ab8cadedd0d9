"""`trialbayes calibrate CONFIG`: simulation-based calibration through the executor, into typed
Results written by the one writer to outputs/<name>_calibration/ (results.json, tables, rank
histograms, ECDF-difference plot, report.md, report.html) atomically. Finished replicates are
kept in outputs/.cache/ (a rerun resumes)."""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict, replace
from datetime import UTC, datetime
from pathlib import Path

from ..calibration.sbc import CalibrationCase, sbc_cell, summarise
from ..config.calibration import CalibrationSettings, time_varying_refusal
from ..config.schema import Config
from ..core.errors import ConfigError
from ..core.executor import Cell, Executor, scheduler_problem
from ..core.interrupts import phase
from ..core.text import shown_path
from ..inference.sampler import stack_versions
from ..report.calibration import calibration_figures, write_calibration_tables
from ..report.plan import FigurePlan
from ..report.writer import write_run
from ..results.model import Results
from ..results.sections import ExecutorSummary, Provenance
from .resolve import output_settings
from .validate import check_writable, preflight


def calibration_case(cfg: Config, model: str) -> CalibrationCase:
    """What a calibration replicate of ``model`` needs of the config."""
    spec = {m.name: m for m in cfg.models}[model]
    return CalibrationCase(
        cfg.hash(), spec, cfg.priors, cfg.baseline, cfg.sampler, cfg.diagnostics, cfg.data
    )


def run_calibration(
    cfg: Config,
    s: CalibrationSettings,
    out_root="outputs",
    backend="auto",
    workers=2,
    scheduler=None,
    progress=False,
    config_path: str | None = None,
    write: bool = True,
) -> tuple[Results, Path | None]:
    """Run the SBC replicates into typed Results (kind ``calibration``) and write them like every
    run (``write``): results.json, provenance.json, tables, figures, report.md and report.html in
    ``<out_root>/<name>_calibration/``; finished replicates are kept (resumable) under
    ``<out_root>/.cache/`` when writing."""
    t0 = time.perf_counter()
    if s.model not in {m.name for m in cfg.models}:
        raise ConfigError(
            f"calibrate: unknown model '{s.model}'; models are {[m.name for m in cfg.models]}"
        )
    if getattr(cfg.data, "missing", None) == "impute":
        raise ConfigError(
            "calibrate: data.missing: impute is not supported (a calibration replicate "
            "simulates trials from the observed covariates); use complete_case"
        )
    if {m.name: m for m in cfg.models}[s.model].time_varying:
        raise ConfigError("calibrate: " + time_varying_refusal(s.model, "--model"))
    checked = preflight(cfg)
    if backend in ("auto", "dask"):
        why = scheduler_problem(scheduler)
        if why:
            raise ConfigError(f"scheduler: the Dask scheduler {scheduler} cannot be used ({why})")
    name = f"{cfg.name}_calibration"
    store = None
    if write:
        check_writable(out_root, name)
        fp = hashlib.sha256(f"{cfg.hash()}{sorted(asdict(s).items())}".encode()).hexdigest()[:16]
        store = Path(out_root) / ".cache" / name / f"sbc-{fp}"
    case = calibration_case(cfg, s.model)
    cells = [Cell(f"sbc-{i:04d}", {"case": case, "settings": s}) for i in range(s.fits)]
    with phase("refitting the calibration replicates"):
        with Executor(backend, workers, scheduler, store, progress=progress) as ex:
            rep = ex.map(sbc_cell, cells, s.seed, label="calibration replicates")
    summary = summarise(rep.values(), s)
    summary.failed_cells, summary.executor = list(rep.failed), ExecutorSummary(**rep.summary())
    results = Results(
        kind="calibration",
        config_name=name,
        title=f"Simulation-based calibration of model `{s.model}` — {cfg.title or cfg.name}",
        data_label=checked.data.label,
        synthetic=checked.data.synthetic,
        settings=checked.settings,
        calibration=summary,
        reliable=all(p.uniform for p in summary.parameters) and not summary.failed_cells,
        provenance=Provenance(
            created_at=datetime.now(UTC).isoformat(timespec="seconds"),
            config_path=shown_path(config_path),
            config_hash=cfg.hash(),
            data_label=checked.data.label,
            data_sha256=checked.data.sha256(),
            seeds={"calibration": s.seed},
            seed_rule="each replicate: the executor's cell stream under the calibration seed "
            "(trialbayes.core.seeds)",
            versions=stack_versions(),
        ),
    )
    plan = FigurePlan()
    calibration_figures(plan, summary)
    plan.apply(results)
    out_s = replace(output_settings(cfg), figures=True)
    facts = {
        "config": cfg.shown_dump(),
        "wall_seconds": round(time.perf_counter() - t0, 2),
    }
    if not write:
        return results, None
    path = write_run(
        results, out_root, lambda out: write_calibration_tables(out, summary), plan, out_s, facts
    )
    return results, path
