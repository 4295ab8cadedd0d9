"""The figures of a patient-level run, each with a caption that says what it shows (and, for the
survival figure, where the Kaplan–Meier curves and the model disagree), from the typed
:class:`~trialbayes.results.model.Results`. Also the prior draws stored in each posterior file (group
``prior``) for the prior-vs-posterior figure."""

from __future__ import annotations

import textwrap

import numpy as np
import xarray as xr

from ..config.priors import prior_draws
from ..core.text import level_text
from ..plots.general import forest_plot, hr_posterior_plot
from ..plots.journal import (
    hr_curve_figure,
    km_agreement,
    km_caption,
    km_figure,
    prior_posterior_figure,
)
from ..plots.style import save
from ..plots.time_varying import hr_over_time_plot
from ..results.model import Results
from .writer import OutputSettings

N_PRIOR_DRAWS = 4000


def prior_group(pem, seed: int) -> dict[str, np.ndarray]:
    """Draws of the treatment (and interaction) priors as the model carries them."""
    out = {"treatment": prior_draws(pem.priors["treatment"], N_PRIOR_DRAWS, seed)}
    if pem.design.basis is not None:
        out["interaction"] = prior_draws(pem.priors["interaction"], N_PRIOR_DRAWS, seed + 1)
    return out


def attach_prior(idata, draws: dict[str, np.ndarray]) -> None:
    """Store prior draws as the DataTree's ``prior`` group (chain 0), as ArviZ expects them."""
    ds = xr.Dataset(
        {k: (("chain", "draw"), v[None, :]) for k, v in draws.items()},
        coords={"chain": [0], "draw": np.arange(len(next(iter(draws.values()))))},
    )
    idata["prior"] = xr.DataTree(ds)


def save_figure(out, r: Results, key: str, fig, caption: str, dpi: int) -> None:
    """Write figure ``key`` and record its path and caption in the results."""
    path = f"figures/{key}.png"
    save(fig, out.path(path), dpi)
    r.figures[key] = path
    r.figure_captions[key] = caption


def arm_labels(data) -> tuple[str, str]:
    return data.arm_display(False), data.arm_display(True)


def model_figures(
    out, s: OutputSettings, data, run, name: str, draws: dict, prior: dict, label
) -> None:
    """Posterior HR, KM with the model's survival, HR along the biomarker, prior vs posterior."""
    r: Results = run.results
    m, pem, tabs = r.models[name], run.models[name], run.tables["per_model"][name]
    dpi, te, lv = s.dpi, m.treatment_effect, s.level
    save_figure(
        out,
        r,
        f"hr_posterior_{name}",
        hr_posterior_plot(
            draws["treatment"],
            title=textwrap.fill(f"{name}: {m.estimand}", 90, break_on_hyphens=False),
            label=label,
        ),
        f"Model {name}: posterior density of the treatment hazard ratio ({m.estimand}) on a log "
        "axis; "
        f"the shaded area is P(HR < 1) = {te.p_benefit:.3f}.",
        dpi,
    )
    save_figure(out, r, f"survival_{name}", *_km(r, data, run, name, label, lv), dpi)
    pairs = {f"treatment: {m.estimand}": (prior["treatment"], draws["treatment"])}
    if "interaction" in prior:
        scale = "log " if pem.design.basis.log else ""
        key = f"treatment × {pem.spec.biomarker} (per SD of {scale}{pem.spec.biomarker})"
        pairs[key] = (prior["interaction"], draws["interaction"])
    save_figure(
        out,
        r,
        f"prior_posterior_{name}",
        prior_posterior_figure(
            pairs, title=f"{name}: prior and posterior (log-HR scale)", label=label
        ),
        f"Model {name}: prior (dashed) and posterior (shaded) densities on the log hazard-ratio "
        "axis "
        "(hazard ratio on the top axis); the further the posterior from the prior, the more the "
        "data "
        "dominate.",
        dpi,
    )
    if "hr_curve" in tabs:
        save_figure(out, r, f"hr_curve_{name}", *_hr_curve(r, run, name, label, lv), dpi)
    hot = getattr(m, "hr_over_time", None)
    if hot is not None:
        f = data.frame
        fig = hr_over_time_plot(
            hot,
            float(f["time"].max()),
            event_times=f.loc[f["event"] == 1, "time"].to_numpy(),
            title=f"{name}: treatment HR over time" + _at_reference(pem, r),
            label=label,
        )
        save_figure(out, r, f"hr_over_time_{name}", fig, hr_over_time_caption(name, hot), dpi)


def _at_reference(pem, r: Results) -> str:
    b = pem.design.basis
    if b is None:
        return ""
    unit = r.unit_of(pem.spec.biomarker)
    return f" at {pem.spec.biomarker} = {b.reference:.4g}" + (f" {unit}" if unit else "")


