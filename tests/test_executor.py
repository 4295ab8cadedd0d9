"""The many-cell executor: same numbers on every backend and worker count, resumable, retries."""

from __future__ import annotations

import numpy as np
import pytest

from trialbayes.core.executor import Cell, Executor, cell_seed, probe_cell


def _cells(n=6, **extra):
    return [Cell(f"cell-{i}", {"n": 4, **extra}) for i in range(n)]


def _draws(report):
    return {k: v["draws"] for k, v in report.values().items()}


def test_seed_depends_on_key_only():
    a = np.random.default_rng(cell_seed(7, "x")).normal(size=3)
    b = np.random.default_rng(cell_seed(7, "x")).normal(size=3)
    c = np.random.default_rng(cell_seed(7, "y")).normal(size=3)
    assert np.array_equal(a, b) and not np.array_equal(a, c)


def test_inprocess_and_process_pool_agree():
    ref = Executor("inprocess").map(probe_cell, _cells(), root_seed=11)
    assert ref.backend == "inprocess" and not ref.failed
    with Executor("processes", workers=2) as ex:
        rep = ex.map(probe_cell, _cells(), root_seed=11)
    assert rep.backend == "processes"
    assert _draws(rep) == _draws(ref)
    assert list(rep.results) == [c.key for c in _cells()]  # the cells' order, not completion order


def test_resumable_store_skips_finished_cells(tmp_path):
    ex = Executor("inprocess", store=tmp_path / "store")
    first = ex.map(probe_cell, _cells(3), root_seed=5)
    assert first.summary()["resumed"] == 0
    more = ex.map(probe_cell, _cells(5), root_seed=5)  # a larger grid: 3 cells come from the store
    assert more.summary()["resumed"] == 3 and not more.failed
    assert _draws(more)["cell-1"] == _draws(first)["cell-1"]
    assert all(more.results[f"cell-{i}"].resumed == (i < 3) for i in range(5))


def test_failing_cell_is_retried_then_recorded(tmp_path):
    ex = Executor("inprocess", retries=1, store=tmp_path / "s")
    flaky = Cell("flaky", {"fail_file": str(tmp_path / "a"), "fail_times": 1})
    broken = Cell("broken", {"fail_file": str(tmp_path / "b"), "fail_times": 5})
    rep = ex.map(probe_cell, [flaky, broken, Cell("fine", {})], root_seed=1)
    assert rep.results["flaky"].status == "ok" and rep.results["flaky"].attempts == 2
    assert rep.results["broken"].status == "failed" and rep.results["broken"].attempts == 2
    assert "probe failure 2" in rep.results["broken"].error
    assert rep.failed == ["broken"]
    again = ex.map(
        probe_cell, [flaky, broken, Cell("fine", {})], root_seed=1
    )  # failed cells run again
    assert again.results["fine"].resumed and not again.results["broken"].resumed


@pytest.mark.slow
def test_dask_local_cluster_one_and_two_workers_same_numbers():
    """(~25 s: two cluster start-ups.) A real distributed LocalCluster (processes, 1 thread per
    worker): probe cells and a small next-phase simulation grid give identical numbers on 1 and
    2 workers and in-process."""
    from test_nextphase import _plain_population, _states

    from trialbayes.config.next_phase import DecisionRule, DesignPriorSpec
    from trialbayes.nextphase.grid import assurance_cell
    from trialbayes.nextphase.simulate import TrialDesign

    args = {
        "states": _states(np.linspace(-0.5, 0.0, 50), 50),
        "population": _plain_population(),
        "design": TrialDesign(events=40, n_randomised=60, accrual_time=1.0),
        "alpha": 0.025,
        "min_hr": None,
        "prior": DesignPriorSpec(name="as_is"),
        "trials": 200,
        "decision": DecisionRule(),
    }
    sim_cells = [Cell(f"sim-{i}", args) for i in range(4)]
    ref = Executor("inprocess").map(assurance_cell, sim_cells, root_seed=3).values()
    ref_probe = _draws(Executor("inprocess").map(probe_cell, _cells(), root_seed=3))
    for workers in (1, 2):
        with Executor("dask", workers=workers, scheduler="local") as ex:
            probe = ex.map(probe_cell, _cells(), root_seed=3)
            sim = ex.map(assurance_cell, sim_cells, root_seed=3)
        assert probe.workers == workers and not probe.failed and not sim.failed
        assert _draws(probe) == ref_probe
        assert sim.values() == ref
    assert len({r["assurance"] for r in ref.values()}) > 1  # the cells really differ


class _Terminal:
    """A stderr stand-in that says it is a terminal."""

    def __init__(self):
        self.text = ""

    def write(self, s):
        self.text += s

    def flush(self):
        pass

    def isatty(self):
        return True


def test_progress_lines_not_a_terminal(capsys, tmp_path):
    """Not a terminal (a file, CI): a start and a done line per job, with cells and time;
    cells from the store are counted as such; nothing at all without ``progress``."""
    ex = Executor("inprocess", store=tmp_path / "s", progress=True)
    ex.map(probe_cell, _cells(3), root_seed=1, label="job A")
    ex.map(probe_cell, _cells(5), root_seed=1, label="job B")
    lines = capsys.readouterr().err.splitlines()
    assert lines[0] == "job A: 3 cells …"
    assert lines[1].startswith("job A: 3/3 cells done, ") and lines[1].endswith(" s elapsed")
    assert lines[2] == "job B: 5 cells (3 from the store) …"
    assert lines[3].startswith("job B: 5/5 cells done") and len(lines) == 4
    Executor("inprocess", progress=False).map(probe_cell, _cells(3), root_seed=1)
    assert capsys.readouterr().err == ""


def test_progress_line_on_a_terminal_is_redrawn(monkeypatch):
    """On a terminal one line is redrawn after every cell (\\r) and ended once."""
    term = _Terminal()
    monkeypatch.setattr("sys.stderr", term)
    Executor("inprocess", progress=True).map(probe_cell, _cells(4), root_seed=1, label="sims")
    frames = term.text.split("\r")[1:]
    want = [f"sims: {i}/4" for i in range(5)] + ["sims: 4/4"]  # start, 4 cells, the end line
    assert [f.split(" cells")[0] for f in frames] == want
    assert term.text.endswith(" s elapsed\n") and term.text.count("\n") == 1
