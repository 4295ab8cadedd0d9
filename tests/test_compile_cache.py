"""compile_cache: one compilation per model structure, in a process and across processes.

Every check reads the cache's own record (where the compiled model came from), never wall time.
Correctness of a served model is checked against PyMC's own log-density and gradient (an
independent compilation of the same graph) and, for sampling, against a fresh compile.
"""

import ctypes
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pymc as pm
import pytest

from trialbayes.config.schema import SamplerSpec
from trialbayes.inference import compile_cache as cc
from trialbayes.inference.sampler import SamplerRunner

SRC = str(Path(__file__).resolve().parents[1] / "src")


def tiny_model(y, prior_sigma=1.0, sd_scale=1.0, likelihood="normal"):
    with pm.Model(coords={"obs": np.arange(len(y))}) as m:
        yd = pm.Data("y", np.asarray(y, float), dims="obs")
        s = pm.Data("prior_sigma", float(prior_sigma))
        mu = pm.Normal("mu", 0.0, s)
        sd = pm.HalfNormal("sd", sd_scale)
        if likelihood == "normal":
            pm.Normal("obs_y", mu, sd, observed=yd, dims="obs")
        else:
            pm.StudentT("obs_y", nu=4, mu=mu, sigma=sd, observed=yd, dims="obs")
        pm.Deterministic("mu_twice", 2 * mu)
    return m


def logp_grad(compiled, x):
    """Call the C callback nutpie would call."""
    x = np.ascontiguousarray(x, float)
    out, lp = np.zeros_like(x), np.zeros(())
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_logp_func.ctypes(
        len(x),
        x.ctypes.data_as(dbl),
        out.ctypes.data_as(dbl),
        lp.ctypes.data_as(dbl),
        compiled.user_data.ctypes.data,
    )
    assert rc == 0
    return float(lp), out


def pymc_logp_grad(model, compiled, x):
    """The same quantities from PyMC's own compiled functions (the independent reference)."""
    names, slices, shapes = compiled.shape_info
    point = {
        n: x[s].reshape(sh)
        for n, s, sh in zip(names, slices, shapes)
        if n in {v.name for v in model.value_vars}
    }
    lp = model.compile_logp()(point)
    grad = model.compile_dlogp()(point)
    return float(lp), np.asarray(grad)


@pytest.fixture(autouse=True)
def _fresh_process_tier():
    cc.clear_memory()  # each test starts as a new process would (its disk cache is its tmp_path)
    cc._WARNED.clear()  # ... and has warned about nothing yet
    yield
    cc.clear_memory()


Y = np.array([0.3, -1.2, 0.8, 2.1, 0.0, 1.1])
X = np.array([0.4, -0.7])


def test_same_structure_is_compiled_once_and_uses_the_new_models_data(tmp_path):
    c1, r1 = cc.compile_model(tiny_model(Y), cache_dir=tmp_path)
    m2 = tiny_model(Y[:4] * 3.0, prior_sigma=2.5)  # other data values, other length, same structure
    c2, r2 = cc.compile_model(m2, cache_dir=tmp_path)
    assert r1.source == "compiled" and r2.source == "memory" and r1.key == r2.key
    assert c2.compiled_logp_func is c1.compiled_logp_func  # the very same machine code
    lp, grad = logp_grad(c2, X)
    ref_lp, ref_grad = pymc_logp_grad(m2, c2, X)
    np.testing.assert_allclose([lp, *grad], [ref_lp, *ref_grad], rtol=1e-10)


def test_with_data_on_a_served_model_matches_pymc(tmp_path):
    cc.compile_model(tiny_model(Y), cache_dir=tmp_path)
    m = tiny_model(Y)
    c, rec = cc.compile_model(m, cache_dir=tmp_path)
    assert rec.source == "memory"
    new = Y[::-1] + 0.5
    c = c.with_data(y=new, prior_sigma=0.7)
    pm.set_data({"y": new, "prior_sigma": 0.7}, model=m)
    np.testing.assert_allclose(logp_grad(c, X)[1], pymc_logp_grad(m, c, X)[1], rtol=1e-10)
    assert logp_grad(c, X)[0] == pytest.approx(pymc_logp_grad(m, c, X)[0], rel=1e-10)


