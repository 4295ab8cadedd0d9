"""The time-varying treatment effect (``treatment_effect: time_varying``; model card
models/piecewise_exponential.md, "Time-varying treatment effect").

Fast: the config (strict value, two intervals, the constant-effect partner, the prior term, the
refusals of next_phase and calibrate); the stratified likelihood against the Poisson-trick
expansion with interval-specific HRs (independent); the fused Op against the graph (terms,
log-density, gradient to 1e-10; both backends; other sizes; whole models before and after
``pm.set_data``; float32 within 1e-6); the walk's algebra (the ``treatment`` parameter is the
event-weighted mean of the interval log-HRs); the NumPy log-likelihood used by PSIS-LOO against
PyMC's; the survival estimands against the piecewise-exponential closed form; the compile-cache key;
the figure and the report text from typed results.

Slow (replicate trials, tests/tv_recovery.py): a crossing-hazards truth (HR 1.6 early → 0.5 late)
is recovered; no spurious time variation under proportional hazards; a served compiled model
equals PyMC; the CLI end to end on a trial that is not MIROCALS.
"""

import json
from pathlib import Path

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest
import yaml
from helpers import run_cli
from tv_recovery import CROSSING, PH, covered, run_study

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.priors import merge_priors
from trialbayes.config.schema import Baseline, ModelSpec, parse_config
from trialbayes.core.errors import ConfigError, DataError
from trialbayes.data.design import build_design, interval_stats
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.estimands import draws as est
from trialbayes.models.fused import PEMStrataLogLik, fused_strata_loglik_terms
from trialbayes.models.graph import (
    build_model,
    pem_strata_parts,
    poisson_expand,
    poisson_loglik_terms,
)

ROOT = Path(__file__).resolve().parents[1]
REL = 1e-10
PY = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")
TV = dict(name="tv", treatment_effect="time_varying")


def close(a, b, rel=REL):
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1e-300)
    assert np.max(np.abs(a - b)) <= rel * scale, (a, b)


# ----------------------------------------------------------------------------- config


def cfg(models, **over):
    raw = {"name": "c", "data": {"kind": "synthetic", "n": 60}, "models": models, **over}
    return parse_config(raw)


def test_config_treatment_effect_is_strict_and_defaults_to_constant():
    c = cfg([{"name": "a"}, TV])
    assert c.models[0].treatment_effect == "constant" and c.models[1].time_varying
    with pytest.raises(ConfigError, match="treatment_effect") as e:
        cfg([{"name": "a", "treatment_effect": "varying"}])
    assert "constant" in str(e.value) and "time_varying" in str(e.value)


def test_config_time_varying_needs_two_intervals():
    with pytest.raises(ConfigError, match="has 1 interval: set baseline.n_intervals >= 2"):
        cfg([{"name": "a"}, TV], baseline={"n_intervals": 1})
    cfg([{"name": "a"}, TV], baseline={"n_intervals": 1, "cuts": [100.0]})  # cuts: 2 intervals


def test_config_time_varying_needs_its_constant_partner():
    tv = {**TV, "covariates": ["age"], "interaction": "linear", "biomarker": "pnfh"}
    with pytest.raises(ConfigError, match="needs a constant-effect model with the same terms") as e:
        cfg([{"name": "a", "covariates": ["age"]}, tv])  # no interaction: not its partner
    msg = str(e.value)
    assert '{name: tv_ph, covariates: ["age"], interaction: "linear"' in msg, msg
    partner = {"name": "b", "covariates": ["age"], "interaction": "linear", "biomarker": "pnfh"}
    c = cfg([tv, partner])
    assert c.models[0].time_varying


def test_config_walk_scale_prior_is_a_term_and_scale_only():
    assert merge_priors({})["treatment_rw_sigma"].sigma == 0.5
    p = merge_priors({"treatment_rw_sigma": {"family": "half_normal", "sigma": 0.2}})
    assert p["treatment_rw_sigma"].sigma == 0.2
    with pytest.raises(ValueError, match="treatment_rw_sigma must be a scale"):
        merge_priors({"treatment_rw_sigma": {"family": "normal", "sigma": 0.2}})


