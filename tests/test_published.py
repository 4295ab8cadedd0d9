"""Reanalysis from published estimates: MIROCALS numbers, closed form vs NUTS, tipping point,
shrinkage, assurance, and malformed inputs."""

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from helpers import mcse, run_cli, z_bound
from scipy import stats

from trialbayes.config.priors import (
    MixturePrior,
    NormalPrior,
    ScenarioSpec,
    StudentTPrior,
    scenario_prior,
    sceptical_sigma,
)
from trialbayes.config.schema import load_config
from trialbayes.data.evidence import evidence_of
from trialbayes.estimands import assurance as pos
from trialbayes.estimands.draws import hr_summary
from trialbayes.models.published import (
    PublishedSampler,
    conjugate_posterior,
    p_benefit_sceptical,
    posterior,
    prior_grid,
    quadrature_posterior,
    summary_normal,
    tipping_point,
)
from trialbayes.models.shrinkage import pooled, shrink

ROOT = Path(__file__).resolve().parents[1]
CFG = ROOT / "configs" / "mirocals_published.yaml"
THR, HARM = (1.0, 0.8), 1.1


@pytest.fixture(scope="module")
def evs():
    return {e.name: evidence_of(e) for e in load_config(CFG).data.estimates}


def test_se_from_ci_matches_reference(evs):
    assert evs["overall"].log_hr == pytest.approx(-0.211, abs=5e-4) and evs[
        "overall"
    ].se == pytest.approx(0.208, abs=5e-4)
    assert evs["low_pnfh"].se == pytest.approx(0.277, abs=1e-3) and evs[
        "high_pnfh"
    ].se == pytest.approx(0.357, abs=1e-3)


@pytest.mark.parametrize(
    "name,flat,scep",
    [("overall", 0.845, 0.818), ("low_pnfh", 0.991, 0.976), ("high_pnfh", 0.189, 0.250)],
)
def test_mirocals_probabilities_of_benefit(evs, name, flat, scep):
    ev = evs[name]
    assert posterior(
        ev, scenario_prior(ScenarioSpec(name="f", kind="flat")), THR, HARM
    ).hr.p_benefit == pytest.approx(flat, abs=0.005)
    assert posterior(ev, NormalPrior(mu=0, sigma=0.42), THR, HARM).hr.p_benefit == pytest.approx(
        scep, abs=0.005
    )


def test_sceptical_posterior_median_and_cri(evs):
    post = posterior(evs["overall"], NormalPrior(mu=0, sigma=0.42), THR, HARM)
    assert post.hr.median == pytest.approx(0.844, abs=0.005)
    assert post.hr.lower == pytest.approx(0.586, abs=0.005) and post.hr.upper == pytest.approx(
        1.217, abs=0.005
    )


def test_scenario_definitions():
    s = sceptical_sigma(0.5, 0.05)
    assert s == pytest.approx(0.4214, abs=1e-4)
    assert stats.norm.cdf(math.log(0.5), 0, s) == pytest.approx(0.05)
    enth = scenario_prior(ScenarioSpec(name="e", kind="enthusiastic"))
    assert stats.norm.sf(0, enth.mu, enth.sigma) == pytest.approx(0.05)  # P(HR > 1) = 5%
    pess = scenario_prior(ScenarioSpec(name="p", kind="pessimistic"))
    assert stats.norm.cdf(0, pess.mu, pess.sigma) == pytest.approx(0.05)


def _mc_checks(draws, exact, n_checks):
    """|Monte Carlo - exact| within z * MCSE for the median, the central-interval bounds and
    P(HR < t); z is the Bonferroni bound over ``n_checks`` for a total false-failure rate of
    1e-3 (the MCSE is ArviZ's, from the autocorrelated (chain, draw) samples)."""
    z = z_bound(1e-3, n_checks)
    mc = hr_summary(draws.ravel(), THR, HARM)
    for key, prob in (("median", None), ("lower", 0.025), ("upper", 0.975)):
        m, e = getattr(mc, key), getattr(exact, key)
        se = e * (mcse(draws, "median") if prob is None else mcse(draws, "quantile", prob))
        assert abs(m - e) <= z * se, (key, m, e, se)
    for t in ("1", "0.8"):
        se = mcse(draws < np.log(float(t)))
        assert abs(mc.p_hr_below[t] - exact.p_hr_below[t]) <= z * se, (t, mc, exact, se)
    return mc


