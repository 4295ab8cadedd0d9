"""No lost signal (issue 15, cases 5 and 6).

5. A SIGINT / SIGTERM that arrives while the outputs are written is honoured even when a library
   catches and drops it: the run stops before the final rename, the previous results stay, and
   the exit status is 130 / 143. Delivered from a hook at every step of the writing, not by timing.
6. A process-pool grid stops within 2 s of a real signal, cancels the cells not started, and keeps
   every cell already finished in the resume store (measured on a real subprocess).
"""

from __future__ import annotations

import json
import os
import signal
import sys
import textwrap
import time
from concurrent.futures import Future
from pathlib import Path

import pytest
from helpers import cli_argv, interrupt, write_case

from trialbayes.core.errors import Interrupted
from trialbayes.core.interrupts import handle_signals
from trialbayes.core.outputs import OutputDir


def _deliver(sig: int, swallow: bool) -> None:
    """A real signal to this process; ``swallow``: the way a library's ``except BaseException:``
    (or a ``__del__`` running during the handler) drops the exception it raises."""
    if swallow:
        try:
            os.kill(os.getpid(), sig)
            time.sleep(0)  # the handler runs here and raises Interrupted ...
        except BaseException:  # noqa: BLE001 - ... which the "library" drops
            pass
    else:
        os.kill(os.getpid(), sig)
        time.sleep(0)


def _previous(root: Path, name: str = "case") -> Path:
    final = root / name
    final.mkdir(parents=True)
    (final / "results.json").write_text("previous")
    return final


@pytest.fixture(scope="module")
def results(small_run):
    from trialbayes.results.io import load_results

    tmp, _, res = small_run
    return load_results(tmp / "out" / "mirocals" / "results.json"), tmp / "out" / "mirocals"


def _write(r, src: Path, out_root: Path):
    """What ``run`` does at the end: writer.write_run with the route's artefacts (here the
    finished run's tables and figures copied in) and both reports rendered."""
    import shutil

    from trialbayes.report.plan import FigurePlan, OutputSettings
    from trialbayes.report.writer import write_run

    def artefacts(out):
        for f in sorted(src.glob("*/*.*")):
            if f.suffix in (".csv", ".png"):
                shutil.copyfile(f, out.path(f"{f.parent.name}/{f.name}"))

    r.config_name = "case"
    return write_run(r, out_root, artefacts, FigurePlan(), OutputSettings(),
                     {"config_hash": "0" * 64})


@pytest.mark.parametrize("swallow", [False, True], ids=["raised", "swallowed"])
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_at_every_step_of_writing_keeps_the_previous_results(results, tmp_path, monkeypatch,
                                                                    sig, swallow):
    r, src = results
    steps = {"n": 0}
    real_path, real_commit = OutputDir.path, OutputDir.commit

    def counting(self, rel):
        steps["n"] += 1
        return real_path(self, rel)

    monkeypatch.setattr(OutputDir, "path", counting)
    _write(r, src, tmp_path / "dry")  # how many steps the writing has
    n = steps["n"]
    assert n > 10
    for k in range(n + 1):  # step n: after the last file, just before commit
        root = tmp_path / f"at{k}"
        final = _previous(root)
        calls = {"n": 0}

        def hooked(self, rel, k=k):
            calls["n"] += 1
            if calls["n"] == k + 1:
                _deliver(sig, swallow)
            return real_path(self, rel)

        def hooked_commit(self, k=k):
            if k == n:
                _deliver(sig, swallow)
            return real_commit(self)

        monkeypatch.setattr(OutputDir, "path", hooked)
        monkeypatch.setattr(OutputDir, "commit", hooked_commit)
        with handle_signals(), pytest.raises(Interrupted) as info:
            _write(r, src, root)
        assert info.value.exit_code == 128 + sig
        assert (final / "results.json").read_text() == "previous", f"step {k}"
        assert sorted(p.name for p in root.iterdir()) == ["case"], f"step {k}"


