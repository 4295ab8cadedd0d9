"""The vectorised survival estimands (estimands/kernels.py) against the term-by-term
implementation they replaced (kept below verbatim as the reference: main's version, with the
time-varying effect and the imputed values), on a fitted model's draws and on draws that exercise
every path (spline basis, centres, tied patients, subgroups, blocks, threads, a time-varying
treatment log-HR per interval, imputed covariates and biomarker). Deterministic: no Monte Carlo
error, the tolerances are floating-point rounding."""

import numpy as np
import pandas as pd
import pytest

from trialbayes.config import load_config
from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec
from trialbayes.data.design import build_design
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.estimands import draws as est
from trialbayes.estimands import kernels
from trialbayes.estimands.draws import flatten_draws, log_hr_at
from trialbayes.estimands.imputed import add_covariate_cells, complete_missing, imputed_biomarker
from trialbayes.models.pem import DRAW_NAMES
from trialbayes.results.summaries import equal_tailed

#: relative tolerance of "equal up to floating-point rounding": the closed-form sums and the
#: weighted means differ from the term-by-term sums by a few ulp per term
RTOL = 1e-11


# ----------------------------------------------------------------------------- the reference
def ref_prognostic_eta(draws, design):
    s = draws["treatment"].shape[0]
    eta = np.zeros((s, design.n))
    if design.cov_names:
        eta += draws["covariate_effects"] @ design.X.T
        add_covariate_cells(eta, draws, design)  # data.missing: impute (0 in X until then)
    if design.basis is not None:
        eta += draws["biomarker_effect"][:, None] * design.bm_z[None, :]
        if design.bm_pen.shape[1]:
            eta += draws["biomarker_spline"] @ design.bm_pen.T
        imp = imputed_biomarker(draws, design)
        if imp is not None:
            rows, z, pen = imp
            eta[:, rows] += draws["biomarker_effect"][:, None] * z
            if pen.shape[2]:
                eta[:, rows] += np.einsum("smp,sp->sm", pen, draws["biomarker_spline"])
    if design.centre_labels:
        eta += draws["centre_frailty"][:, design.centre_idx]
    return eta


def ref_patient_log_hr(draws, design):
    if design.basis is None:
        return np.repeat(draws["treatment"][:, None], design.n, axis=1)
    imp = imputed_biomarker(draws, design)
    if imp is None:
        return log_hr_at(draws, design.basis, design.biomarker_values)
    out = draws["treatment"][:, None] + draws["interaction"][:, None] * design.bm_z[None, :]
    if design.bm_pen.shape[1]:
        out = out + draws["interaction_spline"] @ design.bm_pen.T
    rows, z, pen = imp
    out[:, rows] = draws["treatment"][:, None] + draws["interaction"][:, None] * z
    if pen.shape[2]:
        out[:, rows] += np.einsum("smp,sp->sm", pen, draws["interaction_spline"])
    return out


def ref_treatment_shift(draws, design):
    return draws["treatment_over_time"] if design.time_varying else None


def ref_constant_log_hr(draws, design):
    plh = ref_patient_log_hr(draws, design)
    return plh - draws["treatment"][:, None] if design.time_varying else plh


def ref_baseline_cumhaz(draws, starts, times, shift=None):
    alpha = draws["log_baseline_hazard"]
    if shift is not None:
        alpha = alpha + shift
    lam = np.exp(alpha)
    widths = np.diff(starts)
    cum_start = np.concatenate(
        [np.zeros((lam.shape[0], 1)), np.cumsum(lam[:, :-1] * widths, axis=1)], axis=1
    )
    times = np.asarray(times, float)
    k = np.searchsorted(starts[1:], times, side="left")
    return cum_start[:, k] + lam[:, k] * (times - starts[k])[None, :]


def ref_standardized_survival(draws, design, times, arm, patients=None):
    sel = np.arange(design.n) if patients is None else np.flatnonzero(patients)
    eta = ref_prognostic_eta(draws, design)[:, sel]
    shift = None
    if arm == 1:
        eta = eta + ref_constant_log_hr(draws, design)[:, sel]
        shift = ref_treatment_shift(draws, design)
    risk = np.exp(eta)
    h0 = ref_baseline_cumhaz(draws, design.starts, times, shift)
    out = np.empty_like(h0)
    for j in range(h0.shape[1]):
        out[:, j] = np.exp(-risk * h0[:, j : j + 1]).mean(axis=1)
    return out


