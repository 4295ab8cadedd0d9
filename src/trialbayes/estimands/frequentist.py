"""Frequentist cross-check with lifelines: Cox estimates of the same terms, and Kaplan–Meier curves.

The Cox models use exactly the Bayesian model's covariates, standardisation and biomarker
coding (z = standardised (log-)biomarker, treatment effect at the biomarker reference), so that
the coefficients are directly comparable. Centre frailty has no lifelines counterpart; the Cox
fit of such a model is stratified by centre instead (noted in the output). Under
``data.missing: impute`` the Cox fit is on the patients with every value of the model observed
(complete cases; noted in ``method``).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from typing import Literal

import numpy as np
import pandas as pd
from lifelines import CoxPHFitter, KaplanMeierFitter
from lifelines.fitters.coxph_fitter import SemiParametricPHFitter
from lifelines.statistics import proportional_hazard_test

from ..data.design import Design
from ..results.summaries import HRSummary
from ..results.synthetic import CohortCheck
from ..results.time_varying import PHTest


def cox_frame(design: Design, times: np.ndarray, centre: np.ndarray | None = None) -> pd.DataFrame:
    """The lifelines frame of a model's Cox fit: ``times``, events, arm, the model's own coded terms
    (standardised covariates, biomarker z and its interaction with treatment) and any ``centre``."""
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


class _CoxPH(SemiParametricPHFitter):
    """lifelines' Cox fit (the semi-parametric fitter ``CoxPHFitter`` runs with its default
    Breslow baseline) without what only its plots and predictions use: the "central values" of
    the data (a pandas ``describe`` per stratum: most of a stratified fit's time) and the Breslow
    baseline hazard (a pandas group-by and merge per stratum after the fit; its index, the
    distinct times, is kept). The estimates, standard errors and tests are lifelines' own
    (tests/test_cox_wrapper.py: equal to ``CoxPHFitter``'s)."""

    def _compute_central_values_of_raw_training_data(self, df, strata=None, name="baseline"):
        return pd.DataFrame(index=[name])

    def _compute_baseline_hazards(self, predicted_partial_hazards_):
        return pd.DataFrame(index=np.sort(self.durations.unique()))


#: a standardised-scale Cox coefficient or SE beyond these is a fit that ran off (separation)
COX_MAX_ABS_LOG_HR, COX_MAX_SE = 10.0, 5.0


@dataclass
class CoxFit:
    """A Cox partial-likelihood fit: each term's HR (an :class:`HRSummary` of method ``cox``:
    the point estimate as ``median``, the Wald interval at ``level``, ``p_value``) and whether the
    fit can be read (``status``: ``ok``; ``not_converged`` — kept but not to be read as
    estimates, ``problems`` say why; ``failed`` — no terms, ``error`` says why)."""

    method: str
    status: Literal["ok", "not_converged", "failed"]
    terms: dict[str, HRSummary] = field(default_factory=dict)
    problems: list[str] = field(default_factory=list)
    error: str | None = None

    def term(self, name: str) -> HRSummary | None:
        """A term's HR when the fit can be read, else None."""
        return self.terms.get(name) if self.status == "ok" else None


def cox(
    df: pd.DataFrame, level: float = 0.95, strata: list[str] | None = None, method: str = ""
) -> CoxFit:
    """The one Cox wrapper (lifelines, Efron ties): columns ``time``, ``event`` and the terms.

    Never raises: a lifelines failure gives status ``failed``; a convergence warning, or a
    coefficient / SE that ran off to where only separation takes it, ``not_converged``. It is a
    cross-check: the Bayesian result stands on its own."""
    method = method or "Cox PH (lifelines, Efron ties)" + (
        ", stratified by " + ", ".join(strata) if strata else ""
    )
    try:
        with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
            warnings.simplefilter("always")
            s = _CoxPH(alpha=1 - level).fit(df, "time", "event", strata=strata).summary
    except Exception as exc:  # noqa: BLE001 - any lifelines failure is recorded, never fatal
        return CoxFit(method, "failed", error=f"{type(exc).__name__}: {str(exc)[:300]}")
    terms = {
        str(name): HRSummary.from_normal(
            float(r["coef"]), float(r["se(coef)"]), level=level, method="cox", p_value=float(r["p"])
        )
        for name, r in s.iterrows()
    }
    problems = sorted(
        {
            str(w.message).split(". ")[0].strip()[:200]
            for w in caught
            if "onvergence" in type(w.message).__name__
        }
    )
    runaway = [
        n
        for n, h in terms.items()
        if not (abs(h.log_mean) <= COX_MAX_ABS_LOG_HR and h.log_sd <= COX_MAX_SE)
    ]
    if runaway:
        problems.append(
            f"coefficients ran off (|log HR| > {COX_MAX_ABS_LOG_HR:g} or SE > "
            f"{COX_MAX_SE:g}): " + ", ".join(runaway)
        )
    return CoxFit(method, "not_converged" if problems else "ok", terms, problems)


def cox_fit(
    design: Design, times: np.ndarray, centre: np.ndarray | None = None, level: float = 0.95
) -> CoxFit:
    """Cox fit of a model's terms on the model's own coding (stratified by centre for a model
    with centre frailty, which has no lifelines counterpart); with values to impute
    (data.missing: impute) on the complete cases, said in the method."""
    strata = ["centre"] if (design.centre_labels and centre is not None) else None
    df = cox_frame(design, times, centre if strata else None)
    method = ""
    if design.missing is not None:
        df = df.drop(index=design.missing.rows_imputed())
        method = "Cox PH (lifelines, Efron ties)" + (", stratified by centre" if strata else "")
        method += f", complete cases (n = {len(df)})"
    return cox(df, level, strata, method)


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
    """Kaplan–Meier survival of ``arm`` (0 control, 1 treatment) at ``t``, from ``km_curves``."""
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


def step_at(step: pd.DataFrame, t) -> np.ndarray:
    """Right-continuous step function value at times ``t``."""
    idx = np.searchsorted(step["time"].to_numpy(), np.asarray(t, float), side="right") - 1
    return step["survival"].to_numpy()[np.clip(idx, 0, None)]


def treatment_cox(time, event, treat, level: float = 0.95) -> HRSummary | None:
    """The treatment-only Cox HR (Efron ties; an HRSummary of method ``cox``) with its Wald
    interval at ``level``; None if it cannot be read (no events in an arm, a failed or runaway
    fit)."""
    df = pd.DataFrame({"time": time, "event": event, "treatment": treat})
    if df["event"].sum() < 2 or df.groupby("treatment")["event"].sum().min() == 0:
        return None
    return cox(df, level).term("treatment")


def cohort_checks(frame: pd.DataFrame, targets, level: float = 0.95) -> list[CohortCheck]:
    """A cohort's own treatment-only Cox HR for every published target (``frame``: time, event,
    treat and the targets' biomarker columns), and whether its point estimate lies in the
    target's band."""
    out = []
    for tg in targets:
        m = tg.mask(frame[tg.biomarker].to_numpy(float))
        g = frame.loc[m]
        hr = treatment_cox(
            g["time"].to_numpy(float), g["event"].to_numpy(int), g["treat"].to_numpy(int), level
        )
        inside = hr is not None and tg.target_lower <= hr.median <= tg.target_upper
        out.append(CohortCheck(tg, int(m.sum()), int(g["event"].sum()), hr, bool(inside)))
    return out
