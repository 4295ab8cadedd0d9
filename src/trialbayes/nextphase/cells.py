"""The cells of a next-phase grid (run by ``core.executor``): simulate and analyse ``trials``
next trials of one design under a design prior (``assurance_cell``) or at a fixed true HR
(``oc_cell``), and the adaptive-enrichment comparison (``enrichment_cell``,
``enrichment_oc_cell``). Each returns JSON-able summaries.

A design with looks, stopping rules or an analysis prior (``args["plan"]``) is analysed by
``group_sequential`` once per analysis prior in ``args["priors"]`` — with borrowing: the
borrowing prior and the same trials without it — and returns ``{"variants": [...]}``; a
one-look design without them keeps the original analysis (``analysis.analyse``).
"""

from __future__ import annotations

import math
from dataclasses import replace

import numpy as np

from ..config.next_phase import AnalysisSpec, DecisionRule, DesignPriorSpec
from .analysis import analyse
from .enrichment import simulate_enrichment, summarise
from .group_sequential import analyse_sequential, look_stats
from .simulate import StatesOfNature, simulate_trials


# ----------------------------------------------------------------------------- design prior
def design_prior(
    states: StatesOfNature, spec: DesignPriorSpec, rng: np.random.Generator
) -> StatesOfNature:
    """The states of nature under a design prior made from posterior draws (DesignPriorSpec)."""
    if spec.kind == "as_is":
        return replace(states, label=spec.describe())
    if spec.kind == "mixture":
        scept = rng.random(states.n) < spec.weight
        beta = np.where(
            scept, rng.normal(spec.sceptical_mean, spec.sceptical_sd, states.n), states.treatment
        )
        keep = ~scept
        return replace(
            states,
            treatment=beta,
            interaction=states.interaction * keep,
            interaction_spline=states.interaction_spline * keep[:, None],
            label=spec.describe(),
        )
    k = math.sqrt(spec.factor)

    def inflate(a):
        return a.mean(axis=0) + k * (a - a.mean(axis=0))

    return replace(
        states,
        treatment=inflate(states.treatment),
        interaction=inflate(states.interaction),
        interaction_spline=inflate(states.interaction_spline),
        label=spec.describe(),
    )


# ----------------------------------------------------------------------------- cells
#: the analysis of cells whose arguments name none (bench/, older callers): log-rank
LOGRANK = AnalysisSpec()


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def _looks(out, plan) -> list[dict]:
    targets = plan.targets()
    return [
        {
            "look": k + 1,
            "fraction": float(plan.fractions[k]),
            "target_events": int(targets[k]),
            "p_performed": float(out.performed[:, k].mean()),
            "p_efficacy": float(out.efficacy[:, k].mean()),
            "p_futility": float(out.futility[:, k].mean()),
        }
        for k in range(plan.n_looks)
    ]


def _sequential(sim, args) -> list[tuple[str, object]]:
    """(analysis-prior label, SequentialOutcome) for every analysis prior of the cell."""
    spec = args.get("analysis") or LOGRANK
    st = look_stats(sim, spec.method)
    return [
        (label, analyse_sequential(sim, args["plan"], prior, spec.method, st))
        for label, prior in args["priors"]
    ]


def _decisions(ok, sim, rule: DecisionRule) -> dict:
    true_hr = np.exp(sim.true_log_hr)
    bad, good = true_hr >= rule.null_hr, true_hr <= rule.target_hr
    return {
        "p_go": float(ok.mean()),
        "false_go": float((ok & bad).mean()),
        "false_stop": float((~ok & good).mean()),
        "p_true_hr_below_null": float((~bad).mean()),
        "p_true_hr_below_target": float(good.mean()),
        "true_hr_median": float(np.median(true_hr)),
    }


def assurance_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """Simulate and analyse ``trials`` trials under a design prior; summaries of the decisions."""
    rng = np.random.default_rng(seed)
    states: StatesOfNature = args["states"]
    n = args["trials"]
    st = design_prior(states.take(rng.integers(0, states.n, n)), args["prior"], rng)
    sim = simulate_trials(st, args["population"], args["design"], rng)
    reached = float((sim.n_events >= args["design"].events).mean())
    if args.get("plan") is not None:
        variants = []
        for label, out in _sequential(sim, args):
            p = float(out.success.mean())
            frac = out.randomised / np.maximum(sim.n_randomised, 1)
            variants.append(
                {
                    "analysis_prior": label,
                    "assurance": p,
                    "mc_se": _se(p, n),
                    "trials": n,
                    "expected_events": float(out.events.mean()),
                    "expected_randomised": float(out.randomised.mean()),
                    # screen failures in proportion to those randomised by the stopping look
                    "expected_screened": float((sim.n_screened * frac).mean()),
                    "expected_duration": float(out.time.mean()),
                    "p_events_reached": reached,
                    **_decisions(out.success, sim, args["decision"]),
                    "analysis_failed": out.failed,
                    "analysis_divergent": 0,
                    "analysis_errors": [],
                    "looks": _looks(out, args["plan"]),
                }
            )
        return {"variants": variants}
    dec = analyse(sim, args.get("analysis") or LOGRANK, args, rng)
    p = float(dec.success.mean())
    return {
        "assurance": p,
        "mc_se": _se(p, n),
        "trials": n,
        "expected_events": float(sim.n_events.mean()),
        "expected_randomised": float(sim.n_randomised.mean()),
        "expected_screened": float(sim.n_screened.mean()),
        "expected_duration": float(sim.analysis_time.mean()),
        "p_events_reached": reached,
        **_decisions(dec.success, sim, args["decision"]),
        **dec.counts(),
    }


def oc_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """P(success | true HR) with the posterior's baseline and prognostic draws."""
    rng = np.random.default_rng(seed)
    states: StatesOfNature = args["states"]
    n = args["trials"]
    st = states.take(rng.integers(0, states.n, n)).with_effect(math.log(args["hr"]), "fixed HR")
    sim = simulate_trials(st, args["population"], args["design"], rng)
    reached = float((sim.n_events >= args["design"].events).mean())
    if args.get("plan") is not None:
        out = []
        for label, o in _sequential(sim, args):
            p = float(o.success.mean())
            out.append(
                {
                    "analysis_prior": label,
                    "p_success": p,
                    "mc_se": _se(p, n),
                    "trials": n,
                    "p_events_reached": reached,
                    "analysis_failed": o.failed,
                    "looks": _looks(o, args["plan"]),
                }
            )
        return {"variants": out}
    dec = analyse(sim, args.get("analysis") or LOGRANK, args, rng)
    p = float(dec.success.mean())
    return {
        "p_success": p,
        "mc_se": _se(p, n),
        "trials": n,
        "p_events_reached": reached,
        **dec.counts(),
    }


def enrichment_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """Fixed all comers, fixed enriched and adaptive enrichment on the same simulated patients,
    one state of nature per trial from the design prior."""
    rng = np.random.default_rng(seed)
    states: StatesOfNature = args["states"]
    n = args["trials"]
    if args.get("hr") is not None:
        st = states.take(rng.integers(0, states.n, n)).with_effect(math.log(args["hr"]), "HR")
    else:
        st = design_prior(states.take(rng.integers(0, states.n, n)), args["prior"], rng)
    o = simulate_enrichment(st, args["population"], args["plan"], rng)
    return {
        "rows": summarise(o, args["decision"]),
        "prevalence": o["prevalence"],
        "interim_events_s": float(o["interim_events_s"].mean()),
        "interim_events_c": float(o["interim_events_c"].mean()),
        "p_enrich": float(o["enrich"].mean()),
    }
