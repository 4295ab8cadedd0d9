"""Bad input and faults (issue 9): each class gives a clear error (exit 2, nothing written) or a
visible warning, and never a lost result. Most checks act before sampling, so most tests here
sample nothing; the end-to-end ones use tiny data and 2 chains × 200 draws."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import COLUMNS, good_frame, run_cli, write_case

ROOT = Path(__file__).resolve().parents[1]
RDATA = ROOT / "configs" / "data"


def _reject(tmp_path, expect, df=None, config=None, raw_csv=None, data_name="patients.csv",
            cfg_text=None):
    cfg = write_case(tmp_path / "in", df, config=config, raw_csv=raw_csv, data_name=data_name)
    if data_name.endswith(".parquet"):  # write_case writes CSV text; replace it with real Parquet
        df.to_parquet(tmp_path / "in" / data_name)
    if cfg_text is not None:
        cfg.write_text(cfg_text(cfg.read_text()))
    out = tmp_path / "out"
    res = run_cli("run", cfg, "--out", out)
    assert res.exit_code == 2, res.output
    for e in expect:
        assert e in res.stderr, f"{e!r} not in {res.stderr!r}"
    assert not out.exists() or not any(out.iterdir()), "a rejected input wrote outputs"
    return res.stderr


def _cols(**kw):
    return {"data": {"kind": "file", "path": "patients.csv", "columns": dict(COLUMNS, **kw)}}


# ----------------------------------------------------------------------------- 2. validation


def test_text_cell_in_numeric_covariate(tmp_path):
    df = good_frame()
    df["age"] = df["age"].astype(object)
    df.loc[16, "age"] = "sixty"
    _reject(tmp_path, ["'age'", "text values ['sixty']", "row 17"], df=df,
            config={"models": [{"name": "adj", "covariates": ["age"]}]})


def test_many_text_levels_refused(tmp_path):
    df = good_frame()
    df["svc"] = [f"code{i}" for i in range(len(df))]
    _reject(tmp_path, ["'svc'", "60 distinct text values"], df=df)


def test_date_time_column_in_parquet_refused(tmp_path):
    df = good_frame()
    df["time"] = pd.Timestamp("2020-01-01") + pd.to_timedelta(df["time"], unit="D")
    cfg = {"data": {"kind": "file", "path": "patients.parquet", "columns": dict(COLUMNS)}}
    _reject(tmp_path, ["'time'", "dates", "nanoseconds"], df=df, data_name="patients.parquet",
            config=cfg)


def test_duration_time_column_needs_and_uses_time_unit(tmp_path):
    from trialbayes.config.data_sources import ColumnMap
    from trialbayes.data.table import from_frame

    df = good_frame()
    days = df["time"].to_numpy(float)
    td = df.assign(time=pd.to_timedelta(days, unit="D"))
    cfg = {"data": {"kind": "file", "path": "patients.parquet", "columns": dict(COLUMNS)}}
    _reject(tmp_path, ["'time'", "durations", "data.time_unit"], df=td,
            data_name="patients.parquet", config=cfg)
    # converted exactly: durations of d days are d / 7 weeks (independent arithmetic)
    data = from_frame(td, ColumnMap(**COLUMNS), time_unit="weeks")
    np.testing.assert_allclose(data.frame["time"].to_numpy(), days / 7.0, rtol=1e-12)
    assert "converted to weeks" in data.notes[0]


def test_duplicate_yaml_keys(tmp_path):
    def dup(text):
        return text + "priors: {treatment: {family: normal, sigma: 0.5}}\npriors: {}\n"

    _reject(tmp_path, ["duplicate key 'priors'", "line"], cfg_text=dup)


def _treatment_prior(**kw):
    return {"priors": {"treatment": {"family": "normal", "sigma": 1, **kw}}}


@pytest.mark.parametrize("config,expect", [
    (_treatment_prior(sigma=float("inf")), "priors.treatment.sigma = inf"),
    (_treatment_prior(mu=float("nan")), "priors.treatment.mu = nan"),
    ({"estimands": {"landmark": float("inf")}}, "estimands.landmark = inf"),
    (_treatment_prior(sigma=1e300), "less than or equal to 100"),
    (_treatment_prior(sigma=1e-300), "greater than or equal to 0.001"),
    (_treatment_prior(mu=1e300), "less than or equal to 20"),
    ({"sampler": {"seed": -1}}, "sampler.seed"),
    ({"name": ".."}, "name: String should match pattern"),  # would name the output root's parent
    ({"models": [{"name": "../x"}]}, "models.0.name"),
    ({"sampler": {"draws": 10**9}}, "sampler.draws"),
])
def test_non_finite_and_out_of_range_config(tmp_path, config, expect):
    _reject(tmp_path, [expect], config=config)


def test_non_finite_string_in_config_refused():
    from trialbayes.config.schema import parse_config
    from trialbayes.core.errors import ConfigError

    est = {"name": "a", "log_hr": -0.2, "se": "nan"}
    raw = {"name": "x", "data": {"kind": "published", "estimates": [est]}}
    with pytest.raises(ConfigError, match="finite"):
        parse_config(raw)


@pytest.mark.parametrize("published,expect", [
    ({"grid_sd": {"lo": 0.0, "hi": 1.0}}, "grid_sd.lo must be > 0"),
    ({"grid_mean": {"lo": 0.5, "hi": -0.5}}, "grid lo (0.5) must be < hi"),
    ({"tipping_levels": [0.9, 1.5]}, "tipping_levels must lie in (0, 1)"),
])
def test_published_option_ranges(published, expect):
    from trialbayes.config.schema import parse_config
    from trialbayes.core.errors import ConfigError

    est = {"name": "a", "hr": 0.8, "ci": [0.6, 1.1]}
    raw = {"name": "x", "data": {"kind": "published", "estimates": [est]}, "published": published}
    with pytest.raises(ConfigError, match=expect.replace("(", r"\(").replace(")", r"\)")):
        parse_config(raw)


def test_constant_biomarker_under_interaction(tmp_path):
    df = good_frame()
    df["pnfh"] = 1500.0
    _reject(tmp_path, ["'pnfh'", "is constant", "model 'int'"], df=df,
            config={"models": [{"name": "int", "interaction": "log_linear", "biomarker": "pnfh"}]})


def test_infinite_biomarker(tmp_path):
    df = good_frame()
    df.loc[4, "pnfh"] = np.inf
    _reject(tmp_path, ["'pnfh'", "infinite", "row 5"], df=df)


def test_huge_covariate_value(tmp_path):
    df = good_frame()
    df.loc[2, "age"] = 1e300
    _reject(tmp_path, ["'age'", "too large to standardise", "row 3"], df=df)


def test_collinear_covariates_rank_check(tmp_path):
    df = good_frame()
    df["age_months"] = df["age"] * 12 + 3  # an exact linear function of age
    cols = dict(COLUMNS, covariates=["age", "svc", "age_months"])
    _reject(tmp_path, ["model 'adj'", "perfectly collinear", "age", "age_months"], df=df,
            config={**_cols(covariates=cols["covariates"]),
                    "models": [{"name": "adj", "covariates": "all"}]})


def test_collinear_sets_names_exactly_the_dependent_columns():
    from trialbayes.data.checks import collinear_sets

    rng = np.random.default_rng(0)
    a, b, c = rng.normal(size=(3, 50))
    X = np.column_stack([np.ones(50), a, b, 2 * a - b, c])
    assert [sorted(s) for s in collinear_sets(X, ["1", "a", "b", "d", "c"])] == [["a", "b", "d"]]
    assert collinear_sets(X[:, [0, 1, 2, 4]], ["1", "a", "b", "c"]) == []


def test_memory_estimate_bounds_sampler_sizes(tmp_path, monkeypatch):
    import trialbayes.routes.validate as validate

    monkeypatch.setattr(validate, "available_memory", lambda: 50e6)  # 50 MB
    _reject(tmp_path, ["sampler", "need about", "lower sampler.draws"],
            config={"sampler": {"draws": 100_000}})


def test_unwritable_output_folder(tmp_path):
    cfg = write_case(tmp_path / "in")
    blocker = tmp_path / "out"
    blocker.write_text("a file, not a folder")
    res = run_cli("run", cfg, "--out", blocker)
    assert res.exit_code == 2 and "is not a folder" in res.stderr
    assert blocker.read_text() == "a file, not a folder"


def test_check_command_runs_the_same_checks(tmp_path):
    df = good_frame()
    df["pnfh"] = 1500.0
    model = {"name": "int", "interaction": "linear", "biomarker": "pnfh"}
    cfg = write_case(tmp_path, df, config={"models": [model]})
    res = run_cli("check", cfg)
    assert res.exit_code == 2 and "is constant" in res.stderr


# ----------------------------------------------------------------------------- 3/4. flags, Cox


def _data(df=None, **cols):
    from trialbayes.config.data_sources import ColumnMap
    from trialbayes.data.table import from_frame

    return from_frame(good_frame() if df is None else df, ColumnMap(**dict(COLUMNS, **cols)))


def test_data_flags_zero_and_few_events():
    from trialbayes.estimands.caution import data_flags

    df = good_frame()
    df.loc[df["arm"] == "IL-2LD", "event"] = 0
    codes = {f.code for f in data_flags(_data(df))}
    assert "zero_events_in_arm" in codes and "few_events_in_arm" not in codes
    df = good_frame()
    trt = np.flatnonzero((df["arm"] == "IL-2LD") & (df["event"] == 1))
    df.loc[trt[3:], "event"] = 0  # 3 events left in the treatment arm
    flags = data_flags(_data(df))
    assert [f.detail["events"] for f in flags if f.code == "few_events_in_arm"] == [3]
    assert not data_flags(_data())  # the 60-patient frame has enough events in both arms


def test_prior_width_against_closed_forms():
    """Normal: 2 × 1.959964 σ; Student-t: scipy's t quantiles; a mixture of two equal components is
    the component itself."""
    from scipy import stats

    from trialbayes.config.priors import MixturePrior, NormalPrior, StudentTPrior
    from trialbayes.estimands.caution import prior_width

    z, t3 = 1.959964, stats.t(3).ppf(0.975)
    assert prior_width(NormalPrior(mu=0.3, sigma=2.0)) == pytest.approx(2 * z * 2.0, rel=1e-5)
    assert prior_width(StudentTPrior(nu=3, sigma=0.5)) == pytest.approx(2 * t3 * 0.5, rel=1e-6)
    comp = NormalPrior(mu=0.0, sigma=0.7)
    assert prior_width(MixturePrior(weight=0.3, informative=comp, vague=comp)) == pytest.approx(
        2 * 1.959964 * 0.7, rel=1e-5)


def test_model_flags_prior_dominated_and_cox():
    from trialbayes.config.priors import NormalPrior
    from trialbayes.estimands.caution import headline_tag, model_flags

    rng = np.random.default_rng(1)
    from trialbayes.estimands.frequentist import CoxFit

    cox = CoxFit("Cox PH", "failed", error="ConvergenceError: singular")
    vague_data = rng.normal(-2.0, 0.9, 4000)  # posterior about as wide as the N(0, 1) prior
    flags = model_flags("m", cox, vague_data, NormalPrior(sigma=1.0))
    assert {f.code for f in flags} == {"prior_dominated", "cox_failed"}
    assert "PRIOR-DRIVEN" in headline_tag(flags, "m") and "COX" in headline_tag(flags, "m")
    assert headline_tag(flags, "other") == ""
    cox = CoxFit("Cox PH", "ok")
    assert model_flags("m", cox, rng.normal(-0.3, 0.1, 4000), NormalPrior(sigma=1.0)) == []


def test_cox_fit_never_raises():
    from trialbayes.config.schema import Baseline, ModelSpec
    from trialbayes.data.design import build_design
    from trialbayes.estimands.frequentist import cox_fit

    df = good_frame()
    df.loc[df["arm"] == "IL-2LD", "event"] = 0  # separation: the Cox treatment effect runs off
    data = _data(df)
    d = build_design(data, ModelSpec(name="u"), Baseline(n_intervals=2))
    cox = cox_fit(d, data.frame["time"].to_numpy())
    assert cox.status == "not_converged" and abs(cox.terms["treatment"].log_mean) > 5
    assert cox.term("treatment") is None  # a fit that ran off gives no estimate to read
    tiny = good_frame().iloc[:5].copy()
    tiny["arm"] = ["IL-2LD", "Placebo", "IL-2LD", "Placebo", "IL-2LD"]
    tiny["event"] = [1, 0, 1, 0, 0]
    data = _data(tiny)
    d = build_design(data, ModelSpec(name="adj", covariates="all"), Baseline(n_intervals=1))
    d.X[:, 1] = d.X[:, 0]  # collinear covariates inside the Cox fit itself
    cox = cox_fit(d, data.frame["time"].to_numpy())
    assert cox.status in ("failed", "not_converged")


@pytest.fixture(scope="module")
def zero_event_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("zero")
    df = good_frame(n=80, seed=3)
    df.loc[df["arm"] == "IL-2LD", "event"] = 0
    cfg = write_case(tmp, df, config={"diagnostics": {"allow_unreliable": True},
                                      "report": {"figures": False}})
    return tmp, run_cli("run", cfg, "--out", tmp / "out")


@pytest.mark.slow
def test_zero_events_in_arm_is_flagged_everywhere(zero_event_run):
    tmp, res = zero_event_run
    assert res.exit_code == 0, res.output
    assert "PRIOR-DRIVEN" in res.stdout and "No events in arm 'IL-2LD'" in res.output
    r = json.loads((tmp / "out" / "case" / "results.json").read_text())
    m = r["models"]["unadjusted"]
    assert "zero_events_in_arm" in {f["code"] for f in r["flags"]}
    assert "cox_not_converged" in {f["code"] for f in m["flags"]}
    assert m["cox_status"] == "not_converged"  # recorded, and the run finished
    report = (tmp / "out" / "case" / "report.md").read_text()
    head = report.split("## Summary")[0]
    assert "zero_events_in_arm" in head and "cox_not_converged" in head
    assert "No events in arm" in head
    assert "PRIOR-DRIVEN" in report.split("## Data")[0]
    assert (tmp / "out" / "case" / "posterior" / "unadjusted.nc").is_file()


# ----------------------------------------------------------------------------- 1. interrupts


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_stale_staging_removed_and_orphaned_backup_restored(tmp_path):
    from trialbayes.core.outputs import OutputDir

    pid = _dead_pid()
    stale = tmp_path / f".case.staging-{pid}"
    (stale / "tables").mkdir(parents=True)
    backup = tmp_path / f".case.old-{pid}"  # killed between the two renames of a commit
    backup.mkdir()
    (backup / "results.json").write_text("previous")
    alive = tmp_path / f".case.staging-{os.getppid()}"  # a live process's folder: left alone
    alive.mkdir()
    with OutputDir(tmp_path, "case"):
        assert not stale.exists() and not backup.exists() and alive.exists()
        assert (tmp_path / "case" / "results.json").read_text() == "previous"


def test_stale_staging_removed_before_sampling(tmp_path):
    """At the start of the next run (check_writable, before any sampling), not only at writing."""
    from trialbayes.routes.validate import check_writable

    stale = tmp_path / f".case.staging-{_dead_pid()}"
    stale.mkdir()
    check_writable(tmp_path, "case")
    assert not stale.exists()


def test_truncated_or_non_finite_trace_refused():
    import arviz as az

    from trialbayes.core.errors import SamplingIncomplete
    from trialbayes.core.interrupts import check_complete

    full = az.from_dict({"posterior": {"a": np.zeros((2, 50))}})
    check_complete(full, 2, 50, ["a"])
    with pytest.raises(SamplingIncomplete, match="2 chains × 30 draws"):
        check_complete(az.from_dict({"posterior": {"a": np.zeros((2, 30))}}), 2, 50, ["a"])
    padded = np.zeros((2, 50))
    padded[1, 20:] = np.nan  # what an aborted sampler pads with
    with pytest.raises(SamplingIncomplete, match="non-finite"):
        check_complete(az.from_dict({"posterior": {"a": padded}}), 2, 50, ["a"])


def test_sigint_during_sampling_raises_not_returns():
    """A real SIGINT to this process while nutpie samples: Interrupted (exit code 130) within a
    few seconds, never a partial trace."""
    import pymc as pm

    from trialbayes.config.schema import SamplerSpec
    from trialbayes.core.errors import Interrupted
    from trialbayes.core.interrupts import handle_signals
    from trialbayes.inference.sampler import SamplerRunner

    with pm.Model() as m:
        pm.Normal("x", 0, 1)
    sc = SamplerSpec(chains=2, draws=1_000_000, tune=1000, seed=1, progress="off")
    s = SamplerRunner(m, sc).compile()
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    with handle_signals(), pytest.raises(Interrupted) as info:
        t0 = time.perf_counter()
        timer.start()
        s.sample(log_likelihood=False)
    assert info.value.exit_code == 130
    assert time.perf_counter() - t0 < 15


@pytest.mark.slow  # fits a model before the simulated failure (~20 s cold): slow tier
def test_failure_names_the_phase(tmp_path, monkeypatch, capsys):
    import trialbayes.routes.patient_level as analysis
    from trialbayes import cli

    def boom(*a, **k):
        raise RuntimeError("simulated")

    def hard_exit(code):  # cli._hard_exit ends the process with os._exit; here it must unwind
        raise SystemExit(code)

    monkeypatch.setattr(os, "_exit", hard_exit)
    monkeypatch.setattr(analysis, "analyse_model", boom)
    monkeypatch.setattr(analysis.PiecewiseExponentialModel, "fit", lambda self, **k: self)
    cfg = write_case(tmp_path / "in")
    argv = ["trialbayes", "run", str(cfg), "--out", str(tmp_path / "out")]
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit) as info:
        cli.main()
    assert info.value.code == 1
    err = capsys.readouterr().err
    assert "while analysing model 'unadjusted'" in err and "simulated" in err
    assert not (tmp_path / "out" / "case").exists()


@pytest.mark.slow
def test_sigterm_to_cli_run_keeps_previous_outputs(tmp_path, sig=signal.SIGTERM, code=143):
    """A real SIGTERM to a real ``trialbayes run`` subprocess once it is sampling (nutpie's worker
    threads are up; SIGINT is covered in-process above): exit 128 + signal within seconds,
    previous outputs byte-identical, no staging folder."""
    # a long warm-up (not stored, so the memory check does not refuse it on a small machine)
    sampler = {"chains": 2, "draws": 500, "tune": 1_000_000}
    cfg = write_case(tmp_path / "in", config={"sampler": sampler, "report": {"figures": False}})
    prev = tmp_path / "out" / "case"
    prev.mkdir(parents=True)
    (prev / "results.json").write_text('{"previous": true}')
    path = os.pathsep.join([str(ROOT / "src"), os.environ.get("PYTHONPATH", "")])
    cmd = [sys.executable, "-m", "trialbayes.cli", "run", str(cfg), "--out", str(tmp_path / "out")]
    p = subprocess.Popen(cmd, env=dict(os.environ, PYTHONPATH=path), stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True)
    t_end = time.time() + 240
    while time.time() < t_end and p.poll() is None and not _sampling(p.pid):
        time.sleep(0.5)
    time.sleep(2)  # well inside sampling (a million warm-up steps take minutes)
    assert p.poll() is None, p.communicate()
    p.send_signal(sig)
    t0 = time.time()
    _, err = p.communicate(timeout=60)
    assert p.returncode == code, err
    assert time.time() - t0 < 20 and "sampling" in err
    assert (prev / "results.json").read_text() == '{"previous": true}'
    assert sorted(x.name for x in (tmp_path / "out").iterdir()) == ["case"]


def _sampling(pid: int) -> bool:
    """nutpie's sampler threads are up (named nutpie-worker-N)."""
    names = []
    for comm in Path(f"/proc/{pid}/task").glob("*/comm"):
        try:
            names.append(comm.read_text())
        except OSError:
            pass
    return any(n.startswith("nutpie-worker") for n in names)