def ref_rmst(draws, design, landmark, arm):
    """RMST to the landmark per draw: each patient's survival integrated interval by interval
    in closed form (exp(−r·H(a))·(1 − exp(−r·λ_k·w))/(r·λ_k)), then averaged over patients."""
    eta = ref_prognostic_eta(draws, design)
    shift = None
    if arm == 1:
        eta = eta + ref_constant_log_hr(draws, design)
        shift = ref_treatment_shift(draws, design)
    risk = np.exp(eta)
    alpha = draws["log_baseline_hazard"] + (0 if shift is None else shift)
    lam, starts = np.exp(alpha), design.starts
    ends = np.append(starts[1:], np.inf)
    total = np.zeros(risk.shape[0])
    for k in range(len(starts)):
        if starts[k] >= landmark:
            break
        w = min(ends[k], landmark) - starts[k]
        s_a = np.exp(-risk * ref_baseline_cumhaz(draws, starts, [starts[k]], shift))
        rate = risk * lam[:, k : k + 1]
        total += (s_a * -np.expm1(-rate * w) / rate).mean(axis=1)
    return total


def ref_survival(draws, design, landmark):
    """(S1(τ), S0(τ), RMST1, RMST0) per draw, as survival_estimands computes them."""
    s1 = ref_standardized_survival(draws, design, [landmark], 1)[:, 0]
    s0 = ref_standardized_survival(draws, design, [landmark], 0)[:, 0]
    return s1, s0, ref_rmst(draws, design, landmark, 1), ref_rmst(draws, design, landmark, 0)


def ref_curves(draws, design, t_max, n=60, level=0.95):
    grid = np.linspace(0.0, t_max, n)
    rows = []
    for arm in (0, 1):
        s = ref_standardized_survival(draws, design, grid, arm)
        lo, med, hi = equal_tailed(s, level, axis=0)
        rows.append(
            pd.DataFrame({"arm": arm, "time": grid, "median": med, "lower": lo, "upper": hi})
        )
    return pd.concat(rows, ignore_index=True)


def ref_subgroups(draws, design, values, cutoffs, landmark):
    """(conditional, marginal) log-HR draws per non-empty subgroup."""
    plh = ref_patient_log_hr(draws, design)
    out = []
    for _, mask in est.subgroup_masks(values, cutoffs):
        if not mask.any():
            continue
        s1 = ref_standardized_survival(draws, design, [landmark], 1, mask)[:, 0]
        s0 = ref_standardized_survival(draws, design, [landmark], 0, mask)[:, 0]
        out.append((plh[:, mask].mean(axis=1), np.log(np.log(s1) / np.log(s0))))
    return out


# ----------------------------------------------------------------------------- comparisons
def new_survival(draws, design, landmark):
    """The new survival_estimands' per-draw arrays (its summaries are quantiles of these)."""
    pat = kernels.patient_patterns(est.patient_features(design), [np.ones(design.n, bool)])
    eta = est.prognostic_eta(draws, design, pat.rows)
    lhr = est.constant_log_hr(draws, design, pat.rows)
    lam0 = est.arm_hazards(draws)
    lam1 = est.arm_hazards(draws, est.treatment_shift(draws, design))
    r1, s1 = kernels.survival_rmst(eta + lhr, lam1, design.starts, landmark, pat.weights)
    r0, s0 = kernels.survival_rmst(eta, lam0, design.starts, landmark, pat.weights)
    return s1[:, 0], s0[:, 0], r1[:, 0], r0[:, 0]


