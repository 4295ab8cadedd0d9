"""Next-phase faults (issue 15, case 9): every one refused before any fit (exit 2 naming the key),
or, for a grid whose cells all fail, a finished run that lists them.

Rossi's recidivism trial (not MIROCALS) with a tiny sampler; the checks act before fitting, so
most tests fit nothing (the progress lines would say "compiling")."""

from __future__ import annotations

import json
import socket
import threading
import time
import warnings
from pathlib import Path

import pytest
import yaml
from helpers import ToyDesign, run_cli, toy_draws


def _case(tmp_path: Path, next_phase: dict | None = None, drop: tuple = ()) -> Path:
    from lifelines.datasets import load_rossi

    r = load_rossi()
    r["id"] = range(len(r))
    r.to_csv(tmp_path / "rossi.csv", index=False)
    np_cfg = {"model": "u", "accrual": {"time": 52}, "events": [60], "trials": 200,
              "oc_trials": 100, **(next_phase or {})}
    for k in drop:
        np_cfg.pop(k)
    cfg = {
        "name": "rossi_np",
        "data": {"kind": "file", "path": "rossi.csv",
                 "columns": {"time": "week", "event": "arrest", "arm": "fin",
                             "treatment_level": 1, "covariates": ["age"]}},
        "models": [{"name": "u"}],
        "baseline": {"n_intervals": 3},
        "sampler": {"chains": 2, "draws": 200, "tune": 200, "seed": 1},
        "diagnostics": {"allow_unreliable": True},
        "next_phase": np_cfg,
    }
    if next_phase is None:
        cfg.pop("next_phase")
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "c.yaml"


def _refused_before_fitting(tmp_path, cfg, *expect, extra=()):
    for command in ("check", "run"):
        args = ["--out", tmp_path / "out", *extra] if command == "run" else []
        res = run_cli(command, cfg, *args)
        assert res.exit_code == 2, res.output
        for e in expect:
            assert e in res.stderr, f"{e!r} not in {res.stderr!r}"
        assert "compiling" not in res.stderr and not (tmp_path / "out" / "rossi_np").exists()
    return res


@pytest.mark.parametrize("key,value", [
    ("events", []), ("populations", []), ("design_priors", []),
    ("accrual", {"time": 52, "weights": []}),
    ("accrual", {"time": 52, "weights": [1.0, -2.0]}),
    ("accrual", {"time": 52, "weights": [1.0] * 1001}),
    ("workers", 100_000),
])
def test_empty_lists_and_bad_weights_are_refused(tmp_path, key, value):
    _refused_before_fitting(tmp_path, _case(tmp_path, {key: value}), f"next_phase.{key}")


def test_non_finite_weights_are_refused(tmp_path):
    cfg = _case(tmp_path, {"accrual": {"time": 52, "weights": [1.0, 2.0]}})
    cfg.write_text(cfg.read_text().replace("- 2.0", "- .inf"))
    _refused_before_fitting(tmp_path, cfg, "next_phase.accrual.weights[1] = inf")


def test_a_grid_larger_than_memory_is_refused_with_its_estimate(tmp_path):
    cfg = _case(tmp_path, {"trials": 10_000_000, "events": [400]})
    cfg.write_text(cfg.read_text().replace("10000000", "1e7"))  # as a user would type it
    t0 = time.perf_counter()
    res = _refused_before_fitting(tmp_path, cfg, "next_phase:", "10,000,000 trials × 800",
                                  "GB", "lower next_phase.trials")
    assert time.perf_counter() - t0 < 30
    assert "TB" in res.stderr or "GB each" in res.stderr


def test_memory_estimate_matches_what_a_cell_holds():
    """The estimate against tracemalloc's peak of a real cell (log-rank): within 25%."""
    import math
    import tracemalloc

    import numpy as np

    from trialbayes.config.next_phase import NextPhase
    from trialbayes.nextphase import grid as nx
    from trialbayes.nextphase.checks import memory_need
    from trialbayes.nextphase.simulate import Population, StatesOfNature

    cfg = NextPhase(model="m", accrual={"time": 2.0}, events=[200], trials=3000, oc_trials=100,
                    executor="inprocess")
    states = StatesOfNature.from_draws(toy_draws(), ToyDesign.starts)
    cell = nx._cells(cfg, states, Population.from_design(ToyDesign(n=500)))[0][0]
    tracemalloc.start()
    nx.assurance_cell(cell.args, np.random.SeedSequence(1))
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    need, at_once, trials, n = memory_need(cfg)
    assert (at_once, trials, n) == (1, 3000, math.ceil(200 * 2.0))
    assert 0.75 < peak / need < 1.0, peak / need  # the estimate is a little above the peak