# ----------------------------------------------------------------------------- 5. reconstruction


def _digitised():
    return pd.read_csv(RDATA / "rossi_km_curve.csv"), pd.read_csv(RDATA / "rossi_km_risk.csv")


def test_percent_set_on_proportions_refused():
    from trialbayes.core.errors import DataError
    from trialbayes.data.reconstruct.guyot import reconstruct

    c, r = _digitised()
    with pytest.raises(DataError, match="proportions; drop percent"):
        reconstruct(c.assign(survival=c["survival"] / 100), r, percent=True)


def test_rising_curve_refused_naming_rows():
    from trialbayes.core.errors import DataError
    from trialbayes.data.reconstruct.guyot import reconstruct

    c, r = _digitised()
    i = c[c["arm"] == "no_aid"].sort_values("time").index[30]
    c.loc[i, "survival"] = 95.0
    with pytest.raises(DataError, match=rf"rises .* row {i + 1}\b"):
        reconstruct(c, r, percent=True)


def test_risk_table_typo_is_warned_and_raw_points_compared():
    from trialbayes.data.reconstruct.guyot import reconstruct
    from trialbayes.estimands.reconstruction import quality

    c, r = _digitised()
    assert not quality(reconstruct(c, r, percent=True), c, r, percent=True).warnings
    typo = r.copy()
    typo.loc[(typo["time"] == 0) & (typo["arm"] == "no_aid"), "n_at_risk"] *= 100
    q = quality(reconstruct(c, typo, percent=True), c, typo, percent=True)
    assert any("mistyped" in w and "no_aid" in w for w in q.warnings)
    assert all(a.km_max_abs_diff_raw is not None for a in q.arms.values())


