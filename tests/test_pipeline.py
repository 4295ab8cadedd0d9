"""End to end through the CLI: outputs, labelling, exit statuses, atomicity, determinism."""

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
from helpers import run_cli, write_case

ROOT = Path(__file__).resolve().parents[1]


def test_end_to_end_outputs(small_run):
    tmp, _, res = small_run
    assert res.exit_code == 0, res.output
    out = tmp / "out" / "mirocals"
    r = json.loads((out / "results.json").read_text())
    assert r["synthetic"] is True and "SYNTHETIC" in r["data_label"]
    assert set(r["models"]) == {"unadjusted", "adjusted", "interaction"}
    assert r["kind"] == "patient_level" and r["schema_version"] == "3.1"
    assert r["settings"]["landmark"] == {"value": 640.0, "source": "config", "rule": ""}
    for m in r["models"].values():
        te = m["treatment_effect"]
        assert 0 < te["lower"] < te["median"] < te["upper"] and te["level"] == 0.95
        assert set(te["p_hr_below"]) == {"1", "0.8"} and set(te["p_hr_above"]) == {"1.1"}
        assert (
            m["coefficients"][0]["term"] == "treatment" and m["coefficients"][0]["posterior"] == te
        )
        cox = m["coefficients"][0]["cox"]
        assert cox["median"] > 0 and cox["method"] == "cox" and 0 <= cox["p_value"] <= 1
        assert len(m["subgroups"]["groups"]) == 3
    inter = r["models"]["interaction"]
    assert inter["hr_curve"]["biomarker"] == "pnfh"
    assert r["loo"]["table"] and len(r["loo"]["table"]) == 3
    assert r["data"]["events"] == 90 and r["data"]["n"] == 220
    for f in [
        "report.md",
        "provenance.json",
        "tables/coefficients.csv",
        "tables/subgroups.csv",
        "tables/loo.csv",
        "tables/hr_curve_interaction.csv",
        "figures/forest.png",
        "figures/hr_curve_interaction.png",
        "figures/survival_adjusted.png",
        "figures/hr_posterior_unadjusted.png",
        "posterior/interaction.nc",
    ]:
        assert (out / f).is_file(), f
    report = (out / "report.md").read_text()
    assert "SYNTHETIC DATA" in report and "](figures/forest.png)" in report
    import pandas as pd

    for table in (out / "tables").glob("*.csv"):  # every table says SYNTHETIC
        assert (pd.read_csv(table)["data"] == "SYNTHETIC").all(), table
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["versions"]["pymc"].startswith("6.") and prov["sampler"]["backend"] == "nutpie"
    from trialbayes.core.seeds import child_seed

    assert prov["seeds"] == {m: child_seed(20250601, "fit", m) for m in r["models"]}
    assert len(set(prov["seeds"].values())) == 3 and "child_seed" in prov["seed_rule"]
    assert not list((tmp / "out").glob(".mirocals*")), "staging folder left behind"


def test_posterior_netcdf_round_trip(small_run):
    import arviz as az

    tmp, _, _ = small_run
    dt = az.from_netcdf(tmp / "out" / "mirocals" / "posterior" / "interaction.nc")
    assert {"posterior", "sample_stats", "log_likelihood"} <= set(dt.children)
    assert dt.posterior["treatment"].shape == (2, 300)
    assert "SYNTHETIC" in dt.attrs["data_label"]


def _strip_run_specific(d):
    d = json.loads(json.dumps(d))
    d["provenance"].pop("created_at")
    d["provenance"].pop("config_path")
    d["provenance"].pop("timings", None)  # compile/sampling seconds and the compile-cache tier
    return d


def _keys(d):
    """The key structure of a JSON tree (values dropped)."""
    if isinstance(d, dict):
        return {k: _keys(v) for k, v in d.items()}
    return [_keys(v) for v in d] if isinstance(d, list) else None