def _grid_with_store(tmp_path, analyse=None):
    from trialbayes.config.next_phase import NextPhase
    from trialbayes.nextphase.grid import run_next_phase

    cfg = NextPhase(model="m", accrual={"time": 1.0}, events=[30, 60], trials=100, oc_trials=100,
                    executor="inprocess")
    return run_next_phase(cfg, toy_draws(), ToyDesign(), store=tmp_path / "s")


def test_damaged_or_edited_resume_cells_are_recomputed_with_a_warning(tmp_path):
    first = _grid_with_store(tmp_path)
    files = sorted((tmp_path / "s").glob("assurance*.json"))
    text = files[0].read_text()
    files[0].write_text(text[: len(text) // 2])  # truncated (a killed write, a full disk)
    d = json.loads(files[1].read_text())
    d["value"]["assurance"] = 1.0  # edited
    files[1].write_text(json.dumps(d))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        again = _grid_with_store(tmp_path)
    notes = [str(w.message) for w in seen if "resume store" in str(w.message)]
    assert len(notes) == 2, notes
    assert again.executor["assurance"].resumed == 0 and again.designs == first.designs
    assert all(x.assurance < 1.0 for x in again.designs)
    third = _grid_with_store(tmp_path)  # rewritten: all from the store now
    assert third.executor["assurance"].resumed == 2 and third.designs == first.designs


def test_when_every_cell_fails_they_are_listed(tmp_path, monkeypatch):
    from trialbayes.nextphase import cells as nx
    from trialbayes.nextphase.summaries import failed_cells_flags
    from trialbayes.report.nextphase import html_blocks, report_section

    def boom(*a, **k):
        raise RuntimeError("simulated analysis failure")

    monkeypatch.setattr(nx, "analyse", boom)
    res = _grid_with_store(tmp_path)
    assert not res.designs and not res.oc and len(res.failed_cells) == 2 + 2 * 6
    md = report_section(res, {})
    assert "no design finished" in md and "simulated analysis failure" in md
    assert all(k.replace("|", "\\|") in md for k in res.failed_cells)
    html_blocks(res, lambda *a, **k: [])
    (flag,) = failed_cells_flags(res)
    assert flag.code == "next_phase_failed_cells" and "every cell" in flag.message


@pytest.mark.slow  # fits a model (2 × 200 draws), then the grid fails
def test_run_whose_grid_fails_entirely_finishes_and_lists_the_cells(tmp_path, monkeypatch):
    from trialbayes.nextphase import cells as nx

    def boom(*a, **k):
        raise RuntimeError("simulated analysis failure")

    monkeypatch.setattr(nx, "analyse", boom)
    res = run_cli("run", _case(tmp_path, {"executor": "inprocess"}), "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    root = tmp_path / "out" / "rossi_np"
    assert "simulation cells failed (every cell)" in res.stdout
    assert "simulated analysis failure" in (root / "report.md").read_text()
    assert run_cli("report", root).exit_code == 0


def test_scheduler_option_without_next_phase_is_refused(tmp_path):
    res = run_cli("run", _case(tmp_path, None), "--out", tmp_path / "out", "--scheduler",
                  "tcp://127.0.0.1:8786")
    assert res.exit_code == 2 and "--scheduler" in res.stderr and "no next_phase" in res.stderr
    assert not (tmp_path / "out").exists()


@pytest.fixture()
def silent_listener():
    """Something that accepts connections on a port and never answers."""
    srv = socket.socket()
    srv.bind(("127.0.0.1", 0))
    srv.listen(8)
    held = []
    stop = threading.Event()

    def accept():
        srv.settimeout(0.2)
        while not stop.is_set():
            try:
                held.append(srv.accept()[0])
            except OSError:
                pass

    th = threading.Thread(target=accept, daemon=True)
    th.start()
    yield f"tcp://127.0.0.1:{srv.getsockname()[1]}"
    stop.set()
    th.join()
    for c in held:
        c.close()
    srv.close()


def _closed_port() -> str:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return f"tcp://127.0.0.1:{port}"


@pytest.mark.slow  # up to 6 s per command, three commands
@pytest.mark.parametrize("which", ["closed", "silent"])
def test_unreachable_scheduler_is_refused_before_any_fit(tmp_path, which, silent_listener):
    address = _closed_port() if which == "closed" else silent_listener
    t0 = time.perf_counter()
    res = run_cli("run", _case(tmp_path, {}), "--out", tmp_path / "out", "--scheduler", address)
    assert time.perf_counter() - t0 < 20  # gives up within ~6 s
    assert res.exit_code == 2 and "Dask scheduler" in res.stderr and address in res.stderr
    assert "compiling" not in res.stderr and not (tmp_path / "out" / "rossi_np").exists()
    cfg = _case(tmp_path, {"executor": "dask", "scheduler": address})
    _refused_before_fitting(tmp_path, cfg, "next_phase.scheduler", "nothing was fitted")