@pytest.mark.slow
def test_closed_form_and_nuts_agree(evs):
    """Normal priors through the NUTS path (the model used for non-conjugate priors) vs the closed
    form: 2 estimates x 5 summaries, each within z * MCSE with z = 3.89 (Bonferroni over 10 checks
    for a total false-failure rate of 1e-3). 1.2M draws make the MCSE of a probability ~4e-4, so
    the check also shows agreement to about 3 decimals."""
    sampler = PublishedSampler(chains=4, draws=300_000, tune=1000, seed=3)
    for name in ("overall", "low_pnfh"):
        ev = evs[name]
        prior = NormalPrior(mu=0, sigma=0.42)
        exact = summary_normal(*conjugate_posterior(ev, prior), THR, HARM)
        draws = np.asarray(sampler.sample(ev, prior).posterior["log_hr"].values)
        _mc_checks(draws, exact, n_checks=10)
        assert mcse(draws < 0) < 1e-3
    assert sampler.compile_count == 1


PRIORS = [
    StudentTPrior(nu=3, mu=0, sigma=0.42),
    MixturePrior(
        weight=0.8, informative=NormalPrior(mu=0, sigma=0.42), vague=NormalPrior(mu=0, sigma=2)
    ),
]


@pytest.mark.slow
@pytest.mark.parametrize("prior", PRIORS, ids=["student_t", "mixture"])
def test_non_conjugate_priors_match_quadrature(evs, prior):
    """NUTS posteriors under Student-t and mixture priors against numerical quadrature: 2 priors
    x 2 estimates x 5 summaries, each within z * MCSE, z = 4.06 (Bonferroni over the 20 checks of
    both parametrised cases, total false-failure rate 1e-3). The 1-D posterior is smooth and
    unimodal, so the sampler must also run without divergences and pass the gate."""
    sampler = PublishedSampler(chains=4, draws=5000, tune=1000, seed=5)
    for ev in (evs["overall"], evs["adjusted"]):
        post = posterior(ev, prior, THR, HARM, sampler=sampler, seed=11)
        assert post.method.startswith("NUTS")
        assert post.diagnostics.divergences == 0 and post.diagnostics.reliable
        draws = np.asarray(sampler.sample(ev, prior, seed=11).posterior["log_hr"].values)
        quad = quadrature_posterior(ev, prior, THR, HARM)
        mc = _mc_checks(draws, quad, n_checks=20)
        assert mc.p_hr_below["1"] == pytest.approx(post.hr.p_hr_below["1"], abs=1e-12)


def test_quadrature_equals_closed_form_for_normal(evs):
    ev, prior = evs["low_pnfh"], NormalPrior(mu=-0.1, sigma=0.3)
    q, c = (
        quadrature_posterior(ev, prior, THR, HARM),
        summary_normal(*conjugate_posterior(ev, prior), THR, HARM),
    )
    assert q.p_benefit == pytest.approx(c.p_benefit, abs=1e-6)
    assert q.upper == pytest.approx(c.upper, abs=1e-5)


def test_prior_grid_closed_form_and_tipping_point(evs):
    ev = evs["low_pnfh"]
    g = prior_grid(ev, np.array([0.0, -0.3]), np.array([0.42, 1.0]))
    assert g[0, 0] == pytest.approx(p_benefit_sceptical(ev, 0.42))
    assert g[0, 0] == pytest.approx(0.976, abs=0.005)
    tp = tipping_point(ev, 0.95)
    assert p_benefit_sceptical(ev, tp.sd) == pytest.approx(0.95, abs=1e-9)
    assert p_benefit_sceptical(ev, tp.sd * 0.99) < 0.95 < p_benefit_sceptical(ev, tp.sd * 1.01)
    none = tipping_point(evs["overall"], 0.9)  # flat already gives 0.845 < 0.9
    assert none.sd is None and none.p_flat == pytest.approx(0.845, abs=0.005)


