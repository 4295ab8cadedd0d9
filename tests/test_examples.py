"""The example notebook runs top to bottom (tiny sampler) and a never-seen trial runs end to end
with values derived from its own data, its units, and nothing of MIROCALS in the outputs."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest
from helpers import run_cli

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_example_notebook_executes(monkeypatch):
    nbformat = pytest.importorskip("nbformat")
    nbclient = pytest.importorskip("nbclient")
    monkeypatch.setenv("TRIALBAYES_EXAMPLE_DRAWS", "150")
    monkeypatch.setenv("TRIALBAYES_EXAMPLE_CHAINS", "2")
    nb = nbformat.read(ROOT / "examples" / "rossi_fin_prio.ipynb", as_version=4)
    nbclient.NotebookClient(
        nb,
        timeout=300,
        kernel_name="python3",
        resources={"metadata": {"path": str(ROOT / "examples")}},
    ).execute()
    text = "\n".join(
        o.get("text", "") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])
    )
    assert "before fit: summary() needs a fitted model" in text, text
    assert re.search(r"HR of financial aid at prio = \d+ prior arrests: \d\.\d\d \(", text), text
    assert "compilations: 1" in text


@pytest.mark.slow
def test_never_seen_trial_runs_with_derived_values_and_units(tmp_path):
    """GBSG2 (scikit-survival): time in days, biomarker progrec in fmol/mg, no landmark or
    cut-offs."""
    datasets = pytest.importorskip("sksurv.datasets")
    x, y = datasets.load_gbsg2()
    df = x.assign(time=y["time"], cens=y["cens"].astype(int), id=range(len(x))).iloc[::2]
    df.to_csv(tmp_path / "gbsg2.csv", index=False)
    (tmp_path / "gbsg2.yaml").write_text(
        "name: gbsg2\n"
        "data:\n  kind: file\n  path: gbsg2.csv\n  time_unit: days\n  units: {progrec: fmol/mg}\n"
        "  columns: "
        "{time: time, event: cens, arm: horTh, treatment_level: 'yes', biomarkers: [progrec]}\n"
        "models:\n  - name: interaction\n    interaction: linear\n    biomarker: progrec\n"
        "sampler: {chains: 2, draws: 150, tune: 150}\n"
        "diagnostics: {allow_unreliable: true}\nreport: {figures: false}\n"
    )
    res = run_cli("run", tmp_path / "gbsg2.yaml", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "gbsg2"
    r = json.loads((out / "results.json").read_text())
    s = r["settings"]
    assert s["landmark"]["source"] == "derived" and s["subgroup_cutoffs"]["source"] == "derived"
    times = df["time"].to_numpy()
    assert s["landmark"]["value"] <= sorted(times)[len(times) // 2] < 1.1 * s["landmark"]["value"]
    assert len(s["subgroup_cutoffs"]["value"]) == 2
    report = (out / "report.md").read_text()
    assert f"at {s['landmark']['value']:g} days (derived" in report and "fmol/mg" in report
    assert "horTh = yes (treatment)" in report
    docs = ("report.md", "report.html", "results.json")  # report.html: written by default
    for f in (*docs, "tables/coefficients.csv", "tables/subgroups.csv"):
        text = (out / f).read_text()
        # a MIROCALS number on its own (not a digit of 0.750 or 1750)
        assert not re.search(r"(?<![\d.])(640|750|3700)(\.0)?(?!\.?\d)|pg/mL|MIROCALS", text), f
    import arviz as az

    dt = az.from_netcdf(out / "posterior" / "interaction.nc")
    assert dt.attrs["time_unit"] == "days" and dt.attrs["biomarker"] == "progrec"
    assert (
        dt.attrs["biomarker_scale"] > 0
        and dt.attrs["config_hash"] == r["provenance"]["config_hash"]
    )
    assert dt["observed_data"]["time"].size == len(df)
    rerun = run_cli("report", out)
    assert rerun.exit_code == 0 and (out / "report.md").read_text() == report