def assert_same(draws, design, landmark, values=None, cutoffs=(), t_max=None):
    for new, old in zip(
        new_survival(draws, design, landmark), ref_survival(draws, design, landmark)
    ):
        np.testing.assert_allclose(new, old, rtol=RTOL)
    summary = est.survival_estimands(draws, design, landmark)
    s1, s0, r1, r0 = ref_survival(draws, design, landmark)
    assert summary.rmst_difference.median == pytest.approx(np.median(r1 - r0), rel=RTOL)
    assert summary.survival_treatment.median == pytest.approx(np.median(s1), rel=RTOL)
    t_max = t_max or float(design.starts[-1] * 1.3)
    for times in ([0.0, landmark], np.linspace(0, t_max, 37)):
        for arm in (0, 1):
            np.testing.assert_allclose(
                est.standardized_survival(draws, design, times, arm),
                ref_standardized_survival(draws, design, times, arm),
                rtol=RTOL,
            )
    new_c, old_c = est.survival_curves(draws, design, t_max), ref_curves(draws, design, t_max)
    pd.testing.assert_frame_equal(new_c, old_c, rtol=RTOL, atol=0)
    if values is not None:
        groups = est.subgroup_effects(draws, design, values, list(cutoffs), landmark)
        ref = ref_subgroups(draws, design, values, list(cutoffs), landmark)
        got = [g for g in groups if g.n]
        assert len(got) == len(ref)
        for g, (cond, marg) in zip(got, ref):
            # summaries of draws equal to rounding: means and quantiles compared
            assert g.conditional.log_mean == pytest.approx(cond.mean(), rel=RTOL, abs=1e-13)
            assert g.marginal.log_mean == pytest.approx(marg.mean(), rel=RTOL, abs=1e-13)
            assert g.marginal.median == pytest.approx(np.exp(np.median(marg)), rel=RTOL)


def test_fitted_models_draws_give_the_same_estimands(small_run):
    """The three models of the shared small run (2 × 300 draws of the fitted posterior)."""
    import arviz as az

    tmp, cfg_path, _ = small_run
    from trialbayes.routes.validate import preflight

    cfg = load_config(cfg_path)
    checked = preflight(cfg, None)
    landmark = checked.settings["landmark"].value
    pnfh = checked.data.frame["pnfh"].to_numpy(float)
    for spec in cfg.models:
        design = build_design(checked.data, spec, cfg.baseline)
        dt = az.from_netcdf(tmp / "out" / "mirocals" / "posterior" / f"{spec.name}.nc")
        draws = flatten_draws(dt.posterior, DRAW_NAMES)
        assert_same(
            draws, design, landmark, pnfh, [750, 3700], float(checked.data.frame["time"].max())
        )


def _random_draws(design, s, rng):
    k, p = design.n_intervals, len(design.cov_names)
    d = {
        "treatment": rng.normal(-0.3, 0.3, s),
        "log_baseline_hazard": rng.normal(np.log(1e-3), 0.4, (s, k)),
        "covariate_effects": rng.normal(0, 0.4, (s, p)),
    }
    if design.basis is not None:
        d["biomarker_effect"] = rng.normal(0.3, 0.2, s)
        d["interaction"] = rng.normal(0.1, 0.2, s)
        q = design.bm_pen.shape[1]
        d["biomarker_spline"] = rng.normal(0, 0.3, (s, q))
        d["interaction_spline"] = rng.normal(0, 0.3, (s, q))
    if design.centre_labels:
        d["centre_frailty"] = rng.normal(0, 0.3, (s, len(design.centre_labels)))
    if design.time_varying:  # β_k per interval (a strong change), β their event-weighted mean
        walk = np.cumsum(rng.normal(0, 0.5, (s, k)), axis=1)
        d["treatment_over_time"] = (
            d["treatment"][:, None] + walk - (walk @ design.event_share)[:, None]
        )
    md = design.missing
    if md is not None:
        d["imputed_continuous"] = rng.normal(0, 1, (s, md.n_cont_cells))
        d["imputed_level_logweight"] = rng.normal(0, 1, (s, len(md.copy_row)))
        d = complete_missing(d, design)
    return d


@pytest.mark.parametrize(
    "spec",
    [
        ModelSpec(
            name="spline",
            covariates="all",
            centre_frailty=True,
            interaction="spline",
            biomarker="pnfh",
        ),
        ModelSpec(name="binary", covariates=["bulbar_onset"]),  # two patterns only
        ModelSpec(name="unadjusted"),  # one pattern
    ],
)
def test_every_path_matches_the_reference(spec, monkeypatch):
    """Spline basis, centres, tied patients (patterns), empty subgroups, tiny blocks of draws
    (many blocks on several threads) and one thread give the reference's numbers."""
    df, _ = generate(n=150, seed=3)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    design = build_design(data, spec, Baseline(n_intervals=6))
    draws = _random_draws(design, 300, np.random.default_rng(1))
    values = df["pnfh"].to_numpy(float)
    landmark = float(np.quantile(df["time"], 0.6))
    assert_same(draws, design, landmark, values, [1e9])  # the second group is empty
    monkeypatch.setattr(kernels, "BLOCK_CELLS", 5000)
    monkeypatch.setenv("TRIALBAYES_THREADS", "3")
    assert_same(draws, design, landmark, values, [750, 3700])
    monkeypatch.setenv("TRIALBAYES_THREADS", "1")
    assert_same(draws, design, float(design.starts[-1]) + 10.0)


