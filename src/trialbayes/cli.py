"""Command line: ``trialbayes run CONFIG``, ``check CONFIG``, ``report OUTDIR``, ``reconstruct``,
``calibrate CONFIG``.

Exit status: 0 success; 2 bad config or data (nothing written); 3 a model failed the sampler
diagnostics gate (outputs written and marked unreliable) unless the config allows it;
1 anything unexpected (nothing written).
"""

from __future__ import annotations

import logging
import os
import sys
import warnings
from pathlib import Path

import typer

EXIT_INPUT, EXIT_UNRELIABLE = 2, 3

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Bayesian reanalysis of time-to-event trials.",
    rich_markup_mode=None,  # plain-text help: no boxes, reads the same in a pipe or a file
)


def _version(show: bool) -> None:
    if show:
        from .core.version import package_version

        typer.echo(f"trialbayes {package_version()}")
        raise typer.Exit()


@app.callback()
def _main(
    version: bool = typer.Option(
        False, "--version", callback=_version, is_eager=True, help="print the version and exit"
    ),
) -> None:
    """Bayesian reanalysis of time-to-event trials."""
    _one_line_warnings()


def _err(msg: str) -> None:
    typer.echo(f"error: {msg}", err=True)


def _one_line_warnings() -> None:
    """trialbayes' own warnings (an unused cache folder, …) as one ``warning:`` line each."""
    default = warnings.formatwarning

    def fmt(message, category, filename, lineno, line=None):
        if category.__module__.startswith("trialbayes"):
            return f"warning: {message}\n"
        return default(message, category, filename, lineno, line)

    warnings.formatwarning = fmt


def _precheck(config: Path) -> None:
    """A config that is not even bounded YAML is refused before the analysis stack is imported
    (a YAML alias bomb is answered in well under a second)."""
    from .core.yaml_reader import precheck  # PyYAML only: before the analysis stack

    why = precheck(config)
    if why:
        _err(why)
        raise typer.Exit(EXIT_INPUT)


TRUST_CACHE_HELP = (
    "use a sampler.cache_dir written relative to the config (a folder that may have come with "
    "it; its files are still verified before use)"
)


def _trust_cache(flag: bool) -> None:
    if flag:
        from .core.cache_trust import TRUST_ENV_VAR

        os.environ[TRUST_ENV_VAR] = "1"  # read by config loading, inherited by worker processes


def _quiet_libraries() -> None:
    warnings.filterwarnings("ignore", category=FutureWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module="pymc")
    logging.getLogger("pymc").setLevel(logging.ERROR)
    _plain_figure_text()


def _plain_figure_text() -> None:
    """Figures written by the CLI draw every text as given: a ``$`` in a column name or unit is
    not mathtext (which would fail while the figures are written, after all the sampling)."""
    import matplotlib  # lazy: the plotting stack only once a config passed its first checks

    matplotlib.use("Agg")  # the CLI writes files; it never needs a window
    matplotlib.rcParams["text.parse_math"] = False


@app.command()
def run(
    config: Path = typer.Argument(..., metavar="CONFIG", help="analysis config (YAML)"),
    out: Path = typer.Option(Path("outputs"), "--out", help="root folder for results"),
    scheduler: str = typer.Option(
        None, "--scheduler", help="Dask scheduler address (or 'local') for next_phase"
    ),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines on stderr"),
    trust_config_cache: bool = typer.Option(False, "--trust-config-cache", help=TRUST_CACHE_HELP),
):
    """Run an analysis config end to end and write outputs/<name>/."""
    from .core import progress, sidecar

    _trust_cache(trust_config_cache)
    progress.configure(enabled=not quiet)
    progress.say(f"trialbayes run {config}")
    _precheck(config)
    from .config.schema import load_config
    from .core.errors import ConfigError

    try:  # the config before the analysis and plotting stacks (an error answers at once)
        cfg = load_config(config)
    except ConfigError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    if scheduler and cfg.next_phase is None:
        _err(f"--scheduler: {config} has no next_phase section, so nothing would use it")
        raise typer.Exit(EXIT_INPUT)
    if cfg.report.figures:  # a process that imports the plotting stack beside this one, and
        # draws the figures while this one writes the rest (report.plan.FigurePlan)
        sidecar.start(("matplotlib", "trialbayes.report.run_figures"), {"MPLBACKEND": "Agg"})
    try:
        _run(cfg, config, out, scheduler)
    finally:
        sidecar.stop()