def test_config_next_phase_and_calibration_refuse_a_time_varying_model():
    with pytest.raises(ConfigError, match="next_phase.model: model 'tv' has a time-varying"):
        cfg([{"name": "a"}, TV], next_phase={"model": "tv", "accrual": {"time": 900}})
    with pytest.raises(ConfigError, match="calibration.model: model 'tv' has a time-varying"):
        cfg([{"name": "a"}, TV], calibration={"model": "tv"})


def test_calibrate_refuses_a_time_varying_default_model(tmp_path):
    """Without a calibration section the last model is calibrated: a time-varying one is refused
    before anything is fitted."""
    from trialbayes.config.calibration import CalibrationSpec
    from trialbayes.routes.calibration import run_calibration

    c = cfg([{"name": "a"}, TV])
    with pytest.raises(ConfigError, match="--model: model 'tv' has a time-varying"):
        run_calibration(c, CalibrationSpec().settings(c), tmp_path)


def test_data_with_one_interval_is_refused_naming_the_model():
    df, _ = generate(n=60, seed=1)
    df["event"] = 0
    df.loc[0, "event"] = 1  # one event: no quantile cut point
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    with pytest.raises(DataError, match="model 'tv': treatment_effect 'time_varying' needs at "):
        build_design(data, ModelSpec(**TV), Baseline(n_intervals=8))


