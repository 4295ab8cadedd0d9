"""Background compilation of a run's later models (models/precompile.py): started only when it
can gain something, and what it compiles is what the run then loads from the disk cache."""

import pytest

from trialbayes.config.schema import ColumnMap, ModelSpec, SamplerSpec
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
