"""Everything a patient-level run reports of one fitted model, from ONE set of draws: the
coefficient table beside Cox, the survival estimands, the biomarker subgroups, the HR along the
biomarker, and the model's flags; and the PSIS-LOO comparison of the models."""

from __future__ import annotations

import warnings
from dataclasses import asdict, dataclass

import arviz_stats as azs
import numpy as np
import pandas as pd

from ..config.estimands import Estimands
from ..config.priors import describe
from ..core import progress
from ..core.flags import Flag
from ..core.text import plural
from ..data.settings import round_sig
from ..data.table import TrialData
from ..estimands import caution
from ..estimands.coefficients import coefficients
from ..estimands.credible import (
    biomarker_grid,
    credible_subgroups,
    curve_grid,
    grid_spans,
    simultaneous_band,
)
from ..estimands.draws import (
    hr_curve,
    hr_summary,
    log_hr_at,
    subgroup_effects,
    survival_curves,
    survival_estimands,
)
from ..estimands.frequentist import CoxFit, cox_fit
from ..models.graph import used_prior_terms
from ..models.pem import PiecewiseExponentialModel
from ..results.model import BENEFIT_PROB, HRCurve, ModelResult, Setting, Subgroups
from ..results.sections import LooComparison, LooRow, ParetoK
from .time_varying import average_role, with_hr_over_time

#: a subgroup P(benefit) resting on fewer events than this is flagged
MIN_SUBGROUP_EVENTS = 10


@dataclass
class Analysis:
    """One model's results with the tables and draws the writer and figures need."""

    result: ModelResult
    tables: dict[str, pd.DataFrame]
    draws: dict[str, np.ndarray]


def estimand_role(pem: PiecewiseExponentialModel, units: dict | None = None) -> str:
    """What the model's treatment HR is (a time-varying model's: its average over follow-up)."""
    role = _role(pem, units)
    return average_role(role) if pem.spec.time_varying else role


def _role(pem: PiecewiseExponentialModel, units: dict | None) -> str:
    s = pem.spec
    if s.biomarker:
        u = (units or {}).get(s.biomarker)
        ref = f"{pem.design.basis.reference:.4g}" + (f" {u}" if u else "")
        return f"conditional HR at {s.biomarker} = {ref} (the median)"
    if s.covariates == [] and not s.centre_frailty:
        return "unadjusted HR"
    return "adjusted HR (conditional on covariates" + (" and centre)" if s.centre_frailty else ")")


def analyse_model(
    pem: PiecewiseExponentialModel, data: TrialData, e: Estimands, settings: dict[str, Setting]
) -> Analysis:
    """All estimands of one fitted model from ONE set of draws, plus its Cox counterpart."""
    draws = pem.draws(e.max_draws)
    thr, harm, level = tuple(e.hr_thresholds), e.harm_threshold, e.level

    def hs(v):
        return hr_summary(v, thr, harm, level)

    units, tu = settings["units"].value or {}, settings["time_unit"].value or "time units"
    landmark = settings["landmark"].value
    times = data.frame["time"].to_numpy()
    centre = data.frame["centre"].to_numpy() if data.has_centre else None
    cox = cox_fit(pem.design, times, centre, level)
    coefs = coefficients(pem.design, draws, hs, cox, units)
    res = ModelResult(
        name=pem.spec.name,
        estimand=estimand_role(pem, units),
        treatment_effect=coefs[0].posterior,
        reliable=pem.reliable,
        diagnostics=pem.diagnostics,
        sampler=pem.idata.attrs.get("sampler"),
        spec=pem.spec.model_dump(mode="json"),
        priors={k: describe(pem.priors[k]) for k in used_prior_terms(pem.design)},
        n_intervals=pem.design.n_intervals,
        cut_points=pem.design.cuts.tolist(),
        cox_method=cox.method,
        cox_status=cox.status,
        coefficients=coefs,
        survival=survival_estimands(draws, pem.design, landmark, level, time_unit=tu),
    )
    res.flags += caution.model_flags(
        pem.spec.name, cox, draws["treatment"], pem.priors["treatment"], level
    )
    tables = {
        "survival_curves": survival_curves(
            draws, pem.design, float(times.max()), e.curve_points, level
        )
    }
    _subgroups(res, pem, data, draws, settings, e)
    if pem.design.basis is not None:
        res.hr_curve, tables["hr_curve"] = _hr_curve(pem, draws, cox, e, units, hs)
    if pem.design.time_varying:
        res, tables["hr_over_time"] = with_hr_over_time(
            res, pem.design, draws, times, centre, level, thr, harm, tu
        )
    return Analysis(res, tables, draws)


