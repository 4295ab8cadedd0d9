"""The one Cox wrapper (estimands.frequentist.cox) skips what only lifelines' plots and
predictions use (the data's central values, the Breslow baseline hazard): its estimates, standard
errors, intervals and p-values must be lifelines' own ``CoxPHFitter``'s, unstratified and
stratified, on a real trial (Rossi's recidivism data, shipped with lifelines; its weeks are heavily
tied, so Efron's correction is exercised)."""

import numpy as np
import pandas as pd
import pytest
from lifelines import CoxPHFitter
from lifelines.datasets import load_rossi

from trialbayes.estimands.frequentist import cox


def _rossi() -> pd.DataFrame:
    df = load_rossi().rename(columns={"week": "time", "arrest": "event"})
    return df[["time", "event", "fin", "age", "prio", "race", "wexp"]]


@pytest.mark.parametrize("strata", [None, ["race"], ["race", "wexp"]])
def test_cox_equals_lifelines_coxphfitter(strata):
    df = _rossi()
    ours = cox(df, 0.9, strata)
    ref = CoxPHFitter(alpha=0.1).fit(df, "time", "event", strata=strata).summary
    assert ours.status == "ok"
    assert list(ours.terms) == list(ref.index)
    for name, r in ref.iterrows():
        h = ours.terms[name]
        # the same computation: equal to the last bits, not merely close
        assert h.log_mean == r["coef"] and h.log_sd == r["se(coef)"] and h.p_value == r["p"]
        assert np.isclose(h.lower, np.exp(r["coef lower 90%"]), rtol=1e-12)
        assert np.isclose(h.upper, np.exp(r["coef upper 90%"]), rtol=1e-12)
