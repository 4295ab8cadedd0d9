"""The typed results model, data-derived settings, units, honest wording and the front door."""

from __future__ import annotations

import json
import math
import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from helpers import rossi_case, run_cli
from scipy import stats

from trialbayes.core.text import level_text
from trialbayes.data.settings import derived_cutoffs, derived_landmark, round_sig
from trialbayes.report.markdown import p_text
from trialbayes.results.io import results_from_dict
from trialbayes.results.model import HRSummary, Results, SubgroupResult
from trialbayes.routes.analyse import loo_verdict, subgroup_flags


# ----------------------------------------------------------------------------- HRSummary
def test_draw_summary_matches_closed_form_normal():
    """400 000 normal draws vs the exact normal summary. Each probability's Monte Carlo SD is at
    most sqrt(0.25 / 4e5) = 7.9e-4, so |diff| < 3.5e-3 is > 4.4 SD: jointly (4 probabilities,
    Bonferroni) a false failure has probability < 4 x 1e-5. Quantiles of log HR have SD
    <= 1.6 x 0.2 / sqrt(4e5) < 5.1e-4 on the log scale; tolerance rel 3e-3 is > 5.8 SD."""
    rng = np.random.default_rng(11)
    m, s = -0.25, 0.2
    draws = HRSummary.from_log_draws(rng.normal(m, s, 400_000), (1.0, 0.8), (1.1, 1.25), 0.9)
    exact = HRSummary.from_normal(m, s, (1.0, 0.8), (1.1, 1.25), 0.9)
    assert set(draws.p_hr_below) == {"1", "0.8"} and set(draws.p_hr_above) == {"1.1", "1.25"}
    for k in draws.p_hr_below:
        assert abs(draws.p_hr_below[k] - exact.p_hr_below[k]) < 3.5e-3
    for k in draws.p_hr_above:
        assert abs(draws.p_hr_above[k] - exact.p_hr_above[k]) < 3.5e-3
    for f in ("median", "lower", "upper"):
        assert getattr(draws, f) == pytest.approx(getattr(exact, f), rel=3e-3)
    assert exact.lower == pytest.approx(math.exp(m - stats.norm.ppf(0.95) * s))
    assert draws.level == exact.level == 0.9 and draws.n_draws == 400_000 and exact.n_draws is None


def test_harm_probability_is_p_hr_above_and_labelled_so():
    """P(HR > t) at t = the median is 1/2 exactly; the text says '>' for it, '<' for benefit."""
    s = HRSummary.from_normal(math.log(1.1), 0.3, (1.0,), (1.1,))
    assert s.p_hr_above["1.1"] == pytest.approx(0.5)
    assert s.p_hr_below["1"] == pytest.approx(stats.norm.cdf(0, math.log(1.1), 0.3))
    txt = p_text(s)
    assert "P(HR > 1.1) = 0.500" in txt and "P(HR < 1.1)" not in txt
    d = HRSummary.from_log_draws(np.log([0.5, 1.05, 1.2, 2.0]), (1.0,), (1.1,))
    assert d.p_hr_above["1.1"] == 0.5 and d.p_hr_below["1"] == 0.25


def test_flat_vocabulary_and_level_text():
    s = HRSummary.from_normal(0.0, 0.1, (1.0, 0.8), (1.1,), 0.8)
    assert list(s.flat()) == [
        "median",
        "lower",
        "upper",
        "level",
        "p_hr_below_1",
        "p_hr_below_0.8",
        "p_hr_above_1.1",
    ]
    assert list(s.flat("cox_"))[:3] == ["cox_median", "cox_lower", "cox_upper"]
    assert level_text(0.8) == "80%" and level_text(0.975) == "97.5%"