def _subgroups(res: ModelResult, pem, data, draws, settings, e: Estimands) -> None:
    bname, cuts = settings["biomarker"].value, settings["subgroup_cutoffs"]
    if not (bname and bname in data.frame and cuts.value):
        return
    units = settings["units"].value or {}
    vals = data.frame[bname].to_numpy(float)
    groups = subgroup_effects(
        draws, pem.design, vals, cuts.value, settings["landmark"].value,
        tuple(e.hr_thresholds), e.harm_threshold, e.level,
    )  # fmt: skip
    for g in groups:
        g.flags.extend(subgroup_flags(pem.spec.name, bname, g))
    res.flags += structure_flags(pem.spec, bname)
    res.subgroups = Subgroups(bname, units.get(bname, ""), list(cuts.value), cuts.text(), groups)


def structure_flags(spec, bname: str) -> list[Flag]:
    """What the model's structure lets its subgroup HRs by ``bname`` say, decided from the
    model's interaction term (not from column names alone)."""
    if spec.interaction == "none":  # the conditional HR is the overall HR in every subgroup
        return [
            Flag(
                "subgroup_without_interaction",
                f"no treatment × biomarker interaction in this model: its {bname} subgroup HRs "
                "restate its overall effect (only the standardisation differs); they are not "
                "evidence of effect modification",
                "caution",
                spec.name,
            )
        ]
    if spec.biomarker != bname:
        return [
            Flag(
                "subgroup_by_other_column",
                f"the treatment interaction is on '{spec.biomarker}', the subgroups are by "
                f"'{bname}': their HRs differ only as far as {spec.biomarker} differs between "
                f"{bname} subgroups",
                "caution",
                spec.name,
            )
        ]
    return []


def subgroup_flags(model: str, biomarker: str, g) -> list[Flag]:
    """A caution flag for a biomarker subgroup with fewer than ``MIN_SUBGROUP_EVENTS`` events."""
    if g.events >= MIN_SUBGROUP_EVENTS:
        return []
    return [
        Flag(
            "sparse_subgroup",
            f"subgroup {biomarker} {g.label} has {g.events} {plural(g.events, 'event')} "
            f"(< {MIN_SUBGROUP_EVENTS}): its P(benefit) rests mostly on the prior and the model",
            "caution",
            model,
            {"events": g.events, "n": g.n},
        )
    ]


def _hr_curve(pem, draws, cox: CoxFit, e: Estimands, units, hs):
    """The HR curve over the observed range (``e.hr_curve_quantiles``) with its pointwise and
    simultaneous bands, the pointwise benefit range and the credible subgroups; and its table."""
    b, bm, cs = pem.design.basis, pem.spec.biomarker, e.credible_subgroups
    values = pem.design.biomarker_values
    grid = biomarker_grid(values, b.log, e.curve_points, e.hr_curve_quantiles, b.offset)
    curve = hr_curve(draws, b, grid, tuple(e.hr_thresholds), e.level)
    sim_level = cs.level or e.level
    band, lo, hi = simultaneous_band(log_hr_at(draws, b, grid), sim_level)
    curve["lower_simultaneous"], curve["upper_simultaneous"] = np.exp(lo), np.exp(hi)
    curve["simultaneous_level"] = sim_level  # may differ from the pointwise band's ``level``
    z, _ = b.evaluate(grid)
    main, inter = cox.term("treatment"), cox.term(f"treatment × {bm}")
    # a failed or runaway Cox fit draws no curve
    curve["cox_median"] = np.exp(main.log_mean + inter.log_mean * z) if main and inter else np.nan
    crossing = curve.loc[curve["median"] >= 1, "biomarker"]
    at = {f"{x:g}": hs(log_hr_at(draws, b, [x])[:, 0]) for x in probe_points(values)}
    crosses = float(crossing.iloc[0]) if len(crossing) and crossing.iloc[0] > grid[0] else None
    return HRCurve(
        biomarker=bm,
        unit=units.get(bm, ""),
        reference=b.reference,
        transform=b.transform_name,
        kind=b.kind,
        median_crosses_1_at=crosses,
        at=at,
        benefit_range=grid_spans(grid, curve["p_hr_below_1"].to_numpy() > BENEFIT_PROB),
        grid=curve_grid(values, grid, e.hr_curve_quantiles, b.log, b.offset),
        simultaneous=band,
        credible_subgroups=credible_subgroups(
            grid, lo, hi, cs.thresholds or e.hr_thresholds, sim_level, values
        ),
    ), curve


