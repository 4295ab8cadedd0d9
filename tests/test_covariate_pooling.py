"""Partially pooled covariate effects: non-centred below 1000 events, centred above — the same
model either way (only NUTS' geometry differs)."""

import numpy as np
import pytest
from helpers import mcse, z_bound

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.models import graph
from trialbayes.models.pem import PiecewiseExponentialModel

SPEC = ModelSpec(name="adj", covariates="all", covariate_pooling="partial")


def _data():
    df, truth = generate()  # the shipped cohort: 90 events
    return from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS), synthetic=True, truth=truth)


def _model(sampler=None):
    return PiecewiseExponentialModel(
        SPEC, baseline=Baseline(n_intervals=4), sampler=sampler or SamplerSpec(chains=2, draws=100)
    )


def test_parametrisation_follows_the_number_of_events(monkeypatch):
    m = _model().build(_data())
    free = {v.name for v in m.model.free_RVs}
    assert {"covariate_raw", "covariate_scale"} <= free and "covariate_effects" not in free
    assert "covariate_effects" in {v.name for v in m.model.deterministics}
    monkeypatch.setattr(graph, "CENTRED_COVARIATES_FROM_EVENTS", 90)  # 90 events: centred
    m = _model().build(_data())
    assert "covariate_effects" in {v.name for v in m.model.free_RVs}


@pytest.mark.slow
def test_centred_and_non_centred_give_the_same_posterior(monkeypatch):
    """Same data, same priors, both parametrisations: posterior means of the treatment effect,
    the five covariate effects and their scale agree within z·√(MCSE₁² + MCSE₂²), z the
    two-sided Bonferroni bound for 7 checks at false-failure 1e-3 (3.8; ArviZ MCSE from the
    chains). Measured on this cohort (30 sampler seeds each, the default 4 × 2000 draws): the
    centred form diverged in 2 of 30 fits of the `adjusted` model and 1 of 30 of `interaction`
    (at covariate_scale's 0.1–0.4% quantile), the non-centred in none, with higher bulk ESS."""
    s = SamplerSpec(chains=2, draws=1000, tune=1000, seed=3, progress="off")
    fits = {}
    for centred in (False, True):
        monkeypatch.setattr(graph, "CENTRED_COVARIATES_FROM_EVENTS", 90 if centred else 1000)
        m = _model(s).fit(_data(), log_likelihood=False)
        post = m.idata.posterior
        fits[centred] = {
            "treatment": post["treatment"].values,
            "covariate_scale": post["covariate_scale"].values,
            **{
                f"cov{j}": post["covariate_effects"].values[..., j]
                for j in range(post["covariate_effects"].shape[-1])
            },
        }
    z = z_bound(1e-3, len(fits[True]))
    for k in fits[True]:
        a, b = fits[False][k], fits[True][k]
        tol = z * np.hypot(mcse(a), mcse(b))
        assert abs(a.mean() - b.mean()) <= tol, (k, a.mean(), b.mean(), tol)


def test_sbc_prior_draw_carries_the_non_centred_covariate_effects():
    """Simulation-based calibration simulates trials from a prior draw: with the effects a
    deterministic (τ·z), the draw must still carry them, consistent with τ and z (else the
    simulated trials would ignore the covariates)."""
    from trialbayes.calibration.sbc import _prior_draw

    m = _model().build(_data())
    d = _prior_draw(m, np.random.default_rng(1))
    assert d["covariate_effects"].shape == (1, 5)
    np.testing.assert_allclose(
        d["covariate_effects"], d["covariate_scale"][:, None] * d["covariate_raw"]
    )
