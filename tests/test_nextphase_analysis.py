"""Analysis of each simulated next trial: the vectorised Cox fit (oracle: lifelines), the Bayesian
piecewise-exponential refit (one compilation per worker; agreement with log-rank and Cox), and
the ``next_phase.analysis`` config."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from trialbayes.config.next_phase import AnalysisSpec
from trialbayes.config.schema import parse_config
from trialbayes.core.errors import ConfigError
from trialbayes.nextphase.cox_many import cox_many
from trialbayes.nextphase.logrank import logrank
from trialbayes.nextphase.simulate import Population, StatesOfNature, TrialDesign, simulate_trials

TIGHT = {"precision": 1e-14, "r_precision": 1e-14}  # lifelines' Newton run to convergence


def _states(log_hr, n) -> StatesOfNature:
    z = np.zeros(n)
    return StatesOfNature(
        np.array([0.0, 1.0]),
        np.tile([math.log(0.3), math.log(0.5)], (n, 1)),
        np.full(n, float(log_hr)),
        np.zeros((n, 0)),
        z,
        z.copy(),
        np.zeros((n, 0)),
        np.zeros((n, 0)),
    )


def _trials(log_hr, n_trials, events, n, accrual=2.0):
    """Slow accrual (``accrual`` ≫ 1/hazard): the D-th event comes before everyone is enrolled."""
    pop = Population(np.zeros((50, 0)), np.zeros(50), np.zeros((50, 0)))
    d = TrialDesign(events=events, n_randomised=n, accrual_time=accrual, dropout_rate=0.05)
    return simulate_trials(_states(log_hr, n_trials), pop, d, np.random.default_rng())


def _lifelines(time, event, treat):
    from lifelines import CoxPHFitter

    m = np.isfinite(time)
    df = pd.DataFrame({"t": time[m], "e": event[m].astype(int), "g": treat[m].astype(int)})
    f = CoxPHFitter().fit(df, "t", "e", fit_options=TIGHT)
    return f.params_["g"], f.standard_errors_["g"]


# ----------------------------------------------------------------------------- Cox
def test_cox_many_matches_lifelines_on_simulated_trials():
    """Six simulated trials (continuous times, no ties; late entrants not randomised by the cut):
    log-HR and SE equal lifelines' CoxPHFitter within 1e-6 relative."""
    sim = _trials(math.log(0.7), 6, 60, 150, accrual=40.0)
    assert (~np.isfinite(sim.time)).any()  # some rows have patients outside the trial
    cx = cox_many(sim.time, sim.event, sim.treat)
    assert cx.converged.all()
    for i in range(6):
        b, se = _lifelines(sim.time[i], sim.event[i], sim.treat[i])
        assert cx.log_hr[i] == pytest.approx(b, rel=1e-6)
        assert cx.se[i] == pytest.approx(se, rel=1e-6)


def test_cox_many_efron_ties_match_lifelines_on_rossi():
    """Rossi (weekly times, many ties): Efron as lifelines; Breslow differs on tied data."""
    from lifelines.datasets import load_rossi

    r = load_rossi()
    t, e, g = r.week.to_numpy(float), r.arrest.to_numpy(), r.fin.to_numpy() == 1
    b, se = _lifelines(t, e, g)
    cx = cox_many(t, e, g)
    assert cx.log_hr[0] == pytest.approx(b, rel=1e-6) and cx.se[0] == pytest.approx(se, rel=1e-6)
    assert abs(cox_many(t, e, g, ties="breslow").log_hr[0] - b) > 1e-4


def test_cox_many_flags_trials_without_a_finite_estimate():
    """All deaths in the control arm: no finite MLE, flagged; never a success in the analysis."""
    t = np.array([[1.0, 2.0, 3.0, 4.0, 5.0, 6.0], [1.0, 2.0, 3.0, 4.0, 5.0, 6.0]])
    e = np.array([[1, 1, 1, 0, 0, 0], [1, 0, 1, 1, 0, 1]], bool)
    g = np.array([[0, 0, 0, 1, 1, 1], [0, 1, 0, 1, 1, 0]], bool)
    cx = cox_many(t, e, g)
    assert list(cx.converged) == [False, True]
    notes = cx.failure_notes()
    assert notes and notes[0].startswith("1 trial(s) without a finite Cox")
    assert cox_many(t[1:], e[1:], g[1:]).failure_notes() == []