def test_results_json_round_trip():
    g = SubgroupResult("< 5", 10, 0.5, 3, HRSummary.from_normal(0, 1), HRSummary.from_normal(0, 1))
    from trialbayes.core.flags import Flag

    g.flags.append(Flag("sparse_subgroup", "few events", "caution", "m"))
    r = Results(kind="patient_level", config_name="x", title="x", data_label="d")
    r.data_notes.append("a note")
    back = results_from_dict(json.loads(json.dumps(r.to_dict())))
    assert back == r
    from pydantic import TypeAdapter

    ta = TypeAdapter(SubgroupResult)
    assert ta.validate_python(json.loads(json.dumps(ta.dump_python(g, mode="json")))) == g


# ----------------------------------------------------------------------------- wording
def test_loo_prefers_only_beyond_two_standard_errors():
    def table(diff, se):
        return pd.DataFrame({"model": ["a", "b"], "elpd_diff": [0.0, diff], "dse": [0.0, se]})

    assert loo_verdict(table(5.0, 2.0)).startswith("PSIS-LOO prefers `a`")
    assert "no clear preference" in loo_verdict(table(3.9, 2.0))
    assert "no clear preference" in loo_verdict(table(-3.9, 2.0))  # sign convention of the diff
    assert loo_verdict(table(-4.1, 2.0)).startswith("PSIS-LOO prefers `a`")


def test_subgroup_with_fewer_than_ten_events_is_flagged():
    assert subgroup_flags("m", "b", SubgroupResult("< 1", 30, 0.1, 9)) != []
    assert subgroup_flags("m", "b", SubgroupResult("< 1", 30, 0.1, 10)) == []


# ----------------------------------------------------------------------------- derived settings
def test_derivation_rules():
    assert round_sig(1084.0, 2, down=True) == 1000 and round_sig(52.0, 2, down=True) == 52
    assert derived_landmark(np.array([1.0, 2.0, 3.0, 40.0, 52.0])) == 3.0
    x = np.arange(1, 301, dtype=float)
    assert derived_cutoffs(x) == [101.0, 200.0]
    assert derived_cutoffs(np.array([1.0] * 50 + [2.0] * 10 + [9.0] * 40)) == [
        2.0
    ]  # ties: inside only


def test_check_prints_every_resolved_value_and_derives_from_the_data(tmp_path):
    res = run_cli("check", rossi_case(tmp_path))
    assert res.exit_code == 0, res.output
    out = res.output
    assert "landmark: 52 weeks (derived: median observed time" in out
    assert "subgroup_cutoffs: 1, 3 arrests (derived: tertiles of prio" in out
    assert "time_unit: weeks (from the config)" in out and "biomarker: prio" in out
    assert "treatment fin = 1 (treatment), control fin = 0 (control)" in out
    for mirocals in ("640", "750", "3700", "pg/mL"):
        assert mirocals not in out


@pytest.mark.parametrize(
    "estimands,message",
    [
        ({"landmark": 60}, "estimands.landmark: 60 is beyond the longest follow-up 52 weeks"),
        (
            {"subgroup_cutoffs": [2, 50]},
            "estimands.subgroup_cutoffs: [50.0] lie outside the observed range of 'prio'",
        ),
    ],
)
def test_landmark_or_cutoff_outside_the_data_is_an_input_error(tmp_path, estimands, message):
    cfg = rossi_case(tmp_path, estimands=estimands)
    for cmd in (("check", cfg), ("run", cfg, "--out", tmp_path / "out")):
        res = run_cli(*cmd)
        assert res.exit_code == 2, res.output
        assert message in res.output
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


# ----------------------------------------------------------------------------- front door
def test_front_door_without_fitting():
    import trialbayes as tb

    assert tb.__version__ and tb.load_config and tb.run and tb.Results is Results
    m = tb.PiecewiseExponentialModel(tb.ModelSpec(name="m"))
    for call in (m.summary, m.print_summary, m.treatment_effect, m.draws):
        with pytest.raises(tb.NotFittedError, match="call fit"):
            call()
    with pytest.raises(tb.NotFittedError, match=r"idata\(\) needs a fitted model"):
        m.idata  # noqa: B018 - the attribute itself says it is not fitted