def test_risk_above_what_the_curve_allows_is_warned():
    from trialbayes.data.reconstruct.checks import risk_warnings
    from trialbayes.data.reconstruct.guyot import clean_curve, clean_risk

    curve = pd.DataFrame({"arm": "a", "time": [0, 5, 10], "survival": [1.0, 0.5, 0.4]})
    risk = pd.DataFrame({"arm": "a", "time": [0, 5], "n_at_risk": [100, 90]})  # <= 50 alive at 5
    curves = clean_curve(curve)
    w = risk_warnings(curves, clean_risk(risk, curves))
    assert len(w) == 1 and "at most 50" in w[0]


def test_reconstruct_out_may_not_name_an_input(tmp_path):
    c, r = _digitised()
    (tmp_path / "curve.csv").write_text(c.to_csv(index=False))
    r.to_csv(tmp_path / "risk.csv", index=False)
    before = (tmp_path / "curve.csv").read_text()
    res = run_cli("reconstruct", "--curve", tmp_path / "curve.csv", "--risk", tmp_path / "risk.csv",
                  "--percent", "--out", tmp_path / "curve.csv")
    assert res.exit_code == 2 and "overwrite an input" in res.stderr
    assert (tmp_path / "curve.csv").read_text() == before


# ----------------------------------------------------------------------------- 7. escaping