# ----------------------------------------------------------------------------- Bayesian refit
def test_zero_exposure_patients_add_nothing_to_the_likelihood():
    """Padding a trial with patients of zero exposure (not randomised by the cut, or beyond the
    trial's size) leaves the model's log-likelihood unchanged: each padded term is exactly 0
    (graph likelihood terms), and the analysis model's log-density and its gradient are those of
    the unpadded trial under both likelihoods (``fused``, the analysis model's default, and
    ``graph``), at a random point of the parameter space."""
    from trialbayes.models.graph import pem_loglik_terms
    from trialbayes.nextphase.bayes import trial_data

    sim = _trials(math.log(0.7), 1, 40, 80, accrual=40.0)
    rng = np.random.default_rng(0)
    alpha, beta = rng.normal(-1, 0.3, 3), -0.4

    def loglik(d):
        eta = beta * d["treat"]
        out = pem_loglik_terms(alpha, eta, d["interval_idx"], d["offset"], d["event"], d["widths"])
        return np.asarray(out.eval())  # the model's own (PyTensor) likelihood terms

    fin = np.isfinite(sim.time[0])
    own = trial_data(sim.time[0][fin], sim.event[0][fin], sim.treat[0][fin], int(fin.sum()), 3)
    padded = trial_data(sim.time[0], sim.event[0], sim.treat[0], 120, 3)
    assert (~fin).any() and padded["event"].shape == (120,)
    np.testing.assert_array_equal(padded["widths"], own["widths"])
    terms = loglik(padded)
    assert (terms[np.flatnonzero(~fin)] == 0).all() and (terms[80:] == 0).all()
    assert terms.sum() == pytest.approx(loglik(own).sum(), rel=1e-12)
    assert float(padded["log_rate"]) == pytest.approx(float(own["log_rate"]), rel=1e-12)


def test_padded_analysis_model_has_the_unpadded_log_density_and_gradient():
    """The analysis model as refitted (nextphase_bayes's placeholder design, n = 120) under both
    likelihoods (``fused``, the analysis model's default, and ``graph``): with the trial padded to
    120 zero-exposure patients and with only its own patients set as data, the model's
    log-density and its gradient at a random point are the same (to rounding), and equal across
    the two likelihoods. A control: one more event changes the log-density (the data reach the
    compiled function)."""
    import pymc as pm

    from trialbayes.config.priors import merge_priors
    from trialbayes.models.graph import build_model
    from trialbayes.nextphase.bayes import placeholder_design, trial_data

    sim = _trials(math.log(0.7), 1, 40, 80, accrual=40.0)
    fin = np.isfinite(sim.time[0])
    own = trial_data(sim.time[0][fin], sim.event[0][fin], sim.treat[0][fin], int(fin.sum()), 3)
    padded = trial_data(sim.time[0], sim.event[0], sim.treat[0], 120, 3)
    changed = {**own, "event": own["event"].copy()}
    changed["event"][np.flatnonzero(own["event"] == 0)[0]] = 1.0
    seen = {}
    for likelihood in ("fused", "graph"):
        design = placeholder_design(120, AnalysisSpec(method="bayes"), 30)
        design.likelihood = likelihood
        model = build_model(design, merge_priors({}))
        f = model.compile_fn([model.logp(), model.dlogp()], point_fn=True)
        rng = np.random.default_rng(7)
        point = {k: v + rng.normal(0, 0.3, np.shape(v)) for k, v in model.initial_point().items()}
        for name, data in (("padded", padded), ("own", own), ("changed", changed)):
            pm.set_data(data, model=model)
            lp, grad = f(point)
            seen[likelihood, name] = float(lp), np.asarray(grad)
    for key in seen:
        lp, grad = seen[key]
        ref_lp, ref_grad = seen["graph", key[1]]
        assert lp == pytest.approx(ref_lp, rel=1e-12), key
        np.testing.assert_allclose(grad, ref_grad, rtol=1e-10, atol=1e-12, err_msg=str(key))
    for lk in ("fused", "graph"):
        assert seen[lk, "padded"][0] == pytest.approx(seen[lk, "own"][0], rel=1e-12), lk
        pad, mine = seen[lk, "padded"][1], seen[lk, "own"][1]
        np.testing.assert_allclose(pad, mine, rtol=1e-10, atol=1e-12, err_msg=lk)
        assert abs(seen[lk, "changed"][0] - seen[lk, "own"][0]) > 1e-3, lk