def hr_over_time_caption(name: str, hot) -> str:
    lv = level_text(hot.intervals[0].hr.level)
    c, t = hot.comparison, hot.ph_test
    cap = (
        f"Model {name}: {hot.estimand}, on a log axis — posterior median (step line) and "
        f"{lv} credible band per baseline interval (thin vertical lines: the cut points; ticks: "
        "event times)"
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


def _km(r: Results, data, run, name: str, label, lv: float):
    m, tabs, tu = r.models[name], run.tables["per_model"][name], r.time_unit
    lm, f, arms = r.setting("landmark"), data.frame, arm_labels(data)
    km_lm = lm if lm is not None and lm <= float(f["time"].max()) else None
    agree = km_agreement(run.tables["km"], tabs["survival_curves"], km_lm, arms)
    fig = km_figure(
        f["time"],
        f["event"],
        f["treat"],
        tabs["survival_curves"],
        arm_labels=arms,
        landmark=lm,
        unit=tu,
        title=f"{name}: Kaplan–Meier and model survival",
        label=label,
        level=lv,
    )
    cap = (
        f"Model {name}: Kaplan–Meier curves per arm (solid, ticks = censored patients) with the "
        "model's "
        f"standardised survival (dashed median, shaded {level_text(lv)} credible band) and the numbers "
        "at risk; "
        f"dotted line: the landmark ({lm:g} {tu}). Posterior predictive check for censored data — "
        + km_caption(agree, km_lm, tu, lv)
        + _difference_sentence(agree, m.survival, arms, lv)
    )
    return fig, cap


def _hr_curve(r: Results, run, name: str, label, lv: float):
    pem, c = run.models[name], run.tables["per_model"][name]["hr_curve"]
    b = pem.spec.biomarker
    unit = r.unit_of(b)
    cuts = (r.setting("subgroup_cutoffs") or []) if r.setting("biomarker") == b else []
    spline = pem.design.basis.kind == "spline"
    fig = hr_curve_figure(
        c,
        b,
        unit,
        pem.design.biomarker_values,
        cuts,
        cox=c.rename(columns={"cox_hr": "hr"})[["biomarker", "hr"]],
        log_x=pem.design.basis.log,
        title=f"{name}: treatment HR by {b}",
        label=label,
        level=lv,
        cox_label="Cox, log-linear term only" if spline else "Cox estimate",
    )
    cap = (
        f"Model {name}: treatment hazard ratio along {b}"
        + (f" ({unit})" if unit else "")
        + f" on a log axis — posterior median and {level_text(lv)} credible band, Cox estimate dashed; "
        f"middle: posterior probability that the HR is {_below_words(c)}; bottom: the observed "
        f"distribution of {b}"
        + (
            f"; dotted lines: subgroup cut-offs {', '.join(f'{x:g}' for x in cuts)}."
            if cuts
            else "."
        )
    )
    return fig, cap


def _below_words(curve) -> str:
    """'below 1 and below 0.8' for the thresholds the HR curve carries (``p_hr_below_<t>``)."""
    ts = [c.removeprefix("p_hr_below_") for c in curve.columns if c.startswith("p_hr_below_")]
    words = [f"below {t}" for t in ts]
    return " and ".join(filter(None, [", ".join(words[:-1]), words[-1]])) if words else "–"


def _difference_sentence(agree: dict, surv, arms, lv: float) -> str:
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
            else f" — the Kaplan–Meier difference lies OUTSIDE the model's {level_text(lv)} CrI."
        )
    )


def sensitivity_figure(out, s: OutputSettings, sens, r: Results, label) -> None:
    rows = [
        {
            "group": f"model {x['model']}",
            "label": x["scenario"],
            "hr": x["hr_median"],
            "lower": x["hr_lower"],
            "upper": x["hr_upper"],
            "kind": "bayes",
            "p": x.get("p_hr_below_1"),
        }
        for x in sens["table"].to_dict(orient="records")
    ]
    lv = s.level
    save_figure(
        out,
        r,
        "sensitivity",
        forest_plot(rows, title="Treatment HR under each prior scenario", label=label, level=lv),
        f"Treatment hazard ratio (posterior median, {level_text(lv)} CrI) and P(HR < 1) of each model "
        "refitted "
        "under each named prior scenario, grouped by model.",
        s.dpi,
    )


def forest_caption(lv: float) -> str:
    return (
        f"Treatment hazard ratios of every model — posterior median with {level_text(lv)} credible "
        "interval "
        f"(circles) beside the Cox estimate with {level_text(lv)} confidence interval (squares) — and the "
        "conditional HRs of the biomarker subgroups; right: P(HR < 1) of each posterior."
    )
