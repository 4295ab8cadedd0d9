"""The figures of a patient-level run, each with a caption that says what it shows (and, for the
survival figure, where the Kaplan–Meier curves and the model disagree), from the typed
:class:`~trialbayes.results.model.Results`. Also the prior draws stored in each posterior file
(group ``prior``) for the prior-vs-posterior figure."""

from __future__ import annotations

import textwrap

import numpy as np
import xarray as xr

from ..core.text import eq_text, level_text, prob
from ..plots.general import forest_plot, forest_row, hr_posterior_plot
from ..plots.journal import (
    hr_curve_figure,
    km_agreement,
    km_caption,
    km_figure,
    prior_posterior_figure,
)
from ..plots.time_varying import hr_over_time_plot
from ..results.model import Results
from .markdown import pooling_word
from .plan import FigurePlan, OutputSettings


def attach_prior(idata, draws: dict[str, np.ndarray]) -> None:
    """Store prior draws as the DataTree's ``prior`` group (chain 0), as ArviZ expects them."""
    ds = xr.Dataset(
        {k: (("chain", "draw"), v[None, :]) for k, v in draws.items()},
        coords={"chain": [0], "draw": np.arange(len(next(iter(draws.values()))))},
    )
    idata["prior"] = xr.DataTree(ds)


def arm_labels(data) -> tuple[str, str]:
    """The display labels of the control and treatment arms, in that order."""
    return data.arm_display(False), data.arm_display(True)


def model_figures(
    plan: FigurePlan, s: OutputSettings, data, run, name: str, draws: dict, prior: dict, label
) -> None:
    """Posterior HR, KM with the model's survival, HR along the biomarker, prior vs posterior."""
    r: Results = run.results
    m, pem, tabs = r.models[name], run.models[name], run.tables["per_model"][name]
    te, level = m.treatment_effect, s.level
    plan.add(
        f"hr_posterior_{name}",
        f"Model {name}: posterior density of the treatment hazard ratio ({m.estimand}) on a log "
        f"axis; the shaded area is P(HR < 1) {eq_text(prob(te.p_benefit, te.n_draws))}.",
        lambda: hr_posterior_plot(
            draws["treatment"],
            title=textwrap.fill(f"{name}: {m.estimand}", 90, break_on_hyphens=False),
            label=label,
        ),
    )
    plan.add(f"survival_{name}", *_km(r, data, run, name, label, level))
    pairs = {f"treatment: {m.estimand}": (prior["treatment"], draws["treatment"])}
    if "interaction" in prior:
        on = pem.design.basis.scale_label(pem.spec.biomarker)
        key = f"treatment × {pem.spec.biomarker} (per SD of {on})"
        pairs[key] = (prior["interaction"], draws["interaction"])
    plan.add(
        f"prior_posterior_{name}",
        f"Model {name}: prior (dashed) and posterior (shaded) densities on the log hazard-ratio "
        "axis (hazard ratio on the top axis); the further the posterior from the prior, the more "
        "the data dominate.",
        lambda: prior_posterior_figure(
            pairs, title=f"{name}: prior and posterior (log-HR scale)", label=label
        ),
    )
    if "hr_curve" in tabs:
        plan.add(f"hr_curve_{name}", *_hr_curve(r, run, name, label, level))
    hot = m.hr_over_time
    if hot is not None:
        f = data.frame
        plan.add(
            f"hr_over_time_{name}",
            hr_over_time_caption(name, hot),
            lambda: hr_over_time_plot(
                hot,
                float(f["time"].max()),
                event_times=f.loc[f["event"] == 1, "time"].to_numpy(),
                title=f"{name}: treatment HR over time" + _at_reference(pem, r),
                label=label,
            ),
        )


def _at_reference(pem, r: Results) -> str:
    b = pem.design.basis
    if b is None:
        return ""
    unit = r.unit_of(pem.spec.biomarker)
    return f" at {pem.spec.biomarker} = {b.reference:.4g}" + (f" {unit}" if unit else "")


def hr_over_time_caption(name: str, hot) -> str:
    """Caption of a model's HR-over-time figure, with the PSIS-LOO verdict against proportional
    hazards and the Schoenfeld-residual test where available."""
    level_label = level_text(hot.intervals[0].hr.level)
    c, t = hot.comparison, hot.ph_test
    cap = (
        f"Model {name}: {hot.estimand}, on a log axis — posterior median (step line) and "
        f"{level_label} credible band per baseline interval (thin vertical lines: the cut points; "
        "ticks: event times)"
    )
    if c is not None:
        cap += (
            f"; hatched: the constant (proportional-hazards) HR of model {c.constant_model}, "
            f"{c.constant_hr.text()}. " + c.verdict.replace("`", "")
        )
    else:
        cap += "."
    if t is not None and t.p_value is not None:
        cap += (
            f" Frequentist check ({t.method}): chi-square {t.test_statistic:.2f} on 1 df, "
            f"p = {t.p_value:.3g}."
        )
    return cap


def _km(r: Results, data, run, name: str, label, level: float):
    """(caption, draw) of the Kaplan–Meier figure with the model's survival."""
    m, tabs, tu = r.models[name], run.tables["per_model"][name], r.time_unit
    lm, f, arms = r.setting("landmark"), data.frame, arm_labels(data)
    km_lm = lm if lm is not None and lm <= float(f["time"].max()) else None
    agree = km_agreement(run.tables["km"], tabs["survival_curves"], km_lm, arms)
    cap = (
        f"Model {name}: Kaplan–Meier curves per arm (solid, ticks = censored patients) with the "
        f"model's standardised survival (dashed median, shaded {level_text(level)} credible band) "
        f"and the numbers at risk; dotted line: the landmark ({lm:g} {tu}). Posterior predictive "
        "check for censored data — "
        + km_caption(agree, km_lm, tu, level)
        + _difference_sentence(agree, m.survival, arms, level)
    )

    def draw():
        return km_figure(
            f["time"], f["event"], f["treat"], tabs["survival_curves"], arm_labels=arms,
            landmark=lm, unit=tu, title=f"{name}: Kaplan–Meier and model survival", label=label,
            level=level,
        )  # fmt: skip

    return cap, draw