def test_trial_cut_points_are_event_time_quantiles():
    from trialbayes.nextphase.bayes import trial_cuts

    t = np.arange(1.0, 101.0)
    ev = np.ones(100, bool)
    np.testing.assert_allclose(trial_cuts(t, ev, 4), np.quantile(t, [0.25, 0.5, 0.75]))
    tied = np.repeat([1.0, 2.0], 50)  # quantiles tie: equal steps up to the last follow-up
    np.testing.assert_allclose(trial_cuts(tied, np.ones(100, bool), 4), [0.5, 1.0, 1.5])


@pytest.mark.slow
def test_bayes_refits_one_compiled_model_and_agrees_with_logrank_on_a_large_effect():
    """20 trials at HR 0.35, D = 100, through the assurance cell's analysis (package-default
    priors, 2 × 300 draws): ONE compilation for all of them, and the Bayesian rule P(HR < 1) >
    0.975 agrees with the one-sided log-rank test at 0.025 on at least 19 of 20.
    Arithmetic: Schoenfeld power Φ(|log 0.35|·√(100/4) − 1.96) = Φ(3.29) = 0.9995; the posterior
    under the N(0, 1) prior is shrunk by about 4%, so P(Bayes fails) ≈ Φ(1.96 − 5.04) = 0.001;
    a disagreement needs one of them to fail: p ≤ 0.0015 per trial, and P(≥ 2 of 20) ≤
    C(20, 2)·0.0015² = 4.3e-4."""
    from trialbayes.nextphase.analysis import analyse
    from trialbayes.nextphase.bayes import _SAMPLERS

    sim = _trials(math.log(0.35), 20, 100, 140)
    spec = AnalysisSpec(method="bayes", draws=300, tune=300)
    args = {"alpha": 0.025, "min_hr": None, "n_model": 160, "events_hint": 100}
    dec = analyse(sim, spec, args, np.random.default_rng())
    lr = logrank(sim.time, sim.event, sim.treat).success(0.025)
    assert (dec.success != lr).sum() <= 1
    assert dec.failed == 0
    mine = [s for k, s in _SAMPLERS.items() if k[0] == 160 and k[2] == spec.model_dump_json()]
    assert len(mine) == 1 and mine[0].compile_count == 1 and len(mine[0].timings) == 20


@pytest.mark.slow
def test_flat_prior_posterior_probability_matches_cox_p_value():
    """Five trials at HR 0.75, D = 120, an improper flat prior on the treatment (family flat),
    2 × 1000 draws: P(HR < 1) from the refit vs 1 − (one-sided Cox Wald p) from lifelines.
    Tolerance per trial 0.03 + 4.5·√(P(1 − P)/ESS) with ESS that of the indicator β < 0: 0.03
    covers the
    approximation (piecewise-exponential vs partial likelihood, posterior vs Wald normal; measured
    ≤ 0.017 over 12 trials with 2 × 4000 draws), 4.5 Monte Carlo SDs give a false failure
    ≤ 6.8e-6 per trial, 3.4e-5 for five."""
    import arviz as az
    from scipy import stats

    from trialbayes.nextphase.bayes import analysis_sampler, trial_data

    sim = _trials(math.log(0.75), 5, 120, 200)
    spec = AnalysisSpec(
        method="bayes", draws=1000, tune=400, priors={"treatment": {"family": "flat"}}
    )
    sampler = analysis_sampler(200, spec, 120)
    rng = np.random.default_rng()
    for i in range(5):
        b, se = _lifelines(sim.time[i], sim.event[i], sim.treat[i])
        target = 1 - stats.norm.cdf(b / se)
        data = trial_data(sim.time[i], sim.event[i], sim.treat[i], 200, spec.intervals)
        seed = int(rng.integers(2**31))
        idata = sampler.sample(data=data, seed=seed, log_likelihood=False)
        below = (np.asarray(idata.posterior["treatment"]) < 0).astype(float)
        p = below.mean()
        ess = float(az.ess(below)) if 0 < p < 1 else float(below.size)
        assert abs(p - target) < 0.03 + 4.5 * math.sqrt(max(p * (1 - p), 1e-4) / ess)
    assert sampler.compile_count == 1


# ----------------------------------------------------------------------------- config
def _cfg(analysis: dict):
    return parse_config(
        {
            "name": "x",
            "data": {"kind": "synthetic", "n": 60},
            "models": [{"name": "unadjusted"}],
            "next_phase": {"model": "unadjusted", "accrual": {"time": 700}, "analysis": analysis},
        }
    )


