"""Flags for answers that lean on the prior or on a failed cross-check (``flags.Flag``).

A posterior always exists, however little the data say: with no events in an arm the treatment
HR is the prior's tail, reported with a narrow-looking interval. These functions look at the data
and the fit and return the flags a reader must see — on the CLI, in results.json (``flags``) and
at the top of every report — and :func:`headline_tag` marks the headline so that it does not read
as a confident result.
"""

from __future__ import annotations

import numpy as np
from scipy import optimize, stats

from ..config.priors import as_mixture_params
from ..core.flags import Flag
from ..core.text import level_text, plural
from ..results.sections import ReconstructionQuality
from ..results.summaries import equal_tailed
from .frequentist import CoxFit

#: fewer events than this in an arm: the arm's hazard is mostly prior
MIN_EVENTS_ARM = 5
#: fewer events than this overall: the treatment HR is imprecise and prior-sensitive
MIN_EVENTS_TOTAL = 20
#: posterior 95% interval wider than this share of the prior's: the data added little
PRIOR_WIDTH_SHARE = 0.5

PRIOR_DRIVEN = {"zero_events_in_arm", "few_events_in_arm", "prior_dominated"}


def data_flags(data, reconstruction: ReconstructionQuality | None = None) -> list[Flag]:
    """Sparse events in the data (``data.TrialData``), and the warnings of a reconstruction."""
    d = data.describe()
    out = []
    for arm, v in d.by_arm.items():
        if v.events == 0:
            msg = (
                f"No events in arm '{arm}' (n = {v.n}): the treatment HR is set by the "
                "prior, not estimated from the data"
            )
            out.append(Flag("zero_events_in_arm", msg, detail={"arm": arm, "n": v.n, "events": 0}))
        elif v.events < MIN_EVENTS_ARM:
            msg = (
                f"Only {v.events} {plural(v.events, 'event')} in arm '{arm}' (n = {v.n}): the "
                "treatment HR leans on the prior"
            )
            out.append(
                Flag("few_events_in_arm", msg, detail={"arm": arm, "n": v.n, "events": v.events})
            )
    if d.events < MIN_EVENTS_TOTAL:
        msg = f"Only {d.events} events in all: estimates are imprecise and prior-sensitive"
        out.append(Flag("few_events", msg, severity="caution", detail={"events": d.events}))
    for w in reconstruction.warnings if reconstruction is not None else []:
        out.append(Flag("reconstruction_check", f"Reconstruction: {w}"))
    return out


def prior_width(prior, level: float = 0.95) -> float:
    """Width of the central ``level`` interval of a location prior (any family, as a mixture)."""
    p = as_mixture_params(prior)
    comps = [
        stats.t(df=min(nu, 1e6), loc=mu, scale=s) for nu, mu, s in zip(p["nu"], p["mu"], p["sigma"])
    ]

    def cdf(x):
        return sum(w * c.cdf(x) for w, c in zip(p["w"], comps))

    lo_b = min(c.ppf(1e-6) for c in comps)
    hi_b = max(c.ppf(1 - 1e-6) for c in comps)
    a = (1 - level) / 2
    lo = optimize.brentq(lambda x: cdf(x) - a, lo_b, hi_b)
    hi = optimize.brentq(lambda x: cdf(x) - (1 - a), lo_b, hi_b)
    return float(hi - lo)


def model_flags(
    name: str, cox: CoxFit, treatment_draws: np.ndarray, treatment_prior, level: float = 0.95
) -> list[Flag]:
    """Flags of one fitted model: prior dominance (posterior vs prior interval widths at the
    run's ``level``) and the Cox cross-check (``frequentist.cox_fit``). Sparse subgroups are
    flagged where they are estimated (``routes.analyse.subgroup_flags``)."""
    out = []
    lo, _, hi = equal_tailed(treatment_draws, level)
    share = float((hi - lo) / prior_width(treatment_prior, level))
    if share > PRIOR_WIDTH_SHARE:
        msg = (
            f"The posterior {level_text(level)} interval of the treatment log-HR is "
            f"{100 * share:.0f}% as wide as the prior's: the data add little, the answer is mostly "
            "the prior"
        )
        out.append(Flag("prior_dominated", msg, model=name, detail={"width_share": share}))
    if cox.status == "failed":
        msg = (
            f"The Cox cross-check could not be fitted ({cox.error}); the Bayesian result is "
            "not cross-checked"
        )
        out.append(Flag("cox_failed", msg, model=name, detail={"error": cox.error}))
    elif cox.status == "not_converged":
        msg = (
            "The Cox cross-check did not converge (" + "; ".join(cox.problems) + "): its "
            "numbers are not estimates (sparse events or separation)"
        )
        out.append(
            Flag("cox_not_converged", msg, model=name, detail={"problems": "; ".join(cox.problems)})
        )
    return out


def for_model(flags: list[Flag], model: str) -> list[Flag]:
    """The run's flags that apply to ``model`` (its own and the whole run's)."""
    return [f for f in flags if f.model in (None, model)]


def headline_tag(flags: list[Flag], model: str) -> str:
    """'' or e.g. '  [PRIOR-DRIVEN; COX CROSS-CHECK FAILED]': a headline that must not read as
    certain says so."""
    codes = {f.code for f in for_model(flags, model) if f.severity == "warning"}
    tags = []
    if codes & PRIOR_DRIVEN:
        tags.append("PRIOR-DRIVEN")
    if codes & {"cox_failed", "cox_not_converged"}:
        tags.append("COX CROSS-CHECK FAILED")
    if "reconstruction_check" in codes:
        tags.append("RECONSTRUCTION POOR")
    return f"  [{'; '.join(tags)}]" if tags else ""


def published_flags(name: str, events, scenarios: dict) -> list[Flag]:
    """Flags of one published estimate: few events (when the config gives events per arm), and a
    posterior interval wider than ``PRIOR_WIDTH_SHARE`` of its prior's under every scenario
    (``scenarios``: name -> (prior, posterior HRSummary)): then even the least informative prior
    set carries the answer. Under some scenarios only, that is what a sceptical or enthusiastic
    prior is for (the scenario table shows it), so it is not flagged."""
    out = []
    if events is not None:
        arms = {"treatment": events.treatment, "control": events.control}
        for arm, k in arms.items():
            if k < MIN_EVENTS_ARM:
                msg = f"Only {k} events in the {arm} arm: the published HR rests on few events"
                detail = {"arm": arm, "events": k}
                out.append(Flag("few_events_in_arm", msg, "warning", name, detail))
        if sum(arms.values()) < MIN_EVENTS_TOTAL:
            msg = f"Only {sum(arms.values())} events in all: the estimate is imprecise"
            out.append(Flag("few_events", msg, "caution", name, {"events": sum(arms.values())}))
    shares = {
        sc: float(np.log(hr.upper / hr.lower) / prior_width(prior, hr.level))
        for sc, (prior, hr) in scenarios.items()
    }
    if shares and min(shares.values()) > PRIOR_WIDTH_SHARE:
        pct = ", ".join(f"{sc} {100 * v:.0f}%" for sc, v in shares.items())
        msg = (
            f"Under every prior scenario the posterior interval of the log-HR is more than "
            f"{PRIOR_WIDTH_SHARE:.0%} as wide as the prior's ({pct}): the published estimate adds "
            "little, every answer is mostly its prior"
        )
        out.append(Flag("prior_dominated", msg, "warning", name, {"width_share": shares}))
    return out
