"""data.missing: impute — the model's likelihood against hand computations (exact), the
completed draws of the estimands, and the input errors (exit 2, naming key, column and rows).

The statistical checks (coverage, closeness to the full-data fit, multiple imputation) are in
test_missing_stats.py (slow)."""

from __future__ import annotations

import itertools

import numpy as np
import pandas as pd
import pytest
from helpers import COLUMNS, good_frame, run_cli, write_case
from scipy.special import logsumexp

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.priors import merge_priors
from trialbayes.config.schema import Baseline, ModelSpec
from trialbayes.data.design import build_design
from trialbayes.data.table import from_frame
from trialbayes.estimands.draws import patient_log_hr, prognostic_eta
from trialbayes.estimands.imputed import complete_missing
from trialbayes.models.graph import build_model
from trialbayes.models.impute import spline_penalised

COLS = ColumnMap(id="id", time="time", event="event", arm="arm", treatment_level="T",
                 biomarkers=["bm"], covariates=["age", "sex", "stage"])


def small_frame(n=18, seed=3):
    rng = np.random.default_rng(seed)
    df = pd.DataFrame({
        "id": [f"p{i}" for i in range(n)],
        "time": rng.exponential(10, n) + 0.1,
        "event": (rng.random(n) < 0.6).astype(int),
        "arm": np.where(np.arange(n) % 2, "T", "C"),
        "age": rng.normal(60, 8, n),
        "sex": (rng.random(n) < 0.5).astype(float),
        "stage": rng.choice(["I", "II", "III"], n).astype(object),
        "bm": rng.lognormal(1, 0.5, n),
    })
    df.loc[0, "event"] = 1
    return df


def _point(model, seed=0):
    """A random point of the model's parameter space (unconstrained values)."""
    rng = np.random.default_rng(seed)
    pt0 = model.initial_point()
    return {k: rng.normal(0, 0.5, np.shape(v)) for k, v in pt0.items()}


def _eval(model, out, point):
    """A model quantity at ``point`` (Python-mode compilation: fast to build, slow to run)."""
    (out,) = model.replace_rvs_by_values([out])  # a deterministic refers to random variables
    f = model.compile_fn(out, inputs=model.value_vars, on_unused_input="ignore",
                         mode="FAST_COMPILE")
    return f(point)


def _terms_logp(model, names, point):
    return float(_eval(model, model.logp(vars=[model[n] for n in names]), point))


def _h0(alpha, starts, t):
    ends = np.append(starts[1:], np.inf)
    return float(np.sum(np.exp(alpha) * np.clip(np.minimum(t, ends) - starts, 0, None)))


def _softmax_logp(c, d, w, level):
    logits = np.concatenate([[0.0], c + w @ d])
    return logits[level] - logsumexp(logits)


def test_discrete_marginalisation_equals_the_likelihood_summed_by_hand():
    """Binary (sex) and 3-level (stage) covariates missing, one patient missing both: survival +
    discrete terms of the model = Σ_i log Σ_levels π(levels | arm, age, ...) L_i(levels), the
    sum over levels written out here from the definitions (closed form, to 1e-8)."""
    df = small_frame()
    df["sex"] = df["sex"].astype(object)
    df.loc[[2, 5, 9], "sex"] = np.nan
    df.loc[[5, 11], "stage"] = np.nan
    data = from_frame(df, COLS, missing="impute")
    spec = ModelSpec(name="m", covariates="all", covariate_pooling="none")
    design = build_design(data, spec, Baseline(n_intervals=3))
    md = design.missing
    assert [g.column for g in md.discrete] == ["stage", "sex"]  # fewest missing first
    assert sorted(md.mix_rows.tolist()) == [2, 5, 9, 11] and len(md.copy_row) == 2 + 6 + 2 + 3
    model = build_model(design, merge_priors({}))
    point = _point(model)
    names = ["survival", "impute_d0_observed", "impute_d1_observed", "impute_marginal_levels"]
    got = _terms_logp(model, names, point)

    alpha = _eval(model, model["log_baseline_hazard"], point)
    beta, gamma = point["treatment"], point["covariate_effects"]
    raw = df[["age", "sex"]].to_numpy(float)
    age_z = (raw[:, 0] - np.nanmean(raw[:, 0])) / np.nanstd(raw[:, 0])
    sex_obs = raw[:, 1]
    s_mean, s_sd = np.nanmean(sex_obs), np.nanstd(sex_obs)
    st = df["stage"]
    st_mean = np.array([np.mean(st.dropna() == lv) for lv in ("II", "III")])
    st_sd = np.sqrt(st_mean * (1 - st_mean))
    treat = (df["arm"] == "T").to_numpy(float)
    total = 0.0
    for i in range(len(df)):
        sexes = [0.0, 1.0] if np.isnan(sex_obs[i]) else [sex_obs[i]]
        stages = ["I", "II", "III"] if pd.isna(st[i]) else [st[i]]
        terms = []
        for sx, sg in itertools.product(sexes, stages):
            dummies = np.array([sg == "II", sg == "III"], float)
            st_z = (dummies - st_mean) / st_sd
            sx_z = (sx - s_mean) / s_sd
            x = np.array([age_z[i], sx_z, *st_z])  # the design's column order
            eta = beta * treat[i] + x @ gamma
            t, d = df["time"][i], df["event"][i]
            j = np.searchsorted(design.cuts, t, side="left")
            ll = d * (alpha[j] + eta) - np.exp(eta) * _h0(alpha, design.starts, t)
            # stage | arm, age (fully observed);  sex | arm, age, stage dummies
            lp_stage = _softmax_logp(point["impute_d0_intercept"], point["impute_d0_coef"],
                                     np.array([treat[i], age_z[i]]), ["I", "II", "III"].index(sg))
            lp_sex = _softmax_logp(point["impute_d1_intercept"], point["impute_d1_coef"],
                                   np.array([treat[i], age_z[i], *st_z]), int(sx))
            terms.append(lp_stage + lp_sex + ll)
        total += logsumexp(terms)
    assert got == pytest.approx(total, rel=1e-9, abs=1e-8)