def probe_points(values) -> list[float]:
    """Biomarker values to report the HR at: the 10th, 50th and 90th percentiles of the data,
    rounded to 2 significant figures (distinct values only)."""
    return sorted({round_sig(float(q), 2) for q in np.nanquantile(values, [0.1, 0.5, 0.9])})


def psis_loos(models: dict[str, PiecewiseExponentialModel]) -> dict:
    """PSIS-LOO of every model that kept its pointwise log-likelihood (computed once). ArviZ's
    multi-line Pareto-k warning becomes one progress line naming the model and the patients
    (the counts are in results.json: ``loo.pareto_k``)."""
    loos = {}
    for n, m in models.items():
        if "log_likelihood" not in m.idata.children or not m.idata.log_likelihood.data_vars:
            continue
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loos[n] = azs.loo(m.idata, pointwise=True)
        k = np.asarray(loos[n].pareto_k).ravel()
        if (high := int((k > PARETO_K_MAX).sum())) > 0:
            progress.say(
                f"PSIS-LOO, model '{n}': Pareto k > {PARETO_K_MAX} for {high} of {k.size} "
                f"{plural(k.size, 'patient')} (max {k.max():.2f}): the comparison is less certain"
            )
    return loos


#: ArviZ's threshold above which a patient's importance-sampling LOO estimate is unreliable
PARETO_K_MAX = 0.7


def loo_table(
    models: dict[str, PiecewiseExponentialModel], loos: dict | None = None
) -> tuple[pd.DataFrame | None, LooComparison]:
    """PSIS-LOO of every model (``loos``, or computed here) and their comparison, with Pareto-k
    counts."""
    loos = psis_loos(models) if loos is None else loos
    khat = {}
    for n, loo in loos.items():
        k = np.asarray(loo.pareto_k).ravel()
        khat[n] = ParetoK(float(k.max()), int((k > PARETO_K_MAX).sum()))
    left_out = [n for n in models if n not in loos]
    note = (
        f" Not compared: {', '.join(f'`{n}`' for n in left_out)} (draws × patients above "
        f"{PiecewiseExponentialModel.MAX_LOGLIK_CELLS:,}: no pointwise log-likelihood kept)."
        if left_out
        else ""
    )
    if len(loos) < 2:
        return None, LooComparison(None, khat, note.strip())
    with warnings.catch_warnings():  # the Pareto-k warnings again: said once by psis_loos
        warnings.simplefilter("ignore", UserWarning)
        df = azs.compare(loos, round_to="none").reset_index().rename(columns={"index": "model"})
    rows = [
        LooRow(
            model=str(x["model"]),
            rank=int(x["rank"]),
            **{c: float(x[c]) for c in ("elpd", "se", "elpd_diff", "dse", "weight")},
            p_loo=float(x["p"]),
            p_worse=None if pd.isna(x.get("p_worse")) else float(x["p_worse"]),
            diagnostics="; ".join(str(x[c]) for c in ("diag_elpd", "diag_diff") if c in x and x[c]),
        )
        for x in df.to_dict(orient="records")
    ]
    df = pd.DataFrame([asdict(r) for r in rows])
    return df, LooComparison(rows, khat, loo_verdict(df) + note)


def loo_verdict(df: pd.DataFrame) -> str:
    """ "PSIS-LOO prefers `a`" only when the best model's elpd exceeds the next by more than 2 SE
    of the difference; otherwise "no clear preference"."""
    best, nxt = df.iloc[0], df.iloc[1]
    diff, se = abs(float(nxt["elpd_diff"])), float(nxt["dse"])
    nums = f"Δelpd to `{nxt['model']}` {diff:.1f}, SE {se:.1f}"
    if diff > 2 * se:
        return f"PSIS-LOO prefers `{best['model']}` ({nums})."
    return (
        f"PSIS-LOO: no clear preference between the models (best `{best['model']}`, {nums} < 2 SE)."
    )