def _synthetic(spec, missing=None, n=150, seed=3):
    """The synthetic cohort's design for ``spec``; ``missing``: {column: rows} set missing and
    imputed (data.missing: impute)."""
    df, _ = generate(n=n, seed=seed)
    for col, rows in (missing or {}).items():
        df[col] = df[col].astype(float)
        df.loc[rows, col] = np.nan
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS), missing="impute" if missing else "error")
    return df, build_design(data, spec, Baseline(n_intervals=6))


TIME_VARYING = [
    ModelSpec(
        name="tv_spline",
        covariates="all",
        centre_frailty=True,
        interaction="spline",
        biomarker="pnfh",
        treatment_effect="time_varying",
    ),
    ModelSpec(name="tv_unadjusted", treatment_effect="time_varying"),  # one pattern
]


@pytest.mark.parametrize("spec", TIME_VARYING, ids=lambda m: m.name)
def test_time_varying_effect_matches_the_reference(spec, monkeypatch):
    """A treatment log-HR per baseline interval (β_k through the treated arm's hazards, g(b) as
    the constant part): every estimand equals the term-by-term reference; the landmark inside an
    interval and beyond the last cut; many blocks on threads. The check can fail: the kernels
    given the constant-effect hazards for both arms are far from the reference."""
    df, design = _synthetic(spec)
    assert design.time_varying
    draws = _random_draws(design, 300, np.random.default_rng(2))
    values = df["pnfh"].to_numpy(float)
    landmark = float(np.quantile(df["time"], 0.6))
    assert_same(draws, design, landmark, values, [750, 3700])
    monkeypatch.setattr(kernels, "BLOCK_CELLS", 5000)
    monkeypatch.setenv("TRIALBAYES_THREADS", "3")
    assert_same(draws, design, float(design.starts[-1]) + 10.0, values, [1e9])
    # the effect matters: ignoring β_k (constant-effect hazards) moves S1 far beyond rounding
    wrong = {**draws, "treatment_over_time": np.repeat(draws["treatment"][:, None], 6, 1)}
    s1_wrong = est.standardized_survival(wrong, design, [landmark], 1)
    s1_ref = ref_standardized_survival(draws, design, [landmark], 1)
    assert np.max(np.abs(s1_wrong - s1_ref)) > 1e-3


@pytest.mark.slow  # one compile (~15 s) and a tiny fit
def test_a_fitted_time_varying_models_draws_give_the_same_estimands():
    """The posterior of a fitted time-varying model with an interaction (2 × 100 draws)."""
    from trialbayes.config.schema import SamplerSpec
    from trialbayes.models.pem import PiecewiseExponentialModel

    df, _ = generate(n=150, seed=6)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    spec = ModelSpec(
        name="tv",
        covariates="all",
        interaction="log_linear",
        biomarker="pnfh",
        treatment_effect="time_varying",
    )
    small = SamplerSpec(chains=2, draws=100, tune=100, seed=1, progress="off")
    m = PiecewiseExponentialModel(spec, baseline=Baseline(n_intervals=4), sampler=small).fit(data)
    draws = m.draws()
    assert draws["treatment_over_time"].shape == (200, 4)
    values = df["pnfh"].to_numpy(float)
    assert_same(draws, m.design, float(np.quantile(df["time"], 0.6)), values, [750, 3700])


IMPUTED = [
    (
        ModelSpec(
            name="imp_spline",
            covariates="all",
            centre_frailty=True,
            interaction="spline",
            biomarker="pnfh",
        ),
        {"age": [1, 5, 9], "bulbar_onset": [2, 5, 40], "svc": [7], "pnfh": [3, 11, 60]},
    ),
    (ModelSpec(name="imp_binary", covariates=["bulbar_onset"]), {"bulbar_onset": [0, 4, 8]}),
]