def test_continuous_latents_enter_the_survival_likelihood_and_their_normal_model():
    """A missing covariate and a missing biomarker (log-linear interaction): the survival term
    uses the latent values, each latent is mean + σ·raw of its normal model, and the observed
    values' normal terms are the density written out here."""
    df = small_frame()
    df.loc[[1, 4, 7], "age"] = np.nan
    df.loc[[3, 4], "bm"] = np.nan
    data = from_frame(df, COLS.model_copy(update={"covariates": ["age"]}), missing="impute")
    spec = ModelSpec(name="m", covariates="all", interaction="log_linear", biomarker="bm")
    design = build_design(data, spec, Baseline(n_intervals=2))
    md = design.missing
    assert [t.column for t in md.continuous] == ["bm", "age"]
    model = build_model(design, merge_priors({}))
    point = _point(model, 1)
    imputed = _eval(model, model["imputed_continuous"], point)
    alpha = _eval(model, model["log_baseline_hazard"], point)
    treat = design.treat
    # latents: bm (rows 3, 4) given arm; age (rows 1, 4, 7) given arm and the (completed) z
    z = design.bm_z.copy()
    a, b = point["impute_c0_intercept"], point["impute_c0_coef"]
    s = np.exp(point["impute_c0_sigma_log__"])
    mu_bm = a + b[0] * treat
    np.testing.assert_allclose(imputed[:2], mu_bm[[3, 4]] + s * point["impute_c0_raw"])
    z[[3, 4]] = imputed[:2]
    seen = np.setdiff1d(np.arange(len(df)), [3, 4])
    lp_obs = -0.5 * np.sum(((design.bm_z[seen] - mu_bm[seen]) / s) ** 2) - len(seen) * (
        np.log(s) + 0.5 * np.log(2 * np.pi))
    assert _terms_logp(model, ["impute_c0_observed"], point) == pytest.approx(lp_obs)
    a2, b2 = point["impute_c1_intercept"], point["impute_c1_coef"]
    s2 = np.exp(point["impute_c1_sigma_log__"])
    mu_age = a2 + b2[0] * treat + b2[1] * z
    np.testing.assert_allclose(imputed[2:], mu_age[[1, 4, 7]] + s2 * point["impute_c1_raw"])
    x = design.X[:, 0].copy()
    x[[1, 4, 7]] = imputed[2:]
    gamma = _eval(model, model["covariate_effects"], point)  # τ·raw below 1000 events
    eta = (point["treatment"] * treat + x * gamma[0]
           + point["biomarker_effect"] * z + point["interaction"] * treat * z)
    t = data.frame["time"].to_numpy()
    h0 = np.array([_h0(alpha, design.starts, ti) for ti in t])
    ll = design.event * (alpha[design.interval] + eta) - np.exp(eta) * h0
    assert _terms_logp(model, ["survival"], point) == pytest.approx(ll.sum(), rel=1e-10)


