"""Shared test helpers: write a patient CSV and a config next to it, run the CLI in-process,
and Monte Carlo error bounds."""

from __future__ import annotations

from pathlib import Path

import arviz_stats as azs
import numpy as np
import yaml
from scipy import stats
from typer.testing import CliRunner

from trialbayes.cli import app
from trialbayes.data.synthetic import generate

COLUMNS = {
    "id": "id",
    "time": "time",
    "event": "event",
    "event_value": 1,
    "censored_value": 0,
    "arm": "arm",
    "treatment_level": "IL-2LD",
    "biomarkers": ["pnfh"],
    "covariates": ["age", "svc"],
    "centre": "centre",
}


def good_frame(n=60, seed=5):
    df, _ = generate(n=n, seed=seed)
    return df


def write_case(
    tmp: Path,
    df=None,
    *,
    config: dict | None = None,
    data_name="patients.csv",
    raw_csv: str | None = None,
):
    tmp.mkdir(parents=True, exist_ok=True)
    path = tmp / data_name
    if raw_csv is not None:
        path.write_text(raw_csv)
    else:
        (good_frame() if df is None else df).to_csv(path, index=False)
    cfg = {
        "name": "case",
        "data": {"kind": "file", "path": data_name, "columns": dict(COLUMNS)},
        "models": [{"name": "unadjusted"}],
        "sampler": {"chains": 2, "draws": 200, "tune": 200, "seed": 1},
    }
    for k, v in (config or {}).items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    cpath = tmp / "config.yaml"
    cpath.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return cpath


def run_cli(*args):
    return CliRunner().invoke(app, [str(a) for a in args])


def z_bound(false_failure: float, n_checks: int) -> float:
    """Two-sided normal bound: each of ``n_checks`` |z| exceeds it with probability
    ``false_failure / n_checks`` (Bonferroni), so all pass with probability >= 1 - false_failure."""
    return float(stats.norm.isf(false_failure / n_checks / 2))


def mcse(draws: np.ndarray, method: str = "mean", prob: float | None = None) -> float:
    """Monte Carlo standard error of a posterior summary from (chain, draw) samples (ArviZ,
    accounting for autocorrelation)."""
    x = np.asarray(draws, float)
    x = x[None, :] if x.ndim == 1 else x
    return float(azs.mcse(x, method=method, prob=prob))


def toy_draws(n: int = 40, **extra) -> dict:
    """Posterior-like draws for next-phase tests: treatment log-HR from -0.6 to 0 (n draws), two
    baseline intervals (log hazards -1.0, -0.7); ``extra`` adds arrays such as covariate effects."""
    return {
        "treatment": np.linspace(-0.6, 0.0, n),
        "log_baseline_hazard": np.tile([-1.0, -0.7], (n, 1)),
        **extra,
    }


class ToyDesign:
    """The parts of a fitted design that run_next_phase reads: cut points, size, covariates,
    basis."""

    starts = np.array([0.0, 1.0])
    basis = None

    def __init__(self, n: int = 50, X=None):
        self.n = n
        self.X = np.zeros((n, 0)) if X is None else X


def cli_process(*args, env: dict | None = None, read_only_rules: bool = False, timeout=600):
    """``trialbayes ARGS`` in a new process (this checkout's src first). ``read_only_rules``: as
    root, without the capabilities that let root write into read-only folders (setpriv), so
    that a read-only folder is read-only as it is for any user."""
    import os
    import shutil
    import subprocess
    import sys

    src = str(Path(__file__).resolve().parents[1] / "src")
    cmd = [sys.executable, "-m", "trialbayes.cli", *map(str, args)]
    if read_only_rules and os.geteuid() == 0:
        setpriv = shutil.which("setpriv")
        if setpriv is None:
            import pytest

            pytest.skip("running as root without setpriv: a read-only folder cannot be made")
        cmd = [setpriv, "--bounding-set", "-dac_override,-dac_read_search", *cmd]
    full = {**os.environ, "PYTHONPATH": src, **(env or {})}
    return subprocess.run(cmd, env=full, capture_output=True, text=True, timeout=timeout)


def cli_argv(*args) -> list[str]:
    """The command line of ``trialbayes ARGS`` in a new process."""
    import sys

    return [sys.executable, "-m", "trialbayes.cli", *map(str, args)]


def interrupt(argv: list[str], until, sig: int, group: bool = False, wait: float = 60):
    """Start ``argv`` (this checkout's src first) in its own process group, call ``until(p)``
    — it returns, with any text it read, once the moment to stop has come — then send ``sig``
    to the process (to its whole group with ``group``): (exit status, seconds from the signal to
    the exit, stdout after the signal, the text ``until`` read + stderr). The group is killed
    whatever happens, so no worker outlives the test."""
    import os
    import signal
    import subprocess
    import time

    src = str(Path(__file__).resolve().parents[1] / "src")
    p = subprocess.Popen(argv, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         env={**os.environ, "PYTHONPATH": src}, start_new_session=True)  # fmt: skip
    try:
        seen = until(p)
        assert p.poll() is None, seen + "".join(p.communicate())
        t0 = time.perf_counter()
        os.killpg(p.pid, sig) if group else p.send_signal(sig)
        out, err = p.communicate(timeout=wait)
        elapsed = time.perf_counter() - t0
    finally:
        try:
            os.killpg(p.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return p.returncode, elapsed, out, seen + err


def rossi_case(tmp_path: Path, covariates=("age",), **config) -> Path:
    """Rossi's recidivism trial (lifelines; financial aid randomised, ``prio`` — prior arrests —
    as the biomarker) as a CSV and a config (``write_case``; ``config`` replaces its sections):
    the config's path."""
    from lifelines.datasets import load_rossi

    cols = {"id": "id", "time": "week", "event": "arrest", "arm": "fin", "treatment_level": 1,
            "biomarkers": ["prio"], "covariates": list(covariates)}  # fmt: skip
    data = {"kind": "file", "path": "rossi.csv", "columns": cols, "time_unit": "weeks",
            "units": {"prio": "arrests", "age": "years"}}  # fmt: skip
    df = load_rossi().reset_index(names="id")
    return write_case(tmp_path, df, config={"data": data, **config}, data_name="rossi.csv")