def test_a_changed_graph_misses_the_cache(tmp_path):
    _, r1 = cc.compile_model(tiny_model(Y), cache_dir=tmp_path)
    m = tiny_model(Y, likelihood="student_t")
    c, r2 = cc.compile_model(m, cache_dir=tmp_path)
    assert r2.key != r1.key and r2.source == "compiled"
    lp, grad = logp_grad(c, X)
    ref_lp, ref_grad = pymc_logp_grad(m, c, X)
    np.testing.assert_allclose([lp, *grad], [ref_lp, *ref_grad], rtol=1e-10)


def test_structure_key_ignores_data_values_but_not_constants():
    k = cc.structure_key(tiny_model(Y))[0]
    assert k == cc.structure_key(tiny_model(Y * 7, prior_sigma=3.0))[0]
    assert k != cc.structure_key(tiny_model(Y, sd_scale=1.5))[0]
    with pm.Model() as other:
        pm.Normal("mu", 0, 1)
    assert k != cc.structure_key(other)[0]


def test_lambdas_cannot_identify_an_op_property():
    with pytest.raises(ValueError):
        cc._importable_name(lambda v: v)
    assert cc._importable_name(np.exp) == "numpy.exp"


CHILD = r"""
import json, sys
import numpy as np
sys.path.insert(0, sys.argv[1])
from test_compile_cache import tiny_model, logp_grad, Y, X
from trialbayes.inference import compile_cache as cc
c, rec = cc.compile_model(tiny_model(Y))
lp, grad = logp_grad(c, X)
print(json.dumps({"source": rec.source, "key": rec.key, "lp": lp, "grad": grad.tolist()}))
"""


def _spawn(cache_dir):
    env = {**os.environ, cc.ENV_VAR: str(cache_dir), "PYTHONPATH": SRC}
    return subprocess.Popen(
        [sys.executable, "-c", CHILD, str(Path(__file__).parent)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _result(proc):
    stdout, stderr = proc.communicate(timeout=600)
    assert proc.returncode == 0, stderr[-2000:]
    return json.loads(stdout.strip().splitlines()[-1])


def test_a_new_process_loads_the_structure_from_disk(tmp_path):
    c, rec = cc.compile_model(tiny_model(Y), cache_dir=tmp_path)
    lp, grad = logp_grad(c, X)
    child = _result(_spawn(tmp_path))
    assert (rec.source, child["source"], child["key"]) == ("compiled", "disk", rec.key)
    assert child["lp"] == lp and child["grad"] == grad.tolist()  # the same machine code


@pytest.mark.slow
def test_concurrent_processes_compile_once_and_a_new_process_loads_from_disk(tmp_path):
    """Two processes start on an empty cache at once: one compiles, the other waits for the lock
    and loads; a third process loads from disk. All serve the same log-density bit for bit."""
    outs = [_result(p) for p in [_spawn(tmp_path), _spawn(tmp_path)]]
    assert sorted(o["source"] for o in outs) == ["compiled", "disk"]
    outs.append(_result(_spawn(tmp_path)))
    assert outs[2]["source"] == "disk"
    assert len({o["key"] for o in outs}) == 1
    assert all(o["lp"] == outs[0]["lp"] and o["grad"] == outs[0]["grad"] for o in outs)
    assert len(list((tmp_path / "meta").glob("*.json"))) == 1


def test_sampler_reports_where_the_model_came_from_and_draws_agree(tmp_path, monkeypatch):
    """A cache hit samples exactly like a fresh compile (same seed, same machine code)."""
    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path))
    cfg = SamplerSpec(chains=2, draws=100, tune=100, seed=3, progress="off")
    first = SamplerRunner(tiny_model(Y, sd_scale=0.9), cfg)
    a = first.sample(log_likelihood=False)
    cc.clear_memory()
    second = SamplerRunner(tiny_model(Y, sd_scale=0.9), cfg)
    b = second.sample(log_likelihood=False)
    assert (first.compile_source, second.compile_source) == ("compiled", "disk")
    assert first.compile_count == second.compile_count == 1
    np.testing.assert_array_equal(a.posterior["mu"].values, b.posterior["mu"].values)
    t = second.timing_summary()
    assert t["compiled_from"] == "disk" and t["sample_s"] > 0 and t["compile_s"] > 0