def test_csv_cells_cannot_be_formulas(tmp_path):
    from trialbayes.core.outputs import OutputDir

    df = pd.DataFrame({"=cmd|'/c calc'!A1": ["=1+1", "+SUM(A1)", "-2+3", "@x", "-0.5", " =1+1",
                                             "plain"],
                       "value": [1.0, -2.0, 3.0, 4.0, 5.0, 6.0, 7.0]})
    with OutputDir(tmp_path, "esc") as out:
        out.write_csv("t.csv", df)
        out.commit()
    text = (tmp_path / "esc" / "t.csv").read_text().splitlines()
    cells = [line.rsplit(",", 1)[0] for line in text]
    assert cells[0].startswith("\"'=cmd") or cells[0].startswith("'=cmd")
    assert cells[1:] == ["'=1+1", "'+SUM(A1)", "'-2+3", "'@x", "-0.5", "' =1+1", "plain"]
    assert text[2].endswith(",-2")  # numbers are never touched


def test_markdown_cannot_inject_markup():
    from trialbayes.core.escape import html_text, md_text
    from trialbayes.core.text import md_table

    s = md_text("<script>alert(1)</script> ![x](http://e/p.png) a|b\n# head")
    assert "<" not in s and "![x](" not in s and "\\|" in s and "\n" not in s
    table = md_table(pd.DataFrame({"term|x": ["<img src=x onerror=alert(1)>"], "v": [1.0]}))
    assert "<img" not in table
    assert "term\\|x" in table.splitlines()[0]  # the pipe stays inside its cell
    assert html_text('"<b>&') == "&quot;&lt;b&gt;&amp;"