def test_cli_check_exits_2_on_a_missing_partner(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text(
        yaml.safe_dump({"name": "c", "data": {"kind": "synthetic", "n": 60}, "models": [TV]})
    )
    res = run_cli("check", path)
    assert res.exit_code == 2 and "tv_ph" in res.output, res.output


# ----------------------------------------------------------------------------- likelihood


def strata_data(rng, n, k):
    times = rng.exponential(100, n) + 1e-3
    cuts = np.sort(rng.uniform(1, np.quantile(times, 0.9), k - 1)) if k > 1 else np.array([])
    idx, off, starts = interval_stats(times, cuts)
    return {
        "times": times,
        "starts": starts,
        "interval": idx,
        "offset": off,
        "event": rng.binomial(1, 0.6, n).astype(float),
        "widths": np.append(np.diff(starts), 0.0),
        "treat": rng.binomial(1, 0.5, n).astype(float),
        "X": rng.standard_normal((n, 3)),
        "w": rng.uniform(0.5, 2.0, n),
    }


@pytest.mark.parametrize("seed,n,k", [(0, 300, 6), (1, 50, 2), (2, 120, 9)])
def test_stratified_likelihood_equals_poisson_trick_with_interval_hrs(seed, n, k):
    """Independent check of the formulation: the Poisson-trick expansion (patient × interval
    rows, μ = exposure · exp(α_k + β_k·trt + η)) minus its data-only constant Σ d log(exposure)
    equals the stratified PEM terms (rows α and α + β) per patient, to 1e-10."""
    rng = np.random.default_rng(seed)
    d = strata_data(rng, n, k)
    alpha, beta = rng.normal(-4.5, 0.5, k), rng.normal(0, 0.6, k)
    eta = d["X"] @ rng.normal(0, 0.4, 3)
    rows, ks, expo, dk = poisson_expand(d["times"], d["event"], d["starts"])
    log_mu_shift = alpha[ks] + beta[ks] * d["treat"][rows]
    pois = poisson_loglik_terms(log_mu_shift, eta, rows, np.arange(len(ks)), expo, dk).eval(mode=PY)
    per_patient = np.bincount(rows, pois - dk * np.log(expo), minlength=n)
    stacked = np.stack([alpha, alpha + beta])
    log_h, cum_h = pem_strata_parts(
        pt.as_tensor(stacked),
        pt.as_tensor(eta),
        d["treat"].astype("int64"),
        d["interval"],
        d["offset"],
        pt.as_tensor(d["widths"]),
    )
    pem = (d["event"] * log_h - cum_h).eval(mode=PY)
    close(pem, per_patient)


@pytest.mark.parametrize("mode", ["PY", "NUMBA"])
def test_fused_strata_equals_graph_value_and_gradient(mode):
    """Through the time-varying model's own wiring (rows α, α + β; η = Xγ), with non-unit output
    weights, then data of other sizes (and K = 2) through the same function: terms, weighted
    total and gradients in α, β, γ equal to 1e-10 relative."""
    rng = np.random.default_rng(11)
    data = strata_data(rng, 400, 7)
    keys = ("interval", "offset", "event", "widths", "treat", "X", "w")
    sh = {k: pytensor.shared(data[k], name=k) for k in keys}
    alpha, beta, gamma = pt.dvector("alpha"), pt.dvector("beta"), pt.dvector("gamma")
    rows_ = pt.stack([alpha, alpha + beta])
    stratum = pt.cast(sh["treat"], "int64")
    eta = pt.dot(sh["X"], gamma)
    args = (rows_, eta, stratum, sh["interval"], sh["offset"], sh["widths"])
    log_h, cum_h = pem_strata_parts(*args)
    graph = sh["event"] * log_h - cum_h
    fused = fused_strata_loglik_terms(
        rows_, eta, stratum, sh["interval"], sh["offset"], sh["event"], sh["widths"]
    )
    outs = []
    for terms in (graph, fused):
        total = (sh["w"] * terms).sum()
        outs += [terms, total, *pt.grad(total, [alpha, beta, gamma])]
    f = pytensor.function([alpha, beta, gamma], outs, mode=PY if mode == "PY" else mode)
    for n, k in [(400, 7), (257, 7), (90, 2)]:
        if n != 400:
            new = strata_data(np.random.default_rng(n), n, k)
            for key in keys:
                sh[key].set_value(new[key])
        for _ in range(3):
            res = f(rng.normal(-4.5, 0.6, k), rng.normal(0, 0.5, k), rng.normal(0, 0.4, 3))
            g, fu = res[:5], res[5:]
            assert fu[0].shape == (n,)
            assert np.all(np.abs(fu[3]) > 1e-6)  # the β gradient has content
            for a, b in zip(fu, g):
                close(a, b)


def test_fused_strata_gradient_against_finite_differences_and_float32():
    rng = np.random.default_rng(5)
    d = strata_data(rng, 150, 5)
    A, eta = pt.dmatrix("A"), pt.dvector("eta")
    s = d["treat"].astype("int64")
    outs = []
    for precision in ("float64", "float32"):
        op = PEMStrataLogLik(precision)(
            A, eta, s, d["interval"], d["offset"], d["event"], d["widths"]
        )
        total = (d["w"] * op[0]).sum()
        outs += [total, *pt.grad(total, [A, eta]), op[2]]
    f = pytensor.function([A, eta], outs, mode=PY)
    a0, e0 = rng.normal(-4.5, 0.5, (2, 5)), rng.normal(0, 0.7, 150)
    total, ga, ge, r64, total32, ga32, ge32, _ = f(a0, e0)
    h = 1e-6
    fd = np.zeros((2, 5))
    for j, k in np.ndindex(2, 5):
        u = np.zeros((2, 5))
        u[j, k] = h
        fd[j, k] = (f(a0 + u, e0)[0] - f(a0 - u, e0)[0]) / (2 * h)
    close(ga, fd, rel=1e-6)
    assert np.all(np.abs(ga) > 1e-3)
    gross = np.sum(d["w"] * (d["event"] + np.abs(d["event"] - r64)))
    for a, b in ((total32, total), (ga32, ga), (ge32, ge)):
        assert np.all(np.abs(np.asarray(a) - b) <= 1e-6 * gross)


def test_fused_strata_rejects_indices_out_of_range():
    A, eta = pt.dmatrix("A"), pt.dvector("eta")
    for stratum, interval in (([0, 2], [0, 1]), ([0, 1], [0, 3])):
        terms = PEMStrataLogLik()(
            A, eta, np.array(stratum), np.array(interval), np.ones(2), np.ones(2), np.ones(3)
        )[0]
        for mode in (PY, "NUMBA"):
            with pytest.raises(IndexError):
                pytensor.function([A, eta], terms, mode=mode)(np.zeros((2, 3)), np.zeros(2))


def synthetic(n, seed):
    df, _ = generate(n=n, seed=seed)
    return from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))


SPECS = {
    "unadjusted": ModelSpec(**TV),
    "interaction": ModelSpec(
        **TV, covariates="all", interaction="log_linear", biomarker="pnfh", centre_frailty=True
    ),
}


