"""report.html of every route opened in headless Chromium (a screenshot; fails on a page error, an
image that does not load, a missing figure or a network fetch), and the progress lines of a run
whose output is not a terminal.

Chromium comes from the system packages (``.ci/install-browser``, run by ``make test``); the browser
tests skip, saying so, only where it is not installed."""

import base64
import os
import re
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

import trialbayes
from trialbayes.report import browser_check

ROOT = Path(__file__).resolve().parents[1]
SRC = Path(trialbayes.__file__).resolve().parents[1]
needs_chromium = pytest.mark.skipif(
    browser_check.chromium() is None,
    reason="chromium is not installed (run .ci/install-browser as root)",
)
PNG_1PX = base64.b64encode(
    bytes.fromhex(
        "89504e470d0a1a0a0000000d4948445200000001000000010806000000"
        "1f15c4890000000d49444154789c6360f8cfc0f01f0005fe02fea7d6a4"
        "3a0000000049454e44ae426082"
    )
).decode()

SAMPLER = {"chains": 2, "draws": 200, "tune": 200, "seed": 7}
GATE = {"allow_unreliable": True}


def _configs(tmp: Path) -> dict[str, Path]:
    data = ROOT / "configs" / "data"
    cfgs = {
        "patient": {
            "name": "html_patient",
            "title": "Synthetic <cohort> & friends",
            "data": {"kind": "synthetic", "n": 160, "seed": 3},
            "models": [
                {
                    "name": "inter",
                    "covariates": ["age"],
                    "interaction": "linear",
                    "biomarker": "pnfh",
                }
            ],
            "baseline": {"n_intervals": 5},
            "sampler": SAMPLER,
            "diagnostics": GATE,
            "estimands": {"landmark": 640, "subgroup_cutoffs": [750, 3700], "max_draws": 400},
        },
        "reconstructed": {
            "name": "html_reconstructed",
            "data": {
                "kind": "reconstructed",
                "curve": str(data / "rossi_km_curve.csv"),
                "risk": str(data / "rossi_km_risk.csv"),
                "events": str(data / "rossi_km_events.csv"),
                "percent": True,
                "treatment_level": "financial_aid",
                "time_unit": "weeks",
            },
            "models": [{"name": "unadjusted"}],
            "baseline": {"n_intervals": 4},
            "sampler": SAMPLER,
            "diagnostics": GATE,
            "estimands": {"landmark": 52},
        },
        "published": {
            **yaml.safe_load((ROOT / "configs" / "mirocals_published.yaml").read_text()),
            "name": "html_published",
        },
    }
    cfgs["published"]["published"]["scenarios"] = [
        {"name": k, "kind": k} for k in ("flat", "sceptical", "enthusiastic")
    ]
    paths = {}
    for route, c in cfgs.items():
        paths[route] = tmp / f"{route}.yaml"
        paths[route].write_text(yaml.safe_dump(c, allow_unicode=True))
    return paths


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(SRC), "CI": "true"}


@pytest.fixture(scope="session")
def runs(tmp_path_factory):
    """The three routes run once through the CLI, stdout and stderr to files (not a terminal).
    For the patient-level run, records whether its first phase lines were on disk while it was
    still compiling (i.e. flushed at once, not at exit)."""
    tmp = tmp_path_factory.mktemp("html_runs")
    cfgs, out = _configs(tmp), tmp / "out"
    seen_early = {}
    for route, cfg in cfgs.items():
        err_path = tmp / f"{route}.err"
        with open(tmp / f"{route}.out", "w") as so, open(err_path, "w") as se:
            proc = subprocess.Popen(
                [sys.executable, "-m", "trialbayes.cli", "run", str(cfg), "--out", str(out)],
                stdout=so,
                stderr=se,
                env=_env(),
                stdin=subprocess.DEVNULL,
            )
            if route == "patient":
                deadline = time.time() + 300
                while (
                    proc.poll() is None
                    and "compiling model inter …" not in err_path.read_text()
                    and time.time() < deadline
                ):
                    time.sleep(0.2)
                seen_early = {"running": proc.poll() is None, "text": err_path.read_text()}
            rc = proc.wait(timeout=900)
        assert rc == 0, (route, err_path.read_text()[-2000:])
    return {
        "out": out,
        "tmp": tmp,
        "early": seen_early,
        "dirs": {
            "patient": out / "html_patient",
            "reconstructed": out / "html_reconstructed",
            "published": out / "html_published",
        },
    }


@pytest.mark.slow
def test_progress_lines_arrive_while_running_without_a_terminal(runs):
    early = runs["early"]
    assert early["running"], "the phase lines were not on disk before the run ended"
    lines = early["text"].splitlines()
    assert lines[0].startswith("[") and "trialbayes run" in lines[0]
    assert any("loading and validating the data: done in" in ln for ln in lines)
    full = (runs["tmp"] / "patient.err").read_text()
    for phase in (
        "compiling model inter: done in",
        "sampling model inter (2 chains × 200 draws",
        "analysing model 'inter': done in",
        "writing outputs: done in",
    ):
        assert phase in full


