"""Background compilation of a run's later models (models/precompile.py): started only when it
can gain something, and what it compiles is what the run then loads from the disk cache."""

import pytest

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import ModelSpec, SamplerSpec
from trialbayes.core import sidecar
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.inference import compile_cache
from trialbayes.models import precompile
from trialbayes.models.pem import PiecewiseExponentialModel


def _models(tmp_path, names=("a", "b", "c")):
    df, _ = generate(n=60, seed=4)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    sampler = SamplerSpec(chains=2, draws=50, tune=50, progress="off", cache_dir=str(tmp_path))
    covs = {"a": [], "b": ["age"], "c": ["age", "svc"]}
    return data, [
        PiecewiseExponentialModel(ModelSpec(name=n, covariates=covs[n]), sampler=sampler).build(
            data
        )
        for n in names
    ]


def test_nothing_starts_without_something_to_gain(tmp_path, monkeypatch):
    data, pems = _models(tmp_path)
    monkeypatch.setattr(sidecar, "cpus", lambda: 2)
    monkeypatch.setattr(sidecar, "idle_cpus", lambda: 1)
    assert precompile.start(pems[:1], {}, data) is None  # one model
    monkeypatch.setenv(precompile.ENV_VAR, "off")
    assert precompile.start(pems, {}, data) is None
    monkeypatch.delenv(precompile.ENV_VAR)
    monkeypatch.setenv(compile_cache.COMPILER_ENV_VAR, "nutpie")
    assert precompile.start(pems, {}, data) is None
    monkeypatch.delenv(compile_cache.COMPILER_ENV_VAR)
    monkeypatch.setattr(sidecar, "idle_cpus", lambda: 0)  # a busy machine
    assert precompile.start(pems, {}, data) is None
    monkeypatch.setattr(sidecar, "idle_cpus", lambda: 1)
    monkeypatch.setattr(precompile, "is_cached", lambda *a: True)  # a warm run
    assert precompile.start(pems, {}, data) is None


def test_switches():
    import os

    for mode, idle, cpus, want in [
        ("auto", 1, 2, True),
        ("auto", 0, 2, False),
        ("on", 0, 2, True),
        ("on", 0, 1, False),
        ("off", 3, 4, False),
    ]:
        os.environ["TB_TEST_SWITCH"] = mode
        sidecar_idle, sidecar_cpus = sidecar.idle_cpus, sidecar.cpus
        sidecar.idle_cpus, sidecar.cpus = (lambda: idle), (lambda: cpus)
        try:
            assert sidecar.wanted("TB_TEST_SWITCH") is want, (mode, idle, cpus)
        finally:
            sidecar.idle_cpus, sidecar.cpus = sidecar_idle, sidecar_cpus
    del os.environ["TB_TEST_SWITCH"]


@pytest.mark.slow
def test_background_workers_fill_the_cache_the_run_loads(tmp_path, monkeypatch):
    """Two later models compiled by a background worker into an empty cache folder: the run
    then finds them there (compiled_from 'disk', not compiled again)."""
    compile_cache.clear_memory()
    data, pems = _models(tmp_path)
    assert not any(compile_cache.is_cached(p.model, tmp_path) for p in pems)
    monkeypatch.setenv(precompile.ENV_VAR, "on")
    with precompile.start(pems, {}, data) as pre:
        assert pre.names == ["b", "c"]
        assert [f.result(timeout=600) for f in pre.futures] == ["compiled", "compiled"]
    assert [compile_cache.is_cached(p.model, tmp_path) for p in pems] == [False, True, True]
    for p in pems[1:]:
        p.sampler.compile()
        assert p.sampler.compile_source == "disk"


@pytest.mark.slow
def test_no_worker_outlives_a_finished_run(tmp_path):
    """A finished `trialbayes run` exits without the interpreter's teardown (cli.main): every
    process it started (background compilers, the figure sidecar) must be gone by then. Three
    models into an empty cache with both helpers forced on; afterwards no process carries the
    run's marker in its environment (spawned workers inherit it)."""
    import os
    import subprocess
    import sys
    import time
    import uuid
    from pathlib import Path

    import yaml

    cache = tmp_path / "cache"
    cache.mkdir(mode=0o700)
    cfg = {
        "name": "orphans",
        "data": {"kind": "synthetic", "n": 60, "seed": 4},
        "models": [
            {"name": "a"},
            {"name": "b", "covariates": ["age"]},
            {"name": "c", "covariates": ["age", "svc"]},
        ],
        "sampler": {"chains": 2, "draws": 60, "tune": 60, "seed": 1, "progress": "off"},
        "diagnostics": {"allow_unreliable": True},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    mark = uuid.uuid4().hex
    src = str(Path(__file__).resolve().parents[1] / "src")
    env = {**os.environ, "PYTHONPATH": src, "TB_ORPHAN_MARK": mark,
           "TRIALBAYES_CACHE_DIR": str(cache), "TRIALBAYES_BACKGROUND_COMPILE": "on",
           "TRIALBAYES_SIDECAR": "on"}  # fmt: skip
    res = subprocess.run(
        [sys.executable, "-m", "trialbayes.cli", "run", str(tmp_path / "c.yaml"),
         "--out", str(tmp_path / "out")],
        env=env, capture_output=True, text=True, timeout=900,
    )  # fmt: skip
    assert res.returncode == 0, res.stderr
    assert "in the background (not in the compile cache yet)" in res.stderr, res.stderr

    def survivors():
        found = []
        for d in Path("/proc").iterdir():
            try:
                if d.name.isdigit() and mark.encode() in (d / "environ").read_bytes():
                    found.append(d.name)
            except OSError:
                continue
        return found

    deadline = time.monotonic() + 3.0  # a worker being killed needs a moment to vanish
    while survivors() and time.monotonic() < deadline:
        time.sleep(0.2)
    assert survivors() == [], f"processes outlived the run: {survivors()}"
    assert (tmp_path / "out" / "orphans" / "results.json").is_file()


def test_leaving_the_block_ends_a_busy_worker():
    """What the end-to-end test above cannot force: a background worker still busy when the fit
    loop ends (importing, or compiling a model the run has meanwhile compiled itself) is ended
    when the ``with`` block is left, not left running past the run's os._exit."""
    import multiprocessing as mp
    import time
    from concurrent.futures import ProcessPoolExecutor

    pre = precompile.Precompiler.__new__(precompile.Precompiler)
    pre.names = ["busy"]
    pre._pool = ProcessPoolExecutor(1, mp_context=mp.get_context("spawn"))
    pre.futures = [pre._pool.submit(time.sleep, 60)]
    procs = list(pre._pool._processes.values())
    assert procs and all(p.is_alive() for p in procs)
    t0 = time.monotonic()
    with pre:
        pass
    assert not any(p.is_alive() for p in procs)
    assert time.monotonic() - t0 < 5