@pytest.mark.parametrize("which", list(SPECS))
def test_fused_model_equals_graph_model_before_and_after_set_data(which):
    """Whole PyMC models (priors + likelihood) under the three likelihoods: log-density and
    gradient equal (fused to 1e-10; float32 within 1e-6 of the gross scale Σ(d + e^η H)), at
    random points, then after ``pm.set_data`` with another trial of another size (the refit path,
    ``event_share`` included)."""
    spec = SPECS[which]
    models = [
        build_model(
            build_design(synthetic(160, 1), spec, Baseline(n_intervals=5, likelihood=lik)),
            merge_priors({}),
        )
        for lik in ("graph", "fused", "fused_float32")
    ]
    fns = [(m.compile_logp(mode=PY), m.compile_dlogp(mode=PY)) for m in models]
    rng = np.random.default_rng(2)
    new = build_design(synthetic(230, 7), spec, Baseline(n_intervals=5)).data_dict()
    for step in ("fit", "refit"):
        if step == "refit":
            for m in models:
                with m:
                    pm.set_data({k: v for k, v in new.items() if k != "log_rate"})
        ip = models[0].initial_point()
        for _ in range(3):
            point = {k: v + 0.4 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
            (lp_g, dlp_g), (lp_f, dlp_f), (lp_32, dlp_32) = [(f(point), g(point)) for f, g in fns]
            close(lp_f, lp_g)
            close(dlp_f, dlp_g)
            assert abs(lp_32 - lp_g) <= 1e-6 * (abs(lp_g) + 230)
            assert np.all(np.abs(dlp_32 - dlp_g) <= 1e-6 * (abs(lp_g) + 230))


def test_walk_mean_is_the_treatment_parameter_and_its_scale_is_the_total_change():
    """β_k = β + W_k − Σ π_j W_j: the event-weighted mean of the interval log-HRs is exactly the
    ``treatment`` parameter (to 1e-12), for any point and after new data (new π); and the prior of
    β_K − β_1 is N(0, σ²) given σ: the K − 1 steps have SD σ/√(K−1) (checked from the graph with
    unit steps: β_K − β_1 = σ·√(K−1))."""
    data = synthetic(200, 3)
    design = build_design(data, SPECS["unadjusted"], Baseline(n_intervals=6))
    m = build_model(design, merge_priors({}))
    f = m.compile_fn(
        m.replace_rvs_by_values([m["treatment_over_time"]])[0],
        inputs=m.value_vars,
        on_unused_input="ignore",
        mode=PY,
    )
    rng = np.random.default_rng(0)
    ip = m.initial_point()
    for share in (design.event_share, np.array([0.5, 0.1, 0.1, 0.1, 0.1, 0.1])):
        with m:
            pm.set_data({"event_share": share})
        for _ in range(3):
            point = {k: v + rng.standard_normal(np.shape(v)) for k, v in ip.items()}
            bt = f(point)
            assert share @ bt == pytest.approx(float(point["treatment"]), abs=1e-12)
    point = dict(ip, treatment_rw_steps=np.ones(5), treatment_rw_sigma_log__=np.log(0.3))
    bt = f(point)
    assert bt[-1] - bt[0] == pytest.approx(0.3 * np.sqrt(5), rel=1e-12)
    assert design.event_share.sum() == pytest.approx(1.0)
    np.testing.assert_allclose(
        design.event_share * design.event.sum(), est_events(design), rtol=1e-12
    )


def est_events(design):
    return np.bincount(design.interval, design.event, minlength=design.n_intervals)


def test_numpy_pointwise_loglik_equals_pymc_for_a_time_varying_model():
    """The NumPy log-likelihood behind PSIS-LOO (estimands.draws.pointwise_loglik) equals PyMC's
    per-patient log-density of the model at random points (1e-10)."""
    data = synthetic(150, 4)
    spec = SPECS["interaction"]
    design = build_design(data, spec, Baseline(n_intervals=4, likelihood="graph"))
    m = build_model(design, merge_priors({}))
    names = [
        "treatment",
        "treatment_over_time",
        "treatment_rw_sigma",
        "covariate_effects",
        "log_baseline_hazard",
        "biomarker_effect",
        "interaction",
        "centre_frailty",
    ]
    outs = m.replace_rvs_by_values([m[n] for n in names])
    f = m.compile_fn(
        outs + [m.logp(vars=[m["survival"]], sum=False)[0]],
        inputs=m.value_vars,
        on_unused_input="ignore",
        mode=PY,
    )
    rng = np.random.default_rng(1)
    ip = m.initial_point()
    for _ in range(3):
        point = {k: v + 0.4 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
        out = f(point)
        draws = {n: np.asarray(v)[None, ...] for n, v in zip(names, out[:-1])}
        close(est.pointwise_loglik(draws, design)[0], out[-1])


# ----------------------------------------------------------------------------- estimands


def closed_form(lam, hrs, starts, t):
    """Piecewise-exponential survival with interval HRs, and its exact RMST to t."""
    ends = np.append(starts[1:], np.inf)
    s, area, out_s = 1.0, 0.0, None
    for a, b, lk, hk in zip(starts, ends, lam, hrs):
        if t <= a:
            break
        w, r = min(t, b) - a, lk * hk
        area += s * (1 - np.exp(-r * w)) / r
        s *= np.exp(-r * w)
        out_s = s
    return out_s, area


def test_survival_and_rmst_use_hr_t_closed_form():
    """Standardised survival per arm and the RMST of a time-varying model (no covariates) equal
    the piecewise-exponential closed form with interval-specific HRs: survival to 1e-12, the RMST
    (itself integrated in closed form by the estimand) to 1e-10 relative. A model that
    ignored β_k (using the average) misses it by > 1%: the check has power."""
    df, _ = generate(n=120, seed=2)
    design = build_design(
        from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS)),
        ModelSpec(**TV),
        Baseline(cuts=[100.0, 300.0, 500.0]),
    )
    starts = design.starts
    lam = np.array([[0.002, 0.001, 0.0015, 0.001], [0.001, 0.002, 0.002, 0.0008]])
    bt = np.log([[1.6, 1.2, 0.7, 0.5], [0.8, 0.9, 1.1, 1.3]])
    draws = {
        "log_baseline_hazard": np.log(lam),
        "treatment_over_time": bt,
        "treatment": (bt * design.event_share).sum(1),
    }
    tau = 700.0
    grid = np.union1d(np.linspace(0, tau, 200), starts)
    for arm in (0, 1):
        s = est.standardized_survival(draws, design, grid, arm)
        for j in range(2):
            hr = np.exp(bt[j]) if arm else np.ones(4)
            s_tau = closed_form(lam[j], hr, starts, tau)[0]
            assert s[j, -1] == pytest.approx(s_tau, rel=1e-12)
            np.testing.assert_allclose(  # (closed_form needs t > 0)
                s[j, 1:], [closed_form(lam[j], hr, starts, t)[0] for t in grid[1:]], rtol=1e-12
            )
    summ = est.survival_estimands(draws, design, tau)
    exact = [
        closed_form(lam[j], np.exp(bt[j]), starts, tau)[1]
        - closed_form(lam[j], np.ones(4), starts, tau)[1]
        for j in range(2)
    ]
    assert summ.rmst_difference.median == pytest.approx(np.median(exact), rel=1e-10)
    wrong = dict(draws, treatment_over_time=np.repeat(draws["treatment"][:, None], 4, 1))
    s_wrong = est.standardized_survival(wrong, design, [tau], 1)[0, 0]
    assert abs(s_wrong / closed_form(lam[0], np.exp(bt[0]), starts, tau)[0] - 1) > 0.01