def test_importing_any_module_keeps_the_users_backend():
    """No trialbayes module changes the matplotlib backend on import (only the CLI's commands
    choose Agg, for writing files)."""
    code = (
        "import importlib, pkgutil, matplotlib; matplotlib.use('svg'); import trialbayes\n"
        "names = [m.name for m in pkgutil.walk_packages(trialbayes.__path__, 'trialbayes.')\n"
        "         if m.name != 'trialbayes.__main__']\n"
        "for n in names: importlib.import_module(n)\n"
        "print(len(names), matplotlib.get_backend())"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    n, backend = out.stdout.split()
    assert int(n) > 70 and backend == "svg", out.stdout


def test_subgroups_partition_the_patients():
    from trialbayes.estimands.draws import subgroup_masks

    x = np.array([1.0, 2.0, 2.0, 3.0, 5.0, 5.0, 9.0])
    for cuts in ([2.0], [2.0, 5.0], [1.5, 3.0, 6.0]):
        masks = np.array([m for _, m in subgroup_masks(x, cuts)])
        assert (masks.sum(axis=0) == 1).all(), cuts


def test_probabilities_from_draws_never_print_certainty():
    from trialbayes.core.text import prob

    assert (
        prob(1.0, 600) == "> 0.998"
        and prob(0.0, 600) == "< 0.002"
        and prob(1.0, 600, 2) == "> 0.99"
    )
    assert prob(1.0, None) == "1.000" and prob(0.25, 600) == "0.250"
    assert prob(0.99998, None) == "> 0.999" and prob(2e-5, None, 2) == "< 0.01"


@pytest.mark.slow
def test_published_route_honours_sampler_and_diagnostics():
    """Chains, draws and the gate come from the config (they were hard-coded: 4 chains, 1000
    tune, default gate)."""
    from trialbayes.config.schema import parse_config
    from trialbayes.routes.published import run_published

    cfg = parse_config(
        {
            "name": "p",
            "data": {
                "kind": "published",
                "estimates": [{"name": "o", "hr": 0.8, "ci": [0.6, 1.1]}],
            },
            "sampler": {"chains": 2, "tune": 200, "seed": 3},
            "diagnostics": {"ess_bulk_min": 50, "ess_tail_min": 50},
            "published": {
                "nuts_draws": 600,
                "scenarios": [{"name": "ht", "kind": "heavy_tailed"}],
                "subgroups": None,
            },
        }
    )
    r = run_published(cfg, write=False).results
    post = r.estimates["o"].scenarios["ht"]
    assert r.kind == "published" and post.method == "NUTS (nutpie)"
    assert post.hr.n_draws == 600 and post.diagnostics.n_draws == 600
    assert post.diagnostics.thresholds.ess_bulk_min == 50


def test_units_for_an_unknown_column_is_an_input_error(tmp_path):
    cfg = rossi_case(tmp_path)
    text = cfg.read_text().replace("prio: arrests", "prior: arrests")
    cfg.write_text(text)
    res = run_cli("check", cfg)
    assert res.exit_code == 2 and "data.units: ['prior'] are not columns of" in res.output


def test_forest_rows_label_subgroups_with_unit_and_events():
    from trialbayes.report.tables import forest_rows
    from trialbayes.results.model import ModelResult, Quantity, Subgroups, SurvivalSummary

    h = HRSummary.from_normal(0.0, 0.2)
    q = Quantity(0.5, 0.4, 0.6, 0.95)
    g = SubgroupResult("< 13", 40, 0.3, 12, h, h)
    m = ModelResult(
        "m",
        "e",
        h,
        True,
        {},
        None,
        {"biomarker": "progrec"},
        {},
        1,
        [],
        "cox",
        [],
        SurvivalSummary(1.0, "days", *[q] * 6),
        Subgroups("progrec", "fmol/mg", [13.0], "config", [g]),
    )
    r = Results(kind="patient_level", config_name="x", title="x", data_label="d", models={"m": m})
    row = forest_rows(r)[-1]  # rows are grouped under their model (issue 10)
    assert row["group"] == "model m" and row["label"] == "progrec < 13 fmol/mg (n=40, events=12)"
    assert row["p_benefit"] == h.p_benefit


def test_report_tables_never_print_certainty_from_draws(small_run, tmp_path):
    """A posterior probability of exactly 0 or 1 from draws is shown as "< 1/n" or "> 1 − 1/n" in
    every Markdown table too (they printed 1.000 / 0.000): re-render a run whose probabilities
    were all set to 1 or 0."""
    import shutil

    from trialbayes.core.escape import md_text
    from trialbayes.core.text import prob

    src, _, res = small_run
    assert res.exit_code == 0, res.output
    out = tmp_path / "mirocals"
    shutil.copytree(src / "out" / "mirocals", out)
    r = json.loads((out / "results.json").read_text())

    def certain(d):
        if isinstance(d, dict):
            for k, v in d.items():
                if k in ("p_hr_below", "p_hr_above") and isinstance(v, dict):
                    d[k] = {t: float(k == "p_hr_below") for t in v}
                else:
                    certain(v)
        elif isinstance(d, list):
            for v in d:
                certain(v)

    certain(r["models"])
    (out / "results.json").write_text(json.dumps(r))
    assert run_cli("report", out).exit_code == 0
    md = (out / "report.md").read_text()
    n = r["models"]["unadjusted"]["treatment_effect"]["n_draws"]
    hi, lo = md_text(prob(1.0, n)), md_text(prob(0.0, n))  # "&gt; 0.998": escaped in tables
    tables = [ln for ln in md.splitlines() if ln.startswith("|")]
    assert any(hi in ln for ln in tables) and any(lo in ln for ln in tables), "\n".join(tables)
    rows = [[c.strip() for c in ln.strip("|").split("|")] for ln in tables]
    head, checked = None, 0
    for i, cells in enumerate(rows):
        if i + 1 < len(rows) and set(rows[i + 1]) == {"---"}:
            head = cells  # a header row is the one above a |---| row
            continue
        for h, c in zip(head, cells):
            if h.startswith("P(HR"):
                assert c not in ("0.000", "1.000"), (h, cells)
                checked += 1
    assert checked >= 20


def test_pareto_k_warnings_are_one_line_per_model():
    """PSIS-LOO on a model with an influential patient: no raw ArviZ warning reaches the user,
    one progress line names the model and how many patients have Pareto k > 0.7; a model without
    such patients says nothing."""
    import io
    import types
    import warnings

    import xarray as xr

    from trialbayes.core import progress
    from trialbayes.routes.analyse import psis_loos

    rng = np.random.default_rng(1)

    def model(influential: bool):
        ll = rng.normal(-1.0, 0.1, (2, 500, 50))
        if influential:  # one patient whose likelihood varies wildly between draws
            ll[:, :, 0] = -np.exp(rng.normal(0.0, 2.0, (2, 500)))
        post = xr.Dataset({"b": (("chain", "draw"), rng.normal(size=(2, 500)))})
        lik = xr.Dataset({"survival": (("chain", "draw", "patient"), ll)})
        return types.SimpleNamespace(
            idata=xr.DataTree.from_dict({"posterior": post, "log_likelihood": lik})
        )

    out = io.StringIO()
    progress.configure(True, out)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            loos = psis_loos({"wild": model(True), "calm": model(False)})
    finally:
        progress.configure(False)
    assert not [w for w in caught if issubclass(w.category, UserWarning)]
    lines = out.getvalue().splitlines()
    assert len(lines) == 1 and "PSIS-LOO, model 'wild': Pareto k > 0.7 for 1 of 50 patients" in (
        lines[0]
    )
    assert set(loos) == {"wild", "calm"}