def test_cache_can_be_switched_off(monkeypatch):
    monkeypatch.setenv(cc.ENV_VAR, "off")
    assert cc.default_cache_dir() is None
    monkeypatch.setenv(cc.ENV_VAR, "/some/where")
    assert cc.default_cache_dir() == Path("/some/where")


def test_unusable_or_damaged_cache_means_compiling_never_failing(tmp_path):
    blocker = tmp_path / "a_file"
    blocker.write_text("")
    with pytest.warns(RuntimeWarning, match="not usable"):
        c, rec = cc.compile_model(tiny_model(Y), cache_dir=blocker / "cache")
    assert rec.source == "compiled" and np.isfinite(logp_grad(c, X)[0])
    cc.clear_memory()
    _, first = cc.compile_model(tiny_model(Y), cache_dir=tmp_path / "cache")
    (tmp_path / "cache" / "meta" / f"{first.key}.json").write_text("{not json")
    cc.clear_memory()
    with pytest.warns(cc.CacheWarning, match="not used"):
        c, rec = cc.compile_model(tiny_model(Y), cache_dir=tmp_path / "cache")
    assert rec.source == "compiled"  # a damaged entry is a miss, and is rewritten
    cc.clear_memory()
    assert cc.compile_model(tiny_model(Y), cache_dir=tmp_path / "cache")[1].source == "disk"


def test_cache_location_precedence_config_over_environment(monkeypatch, tmp_path):
    """sampler.cache_dir (a folder or 'off') > $TRIALBAYES_CACHE_DIR > the user cache folder."""
    monkeypatch.setenv(cc.ENV_VAR, str(tmp_path / "from_env"))
    assert cc.configured_cache_dir(None) is True  # unset: compile_model uses default_cache_dir
    assert cc.default_cache_dir() == tmp_path / "from_env"
    assert cc.configured_cache_dir(str(tmp_path / "cfg")) == tmp_path / "cfg"
    assert cc.configured_cache_dir("off") is None and cc.configured_cache_dir("OFF ") is None
    monkeypatch.delenv(cc.ENV_VAR)
    assert cc.default_cache_dir().parts[-2:] == ("trialbayes", "compiled")


def test_configured_cache_dir_is_used_and_resolved_against_the_config(monkeypatch, tmp_path):
    from trialbayes.config.schema import parse_config

    raw = {
        "name": "x",
        "data": {"kind": "file", "path": "d.csv"},
        "models": [{"name": "u"}],
        "sampler": {"cache_dir": "rel/cache"},
    }
    with pytest.warns(RuntimeWarning, match="relative to the config"):  # not trusted by default
        assert parse_config(raw, base_dir=tmp_path).sampler.cache_dir is None
    monkeypatch.setenv("TRIALBAYES_TRUST_CONFIG_CACHE", "1")  # the user's opt-in
    cfg = parse_config(raw, base_dir=tmp_path)
    assert cfg.sampler.cache_dir == str((tmp_path / "rel" / "cache").resolve())
    # what the SamplerRunner hands to compile_model (writing to a given folder: tests above)
    seen = []
    import trialbayes.inference.sampler as sampler_module  # where the SamplerRunner looks it up

    monkeypatch.setattr(
        sampler_module,
        "compile_model",
        lambda model, cache_dir: (
            seen.append(cache_dir) or (None, cc.CompileRecord(None, "uncached", 0.0))
        ),
    )
    for setting, expected in (
        (cfg.sampler.cache_dir, tmp_path / "rel" / "cache"),
        ("off", None),
        (None, True),
    ):
        SamplerRunner(tiny_model(Y), SamplerSpec(cache_dir=setting)).compile()
        assert seen.pop() == expected


def test_unwritable_configured_cache_dir_exits_2_before_sampling(tmp_path):
    from helpers import run_cli, write_case

    blocker = tmp_path / "a_file"
    blocker.write_text("")
    cpath = write_case(tmp_path / "case", config={"sampler": {"cache_dir": str(blocker / "c")}})
    res = run_cli("run", cpath, "--out", tmp_path / "out")
    assert res.exit_code == 2, res.output
    assert "sampler.cache_dir" in res.output and str(blocker / "c") in res.output
    assert not (tmp_path / "out").exists()  # nothing written
