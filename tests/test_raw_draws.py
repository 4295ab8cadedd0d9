"""Draws read straight from nutpie's Arrow trace (inference/raw_draws.py) are the draws of the
ArviZ DataTree of the same fit, number for number, and the diagnostics of either are equal."""

import numpy as np

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Diagnostics, ModelSpec, SamplerSpec
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.inference.sampler import diagnose, free_var_names
from trialbayes.models.pem import DRAW_NAMES, PiecewiseExponentialModel


def test_raw_draws_equal_the_datatree_draws():
    df, _ = generate(n=80, seed=2)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    spec = ModelSpec(
        name="m", covariates=["age"], centre_frailty=True, interaction="linear", biomarker="pnfh"
    )
    pem = PiecewiseExponentialModel(
        spec, sampler=SamplerSpec(chains=2, draws=150, tune=150, progress="off")
    ).build(data)
    free = free_var_names(pem.model)
    idata = pem.sampler.sample(seed=7, log_likelihood=False)
    raw = pem.sampler.sample_draws(DRAW_NAMES + free + ["not_a_variable"], seed=7)
    assert "not_a_variable" not in raw.draws
    for name in set(DRAW_NAMES + free) & set(idata.posterior.data_vars):
        np.testing.assert_array_equal(raw.draws[name], np.asarray(idata.posterior[name]))
    for s in ("diverging", "energy"):
        np.testing.assert_array_equal(raw.stats[s], np.asarray(idata.sample_stats[s]))
    assert raw.divergences == int(idata.sample_stats["diverging"].sum())
    np.testing.assert_array_equal(
        raw.flat("treatment"), np.asarray(idata.posterior["treatment"]).ravel()
    )
    gate = Diagnostics()
    assert diagnose(raw.datatree(), free, gate) == diagnose(idata, free, gate)
    assert len(pem.sampler.timings) == 2
