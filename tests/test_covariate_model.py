"""The fitted covariate distribution of the next-phase simulator (Gaussian copula, NORTA)."""

from __future__ import annotations

import math

import numpy as np

from trialbayes.covariate_model import GaussianCopula, fitted_population


def _data(rng, n=1500):
    """A normal covariate, a log-normal biomarker on its log scale (skewed by a square), a binary
    and a count column, correlated through a latent normal."""
    c = [[1, 0.5, 0.3, 0.4], [0.5, 1, -0.4, 0.2], [0.3, -0.4, 1, 0.0], [0.4, 0.2, 0.0, 1]]
    z = rng.multivariate_normal(np.zeros(4), c, n)
    return np.column_stack(
        [z[:, 0], z[:, 1] + 0.3 * z[:, 1] ** 2, (z[:, 2] > 0.5).astype(float),
         rng.poisson(np.exp(1 + 0.5 * z[:, 3]))]
    )


def test_copula_reproduces_marginals_and_correlations():
    """M = 40 000 simulated patients from the copula fitted to n = 1500 rows.
    Marginals: DKW, P(sup|F_M − F| > ε) ≤ 2·exp(−2Mε²); ε = 2.3/√M gives 1.0e-4 per column, and
    the fitted marginal differs from the data's ECDF by at most 1/n (interpolation between order
    statistics; discrete columns exactly): 4 columns, 4.0e-4. Correlations: SE of a sample
    correlation ≈ (1 − r²)/√M ≤ 0.005 (×1.5 for the non-normal columns: 0.0075), plus the NORTA
    map's own Monte Carlo error (20 000 common draws: ≤ 0.0075); |Δr| < 0.05 is ≥ 4.5 combined
    SDs (0.011): 6.8e-6 per pair, 4.1e-5 for 6 pairs. Total false failure < 5e-4."""
    rng = np.random.default_rng()
    data = _data(rng)
    cop = GaussianCopula.fit(data, rng)
    assert [m.discrete for m in cop.marginals] == [False, False, True, True]
    m = 40_000
    sim = cop.sample(rng, m)
    eps = 2.3 / math.sqrt(m) + 1 / len(data)
    for j in range(4):
        grid = np.unique(np.concatenate([data[:, j], sim[:, j]]))
        f_data = np.searchsorted(np.sort(data[:, j]), grid, side="right") / len(data)
        f_sim = np.searchsorted(np.sort(sim[:, j]), grid, side="right") / m
        assert np.abs(f_data - f_sim).max() < eps, j
    assert set(np.unique(sim[:, 2])) == {0.0, 1.0}  # binary stays binary, counts stay counts
    assert set(np.unique(sim[:, 3])) <= set(np.unique(data[:, 3]))
    diff = np.corrcoef(sim, rowvar=False) - np.corrcoef(data, rowvar=False)
    assert np.abs(diff).max() < 0.05


def test_fitted_population_on_rossi_keeps_the_biomarker_scale():
    """Rossi, prio as a linear biomarker (it has zeros: no log scale): the synthetic cohort's
    biomarker stays in the data's range, its z column is the basis's, race stays binary."""
    from lifelines.datasets import load_rossi

    from trialbayes.config import Baseline, ModelSpec
    from trialbayes.design import build_design
    from trialbayes.pem import as_trial_data

    r = load_rossi()
    r["id"] = range(len(r))
    cols = {"time": "week", "event": "arrest", "arm": "fin", "treatment_level": 1,
            "covariates": ["age", "race"], "biomarkers": ["prio"]}
    data = as_trial_data(r, cols)
    spec = ModelSpec(name="i", covariates="all", interaction="linear", biomarker="prio")
    design = build_design(data, spec, Baseline(n_intervals=2))
    pop = fitted_population(design, np.random.default_rng(), 5000)
    assert pop.n == 5000 and pop.X.shape == (5000, 2)
    assert pop.biomarker.min() >= 0 and pop.biomarker.max() <= r.prio.max()
    np.testing.assert_allclose(pop.bm_z, design.basis.evaluate(pop.biomarker)[0])
    assert set(np.unique(pop.X[:, 1])) <= set(np.unique(design.X[:, 1]))  # race: binary


def test_grid_with_fitted_covariates_says_so():
    """run_next_phase with ``covariates: fitted``: patients come from the copula's synthetic
    cohort (size ``fitted_cohort``), and the results and report say so."""
    from trialbayes.nextphase import population, run_next_phase
    from trialbayes.nextphase_config import NextPhase
    from trialbayes.nextphase_report import patients_text

    rng = np.random.default_rng(1)

    class _Design:
        starts = np.array([0.0, 1.0])
        n, X, basis = 200, rng.normal(size=(200, 1)), None

    draws = {
        "treatment": np.linspace(-0.6, 0.0, 40),
        "covariate_effects": np.full((40, 1), 0.3),
        "log_baseline_hazard": np.tile([-1.0, -0.7], (40, 1)),
    }
    cfg = NextPhase(model="m", accrual={"time": 1.0}, events=[40], trials=100, oc_trials=100,
                    covariates="fitted", fitted_cohort=3000, executor="inprocess")
    assert population(cfg, _Design()).n == 3000
    res = run_next_phase(cfg, draws, _Design())
    assert len(res.designs) == 1 and "Gaussian copula" in patients_text(res.settings)