def test_the_spline_of_a_latent_biomarker_equals_the_data_basis():
    """models.impute.spline_penalised (PyTensor, for imputed z) = BiomarkerBasis.evaluate
    (scipy B-splines) at the same values, inside and beyond the data range."""
    from trialbayes.data.design import BiomarkerBasis

    x = np.random.default_rng(2).lognormal(2, 0.7, 300)
    b = BiomarkerBasis.fit(x, "spline", 8)
    grid = np.concatenate([np.quantile(x, np.linspace(0, 1, 41)), [x.min() / 3, x.max() * 3]])
    z, pen = b.evaluate(grid)
    got = spline_penalised(b, z).eval()
    np.testing.assert_allclose(got, pen, atol=1e-10)


def test_the_levels_drawn_for_the_estimands_follow_their_posterior_weights():
    """complete_missing draws a marginalised level from softmax(imputed_level_logweight): over
    20 000 draws each level's share is within 4.5 binomial SEs of its weight (false failure
    < 1e-4 over the 4 checks)."""
    df = small_frame()
    df["stage"] = df["stage"].astype(object)
    df.loc[[5], "stage"] = np.nan
    data = from_frame(df, COLS.model_copy(update={"covariates": ["stage"]}), missing="impute")
    design = build_design(data, ModelSpec(name="m", covariates="all"), Baseline(n_intervals=1))
    s = 20_000
    w = np.log([0.2, 0.5, 0.3])
    draws = {"treatment": np.zeros(s), "imputed_level_logweight": np.tile(w + 7.0, (s, 1))}
    got = complete_missing(draws, design)["imputed_x"]  # 2 cells: stage[II], stage[III]
    vals = design.missing.discrete[0].values
    level = np.array([np.flatnonzero(np.all(np.isclose(vals, g), axis=1))[0] for g in got])
    share = np.bincount(level, minlength=3) / s
    se = np.sqrt(np.array([0.2, 0.5, 0.3]) * (1 - np.array([0.2, 0.5, 0.3])) / s)
    assert np.all(np.abs(share - [0.2, 0.5, 0.3]) < 4.5 * se), share


def test_estimands_use_each_draws_completed_columns():
    """prognostic_eta and patient_log_hr of a design with imputed cells = the same functions on
    the design rebuilt from each draw's completed data (no missing values)."""
    df = small_frame()
    df.loc[[1, 6], "age"] = np.nan
    df.loc[[2], "bm"] = np.nan
    df["sex"] = df["sex"].astype(object)
    df.loc[[3, 6], "sex"] = np.nan
    cols = COLS.model_copy(update={"covariates": ["age", "sex"]})
    data = from_frame(df, cols, missing="impute")
    spec = ModelSpec(name="m", covariates="all", interaction="spline", biomarker="bm")
    design = build_design(data, spec, Baseline(n_intervals=2))
    md = design.missing
    rng = np.random.default_rng(4)
    n_pen = design.basis.n_penalised()
    s = 3
    draws = {
        "treatment": rng.normal(size=s), "covariate_effects": rng.normal(size=(s, 2)),
        "biomarker_effect": rng.normal(size=s), "interaction": rng.normal(size=s),
        "biomarker_spline": rng.normal(size=(s, n_pen)),
        "interaction_spline": rng.normal(size=(s, n_pen)),
        "log_baseline_hazard": rng.normal(size=(s, 2)),
        "imputed_continuous": rng.normal(size=(s, md.n_cont_cells)),
        "imputed_level_logweight": rng.normal(size=(s, len(md.copy_row))),
    }
    d = complete_missing(draws, design)
    eta, lhr = prognostic_eta(d, design), patient_log_hr(d, design)
    rows, cols_ = md.x_cells(2)
    for k in range(s):
        full = df.copy()
        for (r, c), v in zip(zip(rows, cols_), d["imputed_x"][k]):
            name = design.cov_names[c]
            full.loc[r, name] = v * design.cov_sd[c] + design.cov_mean[c]
        zb = d["imputed_z"][k, 0]
        full.loc[2, "bm"] = np.exp(zb * design.basis.scale + design.basis.centre)
        full["sex"] = full["sex"].astype(float).round(9)
        one = build_design(from_frame(full, cols), spec, Baseline(n_intervals=2))
        one.cov_mean, one.cov_sd, one.basis = design.cov_mean, design.cov_sd, design.basis
        one.X = (full[["age", "sex"]].to_numpy(float) - design.cov_mean) / design.cov_sd
        one.bm_z, one.bm_pen = design.basis.evaluate(full["bm"].to_numpy(float))
        one.biomarker_values = full["bm"].to_numpy(float)
        dk = {key: v[k : k + 1] for key, v in draws.items()}
        np.testing.assert_allclose(eta[k], prognostic_eta(dk, one)[0], atol=1e-9)
        np.testing.assert_allclose(lhr[k], patient_log_hr(dk, one)[0], atol=1e-9)