@pytest.mark.slow
def test_quiet_turns_the_lines_off(runs):
    """The fixture's published run printed its phase lines; the same config with --quiet prints
    none (the results still go to stdout)."""
    cfg = runs["tmp"] / "published.yaml"
    assert (
        "posteriors of 4 estimates under 3 prior scenarios: done in"
        in (runs["tmp"] / "published.err").read_text()
    )
    res = subprocess.run(
        [
            sys.executable,
            "-m",
            "trialbayes.cli",
            "run",
            str(cfg),
            "--out",
            str(runs["tmp"] / "q"),
            "--quiet",
        ],
        capture_output=True,
        text=True,
        env=_env(),
        timeout=600,
    )
    assert res.returncode == 0, res.stderr[-2000:]
    assert "P(HR<1)" in res.stdout
    assert "posteriors of" not in res.stderr and " s] " not in res.stderr, res.stderr


EXPECTED_FIGURES = {
    "patient": [
        "forest",
        "hr_posterior_inter",
        "hr_curve_inter",
        "survival_inter",
        "prior_posterior_inter",
    ],
    "reconstructed": [
        "forest",
        "survival_unadjusted",
        "prior_posterior_unadjusted",
        "reconstruction_quality",
    ],
    "published": ["forest_scenarios", "prior_grid", "subgroup_shrinkage", "assurance"],
}


@pytest.mark.slow
@needs_chromium
@pytest.mark.parametrize("route", ["patient", "reconstructed", "published"])
def test_report_html_renders_in_chromium(runs, route):
    d = runs["dirs"][route]
    html = (d / "report.html").read_text()
    assert (d / "report.md").is_file()
    for key in EXPECTED_FIGURES[route]:
        assert f'data-figure="{key}"' in html, key
    shot = runs["tmp"] / f"{route}.png"
    found = browser_check.check(d / "report.html", shot)
    assert found["problems"] == []
    assert found["images"] == html.count("<img ") >= len(EXPECTED_FIGURES[route])
    assert shot.stat().st_size > 10_000
    if route == "patient":
        assert "Synthetic &lt;cohort&gt; &amp; friends" in html and "<cohort>" not in html
        assert re.search(r'<td class="[^"]*">age</td>', html) and "age, age" not in html
    # each report's contents list is built from the sections it has, in one order
    patient = ["Summary in plain language", "Data", "Models and priors", "Sampler diagnostics",
               "Treatment effects", "Effect modification", "Subgroups",
               "Survival and restricted mean survival time", "Prior sensitivity",
               "Model comparison", "Provenance"]  # fmt: skip
    published = ["Summary in plain language", "Data: the published estimates",
                 "Models and priors", "Sampler diagnostics", "Treatment effects",
                 "Effect modification", "Subgroups", "Prior sensitivity", "The next trial",
                 "Provenance"]  # fmt: skip
    expected = published if route == "published" else patient
    heads = re.findall(r"<h2>\d+\. ([^<]*)</h2>", html)
    assert heads == expected, heads
    contents = re.findall(r'<li><a href="#[^"]*">([^<]*)</a></li>', html)
    assert contents == expected, contents


@needs_chromium
def test_browser_check_fails_on_a_broken_image_and_a_script_error(tmp_path):
    good = tmp_path / "good.html"
    good.write_text(
        f"<!DOCTYPE html><html><head><title>t</title></head><body>"
        f'<img src="data:image/png;base64,{PNG_1PX}" data-figure="ok"></body></html>'
    )
    assert browser_check.check(good)["problems"] == []
    bad = tmp_path / "bad.html"
    bad.write_text(
        "<!DOCTYPE html><html><head><title>t</title></head><body>"
        '<img src="data:image/png;base64,AAAA" data-figure="broken">'
        "<script>undefinedFunction()</script></body></html>"
    )
    probs = browser_check.check(bad)["problems"]
    assert any("broken" in p for p in probs) and any("page error" in p for p in probs)


@pytest.mark.slow
def test_posterior_file_holds_the_prior_draws(runs):
    """The default treatment prior is N(0, 1): 4000 stored draws have SD within 4.5 standard errors
    of 1 (SE = 1/sqrt(2·4000); false-failure rate < 1e-5), and ArviZ sees a 'prior' group."""
    import arviz as az

    dt = az.from_netcdf(runs["dirs"]["patient"] / "posterior" / "inter.nc")
    assert {"posterior", "prior"} <= set(dt.children)
    d = dt.prior["treatment"].values.ravel()
    assert d.size == 4000 and abs(d.std() - 1.0) < 4.5 / np.sqrt(2 * 4000)
    assert "interaction" in dt.prior