def _run(cfg, config: Path, out: Path, scheduler: str | None) -> None:
    from .core.errors import ConfigError, DataError
    from .routes.dispatch import run_config

    _quiet_libraries()  # the plotting stack (Agg, plain text) beside the sidecar's import
    if scheduler:
        cfg.next_phase.executor, cfg.next_phase.scheduler = "dask", scheduler
    try:
        result = run_config(cfg, out, str(config))
    except (DataError, ConfigError) as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    from .report.markdown import headline

    r = result.results
    typer.echo(f"wrote {result.out_dir}")
    if r.synthetic:
        typer.echo("NOTE: SYNTHETIC data — results describe the synthetic cohort, not the trial.")
    if r.kind == "reconstructed":
        typer.echo(
            "NOTE: RECONSTRUCTED data — patient data rebuilt from a digitised Kaplan–Meier figure."
        )
    for line in headline(r):
        typer.echo(line)
    from .report.missing import missing_lines

    for line in missing_lines(r):
        typer.echo(line)
    if r.next_phase is not None:
        from .nextphase.grid import headline as next_phase_headline

        for line in next_phase_headline(r.next_phase):
            typer.echo(line)
    if not result.reliable:
        bad = ", ".join(r.unreliable_models)
        msg = f"UNRELIABLE: {bad} failed the diagnostics gate (see report.md)"
        if cfg.diagnostics.allow_unreliable:
            typer.echo(msg + "; allowed by diagnostics.allow_unreliable", err=True)
        else:
            _err(msg)
            raise typer.Exit(EXIT_UNRELIABLE)


@app.command()
def check(
    config: Path = typer.Argument(..., metavar="CONFIG", help="analysis config (YAML)"),
    trust_config_cache: bool = typer.Option(False, "--trust-config-cache", help=TRUST_CACHE_HELP),
):
    """Validate a config and its data without fitting anything."""
    _precheck(config)
    _trust_cache(trust_config_cache)
    from .config.schema import load_config
    from .core.errors import ConfigError, DataError
    from .data.settings import describe_settings
    from .estimands.caution import data_flags
    from .routes.missing import plan_lines
    from .routes.validate import preflight

    try:
        cfg = load_config(config)
        if cfg.data.kind == "assumptions":
            from .nextphase.checks import check_grid

            check_grid(cfg.next_phase)  # memory and the Dask scheduler, as the run would
            d = cfg.data
            typer.echo(
                f"ok: design from assumptions (control hazard "
                f"{d.control_hazard.describe(d.time_unit or 'time units')}, design prior "
                f"{d.design_prior.kind}), no patient data"
            )
        elif cfg.data.kind != "published":
            checked = preflight(cfg)
            data, settings = checked.data, checked.settings
            typer.echo(
                f"ok: {data.n} patients, {data.events} events, covariates {data.covariates}, "
                f"biomarkers {data.biomarkers}"
            )
            typer.echo(
                f"arms: treatment {data.arm_display(True)}, control {data.arm_display(False)}"
            )
            for line in describe_settings(settings):
                typer.echo(f"  {line}")
            for note in data.notes:  # e.g. the rows of other arms left out
                typer.echo(f"note: {note}")
            for line in plan_lines(cfg, data):
                typer.echo(line)
            for f in data_flags(data, checked.reconstruction):  # the run would flag these too
                typer.echo(f"{f.severity.upper()}: {f.message}", err=True)
        else:
            typer.echo(f"ok: {len(cfg.data.estimates)} published estimates")
    except (ConfigError, DataError) as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)


