"""One results model for every route: what a route returns is what results.json holds (writing
changes nothing), reading results.json back gives the same object, results.json validates against
the JSON Schema generated from the types (kept in the repository), and a 2.x file still loads.

Routes: patient level (a file), reconstructed (a digitised KM figure), published estimates, a
patient-level run with a next-phase simulation, and simulation-based calibration. Each is run
twice with the same seeds — once returning its results without writing, once writing — and the
two must agree (but for when the run happened and how long it took).
"""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest
import yaml

from trialbayes.config.schema import parse_config
from trialbayes.core.errors import DataError
from trialbayes.results.io import SCHEMA_FILE, load_results, results_from_dict, results_schema
from trialbayes.results.migrate import from_2x

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "data" / "results_2_0"
TINY = {"chains": 2, "draws": 150, "tune": 150, "seed": 7, "progress": "off"}
LOOSE = {"allow_unreliable": True}


def _volatile(d: dict) -> dict:
    """results.json without what differs between two otherwise identical runs: when it ran and
    how long compiling, sampling and the analysis took."""
    d = json.loads(json.dumps(d))
    p = d.get("provenance") or {}
    p.pop("created_at", None)
    p.pop("timings", None)
    nxt = d.get("next_phase") or {}
    for ex in (nxt.get("executor") or {}).values():
        ex.pop("wall_seconds", None)
        ex.pop("resumed", None)
    cal = d.get("calibration") or {}
    if cal.get("executor"):
        cal["executor"].pop("wall_seconds", None)
        cal["executor"].pop("resumed", None)
    return d


def _patient(tmp: Path) -> dict:
    from helpers import COLUMNS, good_frame

    good_frame(n=80).to_csv(tmp / "p.csv", index=False)
    return {"name": "pl", "data": {"kind": "file", "path": str(tmp / "p.csv"),
                                   "columns": dict(COLUMNS), "time_unit": "days"},
            "models": [{"name": "u"}, {"name": "i", "interaction": "linear", "biomarker": "pnfh"}],
            "baseline": {"n_intervals": 3}, "sampler": TINY, "diagnostics": LOOSE}  # fmt: skip


def _reconstructed(tmp: Path) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "rossi_reconstructed.yaml").read_text())
    for k in ("curve", "risk", "events"):
        cfg["data"][k] = str(ROOT / "configs" / cfg["data"][k])
    return {**cfg, "sampler": TINY, "diagnostics": LOOSE, "baseline": {"n_intervals": 3}}


def _published(tmp: Path) -> dict:
    cfg = yaml.safe_load((ROOT / "configs" / "mirocals_published.yaml").read_text())
    cfg["published"]["nuts_draws"] = 600
    return {**cfg, "sampler": TINY, "diagnostics": LOOSE}


def _next_phase(tmp: Path) -> dict:
    cfg = _patient(tmp)
    cfg["name"] = "np"
    cfg["next_phase"] = {"model": "u", "events": [20, 30], "trials": 100, "oc_trials": 100,
                         "accrual": {"time": 300}, "oc_hrs": [0.7],
                         "executor": "inprocess"}  # fmt: skip
    return cfg


def _assumptions(tmp: Path) -> dict:
    return {"name": "as", "data": {"kind": "assumptions", "time_unit": "months",
                                   "control_hazard": {"median": 24},
                                   "design_prior": {"kind": "point", "hr": 0.75}},
            "next_phase": {"events": [60], "patients_per_event": 1.6, "accrual": {"time": 24},
                           "trials": 200, "oc_trials": 100, "oc_hrs": [0.7],
                           "looks": [0.5, 1.0], "executor": "inprocess"}}  # fmt: skip


ROUTES = {
    "patient_level": (_patient, False),
    "assumptions": (_assumptions, False),
    "published": (_published, False),
    "reconstructed": (_reconstructed, True),
    "next_phase": (_next_phase, True),
}


def _run_twice(cfg: dict, tmp: Path):
    from trialbayes.routes.dispatch import run_config

    quiet = run_config(parse_config(cfg), tmp / "not_written", write=False)
    loud = run_config(parse_config(cfg), tmp / "out")
    return quiet.results, loud.results, loud.out_dir


