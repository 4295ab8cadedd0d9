"""Next-phase designs as they are run: interim looks (α-spending and posterior rules), borrowing,
adaptive enrichment, patients per death, the recommended design. Validation by simulation
against closed forms; every statistical check states its false-failure rate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from helpers import toy_draws, z_bound
from test_nextphase import _BiomarkerDesign, _plain_population, _states

from trialbayes.config.next_phase import AdaptiveEnrichment, DecisionRule, EfficacySpec, NextPhase
from trialbayes.config.schema import parse_config
from trialbayes.core.errors import ConfigError
from trialbayes.nextphase.borrowing import vague
from trialbayes.nextphase.enrichment import (
    EnrichmentPlan,
    false_enrichment_closed_form,
    simulate_enrichment,
)
from trialbayes.nextphase.grid import run_next_phase
from trialbayes.nextphase.group_sequential import SequentialPlan, analyse_sequential, planned
from trialbayes.nextphase.simulate import Population, TrialDesign, simulate_trials
from trialbayes.nextphase.summaries import recommend
from trialbayes.results.next_phase import DesignResult, NextPhaseResults

FLAT = vague(0.0, None)


def _two_look(hr: float, n: int, events=300, method="logrank", efficacy=None, prior=FLAT):
    rng = np.random.default_rng()
    plan = SequentialPlan(events, (0.5, 1.0), 0.025, 0.5, efficacy or EfficacySpec(), None,
                          math.log(0.75))  # fmt: skip
    d = TrialDesign(events=events, n_randomised=int(events * 4 / 3), accrual_time=2.0,
                    dropout_rate=0.05, looks=(0.5, 1.0))  # fmt: skip
    sim = simulate_trials(_states(math.log(hr), n), _plain_population(), d, rng)
    return plan, analyse_sequential(sim, plan, prior, method)


@pytest.mark.slow
def test_two_look_obrien_fleming_reproduces_nominal_crossing_under_h0():
    """20 000 trials at HR 1, D = 300, looks at 150 and 300 deaths, Lan–DeMets O'Brien–Fleming:
    P(efficacy at look 1) = 0.00153 and at look 2 = 0.02347 (the boundaries' nominal increments).
    Each |sim − nominal| < z·SE + the log-rank test's own size excess at 1:1 (measured 0.0255 at
    one look over 200 000 trials: +0.0005; allowance 0.001 at look 2, 0.0003 at look 1), z for a
    joint false-failure rate of 1e-4 over the 2 checks (z = 4.06). Fails if the interim used the
    fixed 1.96 (look 1 would take 0.025)."""
    plan, out = _two_look(1.0, 20_000)
    nominal = [x.p_efficacy_null for x in planned(plan, FLAT)]
    np.testing.assert_allclose(nominal, [0.0015253, 0.0234747], atol=2e-7)
    z = z_bound(1e-4, 2)
    for k, allow in ((0, 0.0003), (1, 0.001)):
        p = out.efficacy[:, k].mean()
        assert abs(p - nominal[k]) < z * math.sqrt(nominal[k] * (1 - nominal[k]) / 20_000) + allow
    assert out.performed[:, 0].all() and not out.futility.any()


@pytest.mark.slow
def test_two_look_obrien_fleming_power_is_the_textbook_power():
    """10 000 trials at HR 0.75, D = 300: P(efficacy at look 1) and the power over both looks
    against the closed form of the same boundaries at drift −log 0.75 with information D/4
    (0.1149 and 0.7007, as gsDesign's gsProbability gives). Allowance z·SE + 0.008 (Schoenfeld's
    approximation error of the log-rank power at HR 0.8, D 300 was 0.0002 ± 0.0035 over 20 000
    trials; 0.008 covers it with room); z for a joint false-failure rate of 1e-4 (2 checks)."""
    plan, out = _two_look(0.75, 10_000)
    looks = planned(plan, FLAT)
    z = z_bound(1e-4, 2)
    for sim_p, ref in ((out.efficacy[:, 0].mean(), looks[0].p_efficacy_design),
                       (out.success.mean(), sum(x.p_efficacy_design for x in looks))):  # fmt: skip
        assert abs(sim_p - ref) < z * math.sqrt(ref * (1 - ref) / 10_000) + 0.008
    assert sum(x.p_efficacy_design for x in looks) == pytest.approx(0.7007, abs=5e-4)


@pytest.mark.slow
def test_posterior_rule_type_one_error_matches_its_closed_form():
    """Efficacy when P(HR < 1 | data) > 0.995 at 150 deaths and > 0.98 at 300 (normal log-HR
    approximation, vague N(0, 2²) prior): the type I error by simulation (20 000 trials at HR 1)
    equals the closed form (the posterior thresholds mapped to Z at the planned information,
    crossing probabilities by numerical integration) per look within z·SE + 0.001 (the log-rank
    size excess, as above); z for a joint false-failure rate of 1e-4 (2 checks)."""
    prior = vague(0.0, 2.0)
    eff = EfficacySpec(kind="posterior", gamma=[0.995, 0.98])
    plan, out = _two_look(1.0, 20_000, efficacy=eff, prior=prior)
    ref = [x.p_efficacy_null for x in planned(plan, prior)]
    assert 0.004 < ref[0] < 0.0055 and sum(ref) > 0.02  # not the flat-prior 0.005, 0.02
    z = z_bound(1e-4, 2)
    for k in (0, 1):
        p = out.efficacy[:, k].mean()
        assert abs(p - ref[k]) < z * math.sqrt(ref[k] * (1 - ref[k]) / 20_000) + 0.001


@pytest.mark.slow
def test_cox_analysis_keeps_type_one_error_over_two_looks():
    """The Cox Wald statistic with the same O'Brien–Fleming boundaries: 10 000 trials at HR 1,
    D = 200; the rejection rate over both looks ≤ 0.025 + z·SE + 0.002 (the Wald test's size
    excess at D = 100 per look, measured ≈ +0.001); one-sided, false failure 1e-4 (z = 3.72)."""
    plan, out = _two_look(1.0, 10_000, events=200, method="cox")
    p = out.success.mean()
    assert p < 0.025 + 3.72 * math.sqrt(0.025 * 0.975 / 10_000) + 0.002
    assert out.failed == 0


def _grid(prior: dict, **kw):
    cfg = NextPhase(model="m", accrual={"time": 1.0}, events=[40], trials=300, oc_trials=200,
                    oc_hrs=[0.6], calendar_cut=9.0, looks=[0.5, 1.0],
                    efficacy={"kind": "posterior", "gamma": [0.995, 0.975]},
                    analysis={"prior": prior}, executor="inprocess", **kw)  # fmt: skip
    return run_next_phase(cfg, toy_draws(), _BiomarkerDesign())


def test_borrowing_with_weight_zero_equals_no_borrowing_exactly():
    """Same seeds: a robust mixture of weight 0 gives exactly the numbers of no borrowing, on the
    design rows (assurance, stops per look) and every OC point; weight 0.5 does not."""
    none = _grid({"kind": "none"})
    zero = _grid({"kind": "robust_mixture", "weight": 0.0})
    half = _grid({"kind": "robust_mixture", "weight": 0.5})

    def rows(res, label):
        return [(d.assurance, d.looks, d.expected_events) for d in res.designs
                if d.analysis_prior == label]  # fmt: skip

    assert rows(zero, "borrowing") == rows(none, "") == rows(zero, "no borrowing")
    oc0 = [(o.true_hr, o.p_success) for o in zero.oc if o.analysis_prior == "borrowing"]
    assert oc0 == [(o.true_hr, o.p_success) for o in none.oc]
    assert rows(half, "borrowing") != rows(none, "")
    b = half.borrowing[0]
    assert b.ess_elir > b.ess_moment > 0 and b.type_one_error is not None
    assert zero.borrowing[0].ess_elir == pytest.approx(1.0, rel=1e-6)  # N(0, 2²): one death


def _enrichment_population(n=400):
    bm = np.linspace(0.0, 1.0, n)
    return Population(np.zeros((n, 0)), np.zeros(n), np.zeros((n, 0)), bm, "b")


@pytest.mark.slow
def test_enrichment_with_zero_interaction_enriches_at_most_at_the_stated_rate():
    """A common HR (no interaction) at 1 and 0.7: the simulated P(enrich) of the rule (stop if
    Φ(Z_S) < 0.1, enrich if Φ(Z_C) < 0.5) is within z·SE of its closed form (independent
    subgroup and complement statistics at the mean interim deaths of each), never above the
    stated rate (the larger of the two) by more than z·SE. 4000 trials each; z for a joint
    false-failure rate of 1e-4 over 4 checks. The final closed test keeps its level at HR 1
    (≤ 0.025 + z·SE)."""
    rule = AdaptiveEnrichment(cutoff=0.4, look=0.5, futility=0.1, enrich_if=0.5)
    plan = EnrichmentPlan(200, 300, 2.0, (1.0,), 0.05, 0.5, None, rule, 0.025)
    rng = np.random.default_rng()
    n, z = 4000, z_bound(1e-4, 4)
    rates, closed = [], []
    for hr in (1.0, 0.7):
        o = simulate_enrichment(_states(math.log(hr), n), _enrichment_population(), plan, rng)
        cf = false_enrichment_closed_form(
            rule, hr, o["interim_events_s"].mean(), o["interim_events_c"].mean(), 0.5
        )
        p = o["enrich"].mean()
        assert abs(p - cf) < z * math.sqrt(cf * (1 - cf) / n)
        rates.append(p)
        closed.append(cf)
        if hr == 1.0:
            assert (o["rej_f"] | o["rej_s"]).mean() < 0.025 + z * math.sqrt(0.025 * 0.975 / n)
    stated = max(closed)
    assert all(p < stated + z * math.sqrt(stated * (1 - stated) / n) for p in rates)


def test_enrichment_grid_compares_three_designs_on_a_biomarker_model():
    res = _grid({"kind": "none"}, enrichment={"cutoff": 3, "look": 0.5})
    e = res.enrichment
    assert {r.design for r in e.rows} == {"fixed all comers", "fixed enriched", "adaptive"}
    assert e.subgroup == "prio below 3" and 0 < e.prevalence < 1
    fixed = [r for r in e.rows if r.design == "fixed enriched" and r.true_hr is None][0]
    assert fixed.expected_screened > fixed.expected_randomised
    assert e.false_enrichment and e.stated_false_enrichment == max(
        f.closed_form for f in e.false_enrichment
    )


def test_recommendation_is_the_smallest_screened_design_meeting_the_criterion():
    def row(pop, ev, a, scr, reached=1.0):
        return DesignResult("p", pop, None, ev, 2 * ev, a, 0.01, 100, ev, 2 * ev, scr, 9.0,
                            reached, a, 0, 0, 1, 1, 0.7)  # fmt: skip

    res = NextPhaseResults("m", {"p": "x"}, "a", "r", {}, designs=[
        row("all", 400, 0.85, 800), row("below", 200, 0.82, 700), row("below", 150, 0.9, 500, 0.8),
        row("all", 600, 0.95, 1200)])  # fmt: skip
    rule = NextPhase(model="m", accrual={"time": 1}).recommend
    [r] = recommend(res, rule)
    assert (r.population, r.events) == ("below", 200)  # 150 deaths: P(D reached) 0.8 < 0.9
    assert "smallest expected number screened" in r.criterion
    res.designs = [row("all", 400, 0.5, 800)]
    [r] = recommend(res, rule)
    assert r.population is None and "highest assurance is 0.50" in r.note


@pytest.mark.slow
def test_auto_patients_per_event_reaches_the_target_deaths_nine_times_in_ten():
    """patients_per_event: auto sets N so that P(D reached by the cut) ≈ 0.9 under the design
    prior; the simulated P(D reached) of 2000 trials lies within 0.9 ± (z·SE + 0.03) (0.03: the
    integer N and the 400-draw, 1000-patient estimate of each draw's death probability); z for a
    false-failure rate of 1e-4 (3.89)."""
    cfg = NextPhase(model="m", accrual={"time": 1.0}, events=[60], trials=2000, oc_trials=100,
                    oc_hrs=[], calendar_cut=2.0, patients_per_event="auto",
                    executor="inprocess")  # fmt: skip
    res = run_next_phase(cfg, toy_draws(), _BiomarkerDesign())
    d = res.designs[0]
    assert abs(d.p_events_reached - 0.9) < 3.89 * math.sqrt(0.09 / 2000) + 0.03
    assert "auto" in next(iter(res.sizing.values()))


def test_calendar_cut_counts_from_the_first_randomisation():
    """The first patient of every trial enters at 0, so a trial cut by the calendar has a
    patient followed for exactly the cut (unless an event or dropout came first)."""
    rng = np.random.default_rng(1)
    d = TrialDesign(events=500, n_randomised=600, accrual_time=1.0, calendar_cut=0.2)
    sim = simulate_trials(_states(0.0, 50, log_base=(-6.0, -6.0)), _plain_population(), d, rng)
    assert np.allclose(sim.analysis_time, 0.2)
    longest = np.where(np.isfinite(sim.time), sim.time, 0).max(axis=1)
    assert np.allclose(longest, 0.2)


def _cfg(np_: dict):
    return parse_config({"name": "x", "data": {"kind": "synthetic", "n": 60},
                         "models": [{"name": "u"}],
                         "next_phase": {"model": "u", "accrual": {"time": 1}, **np_}})  # fmt: skip


@pytest.mark.parametrize(
    "bad, message",
    [
        ({"looks": [0.5]}, "the last 1"),
        ({"looks": [0.6, 0.5, 1.0]}, "increase strictly"),
        ({"looks": [0.5, 1.0], "efficacy": {"kind": "posterior", "gamma": [0.99]}}, "1 thresholds"),
        ({"futility": {"kind": "posterior", "threshold": 0.1}}, "needs an interim look"),
        ({"analysis": {"prior": {"kind": "power", "a0": 0.5}}}, "posterior rules only"),
        ({"analysis": {"prior": {"kind": "power", "weight": 0.5}}}, "do not apply"),
        ({"looks": [0.5, 1.0], "analysis": {"method": "bayes"}}, "refitted Bayesian model"),
        ({"efficacy": {"function": "pocock", "gamma": -2}}, "hsd"),
        ({"patients_per_event": "auto"}, "needs calendar_cut"),
        ({"enrichment": {"cutoff": 3}}, "biomarker"),
    ],
)
def test_sequential_config_is_validated_naming_the_key(bad, message):
    with pytest.raises(ConfigError, match=message):
        _cfg(bad)


def test_ok_sequential_config_describes_its_rules():
    c = _cfg({"looks": [0.5, 1.0], "futility": {"kind": "predictive", "threshold": 0.05}})
    n = c.next_phase
    assert n.sequential and n.efficacy_rule().function == "obrien_fleming"
    assert "O'Brien–Fleming" in n.efficacy_rule().describe(0.025)
    assert "non-binding" in n.futility.describe()
    assert DecisionRule().null_hr == 1.0


@pytest.mark.parametrize("kind", ["conditional_power", "predictive", "posterior"])
def test_binding_futility_keeps_alpha_with_futility_applied(kind):
    """Binding futility: with the futility stops in the continuation region the efficacy
    boundaries spend exactly α under HR 1 (a fixed point: conditional power and the predictive
    probability depend on the final boundary); the final boundary is lower than the non-binding
    one when futility can stop (deterministic, numerical integration)."""
    from trialbayes.config.next_phase import FutilitySpec

    def plan(binding):
        fut = FutilitySpec(kind=kind, threshold=0.2, binding=binding)
        return SequentialPlan(200, (0.5, 1.0), 0.025, 0.5, EfficacySpec(), fut, math.log(0.7))

    prior = vague(0.0, 2.0)
    looks = planned(plan(True), prior)
    assert sum(x.p_efficacy_null for x in looks) == pytest.approx(0.025, abs=1e-6)
    free = planned(plan(False), prior)
    assert looks[-1].efficacy_z <= free[-1].efficacy_z + 1e-9
    assert sum(x.p_efficacy_null for x in free) <= 0.025 + 1e-9  # non-binding: conservative