# ----------------------------------------------------------------------------- compile cache


def test_compile_cache_key_separates_constant_and_time_varying():
    from trialbayes.inference.compile_cache import structure_key

    def model(spec, n, seed, lik="fused"):
        return build_model(
            build_design(synthetic(n, seed), spec, Baseline(n_intervals=5, likelihood=lik)),
            merge_priors({}),
        )

    const = ModelSpec(name="c")
    keys = [
        structure_key(m)[0]
        for m in (
            model(SPECS["unadjusted"], 120, 3),
            model(SPECS["unadjusted"], 90, 4),
            model(const, 120, 3),
            model(SPECS["unadjusted"], 120, 3, "graph"),
        )
    ]
    assert None not in keys
    assert keys[0] == keys[1]  # data values (and N) are not in the key
    assert len({keys[0], keys[2], keys[3]}) == 3  # the effect's form and the likelihood are


@pytest.mark.slow  # one nutpie compile (~15 s) and a served model
def test_a_served_time_varying_model_equals_pymc(tmp_path):
    """The cache serves a second time-varying model (other data, other N) from memory; nutpie's
    compiled callback on its data equals PyMC's log-density and gradient (1e-10)."""
    from test_compile_cache import logp_grad, pymc_logp_grad

    from trialbayes.inference import compile_cache as cc

    cc.clear_memory()
    ms = [
        build_model(
            build_design(synthetic(n, s), SPECS["interaction"], Baseline(n_intervals=5)),
            merge_priors({}),
        )
        for n, s in ((160, 1), (230, 7))
    ]
    c1, r1 = cc.compile_model(ms[0], cache_dir=tmp_path)
    c2, r2 = cc.compile_model(ms[1], cache_dir=tmp_path)
    assert (r1.source, r2.source) == ("compiled", "memory") and r1.key == r2.key
    x = c2.initial_point_func(3)
    lp, grad = logp_grad(c2, x)
    ref_lp, ref_grad = pymc_logp_grad(ms[1], c2, x)
    np.testing.assert_allclose([lp, *grad], [ref_lp, *ref_grad], rtol=1e-10)
    cc.clear_memory()


