"""Command line: ``trialbayes run CONFIG``, ``trialbayes check CONFIG``.

Exit status: 0 success; 2 bad config or data (nothing written); 3 a model failed the sampler
diagnostics gate (outputs written and marked unreliable) unless the config allows it;
1 anything unexpected (nothing written).
"""

from __future__ import annotations

import sys
from pathlib import Path

import typer

EXIT_INPUT, EXIT_UNRELIABLE = 2, 3

app = typer.Typer(add_completion=False, no_args_is_help=True, help="Bayesian reanalysis of time-to-event trials.")


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _quiet_libraries() -> None:
    import logging
    import warnings

    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pymc")
    logging.getLogger("pymc").setLevel(logging.ERROR)


@app.command()
def run(
    config: Path = typer.Argument(..., help="analysis config (YAML)"),
    out: Path = typer.Option(Path("outputs"), "--out", help="root folder for results"),
):
    """Run an analysis config end to end and write outputs/<name>/."""
    from .config import ConfigError, load_config
    from .data import DataError

    _quiet_libraries()
    try:
        cfg = load_config(config)
    except ConfigError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    try:
        result = _dispatch(cfg, out, str(config))
    except (DataError, ConfigError) as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    r = result.results
    typer.echo(f"wrote {result.out_dir}")
    if r.get("synthetic"):
        typer.echo("NOTE: SYNTHETIC data — results describe the synthetic cohort, not the trial.")
    for line in _headline(r):
        typer.echo(line)
    if not result.reliable:
        msg = f"UNRELIABLE: {', '.join(r.get('unreliable_models', []))} failed the diagnostics gate (see report.md)"
        if cfg.diagnostics.allow_unreliable:
            typer.echo(msg + "; allowed by diagnostics.allow_unreliable", err=True)
        else:
            _err(msg)
            raise typer.Exit(EXIT_UNRELIABLE)


def _dispatch(cfg, out: Path, config_path: str):
    if cfg.data.kind == "published":
        from .published_run import run_published

        return run_published(cfg, out, config_path)
    from .analysis import run_patient_level

    return run_patient_level(cfg, out, config_path)


def _headline(r: dict) -> list[str]:
    lines = []
    for name, m in r.get("models", {}).items():
        te = m["treatment_effect"]
        flag = "" if m["reliable"] else "  [UNRELIABLE]"
        lines.append(f"  {name:<14} HR {te['hr_median']:.2f} ({te['hr_lower']:.2f}-{te['hr_upper']:.2f})  "
                     f"P(HR<1) = {te['p_hr_below']['1']:.3f}{flag}")
    return lines


@app.command()
def check(config: Path = typer.Argument(..., help="analysis config (YAML)")):
    """Validate a config and its data without fitting anything."""
    from .config import ConfigError, load_config
    from .data import DataError, check_against_models, load_data

    try:
        cfg = load_config(config)
        if cfg.data.kind != "published":
            data = load_data(cfg)
            check_against_models(data, cfg.models, cfg.baseline.cuts)
            typer.echo(f"ok: {data.n} patients, {data.events} events, covariates {data.covariates}, biomarkers {data.biomarkers}")
        else:
            typer.echo(f"ok: {len(cfg.data.estimates)} published estimates")
    except (ConfigError, DataError) as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)


def main() -> None:
    try:
        app()
    except SystemExit:
        raise
    except Exception as exc:  # noqa: BLE001 - last resort: one clear line, non-zero exit
        _err(f"unexpected failure: {type(exc).__name__}: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