# ----------------------------------------------------------------------------- input errors
def _reject(tmp_path, expect, df=None, config=None, cmd="run"):
    cfg = write_case(tmp_path / "in", df, config=config)
    res = run_cli(cmd, cfg, "--out", tmp_path / "out") if cmd == "run" else run_cli(cmd, cfg)
    assert res.exit_code == 2, res.output
    for e in expect:
        assert e in res.output, f"{e!r} not in {res.output!r}"
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def _impute_cfg(**over):
    return {"data": {"kind": "file", "path": "patients.csv", "columns": dict(COLUMNS),
                     "missing": "impute", **over}}


def test_a_missing_time_or_event_is_an_input_error_naming_rows_and_ids(tmp_path):
    df = good_frame()
    df.loc[[3, 8], "time"] = np.nan
    _reject(tmp_path / "t", ["'time'", "rows 4, 9", df["id"][3], df["id"][8], "must be observed"],
            df=df, config=_impute_cfg())
    df = good_frame()
    df["event"] = df["event"].astype(object)
    df.loc[[5], "event"] = np.nan
    _reject(tmp_path / "e", ["'event'", "row 6", df["id"][5], "must be observed"], df=df,
            config=_impute_cfg())


def test_a_column_entirely_missing_is_an_input_error(tmp_path):
    df = good_frame()
    df["svc"] = np.nan
    _reject(tmp_path, ["column 'svc'", "all 60 values are missing"], df=df, config=_impute_cfg())


@pytest.mark.parametrize("kind", ["synthetic", "published"])
def test_impute_on_a_source_without_patient_rows_is_refused(tmp_path, kind):
    data = ({"kind": "synthetic", "n": 50, "missing": "impute"} if kind == "synthetic" else
            {"kind": "published", "missing": "impute",
             "estimates": [{"name": "x", "hr": 0.8, "ci": [0.6, 1.0]}]})
    cfg = {"data": data} | ({"models": []} if kind == "published" else {})
    _reject(tmp_path, ["data.missing", "only for data kind 'file'", kind], config=cfg)


def test_impute_with_next_phase_or_calibrate_is_refused(tmp_path):
    cfg = _impute_cfg()
    cfg["models"] = [{"name": "i", "interaction": "linear", "biomarker": "pnfh"}]
    cfg["next_phase"] = {"model": "i", "accrual": {"time": 900}, "events": [100]}
    _reject(tmp_path / "n", ["next_phase", "data.missing: impute"], config=cfg)
    _reject(tmp_path / "c", ["calibrate", "data.missing: impute"], config=_impute_cfg(),
            cmd="calibrate")


def test_check_says_what_will_be_imputed_or_dropped_per_column(tmp_path):
    df = good_frame()
    df.loc[[1, 2, 3], "age"] = np.nan
    df.loc[[3, 4], "pnfh"] = np.nan
    models = [{"name": "u"}, {"name": "adj", "covariates": ["age"]},
              {"name": "i", "covariates": "all", "interaction": "log_linear", "biomarker": "pnfh"}]
    cfg = write_case(tmp_path / "a", df, config=_impute_cfg() | {"models": models})
    res = run_cli("check", cfg)
    assert res.exit_code == 0, res.output
    assert ("4 of 60 rows have a missing value; per column: pnfh 2 (3.3%), age 3 (5.0%)"
            in res.output)
    assert "model 'u': nothing to impute" in res.output
    assert "model 'adj': will impute age 3 (continuous), in 3 rows" in res.output
    assert "model 'i': will impute pnfh 2 (continuous), age 3 (continuous), in 4 rows" in res.output
    cfg = write_case(tmp_path / "b", df, config=_impute_cfg(missing="complete_case"))
    res = run_cli("check", cfg)
    assert res.exit_code == 0, res.output
    assert "complete_case — 4 of 60 rows will be dropped (rows 2, 3, 4, 5 (ids S002, S003, " \
           "S004, S005)); missing values per column: pnfh 2 (3.3%), age 3 (5.0%)" in res.output