@pytest.mark.parametrize(
    "route",
    [pytest.param(r, marks=pytest.mark.slow) if slow else r for r, (_, slow) in ROUTES.items()],
)
def test_a_route_returns_what_it_writes_and_reads_back(tmp_path, route):
    cfg = ROUTES[route][0](tmp_path)
    quiet, loud, out = _run_twice(cfg, tmp_path)
    assert not (tmp_path / "not_written").exists()
    written = json.loads((out / "results.json").read_text())
    assert loud.to_dict() == written  # writing changed nothing in the results
    assert _volatile(quiet.to_dict()) == _volatile(written)  # tb.run(cfg) without out= is it too
    assert load_results(out / "results.json") == loud  # the same object back
    jsonschema.validate(written, json.loads(SCHEMA_FILE.read_text()))
    assert set(written["figures"]) == set(written["figure_captions"])
    for path in written["figures"].values():
        assert (out / path).is_file()


@pytest.mark.slow
def test_calibration_returns_what_it_writes_and_reads_back(tmp_path):
    from trialbayes.config.calibration import CalibrationSettings
    from trialbayes.routes.calibration import run_calibration

    cfg = parse_config({**_patient(tmp_path), "models": [{"name": "u"}]})
    s = CalibrationSettings(model="u", fits=10, chains=2, draws=100, tune=100, thin=99)
    quiet, _ = run_calibration(cfg, s, tmp_path / "q", backend="inprocess", write=False)
    loud, out = run_calibration(cfg, s, tmp_path / "o", backend="inprocess")
    written = json.loads((out / "results.json").read_text())
    assert loud.kind == "calibration" and loud.to_dict() == written
    assert _volatile(quiet.to_dict()) == _volatile(written)
    assert load_results(out / "results.json") == loud
    jsonschema.validate(written, json.loads(SCHEMA_FILE.read_text()))
    assert {"report.md", "report.html", "provenance.json"} <= {p.name for p in out.iterdir()}


def test_the_schema_file_is_the_schema_of_the_types():
    assert json.loads(SCHEMA_FILE.read_text()) == json.loads(json.dumps(results_schema())), (
        "results types changed: rewrite the schema with "
        "`python -c 'from trialbayes.results.io import write_schema; write_schema()'`"
    )


@pytest.mark.parametrize("name", sorted(p.name for p in FIXTURES.glob("*.json")))
def test_a_2_0_results_file_still_loads_and_renders(tmp_path, name):
    """results.json written by trialbayes before schema 3.0 (one per route, kept in tests/data)
    loads, validates after migration and renders both reports."""
    from trialbayes.report.writer import render_reports

    d = json.loads((FIXTURES / name).read_text())
    assert d["schema_version"].startswith("2.")
    r = results_from_dict(d, name)
    jsonschema.validate(r.to_dict(), json.loads(SCHEMA_FILE.read_text()))
    assert results_from_dict(r.to_dict()) == r
    reports = render_reports(r, tmp_path)
    assert reports["report.md"].startswith("# ") and "<html" in reports["report.html"]
    assert from_2x(d)["schema_version"] == "3.0"


@pytest.mark.parametrize(
    "edit,key",
    [
        (lambda d: d["models"]["u"]["treatment_effect"]["p_hr_below"].update({"1": 7.5}),
         "p_hr_below"),
        (lambda d: d.update(reliable="no"), "reliable"),
        (lambda d: d["models"]["u"]["treatment_effect"].update(level=1.5), "level"),
        (lambda d: d.update(schema_version="9.0"), "schema_version"),
    ],
)  # fmt: skip
def test_impossible_results_are_refused_naming_the_key(tmp_path, edit, key):
    from trialbayes.routes.dispatch import run_config

    cfg = {**_patient(tmp_path), "models": [{"name": "u"}]}
    d = run_config(parse_config(cfg), tmp_path, write=False).results.to_dict()
    edit(d)
    with pytest.raises(DataError, match=key):
        results_from_dict(d)