# ----------------------------------------------------------------------------- results, report


def fabricated_over_time(comparison=True):
    from trialbayes.results.model import HRSummary, Quantity
    from trialbayes.results.time_varying import (
        AVERAGE_DEFINITION,
        HROverTime,
        IntervalHR,
        PHComparison,
        PHTest,
    )

    hs = [HRSummary.from_normal(m, 0.3, (1.0, 0.8), (1.1,)) for m in np.log([1.6, 1.1, 0.7, 0.5])]
    ivs = [
        IntervalHR(s, e, 20, h)
        for (s, e), h in zip([(0, 100), (100, 250), (250, 400), (400, None)], hs)
    ]
    comp = PHComparison(
        "ph",
        HRSummary.from_normal(np.log(0.8), 0.15),
        6.3,
        2.5,
        "time_varying",
        "PSIS-LOO prefers the time-varying effect `tv` (elpd(time-varying) − "
        "elpd(constant) = +6.3, SE 2.5).",
    )
    return HROverTime(
        estimand="treatment HR in each baseline interval",
        average_definition=AVERAGE_DEFINITION,
        intervals=ivs,
        change=HRSummary.from_normal(np.log(0.5 / 1.6), 0.4),
        rw_sigma=Quantity(0.6, 0.2, 1.1, 0.95),
        time_unit="days",
        ph_test=PHTest("Grambsch–Therneau", "km", 9.87, 0.00168),
        comparison=comp if comparison else None,
    )


def test_results_round_trip_and_reports_show_hr_over_time(small_run, tmp_path):
    """A time-varying model's typed result survives results.json (``load_results`` gives its
    ``hr_over_time`` back, equal), and report.md / report.html / the CLI headline / the
    forest rows say what its treatment effect is (the average over follow-up, never a bare HR),
    show the HR per interval, the PSIS-LOO verdict and the Schoenfeld test beside it."""
    from dataclasses import replace

    from trialbayes.report.html import render
    from trialbayes.report.html_patient import patient_view
    from trialbayes.report.markdown import headline, render_patient_report
    from trialbayes.report.tables import forest_rows
    from trialbayes.results.io import load_results

    tmp, _, _ = small_run
    r = load_results(tmp / "out" / "mirocals" / "results.json")
    m = r.models["unadjusted"]
    hot = fabricated_over_time()
    r.models["unadjusted"] = replace(m, hr_over_time=hot)
    path = tmp_path / "results.json"
    path.write_text(json.dumps(r.to_dict()))
    back = load_results(path)
    assert back.models["unadjusted"].hr_over_time == hot
    assert back.models["adjusted"].hr_over_time is None
    md = render_patient_report(back)
    for text in (
        "HR over time (time-varying treatment effect)",
        "| (0, 100\\] days | 20 |",
        "(400, ∞) days",
        "PSIS-LOO prefers the time-varying effect",
        "chi-square 9.87, 1 df, p = 0.00168",
        "event-weighted mean of the interval",
    ):
        assert text in md, text
    assert "averaged over follow-up (time-varying)" in "\n".join(headline(back))
    labels = [x["label"] for x in forest_rows(back) if x["group"] == "model unadjusted"]
    assert labels[:3] == [
        "treatment, averaged over follow-up",
        "treatment, first interval (0–100 days)",
        "treatment, last interval (400–end days)",
    ]
    html = render(patient_view(back, tmp_path))
    assert "Treatment effect over time" in html and "p = 0.00168" in html
    plain = render(patient_view(load_results(tmp / "out" / "mirocals" / "results.json"), tmp_path))
    assert "Treatment effect over time" not in plain  # the section only for time-varying models