@pytest.mark.slow
def test_a_run_with_imputation_reports_counts_and_the_complete_case_comparison(tmp_path):
    """CLI run end to end: results.json's typed missing_data section (read back as
    MissingData), report.md's section and the CLI lines."""
    from trialbayes.results.io import load_results
    from trialbayes.results.missing import MissingData

    df = good_frame(n=120, seed=8)
    df.loc[[1, 5, 9, 30, 44, 70], "age"] = np.nan
    models = [{"name": "u"}, {"name": "adj", "covariates": ["age", "svc"]}]
    cfg = write_case(tmp_path / "in", df, config=_impute_cfg() | {
        "models": models, "diagnostics": {"allow_unreliable": True}})
    res = run_cli("run", cfg, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    assert "missing values imputed in the model: age 6 (5.0%)" in res.output
    assert "treatment HR: imputed" in res.output and "vs complete cases" in res.output
    assert "(n = 114," in res.output
    out = tmp_path / "out" / "case"
    r = load_results(out / "results.json")
    m = r.missing_data
    assert isinstance(m, MissingData) and m.policy == "impute" and m.n_rows_dropped == 0
    assert [(c.column, c.n_missing) for c in m.columns if c.n_missing] == [("age", 6)]
    (adj,) = m.models  # the unadjusted model uses no incomplete column: nothing imputed
    assert adj.model == "adj" and adj.n_rows == 120 and adj.n_rows_imputed == 6
    assert adj.columns[0].column == "age" and adj.columns[0].n_imputed == 6
    assert adj.complete_case_n == 114 and adj.complete_case is not None
    assert adj.log_hr_shift == pytest.approx(adj.imputed.log_mean - adj.complete_case.log_mean)
    assert r.models["adj"].treatment_effect == adj.imputed
    assert "complete cases (n = 114)" in r.models["adj"].cox_method
    md = (out / "report.md").read_text()
    assert "## Missing values" in md and "latent normal on the standardised scale" in md
    assert 'id="missing"' in (out / "report.html").read_text()


def _section(policy="impute"):
    from trialbayes.results.missing import (
        ColumnMissing,
        ImputedColumn,
        MissingData,
        ModelImputation,
    )
    from trialbayes.results.model import HRSummary

    cols = [ColumnMissing("age", "covariate", "continuous", 6, 0.05),
            ColumnMissing("stage", "covariate", "factor", 3, 0.025)]
    if policy == "complete_case":
        return MissingData("complete_case", 120, 8, 8, cols)
    imp = HRSummary.from_normal(-0.3, 0.15, (1.0,), (1.1,), 0.95)
    cc = HRSummary.from_normal(-0.2, 0.18, (1.0,), (1.1,), 0.95)
    mi = ModelImputation("adj", 120, 8, [ImputedColumn("age", "continuous", 6, "latent normal"),
                                        ImputedColumn("stage", "factor", 3, "marginalised")],
                         imp, "treatment HR", cc, 112, 40, True, -0.1)
    return MissingData("impute", 120, 8, 0, cols, [mi])


@pytest.mark.parametrize("policy", ["impute", "complete_case"])
def test_missing_section_renders_and_reads_back_typed(policy):
    """report.md / report.html / CLI lines from the typed section, and results.json's form read
    back as the same objects."""
    from trialbayes.report.missing import html_blocks, markdown_lines, missing_lines
    from trialbayes.results.io import results_from_dict
    from trialbayes.results.model import Results

    m = _section(policy)
    r = Results(kind="patient_level", config_name="c", title="t", data_label="d",
                missing_data=m)
    md = "\n".join(markdown_lines(r))
    cli = "\n".join(missing_lines(r))
    html = str(html_blocks(r))
    assert "## Missing values" in md and "| age | covariate | continuous | 6 | 5.0% |" in md
    if policy == "impute":
        assert "0.74 (0.55–0.99)" in md and "0.82 (0.58–1.17)" in md and "-0.100 (-0.67 SD)" in md
        assert "imputed 0.74 (0.55–0.99) vs complete cases 0.82 (0.58–1.17) (n = 112, 40 events)" \
            in cli
        assert "Imputed fit beside the complete cases" in html
    else:
        assert "8 of 120 rows had a missing covariate or biomarker value and were dropped" in md
        assert "8 rows dropped (age 6 (5.0%), stage 3 (2.5%))" in cli
    assert results_from_dict(r.to_dict()).missing_data == m
