"""The O(N + K) likelihood equals the Poisson-trick likelihood, value and gradient, to 1e-8."""

import numpy as np
import pytensor
import pytensor.tensor as pt
import pytest

from trialbayes.data.design import interval_stats
from trialbayes.models.graph import pem_loglik_terms, poisson_expand, poisson_loglik_terms


@pytest.mark.parametrize("seed,n,k", [(0, 50, 1), (1, 200, 6), (2, 500, 12)])
def test_pem_equals_poisson_trick(seed, n, k):
    rng = np.random.default_rng(seed)
    times = rng.exponential(100, n) + 1e-3
    event = rng.binomial(1, 0.6, n).astype(float)
    cuts = np.sort(rng.uniform(1, np.quantile(times, 0.9), k - 1)) if k > 1 else np.array([])
    idx, off, starts = interval_stats(times, cuts)
    widths = np.append(np.diff(starts), 0.0)
    rows, ks, expo, dk = poisson_expand(times, event, starts)
    assert dk.sum() == event.sum()  # every event lands in exactly one interval

    alpha = pt.dvector("alpha")
    eta = pt.dvector("eta")
    ll_pem = pem_loglik_terms(alpha, eta, idx, off, event, widths).sum()
    ll_poi = poisson_loglik_terms(alpha, eta, rows, ks, expo, dk).sum()
    f = pytensor.function(
        [alpha, eta],
        [ll_pem, ll_poi, *pt.grad(ll_pem, [alpha, eta]), *pt.grad(ll_poi, [alpha, eta])],
    )
    constant = float((dk * np.log(expo)).sum())  # data-only term the Poisson form carries
    for trial in range(3):
        a = rng.normal(-4.5, 0.5, len(starts))
        e = rng.normal(0, 0.7, n)
        v_pem, v_poi, ga_pem, ge_pem, ga_poi, ge_poi = f(a, e)
        assert abs(v_pem - (v_poi - constant)) < 1e-8 * max(1.0, abs(v_pem))
        np.testing.assert_allclose(ga_pem, ga_poi, rtol=0, atol=1e-8)
        np.testing.assert_allclose(ge_pem, ge_poi, rtol=0, atol=1e-8)


def test_interval_assignment_is_left_open():
    idx, off, starts = interval_stats(np.array([5.0, 10.0, 10.5, 30.0]), np.array([10.0, 20.0]))
    np.testing.assert_array_equal(
        idx, [0, 0, 1, 2]
    )  # an exit at a cut point belongs to the interval it closes
    np.testing.assert_allclose(off, [5.0, 10.0, 0.5, 10.0])


@pytest.mark.slow  # compiles a model with every term (~25 s cold): slow tier
def test_numpy_pointwise_loglik_equals_pymc():
    """The NumPy pointwise log-likelihood used for LOO equals PyMC's, model with every term."""
    import pymc as pm

    from trialbayes.config.data_sources import ColumnMap
    from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
    from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
    from trialbayes.data.table import from_frame
    from trialbayes.models.pem import PiecewiseExponentialModel

    df, _ = generate(n=120, seed=4)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    spec = ModelSpec(
        name="all",
        covariates="all",
        centre_frailty=True,
        interaction="spline",
        biomarker="pnfh",
        spline_basis=6,
    )
    m = PiecewiseExponentialModel(
        spec,
        baseline=Baseline(n_intervals=5),
        sampler=SamplerSpec(chains=2, draws=30, tune=30, seed=1),
    ).fit(data)
    ours = m.idata.log_likelihood["survival"].values
    ref = pm.compute_log_likelihood(
        m.idata.copy(), model=m.model, extend_inferencedata=False, progressbar=False
    )
    np.testing.assert_allclose(ours, ref["survival"].values, rtol=0, atol=1e-8)