@app.command()
def calibrate(
    config: Path = typer.Argument(..., metavar="CONFIG", help="analysis config (YAML)"),
    model: str = typer.Option(None, "--model", help="model to calibrate (default: the last one)"),
    fits: int = typer.Option(None, "--fits", min=10, help="SBC replicates (default 100)"),
    draws: int = typer.Option(
        None, "--draws", min=50, help="posterior draws per chain per refit (default 500)"
    ),
    chains: int = typer.Option(None, "--chains", min=1, help="chains per refit (default 2)"),
    out: Path = typer.Option(Path("outputs"), "--out", help="root folder for results"),
    workers: int = typer.Option(None, "--workers", min=1, help="parallel workers (default 2)"),
    scheduler: str = typer.Option(None, "--scheduler", help="Dask scheduler address, or 'local'"),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="no progress lines on stderr"),
    trust_config_cache: bool = typer.Option(False, "--trust-config-cache", help=TRUST_CACHE_HELP),
):
    """Simulation-based calibration of a patient-level model: writes outputs/<name>_calibration/.
    Settings: the config's calibration: section, overridden by the options given here."""
    _trust_cache(trust_config_cache)
    _precheck(config)
    from .config.calibration import with_cli_options
    from .config.schema import load_config
    from .core import progress
    from .core.errors import ConfigError, DataError
    from .routes.calibration import run_calibration

    progress.configure(enabled=not quiet)
    _quiet_libraries()
    try:
        cfg = load_config(config)
        if cfg.data.kind == "published":
            raise ConfigError("calibrate: needs a patient-level config")
        try:
            spec = with_cli_options(
                cfg.calibration, model=model, replicates=fits, draws=draws, chains=chains,
                workers=workers, scheduler=scheduler,
            )  # fmt: skip
        except ValueError as exc:
            raise ConfigError(f"calibrate: {exc}") from None
        res, path = run_calibration(
            cfg, spec.settings(cfg), out, spec.backend(), spec.workers, spec.scheduler, not quiet,
            config_path=str(config),
        )  # fmt: skip
    except (ConfigError, DataError) as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    typer.echo(f"wrote {path}")
    c = res.calibration
    if c.failed_cells:
        n = len(c.failed_cells)
        errors = "; ".join(c.executor.first_errors) if c.executor else ""
        _err(f"{n} of {c.settings.fits} replicates failed ({errors})")
        if n == c.settings.fits:
            raise typer.Exit(1)
    for p in c.parameters:
        flag = "" if p.uniform else "  [NOT UNIFORM]"
        typer.echo(
            f"  {p.parameter:<26} chi2 p = {p.chi2_p:.3f}, "
            f"ECDF outside 95% band: {p.ecdf_outside_95_band}{flag}"
        )