def test_sparse_intervals_flag():
    from trialbayes.routes.time_varying import sparse_interval_flags

    (f,) = sparse_interval_flags("tv", [12, 11, 11, 11, 11, 11, 11, 12])
    assert f.code == "sparse_intervals" and f.model == "tv" and "median 11" in f.message
    assert sparse_interval_flags("tv", [25, 19, 30, 22]) == []


def test_hr_over_time_plot_draws_on_the_given_axes_and_returns_its_figure():
    import matplotlib.pyplot as plt

    from trialbayes.plots.time_varying import hr_over_time_plot

    fig, axes = plt.subplots(1, 2, figsize=(16, 5))
    for ax, comp in zip(axes, (True, False)):
        out = hr_over_time_plot(
            fabricated_over_time(comp), 600.0, ax=ax, event_times=np.array([10.0, 300.0])
        )
        assert out is fig
        assert ax.get_yscale() == "log"
    assert "PSIS-LOO prefers time-varying" in axes[0].get_title()
    assert "PSIS-LOO" not in axes[1].get_title()
    plt.close(fig)


# ----------------------------------------------------------------------------- replicate trials


#: replicate trials and their seeds (not those of the 100-trial studies the rates come from)
RECOVERY_R, RECOVERY_SEED, PH_R, PH_SEED = 10, 7, 12, 8
#: acceptance thresholds; each with its false-failure rate in the tests' docstrings
COVER_MIN, CHANGE_Z_MAX, PH_COVER_MIN, LOO_MAX, CHANGE_MAX = 53, -2.0, 68, 3, 0.22


@pytest.mark.slow
def test_crossing_hazards_are_recovered():
    """Truth: a PEM trial (N = 1000, ~700 events; 8 intervals at the truth's event octiles, ~88
    events each) whose treatment HR falls log-linearly from 1.6 in the first interval to 0.5 in
    the last (crossing hazards; tests/tv_recovery.py). Over R = 10 replicate trials (one compiled
    model, 2 × 500 draws each):

    * the 95% bands of the interval HRs hold the truth in at least 53 of the 80 (trial, interval)
      pairs;
    * the early and late HRs separate: the posterior z of log HR_last − log HR_first (mean / SD)
      averages below −2 over the trials.

    Measured over 100 replicate trials (model card, "Validation evidence"): coverage 0.968 (per
    interval 0.96–0.98, 0.88 in the last, where the walk shrinks the extreme truth 0.5 toward the
    average), covered intervals per trial {8: 83, 7: 9, 6: 7, 5: 1}; z mean −3.55, SD 0.87, max
    −1.74. False failure: P(covered < 53 of 80) = 3.4e-4 from that distribution with a
    pseudo-count added at every value 0–8 (2e-17 without); P(mean z > −2) ~1e-8 (normal, SD of
    the mean 0.28): in all < 4e-4. Power: with the walk pinned at proportional hazards
    (treatment_rw_sigma HalfNormal(0.001)) 10 such trials gave 18 of 80 covered and mean z
    −0.03: both checks fail."""
    study = run_study(CROSSING, RECOVERY_R, n=1000, seed=RECOVERY_SEED)
    cov = covered(study, 0.95)
    assert study.compile_count == 1
    assert cov.sum() >= COVER_MIN, (cov.sum(), cov.mean(0))
    assert np.mean(study.change_z) < CHANGE_Z_MAX, study.change_z


@pytest.mark.slow
def test_no_spurious_time_variation_under_proportional_hazards():
    """Truth: the same design with a constant HR 0.7 (proportional hazards). Over R = 12
    replicate trials, the time-varying model and its constant partner each refitted per trial:

    * PSIS-LOO prefers the time-varying effect (elpd difference > 2 SE) in at most 3 trials;
    * the posterior probability that the HR changes by more than a factor 1.5 from the first to the
      last interval, P(|β_K − β_1| > log 1.5), averages at most 0.22 (its prior value is 0.27, and
      its average over trials drawn from the prior would be exactly that: the data must move it
      toward no change);
    * the 95% bands hold the true HR in at least 68 of the 96 (trial, interval) pairs.

    Measured over 100 trials: LOO z (difference / SE) mean −1.13, SD 1.47, max +1.56, never > 2
    (it preferred proportional hazards in 20); P(change) mean 0.088, SD 0.093, max 0.61; coverage
    0.986, covered per trial {8: 95, 7: 2, 6: 1, 5: 1, 4: 1}. False failure: P(≥ 4 of 12 LOO
    preferences) = 3.3e-5 at the normal-model rate 0.0165 per trial (3.3e-4 at 0.03, the 95% bound
    from 0 of 100); P(mean P(change) > 0.22) = 2.2e-4 (bootstrap of the 100 values); coverage
    4.2e-4 (as in the crossing test): in all < 1e-3. Power: on the crossing trials P(change)
    averages 0.94."""
    study = run_study(PH, PH_R, n=1000, seed=PH_SEED, with_constant=True)
    z = np.array(study.loo_diff) / np.array(study.loo_se)
    assert (z > 2).sum() <= LOO_MAX, z
    assert np.mean(study.p_change_beyond) <= CHANGE_MAX, study.p_change_beyond
    assert covered(study, 0.95).sum() >= PH_COVER_MIN