@pytest.mark.parametrize("spec,missing", IMPUTED, ids=lambda m: getattr(m, "name", ""))
def test_imputed_values_match_the_reference(spec, missing, monkeypatch):
    """data.missing: impute — continuous and discrete covariates and the biomarker imputed, each
    draw its own values: the patients with an imputed value are patterns of their own, the
    others share patterns; equal to the reference over all patients, in subgroups, in blocks.
    The check can fail: the imputed patients collapsed onto one pattern change the numbers."""
    df, design = _synthetic(spec, missing)
    assert design.missing is not None and len(design.missing.rows_imputed())
    draws = _random_draws(design, 200, np.random.default_rng(5))
    values = df["pnfh"].to_numpy(float)
    landmark = float(np.quantile(df["time"], 0.6))
    assert_same(draws, design, landmark, values, [750, 3700])
    monkeypatch.setattr(kernels, "BLOCK_CELLS", 4000)
    monkeypatch.setenv("TRIALBAYES_THREADS", "2")
    assert_same(draws, design, landmark, values, [750])
    monkeypatch.setattr(est, "patient_features", lambda d: np.zeros((d.n, 0)))  # one pattern
    broken = est.standardized_survival(draws, design, [landmark], 0)
    ref = ref_standardized_survival(draws, design, [landmark], 0)
    assert np.max(np.abs(broken - ref)) > 1e-3


def test_rmst_is_the_integral_of_the_standardised_survival():
    """Against numerical integration (scipy's adaptive quadrature, cut points as break points) of
    the directly computed standardised survival: landmarks inside an interval, on a cut point,
    beyond the last cut and at 0."""
    from scipy.integrate import quad

    rng = np.random.default_rng(4)
    starts = np.array([0.0, 3.0, 7.5, 20.0])
    lam = np.exp(rng.normal(-2, 1, (6, 4)))
    eta = rng.normal(0, 1, (6, 7))
    w = rng.dirichlet(np.ones(7), 2).T  # two groups of patients
    for landmark in (5.0, 7.5, 31.0, 0.0):
        r, s = kernels.survival_rmst(eta, lam, starts, landmark, w)
        for d in range(eta.shape[0]):
            for g in range(2):

                def surv(t, d=d, g=g):
                    return kernels.mean_survival(eta[d : d + 1], lam[d : d + 1], starts, [t],
                                                 w[:, g : g + 1])[0, 0, 0]  # fmt: skip

                pts = [c for c in starts if 0 < c < landmark]
                area = quad(surv, 0, landmark, points=pts or None, epsabs=0, epsrel=1e-12)[0]
                assert r[d, g] == pytest.approx(area, rel=1e-10, abs=1e-14)
                assert s[d, g] == pytest.approx(surv(landmark), rel=1e-13)
    # hazards so small that r·λ·w underflows to 0: the limit, S = 1 throughout
    tiny = np.full((1, 4), 1e-320)
    r, s = kernels.survival_rmst(np.zeros((1, 1)), tiny, starts, 25.0, np.ones((1, 1)))
    assert (r[0, 0], s[0, 0]) == (pytest.approx(25.0, rel=1e-12), 1.0)


def test_patient_patterns_weights():
    f = np.array([[1.0, 0], [1, 0], [2, 1], [1, 0]])
    pat = kernels.patient_patterns(f, [np.ones(4, bool), np.array([False, True, True, False])])
    assert len(pat.rows) == 2
    np.testing.assert_allclose(pat.weights.sum(0), 1.0)
    np.testing.assert_allclose(sorted(pat.weights[:, 0]), [0.25, 0.75])
    np.testing.assert_allclose(sorted(pat.weights[:, 1]), [0.5, 0.5])
    one = kernels.patient_patterns(np.zeros((5, 0)), [np.ones(5, bool)])
    assert len(one.rows) == 1 and one.weights[0, 0] == 1.0


def test_rmst_keeps_a_nan_draw_nan():
    """A draw with a NaN hazard (here in the last interval before the landmark) gives a NaN RMST,
    never a finite number made up for it; the other draws of the block are unaffected."""
    starts = np.array([0.0, 3.0, 7.5])
    lam = np.array([[0.1, 0.2, 0.05], [0.1, 0.2, np.nan], [1e-320, 1e-320, 1e-320]])
    r, s = kernels.survival_rmst(np.zeros((3, 2)), lam, starts, 10.0, np.full((2, 1), 0.5))
    assert np.isnan(r[1, 0]) and np.isnan(s[1, 0])
    assert np.isfinite(r[0, 0]) and r[2, 0] == pytest.approx(10.0, rel=1e-12)
