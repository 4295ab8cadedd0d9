"""End to end through the CLI: outputs, labelling, exit statuses, atomicity, determinism."""

import json
from pathlib import Path

import pytest
import yaml

from helpers import run_cli, write_case

ROOT = Path(__file__).resolve().parents[1]


def _small_synthetic(tmp_path, **over):
    cfg = yaml.safe_load((ROOT / "configs" / "mirocals.yaml").read_text())
    cfg["sampler"].update({"chains": 2, "draws": 400, "tune": 400})
    cfg["diagnostics"].update({"ess_bulk_min": 100, "ess_tail_min": 100, "rhat_max": 1.05})
    for k, v in over.items():
        cfg[k] = v
    p = tmp_path / "mirocals_small.yaml"
    p.write_text(yaml.safe_dump(cfg))
    return p


def _strip_times(d):
    d = json.loads(json.dumps(d))
    d["provenance"].pop("created_at")
    d["provenance"].pop("config_path")
    return d


@pytest.fixture(scope="module")
def small_run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("run")
    cfg = _small_synthetic(tmp)
    res = run_cli("run", cfg, "--out", tmp / "out")
    return tmp, cfg, res


def test_end_to_end_outputs(small_run):
    tmp, _, res = small_run
    assert res.exit_code == 0, res.output
    out = tmp / "out" / "mirocals"
    r = json.loads((out / "results.json").read_text())
    assert r["synthetic"] is True and "SYNTHETIC" in r["data_label"]
    assert set(r["models"]) == {"unadjusted", "adjusted", "interaction"}
    assert r["kind"] == "patient_level" and r["schema_version"] == "2.0"
    assert r["settings"]["landmark"] == {"value": 640.0, "source": "config", "rule": ""}
    for m in r["models"].values():
        te = m["treatment_effect"]
        assert 0 < te["lower"] < te["median"] < te["upper"] and te["level"] == 0.95
        assert set(te["p_hr_below"]) == {"1", "0.8"} and set(te["p_hr_above"]) == {"1.1"}
        assert m["coefficients"][0]["term"] == "treatment" and m["coefficients"][0]["posterior"] == te
        assert m["coefficients"][0]["cox"]["hr"] > 0
        assert len(m["subgroups"]["groups"]) == 3
    inter = r["models"]["interaction"]
    assert inter["hr_curve"]["biomarker"] == "pnfh"
    assert r["loo"]["table"] and len(r["loo"]["table"]) == 3
    assert r["data"]["events"] == 90 and r["data"]["n"] == 220
    for f in ["report.md", "provenance.json", "tables/coefficients.csv", "tables/subgroups.csv", "tables/loo.csv",
              "tables/hr_curve_interaction.csv", "figures/forest.png", "figures/hr_curve_interaction.png",
              "figures/survival_adjusted.png", "figures/hr_posterior_unadjusted.png", "posterior/interaction.nc"]:
        assert (out / f).is_file(), f
    report = (out / "report.md").read_text()
    assert "SYNTHETIC DATA" in report and "](figures/forest.png)" in report
    import pandas as pd

    for table in (out / "tables").glob("*.csv"):  # every table says SYNTHETIC
        assert (pd.read_csv(table)["data"] == "SYNTHETIC").all(), table
    prov = json.loads((out / "provenance.json").read_text())
    assert prov["versions"]["pymc"].startswith("6.") and prov["sampler"]["backend"] == "nutpie"
    assert prov["seeds"] == {"unadjusted": 20250601, "adjusted": 20250601 + 1000, "interaction": 20250601 + 2000}
    assert not list((tmp / "out").glob(".mirocals*")), "staging folder left behind"


def test_posterior_netcdf_round_trip(small_run):
    import arviz as az

    tmp, _, _ = small_run
    dt = az.from_netcdf(tmp / "out" / "mirocals" / "posterior" / "interaction.nc")
    assert {"posterior", "sample_stats", "log_likelihood"} <= set(dt.children)
    assert dt.posterior["treatment"].shape == (2, 400)
    assert "SYNTHETIC" in dt.attrs["data_label"]


def test_same_seed_same_results(small_run):
    tmp, cfg, _ = small_run
    first = json.loads((tmp / "out" / "mirocals" / "results.json").read_text())
    res = run_cli("run", cfg, "--out", tmp / "out2")
    assert res.exit_code == 0
    second = json.loads((tmp / "out2" / "mirocals" / "results.json").read_text())
    assert _strip_times(first) == _strip_times(second)


def test_failed_run_keeps_previous_results(small_run, monkeypatch):
    tmp, cfg, _ = small_run
    target = tmp / "out" / "mirocals" / "results.json"
    before = target.read_text()
    import trialbayes.analysis as analysis

    def boom(*a, **k):
        raise RuntimeError("disk full (simulated)")

    monkeypatch.setattr(analysis, "render_patient_report", boom)
    res = run_cli("run", cfg, "--out", tmp / "out")
    assert res.exit_code != 0
    assert target.read_text() == before
    assert not list((tmp / "out").glob(".mirocals*"))


def test_unreliable_model_exits_3_and_is_marked(tmp_path):
    cfg = write_case(tmp_path, config={"sampler": {"chains": 2, "draws": 30, "tune": 30, "seed": 3}})
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 3, res.output
    assert "UNRELIABLE" in res.stderr
    r = json.loads((tmp_path / "out" / "case" / "results.json").read_text())
    assert r["reliable"] is False and r["unreliable_models"] == ["unadjusted"]
    assert "ESS" in " ".join(r["models"]["unadjusted"]["diagnostics"]["failures"])
    assert "UNRELIABLE" in (tmp_path / "out" / "case" / "report.md").read_text()


def test_unreliable_allowed_by_config_exits_0(tmp_path):
    cfg = write_case(tmp_path, config={"sampler": {"chains": 2, "draws": 30, "tune": 30, "seed": 3},
                                       "diagnostics": {"allow_unreliable": True}})
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 0
    assert json.loads((tmp_path / "out" / "case" / "results.json").read_text())["reliable"] is False


def test_pymc_backend_and_spline_model(tmp_path):
    cfg = write_case(tmp_path, config={
        "models": [{"name": "spline", "covariates": ["age"], "interaction": "spline", "biomarker": "pnfh", "spline_basis": 6}],
        "sampler": {"backend": "pymc", "chains": 2, "draws": 300, "tune": 300, "seed": 2},
        "diagnostics": {"allow_unreliable": True}, "report": {"figures": False}})
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "out" / "case" / "results.json").read_text())
    m = r["models"]["spline"]
    assert m["sampler"] == "NUTS via pymc" and m["hr_curve"]["kind"] == "spline" and m["hr_curve"]["transform"] == "log"
    assert (tmp_path / "out" / "case" / "tables" / "hr_curve_spline.csv").is_file()