def test_assurance_with_point_mass_is_log_rank_power():
    """Closed forms exactly; the draw-based assurance vs the closed form with 400,000 iid draws:
    the SD of the per-draw power is 0.36 (measured), so the Monte Carlo SE is 5.6e-4 and the
    tolerance 2e-3 is 3.6 SE: false-failure rate 3e-4."""
    # textbook: HR 0.5, 1:1, one-sided 2.5%, 80% power needs 4 (1.96 + 0.8416)^2 / log(0.5)^2 = 65.3
    # events
    d = 4 * (stats.norm.ppf(0.975) + stats.norm.ppf(0.8)) ** 2 / math.log(0.5) ** 2
    assert d == pytest.approx(65.3, abs=0.1)
    assert pos.power(math.log(0.5), d) == pytest.approx(0.8, abs=1e-9)
    assert pos.assurance(math.log(0.5), 0.0, d) == pytest.approx(0.8, abs=1e-9)
    assert pos.assurance_draws(np.full(10, math.log(0.5)), d) == pytest.approx(0.8, abs=1e-9)
    at = lambda e: pos.assurance(math.log(0.5), 0.0, e)  # noqa: E731
    assert pos.events_for(at, 0.8, 1.0) == math.ceil(d) == 66  # whole events: the fewest with ≥ 80%
    # uncertainty lowers assurance below the power at the mean; draws agree with the closed form
    rng = np.random.default_rng(0)
    draws = rng.normal(-0.3, 0.2, 400_000)
    assert pos.assurance_draws(draws, 300) == pytest.approx(pos.assurance(-0.3, 0.2, 300), abs=2e-3)
    assert pos.assurance(-0.3, 0.2, 300) < pos.power(-0.3, 300)


def test_shrinkage_lies_between_unshrunk_and_pooled(evs):
    """Shrunk means lie strictly between each estimate and the pooled mean (-0.29): the gaps are
    > 0.05 on the log-HR scale, > 10 Monte Carlo SEs of a posterior mean from 4 x 4000 draws
    (SE ~0.004), so a correct sampler fails this with probability far below 1e-3. Divergences: 0
    in 60 seeds (100-159) of this fit; a few would not bias the means by 0.05, so up to 16 (0.1%
    of the 16,000 draws) are allowed rather than betting on exactly none."""
    group = [evs["low_pnfh"], evs["high_pnfh"]]
    res, _ = shrink(group, tau_sigma=0.5, draws=4000, seed=2)
    assert res.diagnostics.divergences <= 16
    p_mean, _ = pooled(group)
    for g, ev in zip(res.groups, group):
        m = g.shrunk.log_mean
        assert min(ev.log_hr, p_mean) < m < max(ev.log_hr, p_mean), (g.name, m, ev.log_hr, p_mean)
    c = res.contrasts[0]
    assert c.shrunk.median > c.unshrunk.median  # the contrast shrinks towards 1
    assert c.unshrunk.method == "published" and c.shrunk.method == "draws"


def test_shrinkage_collapses_to_pooled_when_tau_is_zero(evs):
    """With tau ~ 0 every group's posterior is the pooled normal: means within 0.01 (the MCSE of a
    mean from 4 x 4000 draws with SD ~0.17 is ~0.003: 3.7 SE per group, Bonferroni over 3 groups
    gives < 7e-4) and SDs within 5% (the relative SE of an SD estimate is ~1%: > 4 SE)."""
    group = [evs["low_pnfh"], evs["high_pnfh"], evs["overall"]]
    res, _ = shrink(group, tau_sigma=1e-4, draws=4000, seed=4)
    p_mean, p_se = pooled(group)
    for g in res.groups:
        assert g.shrunk.log_mean == pytest.approx(p_mean, abs=0.01)
        assert g.shrunk.log_sd == pytest.approx(p_se, rel=0.05)


@pytest.mark.slow
def test_published_cli_end_to_end(tmp_path):
    res = run_cli("run", CFG, "--out", tmp_path)
    assert res.exit_code == 0, res.output
    out = tmp_path / "mirocals_published"
    r = json.loads((out / "results.json").read_text())
    assert r["kind"] == "published" and r["schema_version"] == "3.1"
    sceptical = r["estimates"]["overall"]["scenarios"]["sceptical"]["hr"]
    assert sceptical["p_hr_below"]["1"] == pytest.approx(0.818, abs=0.005)
    assert r["published"]["compilations"] == 1
    assert set(r["published"]["assurance"]["designs"]) == {"all-comers", "enriched (low_pnfh)"}
    for f in (
        "report.md",
        "tables/posteriors.csv",
        "tables/prior_grid.csv",
        "tables/tipping_points.csv",
        "tables/subgroup_shrinkage.csv",
        "tables/assurance.csv",
        "figures/prior_grid.png",
        "figures/subgroup_shrinkage.png",
        "figures/assurance.png",
        "figures/forest_scenarios.png",
    ):
        assert (out / f).is_file(), f


