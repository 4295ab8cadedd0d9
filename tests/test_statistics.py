"""Slower statistical tests: interval coverage over replicate synthetic trials, agreement with Cox
on a real randomised trial, refits without recompilation, and the default analysis' diagnostics."""

import json
from pathlib import Path

import numpy as np
import pytest
from recovery import acceptance_region, run_coverage

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.priors import NormalPrior
from trialbayes.config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.estimands.frequentist import cox_fit
from trialbayes.models.pem import PiecewiseExponentialModel

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.slow
def test_interval_coverage_over_replicate_trials():
    """90% intervals of the treatment effect and of the treatment x biomarker interaction hold the
    generator's truth at the nominal rate over R = 200 replicate trials (N = 220, ~90 events),
    all fitted by refitting ONE compiled model.

    Under weak priors the credible interval is close to a confidence interval, so a correct
    likelihood and sampler cover at ~90%: the count of covering intervals is Binomial(200, 0.9)
    (mean 180, SD 4.2). Acceptance region from the exact binomial quantiles with 5e-4 shared by the
    2 counts (Bonferroni, half per tail): [163, 194]; at exactly 90% coverage the test fails with
    probability 2.5e-4. Measured (README, "Tests"): 180 and 177 of 200, z-scores mean +0.06 /
    -0.22, SD 1.00 / 0.99; if the interaction's -0.22 SD shift is a real small-sample bias, its
    coverage is 0.892 and the total false-failure rate 5.6e-4: below 1e-3 either way. It has
    power: with the exposure dropped from the likelihood (every patient one time unit in its exit
    interval) the counts were 123 and 4 of 200.
    """
    res = run_coverage(r=200, level=0.9)
    lo, hi = acceptance_region(res.replicates, res.level, false_failure=5e-4, n_checks=2)
    assert res.compile_count == 1, "refits recompiled"
    for term, k in res.covered.items():
        z = np.asarray(res.z[term])
        assert lo <= k <= hi, (
            f"{term}: {k}/{res.replicates} intervals hold the truth, outside"
            f" [{lo}, {hi}]; mean z {z.mean():+.2f}, SD {z.std():.2f}"
        )


@pytest.mark.slow
def test_agreement_with_cox_on_rossi():
    """Weak priors on lifelines' Rossi recidivism trial (financial aid randomised): posterior means
    within 0.25 posterior SD of Cox, posterior SDs within 20% of Cox SEs.

    The data are fixed, so the only randomness is Monte Carlo: MCSE of a mean 0.010 SD, of an SD
    0.014 SD (4 x 1500 draws, measured). Measured differences (PEM with 12 intervals vs Cox's
    partial likelihood): |mean - Cox| <= 0.128 SD, |SD / SE - 1| <= 0.04, so each check has a
    margin of > 11 MCSE: false-failure rate < 1e-20 per check.

    The gate. This test once asked for zero divergences at target_accept 0.95 with one seed, which
    passed here and failed on CI: a sweep of 40 sampler seeds at 0.95 gave divergences in 27 fits
    (mean 1.3, max 6). At the package's default for this sparse-event, non-centred baseline (0.99,
    `model.default_target_accept`) 40 seeds gave 1 fit with 1 divergence; R-hat - 1 <= 0.0053,
    bulk ESS >= 1006. So the test runs the default and allows up to 6 divergences (0.1% of 6,000
    draws): with a per-fit mean of at most 0.075 (the 95% upper bound from 1 in 40 fits, taking
    any-divergence fits as single ones), P(count >= 7) < 1e-11 for a Poisson count, and still
    4e-4 if the mean were the 1.3 seen at 0.95. R-hat <= 1.01 has a margin of ~2x the largest
    of 40 (a log-normal fit to the 40 values of R-hat - 1 puts a miss at 4e-6); ESS >= 400 a
    margin of 2.5x."""
    from lifelines.datasets import load_rossi

    rossi = load_rossi().reset_index(names="id")
    covs = ["age", "race", "wexp", "mar", "paro", "prio"]
    data = from_frame(
        rossi,
        ColumnMap(
            id="id", time="week", event="arrest", arm="fin", treatment_level=1, covariates=covs
        ),
    )
    spec = ModelSpec(name="rossi", covariates="all", covariate_pooling="none")
    weak = {
        "treatment": {"family": "normal", "sigma": 10},
        "covariates": {"family": "normal", "sigma": 10},
    }
    m = PiecewiseExponentialModel(
        spec,
        priors=weak,
        baseline=Baseline(n_intervals=12),
        sampler=SamplerSpec(chains=4, draws=1500, tune=1000, seed=5),
        diagnostics=Diagnostics(max_divergences=6),
    ).fit(data)
    assert m.reliable, m.diagnostics.failures
    cox = cox_fit(m.design, data.frame["time"].to_numpy()).terms
    d = m.draws()
    pairs = [("treatment", d["treatment"])] + [
        (c, d["covariate_effects"][:, j]) for j, c in enumerate(m.design.cov_names)
    ]
    for name, v in pairs:
        mean, sd = v.mean(), v.std(ddof=1)
        c = cox[name]
        assert abs(mean - c.log_mean) <= 0.25 * sd, (name, mean, c.log_mean, sd)
        assert abs(sd / c.log_sd - 1) <= 0.20, (name, sd, c.log_sd)