@pytest.mark.slow
def test_time_varying_config_end_to_end(tmp_path):
    """configs/mirocals_time_varying.yaml through the CLI (small sampler): results.json holds
    hr_over_time for the time-varying models only (intervals = the cut points, the PH test, the
    comparison with the right partner), the figure and the table exist, report.md shows the
    section, and ``trialbayes report`` re-renders it from results.json alone."""
    raw = yaml.safe_load((ROOT / "configs" / "mirocals_time_varying.yaml").read_text())
    raw["sampler"].update({"chains": 2, "draws": 300, "tune": 300})
    raw["diagnostics"] = {"allow_unreliable": True}
    path = tmp_path / "tv.yaml"
    path.write_text(yaml.safe_dump(raw))
    res = run_cli("run", path, "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    out = tmp_path / "out" / "mirocals_time_varying"
    r = json.loads((out / "results.json").read_text())
    for name, partner in (("unadjusted_tv", "unadjusted"), ("interaction_tv", "interaction")):
        hot = r["models"][name]["hr_over_time"]
        starts = [iv["start"] for iv in hot["intervals"]]
        assert starts == [0.0, *r["models"][name]["cut_points"]]
        assert hot["intervals"][-1]["end"] is None
        assert sum(iv["events"] for iv in hot["intervals"]) == r["data"]["events"]
        assert hot["comparison"]["constant_model"] == partner
        assert hot["comparison"]["constant_hr"] == r["models"][partner]["treatment_effect"]
        assert 0 <= hot["ph_test"]["p_value"] <= 1 and hot["ph_test"]["time_transform"] == "km"
        assert "averaged over follow-up" in r["models"][name]["estimand"]
        assert (out / "figures" / f"hr_over_time_{name}.png").is_file()
        assert (out / "tables" / f"hr_over_time_{name}.csv").is_file()
    assert r["models"]["unadjusted"]["hr_over_time"] is None  # a constant-effect model
    assert "pnfh = " in r["models"]["interaction_tv"]["hr_over_time"]["estimand"]
    report = (out / "report.md").read_text()
    assert report.count("HR over time (time-varying treatment effect)") == 2
    (out / "report.md").unlink()
    assert run_cli("report", out).exit_code == 0
    assert (out / "report.md").read_text() == report


@pytest.mark.slow  # one compile and a tiny fit
def test_notebook_api_hr_over_time():
    from trialbayes.config.schema import SamplerSpec
    from trialbayes.models.pem import PiecewiseExponentialModel

    data = synthetic(150, 6)
    small = dict(
        baseline=Baseline(n_intervals=5),
        sampler=SamplerSpec(chains=2, draws=60, tune=60, seed=1, progress="off"),
    )
    m = PiecewiseExponentialModel(ModelSpec(**TV), **small).fit(data)
    hot = m.hr_over_time(level=0.9)
    assert len(hot.intervals) == 5 and hot.intervals[0].hr.level == 0.9
    assert [iv.start for iv in hot.intervals] == list(m.design.starts)
    d = m.draws()
    assert np.allclose(d["treatment_over_time"] @ m.design.event_share, d["treatment"])
    assert m.coefficients()[0].unit.endswith("averaged over follow-up")
    assert m.idata.log_likelihood["survival"].shape[-1] == data.n
    with pytest.raises(ValueError, match="constant treatment effect"):
        PiecewiseExponentialModel(ModelSpec(name="c"), **small).fit(data).hr_over_time()