BAD = [
    ({"hr": 0.81, "ci": [0.9, 1.2]}, "does not contain the estimate"),
    ({"hr": 0.81, "ci": [1.22, 0.54]}, "must be < upper"),
    ({"hr": -0.81, "ci": [0.54, 1.22]}, "HR must be > 0"),
    ({"hr": 0.0, "ci": [0.54, 1.22]}, "HR must be > 0"),
    ({"log_hr": -0.2, "se": 0}, "SE must be > 0"),
    ({"log_hr": -0.2, "se": -0.1}, "SE must be > 0"),
    ({"hr": 0.81, "ci": [0.54, 1.22], "ci_level": 1.5}, "ci_level must lie in (0, 1)"),
    ({"hr": 0.81, "ci": [0.54, 1.22], "ci_level": 0}, "ci_level must lie in (0, 1)"),
    ({"hr": 0.81}, "exactly one of ci, se or events"),
    ({"hr": 0.81, "ci": [0.54, 1.22], "se": 0.2}, "exactly one of ci, se or events"),
    ({"hr": 0.81, "ci": [0.0, 1.22]}, "CI bounds must be > 0"),
]


@pytest.mark.parametrize("est,msg", BAD)
def test_malformed_published_inputs(tmp_path, est, msg):
    cfg = yaml.safe_load(CFG.read_text())
    cfg["data"]["estimates"][0].update({k: None for k in ("hr", "ci", "log_hr", "se")})
    cfg["data"]["estimates"][0] = {
        k: v for k, v in cfg["data"]["estimates"][0].items() if v is not None
    }
    cfg["data"]["estimates"][0].update(est)
    p = tmp_path / "bad.yaml"
    p.write_text(yaml.safe_dump(cfg))
    res = run_cli("run", p, "--out", tmp_path / "out")
    assert res.exit_code == 2
    assert msg in res.stderr and "overall" in res.stderr
    assert not (tmp_path / "out").exists()


def test_events_per_arm_give_schoenfeld_se():
    from trialbayes.config.data_sources import PublishedEstimate

    ev = evidence_of(PublishedEstimate(name="x", hr=0.81, events={"treatment": 41, "control": 49}))
    assert ev.se == pytest.approx(math.sqrt(1 / 41 + 1 / 49))
    assert ev.se == pytest.approx(2 / math.sqrt(90), abs=0.005)


def test_prior_driven_published_estimates_are_flagged(tmp_path):
    """An estimate from 3 + 6 events (SE 0.71) under sceptical and enthusiastic priors (SD 0.42):
    the posterior interval is 86% as wide as either prior's, so every answer is mostly prior: a
    warning in results.json, at the top of report.md and report.html, and PRIOR-DRIVEN on the
    CLI line; a precise estimate beside it is not flagged (closed forms: no sampling)."""
    cfg = {
        "name": "sparse",
        "data": {
            "kind": "published",
            "label": "two estimates",
            "estimates": [
                {"name": "tiny", "hr": 0.5, "events": {"treatment": 3, "control": 6}},
                {"name": "solid", "hr": 0.8, "ci": [0.7, 0.92]},
            ],
        },
        "published": {
            "design_hr": 0.5,
            "scenarios": [
                {"name": "sceptical", "kind": "sceptical"},
                {"name": "enthusiastic", "kind": "enthusiastic"},
            ],
        },
        "report": {"figures": False},
    }
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    res = run_cli("run", tmp_path / "c.yaml", "--out", tmp_path / "out")
    assert res.exit_code == 0, res.output
    line = {
        ln.split()[0]: ln
        for ln in res.stdout.splitlines()
        if ln.startswith("  ") and "P(HR<1)" in ln
    }
    assert "[PRIOR-DRIVEN]" in line["tiny"] and "PRIOR" not in line["solid"]
    out = tmp_path / "out" / "sparse"
    flags = json.loads((out / "results.json").read_text())["flags"]
    got = {(f["code"], f["model"]) for f in flags}
    assert got == {
        ("prior_dominated", "tiny"),
        ("few_events_in_arm", "tiny"),
        ("few_events", "tiny"),
    }
    share = next(f for f in flags if f["code"] == "prior_dominated")["detail"]["width_share"]
    assert share["sceptical"] == pytest.approx((1 / 0.4214**2 + 1 / 0.5) ** -0.5 / 0.4214, rel=0.01)
    md = (out / "report.md").read_text()
    assert md.index("prior_dominated, tiny") < md.index("## Summary")
    assert "Under every prior scenario" in (out / "report.html").read_text()