def test_refit_and_prior_swap_reuse_the_compiled_model():
    """New data of the same shape and new treatment priors go through pm.Data: one compilation.

    Swapping the arms flips the sign of the treatment log-HR: posterior SD ~0.26 (~60 events),
    2 x 300 draws (ESS > 300) give a Monte Carlo SE < 0.015 per mean, < 0.021 for the sum of the
    two means, so the tolerance 0.08 is > 3.8 SE (false-failure rate < 1.5e-4; the priors are
    symmetric about 0, the baseline prior's asymmetry moves the mean by < 0.01). A N(log 2, 0.01^2)
    prior has ~650 times the likelihood's precision: the mean moves < 0.002 from log 2, MCSE
    < 0.001, tolerance 0.02."""
    df, truth = generate(n=150, seed=2)
    cols = ColumnMap(**SYNTHETIC_COLUMNS)
    data = from_frame(df, cols)
    m = PiecewiseExponentialModel(
        ModelSpec(name="u"),
        baseline=Baseline(n_intervals=4),
        sampler=SamplerSpec(chains=2, draws=300, tune=300, seed=1, target_accept=0.95),
        diagnostics=Diagnostics(ess_bulk_min=100, ess_tail_min=100),
    ).fit(data)
    first = m.draws()["treatment"].mean()
    # same shape, different data: swap the arms, the treatment log-HR should flip sign
    df2 = df.assign(arm=np.where(df["arm"] == "IL-2LD", "placebo", "IL-2LD"))
    m.refit(from_frame(df2, cols))
    flipped = m.draws()["treatment"].mean()
    assert flipped == pytest.approx(-first, abs=0.08)
    # a very tight prior at log(2) pulls the posterior there
    m.fit(prior_overrides={"treatment": NormalPrior(mu=np.log(2), sigma=0.01)})
    assert m.draws()["treatment"].mean() == pytest.approx(np.log(2), abs=0.02)
    assert m.sampler.compile_count == 1


@pytest.mark.slow
def test_default_analysis_passes_the_gate(tmp_path):
    """`make run`'s analysis (3 models, 4 x 2000 draws) passes its own diagnostics gate: no
    divergence, R-hat <= 1.01, bulk and tail ESS >= 400. Reproducibility of reruns is tested in
    test_pipeline.py.

    SamplerSpec seeds swept (README, "Tests"): at 4 x 1000 draws 2 of 60 fits missed R-hat 1.01
    (1.0105 and 1.0188, on the hierarchical scales centre_sigma and baseline_rw_sigma), which is
    why the default is 2000 draws; at 4 x 2000, 45 of 45 fits passed with R-hat - 1 at most 0.0051
    (median 0.0019), no divergence, bulk ESS >= 1425, tail ESS >= 1187. The rate is estimated, not
    derived: a log-normal fitted to each model's R-hat - 1 puts a miss at 2e-4 for the three
    models together (the same fit at 1000 draws predicted 7% for the adjusted model, where 2 of
    20 were seen); 0 of 45 alone would only bound it by 6.4% (95%).
    """
    from helpers import run_cli

    cfg = ROOT / "configs" / "mirocals.yaml"
    res = run_cli("run", cfg, "--out", tmp_path / "a")
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "a" / "mirocals" / "results.json").read_text())
    for name, m in r["models"].items():
        assert m["diagnostics"]["divergences"] == 0, name
        assert m["diagnostics"]["rhat_max"] <= 1.01, name
        assert m["reliable"], name


@pytest.mark.slow
def test_prior_sensitivity_refits_without_recompiling(tmp_path):
    """Scenario refits reuse the compiled model, move the HR as the priors say, and leave the
    main fit's results untouched."""
    import yaml
    from helpers import run_cli

    base = {
        "name": "sens",
        "data": {"kind": "synthetic", "n": 220, "seed": 20250601},
        "models": [
            {"name": "unadj"},
            {"name": "inter", "interaction": "linear", "biomarker": "pnfh"},
        ],
        "sampler": {"chains": 2, "draws": 400, "tune": 400, "seed": 4},
        "diagnostics": {
            "ess_bulk_min": 100,
            "ess_tail_min": 100,
            "rhat_max": 1.05,
            "max_divergences": 3,
        },
        "report": {"figures": False},
    }
    results = {}
    for enabled in (False, True):
        cfg = dict(base, sensitivity={"enabled": enabled})
        p = tmp_path / f"s{enabled}.yaml"
        p.write_text(yaml.safe_dump(cfg))
        res = run_cli("run", p, "--out", tmp_path / f"o{enabled}")
        assert res.exit_code == 0, res.output
        results[enabled] = json.loads(
            (tmp_path / f"o{enabled}" / "sens" / "results.json").read_text()
        )
    assert results[True]["models"] == results[False]["models"]
    s = results[True]["sensitivity"]
    for m in ("unadj", "inter"):
        assert s["compilations"][m] == {"compilations": 1, "during_scenarios": 0}
    tab = {r["scenario"]: r["treatment"] for r in s["refits"] if r["model"] == "unadj"}
    assert set(tab) == {
        "flat",
        "sceptical",
        "enthusiastic",
        "pessimistic",
        "heavy_tailed",
        "robust_mixture",
    }
    # the sceptical prior pulls towards HR 1, the enthusiastic one further below, the pessimistic
    # above
    assert (tab["enthusiastic"]["median"] < tab["flat"]["median"] < tab["sceptical"]["median"]
            < tab["pessimistic"]["median"])  # fmt: skip
    assert {(r["model"], r["parameter"]) for r in s["psense"]} == {
        ("unadj", "treatment"),
        ("inter", "treatment"),
        ("inter", "interaction"),
    }