def _hr_curve(r: Results, run, name: str, label, level: float):
    """(caption, draw) of the HR-along-the-biomarker figure."""
    pem, c = run.models[name], run.tables["per_model"][name]["hr_curve"]
    hc = r.models[name].hr_curve
    b = pem.spec.biomarker
    unit = r.unit_of(b)
    cuts = (r.setting("subgroup_cutoffs") or []) if r.setting("biomarker") == b else []
    spline = pem.design.basis.kind == "spline"
    cap = (
        f"Model {name}: treatment hazard ratio along {b}"
        + (f" ({unit})" if unit else "")
        + (f" (modelled as {pem.design.basis.scale_label(b)})" if pem.design.basis.log else "")
        + (f" over {hc.grid.text(unit)}" if hc.grid else "")
        + f", on a log axis — posterior median, {level_text(level)} pointwise credible band "
        "(shaded)"
        + _simultaneous_words(hc.simultaneous)
        + "; Cox estimate black dashed"
        + _subgroup_words(hc.credible_subgroups)
        + f"; then the pointwise posterior probability that the HR is {_below_words(c)}; "
        f"bottom: the observed distribution of {b} in the range shown"
        + (
            f"; dotted lines: subgroup cut-offs {', '.join(f'{x:g}' for x in cuts)}."
            if cuts
            else "."
        )
        + (
            " The model's covariates are partially pooled, Cox's are not."
            if pooling_word(r.models[name]) == "partially pooled"
            else ""
        )
    )

    # arrays, not the model itself: the draw function is pickled for the sidecar
    log_x = pem.design.basis.log and not pem.design.basis.offset  # log(x + c): x may be 0
    seen = pem.design.biomarker_values[~np.isnan(pem.design.biomarker_values)]  # data.missing

    def draw():
        return hr_curve_figure(
            c, b, unit, seen, cuts,
            cox=c[["biomarker", "cox_median"]].rename(columns={"cox_median": "median"}),
            log_x=log_x, title=f"{name}: treatment HR by {b}", label=label,
            level=level, cox_label="Cox, log-linear term only" if spline else "Cox estimate",
            subgroups=hc.credible_subgroups,
        )  # fmt: skip

    return cap, draw


def _simultaneous_words(sim) -> str:
    if sim is None:
        return ""
    return (
        f" and {level_text(sim.level)} simultaneous band (blue dashed: the whole curve inside "
        f"it with that probability; ± {sim.critical_value:.2f} posterior SD against "
        f"± {sim.pointwise_critical_value:.2f} pointwise)"
    )


def _subgroup_words(subgroups) -> str:
    if not subgroups:
        return ""
    return (
        "; second panel: the credible subgroups for HR below "
        + ", ".join(f"{cs.threshold:g}" for cs in subgroups)
        + " (dark: exclusive, HR below the threshold at every value in it jointly; light: "
        "inclusive, outside it the HR is credibly at or above the threshold)"
    )


def _below_words(curve) -> str:
    """'below 1 and below 0.8' for the thresholds the HR curve carries (``p_hr_below_<t>``)."""
    ts = [c.removeprefix("p_hr_below_") for c in curve.columns if c.startswith("p_hr_below_")]
    words = [f"below {t}" for t in ts]
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]])) if words else "–"


def _difference_sentence(agree: dict, surv, arms, level: float) -> str:
    """KM vs model treatment − control survival difference at the landmark."""
    c, t = (agree[a].get("landmark") for a in arms)
    if not (c and t):
        return ""
    km_diff, d = t["km"] - c["km"], surv.survival_difference
    inside = d.lower <= km_diff <= d.upper
    return (
        f" Difference (treatment − control) at the landmark: Kaplan–Meier {km_diff:+.3f}, model "
        f"{d.median:+.3f} ({d.lower:+.3f} to {d.upper:+.3f})"
        + (
            "."
            if inside
            else f" — the Kaplan–Meier difference lies OUTSIDE the model's {level_text(level)} CrI."
        )
    )


def sensitivity_figure(plan: FigurePlan, s: OutputSettings, sens, label) -> None:
    """Every model's treatment HR under every prior scenario (one forest)."""
    rows = [forest_row(f"model {x.model}", x.scenario, x.treatment) for x in sens.refits]
    level = s.level
    plan.add(
        "sensitivity",
        f"Treatment hazard ratio (posterior median, {level_text(level)} CrI) and P(HR < 1) of each "
        "model refitted under each named prior scenario, grouped by model.",
        lambda: forest_plot(
            rows, title="Treatment HR under each prior scenario", label=label, level=level
        ),
    )


def forest_caption(level: float, pooled: bool = False) -> str:
    """Caption of the forest plot at credible ``level`` (``pooled``: a note on partial pooling)."""
    level_label = level_text(level)
    return (
        f"Treatment hazard ratios of every model — posterior median with {level_label} credible "
        f"interval (circles) beside the Cox estimate with {level_label} confidence interval "
        "(squares) — and the conditional HRs of the biomarker subgroups; right: P(HR < 1) of each "
        "posterior."
        + (
            " In the adjusted models the covariates are partially pooled (Cox's are not): see "
            "each model's coefficient table."
            if pooled
            else ""
        )
    )
