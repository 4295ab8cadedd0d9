"""What a reviewer meets on a real trial that is not MIROCALS (issue 18): lifelines' Rossi
recidivism trial (432 released prisoners, financial aid randomised, arrest within 52 weeks) with
``prio`` (prior convictions, a count with zeros) as the biomarker."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import run_cli, write_case

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from trialbayes.core.errors import DataError
from trialbayes.data.design import build_design
from trialbayes.data.table import from_frame
from trialbayes.models.pem import PiecewiseExponentialModel
from trialbayes.routes.analyse import structure_flags


def rossi() -> pd.DataFrame:
    from lifelines.datasets import load_rossi

    return load_rossi().reset_index(names="id")


ROSSI_COLUMNS = {"id": "id", "time": "week", "event": "arrest", "arm": "fin",
                 "treatment_level": 1, "biomarkers": ["prio"], "covariates": ["age"]}  # fmt: skip


def rossi_case(tmp_path, models: list[dict], **config):
    base = {
        "data": {"kind": "file", "path": "rossi.csv", "columns": dict(ROSSI_COLUMNS),
                 "time_unit": "weeks", "units": {"prio": "convictions", "age": "years"}},
        "models": models,
    }  # fmt: skip
    base.update(config)
    return write_case(tmp_path, rossi(), config=base, data_name="rossi.csv")


# ----------------------------------------------------------------------------- 3. log(x + c)
def test_a_biomarker_with_zeros_under_log_linear_is_refused_naming_rows_and_the_offset(tmp_path):
    cfg = rossi_case(tmp_path, [{"name": "lg", "interaction": "log_linear", "biomarker": "prio"}])
    res = run_cli("check", cfg)
    assert res.exit_code == 2, res.output
    zeros = np.flatnonzero(rossi()["prio"].to_numpy() == 0) + 1
    assert f"rows {zeros[0]}, {zeros[1]}" in res.output
    assert "models[].biomarker_offset" in res.output and "log(prio)" in res.output


def test_biomarker_offset_is_log_x_plus_c_in_the_design_and_labels():
    data = from_frame(rossi(), ColumnMap(**ROSSI_COLUMNS))
    spec = ModelSpec(name="lg", interaction="log_linear", biomarker="prio", biomarker_offset=1)
    d = build_design(data, spec, Baseline(n_intervals=4))
    g = np.log(rossi()["prio"].to_numpy(float) + 1)
    z = (g - np.log(np.median(rossi()["prio"]) + 1)) / g.std()
    np.testing.assert_allclose(d.bm_z, z, rtol=1e-12)
    assert d.basis.scale_label("prio") == "log(prio + 1)"
    assert d.basis.transform_name == "log(x + 1)"
    np.testing.assert_allclose(d.basis.g_inverse(d.basis.g([0.0, 3.0])), [0.0, 3.0])
    with pytest.raises(ValueError, match="log-scale biomarker"):
        ModelSpec(name="l", interaction="linear", biomarker="prio", biomarker_offset=1)
    neg = rossi().assign(prio=lambda f: f["prio"] - 2.0)
    with pytest.raises(DataError, match=r"values ≤ -1 at rows .* uses log\(prio \+ 1\)"):
        build_design(from_frame(neg, ColumnMap(**ROSSI_COLUMNS)), spec, Baseline(n_intervals=4))


@pytest.mark.slow
def test_log_x_plus_c_interaction_agrees_with_an_independent_cox_fit():
    """Weak priors, no covariate pooling: the treatment log-HR at the reference and the
    interaction per unit of log(prio + 1) against lifelines' CoxPHFitter on columns built here
    (not by the package's design). Measured over sampler seeds 1–6: |mean − Cox| ≤ 0.075
    posterior SD (treatment) and ≤ 0.062 SD (interaction), |SD/SE − 1| ≤ 0.025, every fit
    reliable; the Monte Carlo SE of a mean is ~0.022 SD and of an SD ~0.016 SD (4 × 1000 draws).
    The checks allow 0.35 SD and 25%: > 12 MCSE of margin (false-failure rate < 1e-20 each)."""
    from lifelines import CoxPHFitter

    df = rossi()
    data = from_frame(df, ColumnMap(**ROSSI_COLUMNS))
    spec = ModelSpec(name="lg", interaction="log_linear", biomarker="prio", biomarker_offset=1,
                     covariates="all", covariate_pooling="none")  # fmt: skip
    weak = {t: {"family": "normal", "sigma": 10}
            for t in ("treatment", "interaction", "biomarker", "covariates")}  # fmt: skip
    m = PiecewiseExponentialModel(
        spec, priors=weak, baseline=Baseline(n_intervals=12),
        sampler=SamplerSpec(chains=4, draws=1000, tune=1000, seed=11),
        diagnostics=Diagnostics(max_divergences=6),
    ).fit(data)  # fmt: skip
    assert m.reliable, m.diagnostics.failures
    lp = np.log(df["prio"] + 1.0)
    zc = lp - np.log(df["prio"].median() + 1.0)
    frame = pd.DataFrame({"week": df["week"], "arrest": df["arrest"], "fin": df["fin"],
                          "zc": zc, "fin_zc": df["fin"] * zc, "age": df["age"]})  # fmt: skip
    cph = CoxPHFitter().fit(frame, "week", "arrest")
    scale = m.design.basis.scale
    d = m.draws()
    for ours, name, per in ((d["treatment"], "fin", 1.0), (d["interaction"], "fin_zc", scale)):
        mean, sd = ours.mean() / per, ours.std(ddof=1) / per
        cox, se = cph.params_[name], cph.standard_errors_[name]
        assert abs(mean - cox) <= 0.35 * sd, (name, mean, cox, sd)
        assert abs(sd / se - 1) <= 0.25, (name, sd, se)


def test_caution_flags_are_decided_from_the_model_structure():
    none = ModelSpec(name="u")
    on_it = ModelSpec(name="lg", interaction="log_linear", biomarker="prio", biomarker_offset=1)
    other = ModelSpec(name="age_i", interaction="linear", biomarker="age")
    assert [f.code for f in structure_flags(none, "prio")] == ["subgroup_without_interaction"]
    assert structure_flags(on_it, "prio") == []
    assert [f.code for f in structure_flags(other, "prio")] == ["subgroup_by_other_column"]
    # one message for every model without the interaction: reports show it once, models listed
    assert (
        structure_flags(none, "prio")[0].message
        == structure_flags(ModelSpec(name="v", covariates=["age"]), "prio")[0].message
    )


@pytest.mark.slow
def test_a_run_with_an_offset_labels_it_everywhere_and_flags_only_models_without_interaction(
    tmp_path,
):
    import json

    models = [{"name": "u"},
              {"name": "lg", "interaction": "log_linear", "biomarker": "prio",
               "biomarker_offset": 1}]  # fmt: skip
    sampler = {"chains": 2, "draws": 300, "tune": 300, "seed": 3, "progress": "off"}
    cfg = rossi_case(tmp_path, models, sampler=sampler, baseline={"n_intervals": 4},
                     diagnostics={"allow_unreliable": True})  # fmt: skip
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code in (0, 3), res.output
    root = next((tmp_path / "out").iterdir())
    r = json.loads((root / "results.json").read_text())
    assert r["models"]["lg"]["hr_curve"]["transform"] == "log(x + 1)"
    assert r["models"]["lg"]["spec"]["biomarker_offset"] == 1
    units = [c["unit"] for c in r["models"]["lg"]["coefficients"]]
    assert any("log(prio + 1)" in u for u in units), units
    codes = {(f["code"], f["model"]) for m in r["models"].values() for f in m["flags"]}
    assert ("subgroup_without_interaction", "u") in codes
    assert not any(c == "subgroup_without_interaction" and m == "lg" for c, m in codes)
    md = (root / "report.md").read_text()
    assert md.count("no treatment × biomarker interaction in this model") == 1
    assert yaml.safe_load(cfg.read_text())["models"][1]["biomarker_offset"] == 1
    # 8. probabilities in the CSV tables as the reports write them; 11. no analyst's path
    coef = pd.read_csv(root / "tables" / "coefficients.csv", dtype=str)
    for c in [c for c in coef if c.startswith("p_hr_")]:
        assert not coef[c].isin(["1", "0", "1.0", "0.0", "1.000", "0.000"]).any(), coef[c]
    assert str(tmp_path) not in (root / "provenance.json").read_text()
    assert json.loads((root / "provenance.json").read_text())["config"]["data"]["path"] == (
        "rossi.csv"
    )


# ----------------------------------------------------------------------------- 6. units
def test_units_may_name_any_column_of_the_file_and_a_typo_names_the_files_columns(tmp_path):
    cfg = rossi_case(tmp_path, [{"name": "u"}])
    raw = yaml.safe_load(cfg.read_text())
    raw["data"]["units"] = {"prio": "convictions", "age": "years", "mar": "yes/no"}  # mar unused
    cfg.write_text(yaml.safe_dump(raw))
    res = run_cli("check", cfg)
    assert res.exit_code == 0, res.output
    raw["data"]["units"] = {"prior": "convictions"}
    cfg.write_text(yaml.safe_dump(raw))
    res = run_cli("check", cfg)
    assert res.exit_code == 2, res.output
    assert "data.units: ['prior'] are not columns of rossi.csv (did you mean 'prio'?)" in res.output
    assert "week, arrest, fin, age" in res.output
    assert "treat" not in res.output.replace("treatment", "")


# ----------------------------------------------------------------------------- 4. file rows
def test_errors_name_the_files_rows_and_ids_after_rows_were_dropped(tmp_path):
    """Rows 1 and 2 miss `age` and are dropped (complete_case); the zeros of prio that a
    log-scale model refuses are then named by their rows in the file and their ids."""
    df = rossi()
    df["id"] = [f"R{i:03d}" for i in range(1, len(df) + 1)]
    df.loc[[0, 1], "age"] = np.nan
    data = from_frame(df, ColumnMap(**ROSSI_COLUMNS), missing="complete_case")
    assert data.n == len(df) - 2
    spec = ModelSpec(name="lg", interaction="log_linear", biomarker="prio")
    with pytest.raises(DataError) as err:
        build_design(data, spec, Baseline(n_intervals=4))
    zeros = [r for r in np.flatnonzero(df["prio"].to_numpy() == 0) + 1 if r > 2]
    assert f"rows {zeros[0]}, {zeros[1]}," in str(err.value)
    assert f"(ids R{zeros[0]:03d}, R{zeros[1]:03d}," in str(err.value)
    bad = rossi().assign(week=lambda f: f["week"].where(f.index != 99, -1.0))
    with pytest.raises(DataError, match=r"negative times at row 100 \(id 99\)"):
        from_frame(bad, ColumnMap(**ROSSI_COLUMNS))


# ----------------------------------------------------------------------------- 5. arms
def _three_arms() -> pd.DataFrame:
    df = rossi()
    df.loc[:49, "fin"] = 2  # a third arm in the first 50 rows
    df.loc[119, "week"] = -1.0  # file row 120, an analysed row after the left-out ones
    return df


def test_two_named_arms_are_kept_from_a_file_with_three():
    cols = {**ROSSI_COLUMNS, "control_level": 0}
    with pytest.raises(DataError, match=r"negative times at row 120 \(id 119\)"):
        from_frame(_three_arms(), ColumnMap(**cols))
    df = _three_arms()
    df.loc[119, "week"] = 5.0
    data = from_frame(df, ColumnMap(**cols))
    assert data.n == len(df) - 50 and data.arms_left_out == {"2": 50}
    assert set(data.frame["id"]) == set(df["id"].astype(str)[50:])
    assert data.describe().arms_left_out == {"2": 50}
    assert "50 rows of other arms left out ('2' (50 rows))" in data.notes[-1]
    with pytest.raises(DataError, match=r"need two arms, found 3.*columns.control_level"):
        from_frame(df, ColumnMap(**ROSSI_COLUMNS))
    df.loc[7, "fin"] = None  # a missing arm: its row and id
    with pytest.raises(DataError, match=r"missing arm at row 8 \(id 7\)"):
        from_frame(df, ColumnMap(**cols))


def test_check_says_which_arms_were_left_out(tmp_path):
    df = _three_arms()
    df.loc[119, "week"] = 5.0
    cols = {**ROSSI_COLUMNS, "control_level": 0}
    cfg = write_case(tmp_path, df, data_name="rossi.csv", config={
        "data": {"kind": "file", "path": "rossi.csv", "columns": cols},
        "models": [{"name": "u"}]})  # fmt: skip
    res = run_cli("check", cfg)
    assert res.exit_code == 0, res.output
    assert "note: arm column 'fin': 50 rows of other arms left out" in res.output
    assert "ok: 382 patients" in res.output


# ----------------------------------------------------------------------------- 2. contrasts
def veterans() -> pd.DataFrame:
    """scikit-survival's VA lung cancer trial (137 patients, standard vs test chemotherapy)."""
    from sksurv.datasets import load_veterans_lung_cancer

    x, y = load_veterans_lung_cancer()
    df = x.astype({c: str for c in ("Celltype", "Prior_therapy", "Treatment")})
    return df.assign(id=range(1, len(df) + 1), time=y["Survival_in_days"],
                     status=y["Status"].astype(int))  # fmt: skip


VA_COLUMNS = {"id": "id", "time": "time", "event": "status", "arm": "Treatment",
              "treatment_level": "test", "covariates": ["Celltype", "Prior_therapy",
                                                        "Karnofsky_score"]}  # fmt: skip


def test_a_text_covariate_is_named_by_its_column_and_reported_against_its_reference():
    from trialbayes.data.checks import check_against_models
    from trialbayes.estimands.coefficients import _covariate_rows

    data = from_frame(veterans(), ColumnMap(**VA_COLUMNS))
    spec = ModelSpec(name="adj", covariates=["Celltype", "Prior_therapy", "Karnofsky_score"])
    check_against_models(data, [spec], None)
    d = build_design(data, spec, Baseline(n_intervals=3))
    assert d.cov_names == ["Celltype[large]", "Celltype[smallcell]", "Celltype[squamous]",
                           "Prior_therapy[yes]", "Karnofsky_score"]  # fmt: skip
    draws = {"covariate_effects": np.zeros((4, len(d.cov_names)))}
    units = [r.unit for r in _covariate_rows(d, draws, {"Karnofsky_score": "points"})]
    assert units[:4] == ["large vs adeno", "smallcell vs adeno", "squamous vs adeno", "yes vs no"]
    assert units[4].startswith("per SD") and units[5] == "per point"
    one_level = ModelSpec(name="x", covariates=["Celltype[large]"])
    with pytest.raises(DataError, match=r"one level of the text covariate 'Celltype'; name"):
        check_against_models(data, [one_level], None)
    typo = ModelSpec(name="x", covariates=["Celtype"])
    with pytest.raises(DataError, match=r"did you mean 'Celltype'"):
        check_against_models(data, [typo], None)


# ----------------------------------------------------------------------------- 8. probabilities
def test_probability_columns_are_written_as_the_reports_write_them():
    from trialbayes.core.text import prob_columns

    df = pd.DataFrame({"p_hr_below_1": [1.0, 0.25, 0.0], "cox_p_value": [1e-6, 0.2, 1.0],
                       "at_3_p_hr_above_1.1": [0.0, 1.0, 0.5], "p_loo": [2.5, 2.5, 2.5],
                       "n_draws": [2000, 2000, 2000]})  # fmt: skip
    out = prob_columns(df, "n_draws")
    assert out["p_hr_below_1"].tolist() == ["> 0.999", "0.250", "< 0.001"]
    assert out["at_3_p_hr_above_1.1"].tolist() == ["< 0.001", "> 0.999", "0.500"]
    assert out["cox_p_value"].tolist() == ["< 0.001", "0.200", "1.000"]  # exact, not draws
    assert out["p_loo"].tolist() == [2.5, 2.5, 2.5]
