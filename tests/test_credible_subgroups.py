"""The HR curve's range and its simultaneous inference: the grid over the observed biomarker
range, honest ends of a benefit range, the max-|t| simultaneous credible band and the credible
subgroups (Schnell et al. 2016) — by simulation against a known posterior, by properties that
hold for every posterior, and end to end on the shared run and on a trial that is not MIROCALS."""

import json

import matplotlib
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialbayes.estimands.credible import (
    biomarker_grid,
    credible_subgroups,
    curve_grid,
    grid_spans,
    max_t_band,
    simultaneous_band,
)
from trialbayes.plots.journal import hr_curve_figure
from trialbayes.results.credible import CredibleSubgroup, Span, spans_text

# ----------------------------------------------------------------------------- known posteriors
G = 40
X = np.linspace(0.0, 1.0, G)
#: a smooth Gaussian process on the grid: squared-exponential kernel, SD 0.3, length 0.15
_K = 0.3**2 * np.exp(-0.5 * ((X[:, None] - X[None, :]) / 0.15) ** 2) + 1e-6 * np.eye(G)
_LK = np.linalg.cholesky(_K)


def linear_posterior(rng, n):
    """log HR(x) = β + δ·z(x), (β, δ) bivariate normal: the linear interaction model's shape."""
    z = -1.5 + 4 * X
    cov = np.linalg.cholesky(np.array([[0.04, 0.01], [0.01, 0.02]]))
    bd = rng.standard_normal((n, 2)) @ cov.T + np.array([-0.3, 0.25])
    return bd[:, :1] + bd[:, 1:] * z


def gp_posterior(rng, n):
    """A wiggly curve (about 7 effective dimensions): a spline model's shape."""
    return rng.standard_normal((n, G)) @ _LK.T


def skewed_posterior(rng, n):
    """Not Gaussian: centred exponentials through the same kernel (skewed at every x)."""
    return (rng.exponential(1.0, (n, G)) - 1.0) @ _LK.T + 0.1


POSTERIORS = {"linear": linear_posterior, "gp": gp_posterior, "skewed": skewed_posterior}


def _acceptance(r, p, false_failure):
    tail = false_failure / 2
    return int(stats.binom.ppf(tail, r, p)), int(stats.binom.isf(tail, r, p))


