"""Every malformed input is rejected before fitting: clear message naming column and rows,
exit status 2, nothing written to the outputs folder."""

import numpy as np
import pytest
from helpers import COLUMNS, good_frame, run_cli, write_case


def _reject(tmp_path, expect: list[str], df=None, config=None, raw_csv=None):
    cfg = write_case(tmp_path / "in", df, config=config, raw_csv=raw_csv)
    out = tmp_path / "out"
    res = run_cli("run", cfg, "--out", out)
    assert res.exit_code == 2, res.output
    msg = res.stderr if hasattr(res, "stderr") else res.output
    for e in expect:
        assert e in msg, f"{e!r} not in {msg!r}"
    assert not out.exists() or not any(out.iterdir()), "a rejected input wrote outputs"
    return msg


def _df(col, rows, val):
    df = good_frame()
    df[col] = df[col].astype(object)
    df.loc[list(np.atleast_1d(rows)), col] = val
    return df


def test_missing_time(tmp_path):
    _reject(tmp_path, ["'time'", "missing times", "rows 3, 8"], df=_df("time", (2, 7), np.nan))


def test_negative_time(tmp_path):
    _reject(tmp_path, ["'time'", "negative", "row 5"], df=_df("time", 4, -3.0))


def test_zero_time(tmp_path):
    _reject(tmp_path, ["'time'", "zero", "row 1"], df=_df("time", 0, 0.0))


def test_non_numeric_time(tmp_path):
    _reject(tmp_path, ["'time'", "non-numeric", "row 10"], df=_df("time", 9, "twelve"))


def test_event_outside_declared_pair(tmp_path):
    _reject(
        tmp_path, ["'event'", "'2'", "row 4", "outside the declared pair"], df=_df("event", 3, 2)
    )


def test_three_arms(tmp_path):
    _reject(
        tmp_path,
        ["'arm'", "need two arms", "found 3", "columns.control_level"],
        df=_df("arm", 0, "high-dose"),
    )


def test_one_arm(tmp_path):
    df = good_frame()
    df["arm"] = "IL-2LD"
    _reject(tmp_path, ["'arm'", "need two arms", "found 1"], df=df)


def test_treatment_level_not_found(tmp_path):
    cols = dict(COLUMNS, treatment_level="IL2")
    _reject(
        tmp_path,
        ["treatment_level 'IL2'"],
        config={"data": {"kind": "file", "path": "patients.csv", "columns": cols}},
    )


def test_biomarker_not_positive_for_log_transform(tmp_path):
    models = [{"name": "loglin", "interaction": "log_linear", "biomarker": "pnfh"}]
    _reject(
        tmp_path,
        ["'pnfh'", "≤ 0", "row 6", "uses log(pnfh)", "biomarker_offset"],
        df=_df("pnfh", 5, 0.0),
        config={"models": models},
    )


def test_missing_covariate_is_an_error_by_default(tmp_path):
    models = [{"name": "adj", "covariates": ["age", "svc"]}]
    _reject(
        tmp_path,
        ["'age'", "missing values", "row 2", "complete_case"],
        df=_df("age", 1, np.nan),
        config={"models": models},
    )


def test_complete_case_reports_dropped_count(tmp_path):
    from trialbayes.config.schema import load_config
    from trialbayes.data.sources import load_data

    cols = dict(COLUMNS)
    cfg = write_case(
        tmp_path,
        _df("age", (1, 2, 3), np.nan),
        config={
            "data": {
                "kind": "file",
                "path": "patients.csv",
                "columns": cols,
                "missing": "complete_case",
            }
        },
    )
    data = load_data(load_config(cfg).data)
    assert data.n == 57 and data.n_dropped == 3 and data.missing.n_rows_dropped == 3
    assert [(c.column, c.n_missing) for c in data.missing.columns if c.n_missing] == [("age", 3)]
    assert data.missing.column_text() == "age 3 (5.0%)"


def test_duplicate_ids(tmp_path):
    df = good_frame()
    df.loc[7, "id"] = df.loc[2, "id"]
    _reject(tmp_path, ["'id'", "duplicate ids", "rows 3, 8"], df=df)


def test_unknown_column_name_with_hint(tmp_path):
    cols = dict(COLUMNS, time="tme")
    _reject(
        tmp_path,
        ["columns.time", "'tme'", "did you mean 'time'"],
        config={"data": {"kind": "file", "path": "patients.csv", "columns": cols}},
    )


def test_empty_table(tmp_path):
    _reject(tmp_path, ["empty"], raw_csv="id,time,event,arm,pnfh,age,svc,centre\n")


def test_empty_file(tmp_path):
    _reject(tmp_path, ["empty"], raw_csv="")


def test_no_events(tmp_path):
    df = good_frame()
    df["event"] = 0
    _reject(tmp_path, ["'event'", "no events"], df=df)


def test_unsorted_cut_points(tmp_path):
    _reject(
        tmp_path,
        ["baseline.cuts", "strictly increasing"],
        config={"baseline": {"cuts": [100, 50, 300]}},
    )


def test_cut_points_beyond_follow_up(tmp_path):
    _reject(
        tmp_path,
        ["baseline.cuts", "beyond the last follow-up"],
        config={"baseline": {"cuts": [100, 200, 99999]}},
    )


def test_unknown_config_key_has_hint(tmp_path):
    _reject(
        tmp_path,
        ["sampler", "unknown key 'draw'", "did you mean 'draws'"],
        config={"sampler": {"draw": 100}},
    )


def test_unknown_prior_term(tmp_path):
    _reject(
        tmp_path,
        ["unknown term 'treatmnt'", "did you mean 'treatment'"],
        config={"priors": {"treatmnt": {"family": "normal", "sigma": 1}}},
    )


def test_wrong_prior_family_for_scale(tmp_path):
    _reject(
        tmp_path,
        ["priors.centre_sigma", "half_normal"],
        config={"priors": {"centre_sigma": {"family": "normal", "sigma": 1}}},
    )


def test_model_names_unknown_covariate(tmp_path):
    _reject(
        tmp_path,
        ["covariate 'weight'"],
        config={"models": [{"name": "a", "covariates": ["weight"]}]},
    )


def test_missing_data_file(tmp_path):
    cfg = write_case(tmp_path / "in")
    (tmp_path / "in" / "patients.csv").unlink()
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 2 and "not found" in res.stderr
    assert not (tmp_path / "out").exists()


def test_check_command_accepts_good_input(tmp_path):
    cfg = write_case(tmp_path)
    res = run_cli("check", cfg)
    assert res.exit_code == 0 and "60 patients" in res.output


def test_estimand_biomarker_must_exist(tmp_path):
    _reject(tmp_path, ["estimands.biomarker", "'nfl'"], config={"estimands": {"biomarker": "nfl"}})


def test_sensitivity_models_are_checked_against_model_names():
    """`sensitivity.models` named a model that exists and was refused: the check compared it with
    the scenario names (a loop variable reused)."""
    from trialbayes.config.schema import parse_config
    from trialbayes.core.errors import ConfigError

    base = {
        "name": "s",
        "data": {"kind": "synthetic"},
        "models": [{"name": "unadj"}, {"name": "adj", "covariates": "all"}],
        "sensitivity": {
            "enabled": True,
            "models": ["adj"],
            "scenarios": [{"name": "sceptical", "kind": "sceptical"}],
        },
    }
    assert parse_config(base).sensitivity.models == ["adj"]
    base["sensitivity"]["models"] = ["adjusted"]
    with pytest.raises(
        (ConfigError, ValueError), match=r"unknown model\(s\) \['adjusted'\].*unadj"
    ):
        parse_config(base)