@app.command()
def report(
    outdir: Path = typer.Argument(
        ..., metavar="OUTDIR", help="a run's output folder (with results.json)"
    ),
):
    """Re-render report.md and report.html from a run's results.json, without refitting anything.

    Reads only results.json (validated strictly: types, ranges) and the PNG figures it names inside
    OUTDIR; writes the two reports together (exit 2 if OUTDIR is read-only)."""
    from .core.errors import DataError
    from .core.outputs import write_problem, write_together
    from .report.writer import render_reports
    from .results.io import load_results

    if not outdir.is_dir():
        _err(f"{outdir} is not a folder (give a run's output folder, with results.json)")
        raise typer.Exit(EXIT_INPUT)
    try:
        r = load_results(outdir / "results.json")
    except (OSError, DataError) as exc:
        _err(f"cannot use {outdir / 'results.json'}: {exc}")
        raise typer.Exit(EXIT_INPUT)
    why = write_problem(outdir)
    if why:
        _err(f"{outdir}: the reports cannot be written there ({why})")
        raise typer.Exit(EXIT_INPUT)
    try:
        texts = render_reports(r, outdir)
    except (KeyError, TypeError, ValueError, AttributeError, IndexError) as exc:
        _err(f"{outdir / 'results.json'} cannot be rendered ({type(exc).__name__}: {exc})")
        raise typer.Exit(EXIT_INPUT)
    try:  # both or neither; never through a planted file or link
        write_together(
            {outdir / n: (lambda p, t=t: p.write_text(t, "utf-8")) for n, t in texts.items()}
        )
    except OSError as exc:
        _err(f"cannot write the reports into {outdir}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_INPUT)
    for name in texts:
        typer.echo(f"wrote {outdir / name} (schema {r.schema_version}, {r.kind})")


@app.command()
def reconstruct(
    curve: Path = typer.Option(..., "--curve", help="digitised curve CSV: arm,time,survival"),
    risk: Path = typer.Option(..., "--risk", help="numbers at risk CSV: arm,time,n_at_risk"),
    out: Path = typer.Option(
        ..., "--out", help="reconstructed patient data CSV: id,time,event,arm"
    ),
    events: Path = typer.Option(None, "--events", help="optional total events CSV: arm,events"),
    percent: bool = typer.Option(False, "--percent", help="survival is in percent"),
    treatment: str = typer.Option(
        None, "--treatment", help="treatment arm, for the quality report's Cox HR"
    ),
):
    """Rebuild patient-level data from a digitised Kaplan–Meier figure (Guyot et al. 2012).

    Writes OUT, OUT's stem + '.quality.json' and '.quality.png'; all or nothing."""
    from .core.errors import DataError
    from .core.escape import csv_frame
    from .core.outputs import dumps, write_problem, write_together
    from .data.reconstruct.guyot import read_inputs
    from .data.reconstruct.guyot import reconstruct as rebuild
    from .estimands.reconstruction import quality
    from .plots.journal import quality_plot
    from .plots.style import ARM_COLOURS, save

    _plain_figure_text()
    stem = out.with_suffix("")
    targets = {out: None, Path(f"{stem}.quality.json"): None, Path(f"{stem}.quality.png"): None}
    inputs = [Path(i).resolve() for i in (curve, risk, events) if i]
    clash = [str(t) for t in targets if t.resolve() in inputs]
    if clash:
        _err(f"--out would overwrite an input ({', '.join(clash)}); choose another name")
        raise typer.Exit(EXIT_INPUT)
    if out.is_dir():
        _err(f"--out {out} is a folder; give the file name of the patient data CSV")
        raise typer.Exit(EXIT_INPUT)
    try:
        c, r, e = read_inputs(curve, risk, events)
        arms = sorted(set(c["arm"].astype(str))) if "arm" in c.columns else []
        if treatment is not None and arms and treatment not in arms:
            raise DataError(f"--treatment '{treatment}' is not one of the arms in {curve}: {arms}")
        ipd = rebuild(c, r, e, percent)
        q = quality(ipd, c, r, e, percent, treatment_arm=treatment)
    except DataError as exc:
        _err(str(exc))
        raise typer.Exit(EXIT_INPUT)
    why = write_problem(out.parent)
    if why:
        _err(f"--out {out}: its folder cannot be written ({why})")
        raise typer.Exit(EXIT_INPUT)
    labelled = csv_frame(ipd.assign(data="RECONSTRUCTED")[["data", *ipd.columns]])
    colours = (
        None
        if treatment is None
        else {a: ARM_COLOURS[int(a == treatment)] for a in ipd["arm"].unique()}
    )

    def plot(p):
        save(quality_plot(ipd, c, percent, colours=colours), p)

    writers = {
        out: lambda p: labelled.to_csv(p, index=False, float_format="%.6g"),
        Path(f"{stem}.quality.json"): lambda p: p.write_text(dumps(q) + "\n"),
        Path(f"{stem}.quality.png"): plot,
    }
    try:
        write_together(writers)
    except OSError as exc:
        _err(f"cannot write {out}: {exc.strerror or exc}")
        raise typer.Exit(EXIT_INPUT)
    typer.echo(
        f"wrote {out}: RECONSTRUCTED patient data ({len(ipd)} patients, "
        f"{int(ipd['event'].sum())} events) and its quality report"
    )
    for arm, a in q.arms.items():
        typer.echo(
            f"  {arm}: n {a.n}, events {a.events}, KM max |diff| {a.km_max_abs_diff:.3f}, "
            f"n-at-risk max rel diff {a.n_at_risk_max_rel_diff:.3f}"
        )
    if q.cox is not None:
        typer.echo(f"  Cox HR ({q.treatment_arm} vs other) {q.cox.sentence(3)}")
    for w in q.warnings:
        typer.echo(f"WARNING: {w}", err=True)


def main() -> None:
    """The ``trialbayes`` entry point: runs the CLI, turning a signal or an unexpected failure into
    one line on stderr and its exit status."""
    from .core.errors import Interrupted, SamplingIncomplete
    from .core.interrupts import committed, failure_phase, handle_signals, received

    with handle_signals():
        try:
            try:
                app()
            except SystemExit as done:
                if done.code in (0, None) and received() is not None:
                    raise Interrupted(received()) from None  # a signal a library swallowed
                raise
        except SystemExit as done:
            if done.code in (0, None):  # finished: outputs committed and closed, pools stopped;
                _hard_exit(0)  # skip ~1 s of interpreter teardown of the PyMC/numba stack
            raise
        except Interrupted as exc:
            done = ", ".join(str(p) for p in committed())
            what = (
                f"the new outputs were already complete in {done}"
                if done
                else "nothing written, previous outputs untouched"
            )
            _err(f"{exc} while {failure_phase(exc)}: stopped; {what}")
            _hard_exit(exc.exit_code)  # within seconds: no interpreter teardown of the stack
        except SamplingIncomplete as exc:
            _err(f"sampling incomplete while {failure_phase(exc)}: {exc}; nothing written")
            _hard_exit(1)
        except Exception as exc:  # noqa: BLE001 - last resort: one clear line, non-zero exit
            _err(
                f"unexpected failure while {failure_phase(exc)}: {type(exc).__name__}: "
                f"{str(exc).splitlines()[0] if str(exc) else ''}; nothing written"
            )
            _hard_exit(1)


def _hard_exit(code: int) -> None:
    """Exit now with ``code``: after a sampler failure, interpreter teardown can crash in the
    sampler's native threads (seen as a segfault, exit 139); outputs are already cleaned up.
    After success, teardown only frees memory (about 1 s for the PyMC/numba stack)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except (OSError, ValueError):  # a closed pipe (`| head`), a full disk: exit all the same
            pass
    os._exit(code)


if __name__ == "__main__":
    main()