def test_cli_run_with_a_swallowed_sigint_while_writing_exits_130(tmp_path, monkeypatch, capsys):
    """The real command: a tiny run whose last written file swallows a real SIGINT."""
    from trialbayes import cli

    cfg = write_case(tmp_path / "in", config={"report": {"figures": False},
                                              "diagnostics": {"allow_unreliable": True}})
    final = _previous(tmp_path / "out")
    real = OutputDir.write_text

    def write_text(self, rel, text):
        if rel == "report.md":
            _deliver(signal.SIGINT, swallow=True)
        return real(self, rel, text)

    def hard_exit(code):  # cli._hard_exit ends the process with os._exit; here it must unwind
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", hard_exit)
    monkeypatch.setattr(OutputDir, "write_text", write_text)
    monkeypatch.setattr(sys, "argv", ["trialbayes", "run", str(cfg), "--out",
                                      str(tmp_path / "out"), "--quiet"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 130
    assert "interrupted by SIGINT" in capsys.readouterr().err
    assert (final / "results.json").read_text() == "previous"
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case"]


# ----------------------------------------------------------------------------- 6. pools


def test_cells_finished_when_the_signal_lands_are_kept(tmp_path):
    """Futures that are done but not yet collected when the signal arrives go to the store."""
    from trialbayes.core.executor import Cell, Executor

    ex = Executor("processes", workers=2, store=tmp_path / "store")
    futures = []

    def submit(c):
        futures.append(Future())
        return futures[-1]

    def wait_any(fs):
        if len(fs) == 5:
            for i in range(4):  # 0 and 1 are collected; 2 and 3 finish as the signal lands
                futures[i].set_result(({"v": i}, 0.1))
            return [futures[0], futures[1]]
        raise Interrupted(signal.SIGINT)

    stopped = []
    from trialbayes.core.executor import JobReport

    with pytest.raises(Interrupted):
        ex._drive(submit, [Cell(f"c{i}", {}) for i in range(5)], JobReport(),
                  wait_any=wait_any, on_stop=stopped.append)
    kept = sorted(json.loads(p.read_text())["key"] for p in (tmp_path / "store").glob("*.json"))
    assert kept == ["c0", "c1", "c2", "c3"]
    assert len(stopped) == 1 and stopped[0] == [futures[4]]  # the unfinished one cancelled


CHILD = textwrap.dedent(r"""
    import sys, time
    from trialbayes.core.executor import Cell, Executor, probe_cell
    from trialbayes.core.errors import Interrupted
    from trialbayes.core.interrupts import handle_signals
    store = sys.argv[1]
    quick = [Cell(f"quick-{i}", {"n": 2}) for i in range(4)]
    slow = [Cell(f"slow-{i}", {"n": 2, "work": 200_000}) for i in range(6)]  # minutes each
    with handle_signals():
        try:
            with Executor("processes", workers=2, store=store) as ex:
                print("quick", len(ex.map(probe_cell, quick, 1).values()), flush=True)
                ex.map(probe_cell, slow, 1)
        except Interrupted as exc:
            print("stopped", flush=True)
            sys.exit(exc.exit_code)
""")


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_process_pool_stops_within_2_s_and_keeps_finished_cells(tmp_path, sig):
    store = tmp_path / "store"

    def quick_cells_done(p):
        assert p.stdout.readline().strip() == "quick 4", p.stderr.read()
        time.sleep(3)  # the slow cells are running in both workers
        return ""

    code, elapsed, _, err = interrupt([sys.executable, "-c", CHILD, str(store)], quick_cells_done,
                                      sig)  # fmt: skip
    assert code == 128 + sig, err
    assert elapsed < 2.0, f"took {elapsed:.1f} s to stop"
    kept = sorted(json.loads(f.read_text())["key"] for f in store.glob("*.json"))
    assert kept == [f"quick-{i}" for i in range(4)]
    print(f"stopped {signal.Signals(sig).name} in {elapsed:.2f} s")


def _rossi_config(tmp_path: Path, **extra) -> Path:
    import yaml
    from lifelines.datasets import load_rossi

    r = load_rossi()
    r["id"] = range(len(r))
    r.to_csv(tmp_path / "rossi.csv", index=False)
    cfg = {"name": "rossi", "data": {"kind": "file", "path": "rossi.csv", "columns": {
        "time": "week", "event": "arrest", "arm": "fin", "treatment_level": 1,
        "covariates": ["age"]}},
        "models": [{"name": "u"}], "baseline": {"n_intervals": 3},
        "sampler": {"chains": 2, "draws": 200, "tune": 200, "seed": 1},
        "diagnostics": {"allow_unreliable": True}, "report": {"figures": False}, **extra}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "c.yaml"


def _stop_cli_grid(tmp_path, args, store_glob, sig, name, n_stored=2):
    """Start ``trialbayes ARGS`` over previous outputs ``name``, wait until ``n_stored`` cells are
    in its resume store, send ``sig``: (exit status, seconds to exit, stored cells before,
    stored cells after, stderr); the previous outputs must be untouched."""
    out = tmp_path / "out"
    prev = _previous(out, name)
    before = set()

    def cells_stored(p):
        t_end = time.time() + 600
        while time.time() < t_end and p.poll() is None:
            if len(list(out.glob(store_glob))) >= n_stored:
                break
            time.sleep(0.1)
        before.update(f.name for f in out.glob(store_glob))
        return ""

    code, elapsed, _, err = interrupt(cli_argv(*args, "--out", out), cells_stored, sig)
    after = {f.name for f in out.glob(store_glob)}
    assert (prev / "results.json").read_text() == "previous"
    assert sorted(p.name for p in out.iterdir()) == [".cache", name]  # no staging left
    return code, elapsed, before, after, err


@pytest.mark.slow  # fits a model, then a process-pool grid
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_cli_next_phase_grid_stops_within_2_s_and_keeps_its_cells(tmp_path, sig):
    from trialbayes.core.executor import CellStore

    np_cfg = {"model": "u", "accrual": {"time": 52}, "events": [100, 150, 200, 250],
              "trials": 6000, "oc_trials": 3000, "executor": "processes", "workers": 2}
    cfg = _rossi_config(tmp_path, next_phase=np_cfg)
    code, elapsed, before, after, err = _stop_cli_grid(
        tmp_path, ["run", cfg], ".cache/rossi/next_phase-*/*.json", sig, "rossi")
    assert code == 128 + sig, err
    assert elapsed < 2.0, f"{elapsed:.2f} s"
    assert "while simulating next trials" in err and "previous outputs untouched" in err
    assert before <= after
    store = CellStore(next((tmp_path / "out" / ".cache" / "rossi").iterdir()))
    for name in after:  # every stored cell is whole and verifies
        d = json.loads((store.root / name).read_text())
        assert store.load(d["key"]) is not None
    print(f"next phase: {signal.Signals(sig).name} -> exit {code} in {elapsed:.2f} s, "
          f"{len(after)} cells kept")


@pytest.mark.slow  # compiles a model in each worker
def test_cli_calibrate_stops_within_2_s_and_resumes(tmp_path):
    cal = {"replicates": 40, "draws": 100, "tune": 100, "executor": "processes", "workers": 2}
    cfg = _rossi_config(tmp_path, calibration=cal)
    code, elapsed, before, after, err = _stop_cli_grid(
        tmp_path, ["calibrate", cfg], ".cache/rossi_calibration/sbc-*/*.json", signal.SIGINT,
        "rossi_calibration")
    assert code == 130 and elapsed < 2.0, (code, elapsed, err)
    assert "while refitting the calibration replicates" in err and before <= after
    assert "leaked semaphore" not in err
    print(f"calibrate: SIGINT -> exit {code} in {elapsed:.2f} s, {len(after)} replicates kept")
