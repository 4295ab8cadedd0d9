"""Frequentist cross-check with lifelines: Cox estimates of the same terms, and Kaplan–Meier curves.

The Cox models use exactly the Bayesian model's covariates, standardisation and biomarker
coding (z = standardised (log-)biomarker, treatment effect at the biomarker reference), so that
the coefficients are directly comparable. Centre frailty has no lifelines counterpart; the Cox
fit of such a model is stratified by centre instead (noted in the output).
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.statistics import proportional_hazard_test

from ..data.design import Design
from ..results.time_varying import PHTest


def cox_frame(design: Design, times: np.ndarray, centre: np.ndarray | None = None) -> pd.DataFrame:
    df = pd.DataFrame({"time": times, "event": design.event, "treatment": design.treat})
    for j, c in enumerate(design.cov_names):
        df[c] = design.X[:, j]
    if design.basis is not None:
        b = design.spec.biomarker
        df[f"{b}_z"] = design.bm_z
        df[f"treatment × {b}"] = design.treat * design.bm_z
    if centre is not None:
        df["centre"] = centre
    return df


#: a standardised-scale Cox coefficient or SE beyond these is a fit that ran off (separation)
COX_MAX_ABS_LOG_HR, COX_MAX_SE = 10.0, 5.0


def cox_fit(
    design: Design, times: np.ndarray, centre: np.ndarray | None = None, prob: float = 0.95
) -> dict:
    """Cox partial-likelihood fit of the design's terms (Efron ties). Returns a JSON-able dict.

    Never raises: ``status`` is "ok", "not_converged" (a convergence warning from lifelines, or a
    coefficient / SE that ran off to where only separation takes it; the terms are kept but must
    not be read as estimates) or "failed" (no terms; ``error`` says why). It is a cross-check:
    the Bayesian result stands on its own."""
    strata = ["centre"] if (design.centre_labels and centre is not None) else None
    method = "Cox PH (lifelines, Efron ties)" + (", stratified by centre" if strata else "")
    df = cox_frame(design, times, centre if strata else None)
    cph = CoxPHFitter(alpha=1 - prob)
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            cph.fit(df, "time", "event", strata=strata)
            terms = _cox_terms(cph.summary)
    except Exception as exc:  # noqa: BLE001 - any lifelines failure is recorded, never fatal
        error = f"{type(exc).__name__}: {str(exc)[:300]}"
        return {"method": method, "status": "failed", "error": error, "terms": {}}
    problems = sorted(
        {
            str(w.message).split(". ")[0].strip()[:200]
            for w in caught
            if "onvergence" in type(w.message).__name__
        }
    )
    runaway = [
        n
        for n, t in terms.items()
        if not (abs(t["log_hr"]) <= COX_MAX_ABS_LOG_HR and t["se"] <= COX_MAX_SE)
    ]
    if runaway:
        problems.append(
            f"coefficients ran off (|log HR| > {COX_MAX_ABS_LOG_HR:g} or SE > "
            f"{COX_MAX_SE:g}): " + ", ".join(runaway)
        )
    out = {"method": method, "status": "not_converged" if problems else "ok", "terms": terms}
    if problems:
        out["problems"] = problems
    return out


#: lifelines' time transform of the Schoenfeld-residual test: "km" (R ``cox.zph``'s default)
PH_TIME_TRANSFORM = "km"


def ph_test(
    design: Design, times: np.ndarray, centre: np.ndarray | None = None, term: str = "treatment"
) -> PHTest:
    """Grambsch–Therneau test of proportional hazards for ``term`` in the Cox model of the
    design's terms (as :func:`cox_fit`: same coding, stratified by centre for a frailty model):
    scaled Schoenfeld residuals against the Kaplan–Meier transform of time, chi-square with 1 df.
    Never raises: a failed fit gives ``status`` "failed" and the reason."""
    strata = ["centre"] if (design.centre_labels and centre is not None) else None
    method = "Grambsch–Therneau, scaled Schoenfeld residuals (lifelines)" + (
        ", Cox stratified by centre" if strata else ""
    )
    df = cox_frame(design, times, centre if strata else None)
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            cph = CoxPHFitter().fit(df, "time", "event", strata=strata)
            row = proportional_hazard_test(cph, df, time_transform=PH_TIME_TRANSFORM).summary
            stat, p = float(row.loc[term, "test_statistic"]), float(row.loc[term, "p"])
    except Exception as exc:  # noqa: BLE001 - a cross-check: recorded, never fatal
        err = f"{type(exc).__name__}: {str(exc)[:300]}"
        return PHTest(method, PH_TIME_TRANSFORM, None, None, "failed", err)
    return PHTest(method, PH_TIME_TRANSFORM, stat, p)


def _cox_terms(s: pd.DataFrame) -> dict:
    lo_col = [c for c in s.columns if c.startswith("coef lower")][0]
    hi_col = [c for c in s.columns if c.startswith("coef upper")][0]
    terms = {}
    for name, r in s.iterrows():
        terms[str(name)] = {
            "log_hr": float(r["coef"]),
            "se": float(r["se(coef)"]),
            "hr": float(np.exp(r["coef"])),
            "hr_lower": float(np.exp(r[lo_col])),
            "hr_upper": float(np.exp(r[hi_col])),
            "p": float(r["p"]),
        }
    return terms


def km_curves(
    times: np.ndarray, events: np.ndarray, treat: np.ndarray, level: float = 0.95
) -> pd.DataFrame:
    """Kaplan–Meier estimate per arm (0 control, 1 treatment) with pointwise CIs at ``level``
    (lifelines' exponential Greenwood intervals), the level in a ``level`` column."""
    rows = []
    for arm in (0, 1):
        m = treat == arm
        km = KaplanMeierFitter(alpha=1 - level).fit(times[m], events[m])
        sf = km.survival_function_.iloc[:, 0]
        ci = km.confidence_interval_
        rows.append(
            pd.DataFrame(
                {
                    "arm": arm,
                    "time": sf.index.to_numpy(),
                    "survival": sf.to_numpy(),
                    "lower": ci.iloc[:, 0].to_numpy(),
                    "upper": ci.iloc[:, 1].to_numpy(),
                    "level": level,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


def km_at(curves: pd.DataFrame, arm: int, t: float) -> float:
    c = curves[curves["arm"] == arm]
    return float(c.loc[c["time"] <= t, "survival"].iloc[-1])


def km_fit(times, events) -> pd.DataFrame:
    """Kaplan–Meier step function (time, survival) of one arm, starting at (0, 1)."""
    km = KaplanMeierFitter().fit(np.asarray(times, float), np.asarray(events, int))
    sf = km.survival_function_.iloc[:, 0]
    return pd.DataFrame({"time": sf.index.to_numpy(float), "survival": sf.to_numpy(float)})


def median_follow_up(times, events) -> float | None:
    """Median follow-up by the reverse Kaplan–Meier method (censoring treated as the event);
    None if fewer than half the patients are censored before the last time."""
    km = KaplanMeierFitter().fit(np.asarray(times, float), 1 - np.asarray(events, int))
    m = float(km.median_survival_time_)
    return m if np.isfinite(m) else None