# ----------------------------------------------------------------------------- coverage
@pytest.mark.parametrize("family", ["linear", "gp", "skewed"])
def test_simultaneous_band_covers_the_whole_curve_at_its_level(family):
    """The truth drawn from the posterior itself lies wholly inside the 90% max-|t| band in 90%
    of replicates, for a linear, a wiggly and a skewed (non-Gaussian) posterior.

    Per replicate: M = 1000 posterior draws and one truth from the same distribution; the band
    is built from the draws only. The count of covering replicates out of R = 1000 is
    Binomial(1000, q) with q = 0.9 up to an O(1/M) deficit (the truth is standardised out of
    sample, the draws in sample). Measured over 10 000 replicates of this set-up: q = 0.902
    (GP), 0.898 (skewed), 0.900 (linear), SE 0.003 — no deficit visible at M = 1000 (at M = 500
    the GP's was 0.007). Acceptance region: the exact binomial quantiles at q = 0.9 with
    false-failure 1e-3 per family (3e-3 for the three; 1.6e-3 per family if q were 0.897, the
    measurement's 1-SE bound). Power: the pointwise 90% band covers the whole curve in 75%
    (linear), 46% (GP) and 43% (skewed) of replicates (measured, R = 4000), far below the
    region's lower end (0.87)."""
    rng = np.random.default_rng({"linear": 11, "gp": 12, "skewed": 13}[family])
    draw = POSTERIORS[family]
    r, m, level = 1000, 1000, 0.9
    hits = 0
    for _ in range(r // 50):  # 50 replicates drawn at once (one matrix product)
        for d in draw(rng, 50 * (m + 1)).reshape(50, m + 1, G):
            lo, hi, _, inside = max_t_band(d[1:], level)
            assert inside >= level  # at least `level` of the draws lie wholly inside
            hits += bool(((d[0] >= lo) & (d[0] <= hi)).all())
    a, b = _acceptance(r, level, 1e-3)
    assert a <= hits <= b, f"{family}: {hits}/{r} curves inside, region [{a}, {b}]"


def test_band_is_wider_than_pointwise_and_equal_to_it_on_one_point():
    """c ≥ the pointwise normal quantile (the max over the grid is at least any one |t|); on a
    single grid point the band is the pointwise one (c = the level quantile of |t|)."""
    rng = np.random.default_rng(2)
    d = gp_posterior(rng, 8000)
    band, lo, hi = simultaneous_band(d, 0.95)
    assert band.critical_value > 1.96 + 0.2 and band.pointwise_critical_value == pytest.approx(
        1.96, abs=1e-3
    )
    q_lo, q_hi = np.quantile(d, [0.025, 0.975], axis=0)
    assert (lo < q_lo).all() and (hi > q_hi).all()
    one = d[:, :1]
    _, _, c, _ = max_t_band(one, 0.95)
    t = np.abs(one[:, 0] - one.mean()) / one.std(ddof=1)
    assert c == pytest.approx(np.quantile(t, 0.95, method="inverted_cdf"))
    assert c == pytest.approx(1.96, abs=0.06)  # 8000 normal draws: MCSE of the quantile ~0.03


# ----------------------------------------------------------------------------- properties
def test_exclusive_subgroup_lies_in_the_pointwise_benefit_region_for_any_posterior():
    """Deterministic: at every x of the exclusive subgroup the share of draws with HR < t is at
    least the level (c is at least the level quantile of |t(x)| over draws), so at level 0.95 the
    exclusive subgroup lies inside the pointwise region P(HR < t) > 0.9; and exclusive ⊆
    inclusive. Checked on 300 random posteriors of the three shapes (shifted so that every kind
    of overlap occurs); no randomness can make it fail."""
    rng = np.random.default_rng(5)
    grid = np.linspace(100.0, 5000.0, G)
    for i in range(300):
        d = POSTERIORS[list(POSTERIORS)[i % 3]](rng, 400) + rng.normal(-0.3, 0.4)
        _, lo, hi = simultaneous_band(d, 0.95)
        for cs in credible_subgroups(grid, lo, hi, [1.0, 0.8], 0.95):
            p_below = (d < np.log(cs.threshold)).mean(axis=0)
            for sp in cs.exclusive:
                inside = (grid >= sp.lower) & (grid <= sp.upper)
                assert (p_below[inside] >= 0.95).all() and (p_below[inside] > 0.9).all()
                assert any(s.lower <= sp.lower and sp.upper <= s.upper for s in cs.inclusive)


def test_flat_true_curve_gives_no_exclusive_benefit_subgroup_beyond_the_rate():
    """No effect anywhere (log HR ≡ 0); the posterior is exactly N(f̂, Σ) with f̂ ~ N(0, Σ) (flat
    prior, Gaussian likelihood: the posterior mean is the estimate). A non-empty exclusive
    benefit subgroup needs the band to miss the truth, so its rate is at most 1 − level = 0.05
    (about half of it: the band misses on the benefit side). R = 1500 replicates of M = 1000
    draws, wiggly GP posterior (Σ as in the coverage test): the count must stay below the
    binomial upper quantile at rate 0.05 with false-failure 1e-3 (102). Measured (R = 3000):
    2.4%. Power: the pointwise benefit region P(HR < 1) > 0.9 is non-empty in 49% of the same
    replicates (asserted > 30%: P(count ≤ 450 | 49%) < 1e-30), and an exclusive subgroup built
    from the pointwise 95% band in 18% (a count near 270, far above 102): either would fail."""
    rng = np.random.default_rng(7)
    grid = np.linspace(1.0, 40.0, G)
    r, m = 1500, 1000
    exclusive = pointwise = 0
    for _ in range(r // 50):  # 50 replicates drawn at once (one matrix product)
        for block in gp_posterior(rng, 50 * (m + 1)).reshape(50, m + 1, G):
            d = block[0] + block[1:]  # the estimate f̂ ~ N(0, Σ), then the posterior N(f̂, Σ)
            _, lo, hi = simultaneous_band(d, 0.95)
            cs = credible_subgroups(grid, lo, hi, [1.0], 0.95)[0]
            exclusive += bool(cs.exclusive)
            pointwise += bool(((d < 0).mean(axis=0) > 0.9).any())
    assert exclusive <= int(stats.binom.isf(1e-3, r, 0.05)), exclusive
    assert pointwise > 0.3 * r, pointwise


# ----------------------------------------------------------------------------- grid and spans
def test_grid_spans_the_5th_to_95th_percentiles_and_says_who_is_outside():
    x = np.arange(1.0, 101.0)  # 1..100
    g = biomarker_grid(x, log=False, n=30)
    assert g[0] == pytest.approx(np.quantile(x, 0.05)) and g[-1] == pytest.approx(
        np.quantile(x, 0.95)
    )
    cg = curve_grid(x, g, (0.05, 0.95), log=False)
    assert (cg.n_below, cg.n_above, cg.n_patients, cg.spacing) == (5, 5, 100, "linear")
    assert "5th–95th percentiles" in cg.text("u") and "5 patients below and 5 above" in cg.text()
    lg = biomarker_grid(x, log=True, n=30, quantiles=(0.1, 0.9))
    assert np.allclose(np.diff(np.log(lg)), np.diff(np.log(lg))[0])  # geometric on a log scale
    assert biomarker_grid(np.full(10, 3.0), log=False, n=30).tolist() == [3.0]
    # log(x + 1) of a biomarker with zeros: even steps in log(x + 1), from 0 exactly
    z = np.concatenate([np.zeros(30), np.arange(1.0, 71.0)])
    og = biomarker_grid(z, log=True, n=30, offset=1.0)
    assert og[0] == np.quantile(z, 0.05) == 0.0 and og[-1] == np.quantile(z, 0.95)
    assert np.allclose(np.diff(np.log(og + 1)), np.diff(np.log(og + 1))[0])
    assert curve_grid(z, og, (0.05, 0.95), log=True, offset=1.0).spacing == "log"
    assert biomarker_grid(z, log=True, n=30)[1] == pytest.approx(og[-1] / 29)  # no offset: even


def test_a_range_that_reaches_the_grid_end_says_so():
    """Issue 18.9: "P(HR < 1) > 0.9 from 1 to 14.1" when 14.1 is where the curve stops — the
    bound must read as the largest value shown, not as the end of the benefit range."""
    grid = np.linspace(1.0, 14.1, 12)
    spans = grid_spans(grid, grid >= 4)  # the benefit range runs off the right end
    assert spans == [Span(float(grid[3]), 14.1, False, True)]
    assert (
        spans[0].text("arrests") == f"from {grid[3]:.3g} to the largest value shown (14.1) arrests"
    )
    two = grid_spans(grid, (grid < 3) | ((grid > 6) & (grid < 9)))
    assert [(s.from_grid_start, s.to_grid_end) for s in two] == [(True, False), (False, False)]
    assert spans_text(two).startswith("from the smallest value shown (1) to ")
    assert spans_text([]) == "nowhere on the range shown"
    assert grid_spans(grid, np.ones(12, bool)) == [Span(1.0, 14.1, True, True)]


def test_credible_subgroup_sentence_and_shares():
    grid = np.linspace(0.0, 10.0, 11)
    lo = np.log(np.linspace(0.2, 2.0, 11))  # lower band crosses 1 between 4 and 5
    hi = np.log(np.linspace(0.5, 5.0, 11))  # upper band crosses 1 between 1 and 2
    values = np.arange(0.0, 10.5, 0.5)  # 21 patients
    cs = credible_subgroups(grid, lo, hi, [1.0], 0.95, values)[0]
    assert cs.exclusive == [Span(0.0, 1.0, True, False)]
    assert cs.inclusive == [Span(0.0, 4.0, True, False)]
    assert cs.exclusive_share == pytest.approx(3 / 21) and cs.inclusive_share == pytest.approx(
        9 / 21
    )
    txt = cs.text("x", "u")
    assert "HR < 1 at every x from the smallest value shown (0) to 1 u" in txt
    assert "HR ≥ 1 credibly elsewhere on the range shown" in txt
    whole = CredibleSubgroup(1.0, 0.95, [], [Span(0.0, 10.0, True, True)])
    assert "cannot be excluded anywhere" in whole.text("x")


def test_hr_curve_figure_draws_the_bands_and_subgroups_on_four_given_axes():
    backend = matplotlib.get_backend()
    x = np.linspace(500, 8000, 40)
    curve = pd.DataFrame(
        {
            "biomarker": x,
            "median": np.exp(-1 + x / 4000),
            "lower": np.exp(-1.5 + x / 4000),
            "upper": np.exp(-0.5 + x / 4000),
            "lower_simultaneous": np.exp(-1.7 + x / 4000),
            "upper_simultaneous": np.exp(-0.3 + x / 4000),
            "p_hr_below_1": 1 - x / 8000,
            "p_hr_below_0.8": 0.8 - x / 10000,
        }
    )
    subs = [
        CredibleSubgroup(
            1.0,
            0.95,
            [Span(500.0, 1500.0, True, False)],
            [Span(500.0, 5000.0, True, False)],
            0.2,
            0.7,
        ),
        CredibleSubgroup(0.7, 0.95, [], [Span(500.0, 3000.0, True, False)], 0.0, 0.4),
    ]
    fig, axes = plt.subplots(4, 1)
    got = hr_curve_figure(
        curve, "pnfh", "pg/mL", np.r_[100.0, x, 9000.0], axes=list(axes), subgroups=subs
    )
    assert got is fig and len(axes[1].patches) == 3  # inclusive and exclusive bars, 1 and 0.7
    # one colour per threshold across panels: the HR < 1 bars are the P(HR < 1) line's colour,
    # the HR < 0.7 bars none of the probability lines' (P(HR < 0.8) is another threshold)
    lines = {ln.get_label(): matplotlib.colors.to_hex(ln.get_color()) for ln in axes[2].lines}
    bars = [matplotlib.colors.to_hex(pt.get_facecolor()[:3]) for pt in axes[1].patches]
    assert bars[0] == bars[1] == lines["P(HR < 1)"]
    assert bars[2] not in (lines["P(HR < 1)"], lines["P(HR < 0.8)"])
    assert any("simultaneous" in t.get_text() for t in axes[0].get_legend().get_texts())
    assert any("1 below, 1 above" in t.get_text() for t in axes[3].texts)
    assert axes[3].get_xlim() == (500.0, 8000.0)
    assert matplotlib.get_backend() == backend
    plt.close(fig)


# ----------------------------------------------------------------------------- end to end
def test_shared_run_reports_the_band_and_the_credible_subgroups(small_run):
    """results.json: hr_curve.grid (5th–95th percentiles), .simultaneous, .credible_subgroups
    (one per threshold, exclusive inside inclusive); the CSV's simultaneous band contains the
    pointwise one; report.md / report.html say it; `trialbayes report` reads it back typed."""
    from trialbayes.results.io import load_results

    tmp, _, res = small_run
    out = tmp / "out" / "mirocals"
    hc = json.loads((out / "results.json").read_text())["models"]["interaction"]["hr_curve"]
    assert hc["grid"]["quantiles"] == [0.05, 0.95] and hc["grid"]["n_points"] == 60
    assert hc["grid"]["n_below"] == hc["grid"]["n_above"] == 11  # 5% of 220
    sim = hc["simultaneous"]
    assert sim["level"] == 0.95 and sim["critical_value"] > sim["pointwise_critical_value"]
    assert sim["coverage_of_draws"] >= 0.95
    assert [c["threshold"] for c in hc["credible_subgroups"]] == [1.0, 0.8]
    for c in hc["credible_subgroups"]:
        for e in c["exclusive"]:
            assert any(s["lower"] <= e["lower"] <= e["upper"] <= s["upper"] for s in c["inclusive"])
        assert c["exclusive_share"] <= c["inclusive_share"]
    tab = pd.read_csv(out / "tables" / "hr_curve_interaction.csv")
    assert (tab["lower_simultaneous"] <= tab["lower"]).all()
    assert (tab["upper_simultaneous"] >= tab["upper"]).all()
    report = (out / "report.md").read_text()
    assert "exclusive credible subgroup" in report and "5th–95th percentiles" in report
    assert "\n- jointly with probability ≥ 95%, HR &lt; 1 at every pnfh" in report  # a list item
    assert "simultaneous band" in (out / "report.html").read_text()
    r = load_results(out / "results.json")
    back = r.models["interaction"].hr_curve
    assert isinstance(back.credible_subgroups[0], CredibleSubgroup)
    assert isinstance(back.benefit_range[0], Span) and back.simultaneous.level == 0.95


def test_rossi_prio_credible_subgroups_through_the_cli(tmp_path):
    """A trial that is not MIROCALS: Rossi's recidivism trial (financial aid randomised), prio
    (prior arrests, a count with zeros) as a linear effect modifier, the curve over the 10th–90th
    percentiles (configured) and credible subgroups at HR < 1 and < 0.7 at 90%."""
    from helpers import rossi_case, run_cli
    from lifelines.datasets import load_rossi

    cfg = rossi_case(
        tmp_path,
        covariates=("age", "wexp"),
        name="rossi",
        models=[
            {"name": "inter", "covariates": "all", "interaction": "linear", "biomarker": "prio"}
        ],
        sampler={"chains": 2, "draws": 400, "tune": 400, "seed": 3},
        diagnostics={
            "ess_bulk_min": 100,
            "ess_tail_min": 100,
            "rhat_max": 1.05,
            "allow_unreliable": True,
        },
        estimands={
            "hr_curve_quantiles": [0.1, 0.9],
            "credible_subgroups": {"thresholds": [0.7], "level": 0.9},
        },
        report={"figures": False},
    )
    res = run_cli("run", cfg, "--out", tmp_path / "o")
    assert res.exit_code == 0, res.output
    r = json.loads((tmp_path / "o" / "rossi" / "results.json").read_text())
    hc = r["models"]["inter"]["hr_curve"]
    prio = load_rossi()["prio"].to_numpy(float)
    assert hc["grid"]["lower"] == pytest.approx(np.quantile(prio, 0.1))
    assert hc["grid"]["upper"] == pytest.approx(np.quantile(prio, 0.9))
    assert hc["grid"]["n_above"] == int((prio > np.quantile(prio, 0.9)).sum())
    assert [(c["threshold"], c["level"]) for c in hc["credible_subgroups"]] == [
        (1.0, 0.9),
        (0.7, 0.9),
    ]
    report = (tmp_path / "o" / "rossi" / "report.md").read_text()
    assert "10th–90th percentiles" in report and "jointly with probability ≥ 90%" in report


def test_a_schema_3_0_results_file_keeps_its_benefit_region(small_run, tmp_path):
    """`trialbayes report` on a results.json written before schema 3.1: its benefit_region
    [lo, hi] is read as one span (ends not known to be the grid's), not dropped; the file is
    rewritten at 3.1."""
    from trialbayes.results.io import load_results

    tmp, _, _ = small_run
    r = json.loads((tmp / "out" / "mirocals" / "results.json").read_text())
    assert r["schema_version"] == "3.1"
    r["schema_version"] = "3.0"
    hc = r["models"]["interaction"]["hr_curve"]
    for k in ("grid", "simultaneous", "credible_subgroups", "benefit_range"):
        hc.pop(k)
    hc["benefit_region"] = [645.0, 2637.0]
    (tmp_path / "results.json").write_text(json.dumps(r))
    back = load_results(tmp_path / "results.json")
    hc = back.models["interaction"].hr_curve
    assert hc.benefit_range == [Span(645.0, 2637.0, False, False)]
    assert hc.grid is None and hc.credible_subgroups == []
    assert back.schema_version == "3.1"


def test_a_schema_2_0_results_file_turns_its_benefit_region_into_a_range():
    """The 2.0 fixture (tests/data/results_2_0/mirocals.json) migrates through 3.0 to 3.1."""
    from pathlib import Path

    from trialbayes.results.io import results_from_dict

    path = Path(__file__).parent / "data" / "results_2_0" / "mirocals.json"
    d = json.loads(path.read_text())
    lo, hi = d["models"]["interaction"]["hr_curve"]["benefit_region"]
    hc = results_from_dict(d, path.name).models["interaction"].hr_curve
    assert hc.benefit_range == [Span(lo, hi, False, False)]


@pytest.mark.parametrize(
    "estimands,key",
    [
        ({"hr_curve_quantiles": [0.9, 0.1]}, "hr_curve_quantiles"),
        ({"hr_curve_quantiles": [0.05]}, "hr_curve_quantiles"),
        ({"credible_subgroups": {"level": 0.3}}, "credible_subgroups.level"),
        ({"credible_subgroups": {"thresholds": [-1]}}, "credible_subgroups.thresholds"),
        ({"credible_subgroups": {"levle": 0.9}}, "credible_subgroups: unknown key 'levle'"),
    ],
)
def test_bad_curve_settings_are_refused_naming_the_key(estimands, key):
    from trialbayes.config.schema import parse_config
    from trialbayes.core.errors import ConfigError

    raw = {"name": "x", "data": {"kind": "synthetic"}, "models": [{"name": "u"}]}
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        parse_config({**raw, "estimands": estimands})
    ok = parse_config({**raw, "estimands": {"credible_subgroups": {"thresholds": [0.7]}}})
    assert ok.estimands.credible_subgroups.thresholds == [1.0, 0.7]


def test_notebook_api_gives_the_bands_and_the_subgroups_of_a_fitted_model():
    """m.hr_by_biomarker() carries the simultaneous band (containing the pointwise one) over the
    5th–95th percentiles; m.credible_subgroups() equals the estimand computed from the same
    draws; both refuse a model without an interaction, naming the method; the figure takes them."""
    from lifelines.datasets import load_rossi

    from trialbayes.config.schema import ModelSpec, SamplerSpec
    from trialbayes.models.pem import PiecewiseExponentialModel

    df = load_rossi().reset_index(names="id")
    cols = {"time": "week", "event": "arrest", "arm": "fin", "treatment_level": 1,
            "biomarkers": ["prio"], "covariates": ["age"]}  # fmt: skip
    s = SamplerSpec(chains=2, draws=200, tune=200, seed=1, progress="off")
    m = PiecewiseExponentialModel(
        ModelSpec(name="i", covariates="all", interaction="linear", biomarker="prio"), sampler=s
    ).fit(df, columns=cols)
    curve = m.hr_by_biomarker(level=0.9)
    prio = df["prio"].to_numpy(float)
    assert curve["biomarker"].iloc[0] == pytest.approx(np.quantile(prio, 0.05))
    assert curve["biomarker"].iloc[-1] == pytest.approx(np.quantile(prio, 0.95))
    assert (curve["lower_simultaneous"] <= curve["lower"]).all()
    assert (curve["upper_simultaneous"] >= curve["upper"]).all()
    subs = m.credible_subgroups(thresholds=(1.0, 0.8), level=0.9)
    from trialbayes.estimands.draws import log_hr_at

    grid = curve["biomarker"].to_numpy()
    _, lo, hi = simultaneous_band(log_hr_at(m.draws(), m.design.basis, grid), 0.9)
    assert subs == credible_subgroups(grid, lo, hi, (1.0, 0.8), 0.9, prio)
    fig = hr_curve_figure(curve, "prio", "arrests", values=prio, subgroups=subs)
    assert len(fig.axes) == 4
    plt.close(fig)
    u = PiecewiseExponentialModel(ModelSpec(name="u"), sampler=s).fit(df, columns=cols)
    with pytest.raises(ValueError, match="credible_subgroups: model 'u' has no biomarker"):
        u.credible_subgroups()