def test_analysis_config_is_strict_and_described():
    assert _cfg({}).next_phase.analysis.method == "logrank"
    bayes = _cfg({"method": "bayes", "gamma": 0.99, "priors": {"treatment": {"family": "flat"}}})
    text = bayes.next_phase.analysis.describe(0.025, 0.8)
    assert "P(HR < 1) > 0.99" in text and "flat" in text and "posterior median HR < 0.8" in text
    assert "Wald" in _cfg({"method": "cox"}).next_phase.analysis.describe(0.025, None)
    with pytest.raises(ConfigError, match="apply to method 'bayes' only"):
        _cfg({"method": "logrank", "gamma": 0.9})
    with pytest.raises(ConfigError, match="not in the analysis model"):
        _cfg({"method": "bayes", "priors": {"interaction": {"family": "flat"}}})
    with pytest.raises(ConfigError, match="method"):
        _cfg({"method": "wilcoxon"})


def test_grid_with_cox_analysis_states_it_and_counts_failures():
    """run_next_phase with the Cox analysis: the results name it; with one-sided alpha 0.025 the
    OC at HR 1 stays near alpha and at HR 0.5 is large. 400 trials per OC point. HR 1: the Wald
    test's size at D = 60 measured 0.0245 ± 0.0011 (20 000 trials); allowing a size up to 0.035,
    P(≥ 28 of 400 successes) = 4.9e-4, so P(success) < 0.07 fails by chance < 5e-4, while a
    size of 0.1 would pass it with probability 0.015. HR 0.5: Schoenfeld's power at D = 60 is
    0.76; P(≤ 200 of 400) < 1e-20."""
    from helpers import ToyDesign, toy_draws

    from trialbayes.config.next_phase import NextPhase
    from trialbayes.nextphase.grid import run_next_phase

    draws = toy_draws()
    cfg = NextPhase(
        model="m",
        accrual={"time": 1.0},
        events=[60],
        trials=100,
        oc_trials=400,
        analysis={"method": "cox"},
        executor="inprocess",
    )
    res = run_next_phase(cfg, draws, ToyDesign())
    assert "Cox model" in res.analysis and "Cox" in res.decision_rule
    oc = {o.true_hr: o for o in res.oc}
    assert oc[1.0].p_success < 0.07 and oc[0.5].p_success > 0.5, oc
    assert all(o.analysis_failed == 0 for o in res.oc) and res.designs[0].analysis_failed == 0


def test_failed_and_divergent_bayes_fits_are_counted_never_dropped(monkeypatch):
    """A refit that raises is counted as failed (no success, its error kept); one with divergent
    transitions is counted and kept. The sampler is replaced by a stub: trial 1 raises, trial 2
    diverges, the others put all posterior mass below 0."""
    import types

    import trialbayes.nextphase.bayes as nb
    from trialbayes.inference.raw_draws import RawDraws
    from trialbayes.nextphase.analysis import analyse
    from trialbayes.report.nextphase import analysis_counts
    from trialbayes.results.next_phase import DesignResult, NextPhaseResults

    calls = []

    def sample_draws(names, data, seed, stats):
        calls.append(data["event"].shape)
        if len(calls) == 2:
            raise RuntimeError("initial point not finite")
        div = np.zeros((2, 50), bool)
        div[0, 0] = len(calls) == 3
        return RawDraws({"treatment": np.full((2, 50), -1.0)}, {"diverging": div})

    monkeypatch.setattr(
        nb, "analysis_sampler", lambda *a: types.SimpleNamespace(sample_draws=sample_draws)
    )
    sim = _trials(math.log(0.7), 4, 30, 60)
    args = {"alpha": 0.025, "min_hr": None, "n_model": 80, "events_hint": 30}
    dec = analyse(sim, AnalysisSpec(method="bayes"), args, np.random.default_rng())
    assert calls == [(80,)] * 4  # every trial padded to the model's fixed shape
    assert list(dec.success) == [True, False, True, True]
    assert (dec.failed, dec.divergent) == (1, 1)
    assert dec.counts()["analysis_errors"] == ["trial 1: RuntimeError: initial point not finite"]
    row = DesignResult("p", "all comers", None, 30, 60, *[0.5] * 2, 4, *[0.0] * 11, **{
        k: v for k, v in dec.counts().items()})  # fmt: skip
    settings = types.SimpleNamespace(oc_trials=100, analysis=types.SimpleNamespace(method="bayes"))
    res = NextPhaseResults("m", {}, "a", "r", settings, designs=[row])
    text = analysis_counts(res)
    assert "1 of 4 simulated trials" in text and "divergent transitions (kept): 1" in text
    assert "initial point not finite" in text
