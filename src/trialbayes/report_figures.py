"""The figures of a patient-level run, each with a caption that says what it shows (and, for the
survival figure, where the Kaplan–Meier curves and the model disagree). Also the prior draws stored
in each posterior file (group ``prior``) for the prior-vs-posterior figure."""

from __future__ import annotations

import numpy as np
import xarray as xr

from . import figures, plots
from .priors import prior_draws

N_PRIOR_DRAWS = 4000


def units(cfg, data) -> tuple[str, dict]:
    """(time unit, {column: unit}) from the config's ``report`` section; the synthetic cohort's are
    known (days, pg/mL)."""
    time_unit = cfg.report.time_unit or ("days" if data.synthetic else "time units")
    col_units = dict(cfg.report.units)
    if data.synthetic:
        col_units.setdefault("pnfh", "pg/mL")
    return time_unit, col_units


def biomarker_label(pem, col_units: dict) -> str:
    b = pem.spec.biomarker
    scale = "log " if pem.design.basis.log else ""
    return f"per SD of {scale}{b}"


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


def _save(out, figs, caps, key, fig, caption, dpi):
    path = f"figures/{key}.png"
    plots.save(fig, out.path(path), dpi)
    figs[key] = path
    caps[key] = caption


def model_figures(out, cfg, data, run, name, draws, prior, figs, caps, label):
    """Posterior HR, KM with the model's survival, HR along the biomarker, prior vs posterior."""
    dpi, lm = cfg.report.dpi, cfg.estimands.landmark
    tunit, cunits = units(cfg, data)
    arms = (data.control_label, data.treatment_label)
    pem, tabs, res = run.models[name], run.tables["per_model"][name], run.results["models"][name]
    te = res["treatment_effect"]
    _save(
        out,
        figs,
        caps,
        f"hr_posterior_{name}",
        plots.hr_posterior_plot(draws["treatment"], title=f"{name}: {te['estimand']}", label=label),
        f"Model {name}: posterior density of the treatment hazard ratio ({te['estimand']}) on a "
        "log "
        f"axis; the shaded area is P(HR < 1) = {te['p_hr_below']['1']:.3f}.",
        dpi,
    )
    f = data.frame
    km_lm = lm if lm <= float(f["time"].max()) else None
    agree = figures.km_agreement(run.tables["km"], tabs["survival_curves"], km_lm, arms)
    _save(
        out,
        figs,
        caps,
        f"survival_{name}",
        figures.km_figure(
            f["time"],
            f["event"],
            f["treat"],
            tabs["survival_curves"],
            arm_labels=arms,
            landmark=lm,
            unit=tunit,
            title=f"{name}: Kaplan–Meier and model survival",
            label=label,
        ),
        f"Model {name}: Kaplan–Meier curves per arm (solid, ticks = censored patients) with the "
        "model's "
        f"standardised survival (dashed median, shaded 95% credible band) and the numbers at risk; "
        f"dotted line: the landmark ({lm:g} {tunit}). Posterior predictive check for censored "
        "data — "
        + figures.km_caption(agree, km_lm, tunit)
        + _difference_sentence(agree, res["survival"], arms),
        dpi,
    )
    pairs = {f"treatment: {te['estimand']}": (prior["treatment"], draws["treatment"])}
    if "interaction" in prior:
        pairs[f"treatment × {pem.spec.biomarker} ({biomarker_label(pem, cunits)})"] = (
            prior["interaction"],
            draws["interaction"],
        )
    _save(
        out,
        figs,
        caps,
        f"prior_posterior_{name}",
        figures.prior_posterior_figure(
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
        c, b = tabs["hr_curve"], pem.spec.biomarker
        spline = pem.design.basis.kind == "spline"
        cuts = cfg.estimands.subgroup_cutoffs
        _save(
            out,
            figs,
            caps,
            f"hr_curve_{name}",
            figures.hr_curve_figure(
                c,
                b,
                cunits.get(b),
                pem.design.biomarker_values,
                cuts,
                cox=c.rename(columns={"cox_hr": "hr"})[["biomarker", "hr"]],
                log_x=pem.design.basis.log,
                title=f"{name}: treatment HR by {b}",
                label=label,
                cox_label="Cox, log-linear term only" if spline else "Cox estimate",
            ),
            f"Model {name}: treatment hazard ratio along {b}"
            + (f" ({cunits[b]})" if b in cunits else "")
            + " on a log axis — posterior median and 95% "
            "credible band, Cox estimate dashed; middle: posterior probability that the HR is "
            "below 1 "
            "and below 0.8; bottom: the observed distribution of "
            + b
            + (
                f"; dotted lines: subgroup cut-offs {', '.join(f'{x:g}' for x in cuts)}."
                if cuts
                else "."
            ),
            dpi,
        )


def _difference_sentence(agree: dict, surv: dict, arms) -> str:
    """KM vs model treatment − control survival difference at the landmark."""
    c, t = (agree[a].get("landmark") for a in arms)
    if not (c and t):
        return ""
    km_diff, d = t["km"] - c["km"], surv["survival_difference"]
    inside = d["lower"] <= km_diff <= d["upper"]
    return (
        f" Difference (treatment − control) at the landmark: Kaplan–Meier {km_diff:+.3f}, model "
        f"{d['median']:+.3f} ({d['lower']:+.3f} to {d['upper']:+.3f})"
        + ("." if inside else " — the Kaplan–Meier difference lies OUTSIDE the model's 95% CrI.")
    )


def sensitivity_figure(out, cfg, sens, figs, caps, label):
    rows = [
        {
            "group": f"model {r['model']}",
            "label": r["scenario"],
            "hr": r["hr_median"],
            "lower": r["hr_lower"],
            "upper": r["hr_upper"],
            "kind": "bayes",
            "p": r.get("p_hr_below_1"),
        }
        for r in sens["table"].to_dict(orient="records")
    ]
    _save(
        out,
        figs,
        caps,
        "sensitivity",
        plots.forest_plot(rows, title="Treatment HR under each prior scenario", label=label),
        "Treatment hazard ratio (posterior median, 95% CrI) and P(HR < 1) of each model refitted "
        "under "
        "each named prior scenario, grouped by model.",
        cfg.report.dpi,
    )


def forest_caption() -> str:
    return (
        "Treatment hazard ratios of every model — posterior median with 95% credible interval "
        "(circles) "
        "beside the Cox estimate with 95% confidence interval (squares) — and the conditional HRs "
        "of "
        "the biomarker subgroups; right: P(HR < 1) of each posterior."
    )