@pytest.mark.slow
def test_same_seed_same_results_in_process_and_from_cold_caches(tmp_path):
    """Reproducibility as the README states it. In one process the same seed gives a bit-identical
    results.json. From a new process whose compile caches (PyTensor, numba, trialbayes) are empty,
    the data, settings and structure are identical and the posterior agrees within Monte Carlo
    error: freshly compiled and cached kernels can differ in the last bits (seen: ~2e-6 relative
    on this model), which NUTS can amplify into different draws.

    Monte Carlo check: if the draws differ, the two runs' medians differ by sqrt(2) MCSE(median)
    in SD, MCSE(median) ~ 1.253 log-SD / sqrt(bulk ESS) (the smallest over parameters, so
    conservative), and likewise P(HR < 1) with sqrt(p(1-p) / ESS). Two checks at z = 3.48
    (Bonferroni, 5e-4 two-sided each): false-failure rate < 1e-3."""
    cfg = write_case(
        tmp_path / "in",
        config={
            "models": [
                {
                    "name": "inter",
                    "covariates": ["age"],
                    "interaction": "linear",
                    "biomarker": "pnfh",
                }
            ],
            "diagnostics": {"allow_unreliable": True},
            "report": {"figures": False},
        },
    )
    runs = {}
    for tag in ("a", "b"):
        assert run_cli("run", cfg, "--out", tmp_path / tag).exit_code == 0
        runs[tag] = json.loads((tmp_path / tag / "case" / "results.json").read_text())
    assert _strip_run_specific(runs["a"]) == _strip_run_specific(runs["b"])
    cold = tmp_path / "cold"
    env = {
        **os.environ,
        "PYTENSOR_FLAGS": f"base_compiledir={cold / 'pytensor'}",
        "NUMBA_CACHE_DIR": str(cold / "numba"),
        "XDG_CACHE_HOME": str(cold / "xdg"),
        "TRIALBAYES_CACHE_DIR": str(cold / "trialbayes"),
    }
    proc = subprocess.run(
        [sys.executable, "-m", "trialbayes.cli", "run", str(cfg), "--out", str(tmp_path / "c")],
        env=env,
        capture_output=True,
        text=True,
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    a = _strip_run_specific(runs["a"])
    c = _strip_run_specific(json.loads((tmp_path / "c" / "case" / "results.json").read_text()))
    assert _keys(a) == _keys(c)
    assert a["data"] == c["data"] and a["settings"] == c["settings"]
    z = 3.48
    for name, m in a["models"].items():
        te_a, te_c = m["treatment_effect"], c["models"][name]["treatment_effect"]
        ess = m["diagnostics"]["ess_bulk_min"]
        se_med = 1.253 * te_a["log_sd"] / math.sqrt(ess)
        assert abs(math.log(te_a["median"] / te_c["median"])) <= z * math.sqrt(2) * se_med
        p = te_a["p_hr_below"]["1"]
        se_p = math.sqrt(max(p * (1 - p), 1 / ess) / ess)
        assert abs(p - te_c["p_hr_below"]["1"]) <= z * math.sqrt(2) * se_p


def test_failed_run_keeps_previous_results(tmp_path, monkeypatch):
    """A run that fails while writing leaves the previous results as they were, and no staging
    folder behind."""
    cfg = write_case(
        tmp_path / "in",
        config={"report": {"figures": False}, "diagnostics": {"allow_unreliable": True}},
    )
    previous = tmp_path / "out" / "case"
    previous.mkdir(parents=True)
    (previous / "results.json").write_text('{"previous": true}')
    import trialbayes.report.writer as writer

    def boom(*a, **k):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setitem(writer.REPORTS, "patient_level", (boom, writer.patient_view))
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code != 0
    assert (previous / "results.json").read_text() == '{"previous": true}'
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["case"]


def test_unreliable_model_exits_3_and_is_marked(tmp_path):
    cfg = write_case(
        tmp_path, config={"sampler": {"chains": 2, "draws": 30, "tune": 30, "seed": 3}}
    )
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 3, res.output
    assert "UNRELIABLE" in res.stderr
    r = json.loads((tmp_path / "out" / "case" / "results.json").read_text())
    assert r["reliable"] is False and r["unreliable_models"] == ["unadjusted"]
    assert "ESS" in " ".join(r["models"]["unadjusted"]["diagnostics"]["failures"])
    assert "UNRELIABLE" in (tmp_path / "out" / "case" / "report.md").read_text()


def test_unreliable_allowed_by_config_exits_0(tmp_path):
    cfg = write_case(
        tmp_path,
        config={
            "sampler": {"chains": 2, "draws": 30, "tune": 30, "seed": 3},
            "diagnostics": {"allow_unreliable": True},
        },
    )
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 0
    assert json.loads((tmp_path / "out" / "case" / "results.json").read_text())["reliable"] is False


@pytest.mark.slow
def test_pymc_backend_and_spline_model(tmp_path):
    cfg = write_case(
        tmp_path,
        config={
            "models": [
                {
                    "name": "spline",
                    "covariates": ["age"],
                    "interaction": "spline",
                    "biomarker": "pnfh",
                    "spline_basis": 6,
                }
            ],
            "sampler": {"backend": "pymc", "chains": 2, "draws": 300, "tune": 300, "seed": 2},
            "diagnostics": {"allow_unreliable": True},
            "report": {"figures": False},
        },
    )
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "out" / "case" / "results.json").read_text())
    m = r["models"]["spline"]
    assert (
        m["sampler"] == "NUTS via pymc"
        and m["hr_curve"]["kind"] == "spline"
        and m["hr_curve"]["transform"] == "log"
    )
    assert (tmp_path / "out" / "case" / "tables" / "hr_curve_spline.csv").is_file()
