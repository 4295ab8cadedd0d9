"""From the grid's cell values to the typed next-phase results: design rows and OC points (one
per analysis prior), the planned designs in closed form, borrowing summaries with effective
sample sizes, the adaptive-enrichment comparison, the recommended design and the flags."""

from __future__ import annotations

import math

import numpy as np

from ..config.next_phase import P_EVENTS_REACHED_FLAG, NextPhase, PopulationSpec, Recommendation
from ..core.flags import Flag
from ..results.model import HRSummary
from ..results.next_phase import (
    BorrowingSummary,
    DesignResult,
    EnrichmentResults,
    EnrichmentRow,
    FalseEnrichment,
    LookOutcome,
    NextPhaseResults,
    OCPoint,
    PlannedDesign,
    Recommended,
)
from .borrowing import ess_elir, ess_moment, power_prior, robust_mixture, vague
from .enrichment import false_enrichment_closed_form
from .group_sequential import SequentialPlan, planned

_DESIGN_KEYS = {f for f in DesignResult.__dataclass_fields__} - {"looks"}
_OC_KEYS = {f for f in OCPoint.__dataclass_fields__} - {"looks"}


def _looks(v: dict) -> list[LookOutcome]:
    return [LookOutcome(**x) for x in v.get("looks", [])]


def collect(res: NextPhaseResults, cfg, main, vals_main, oc, vals_oc, labels) -> None:
    """Design rows and OC points from the cells that finished (one per analysis prior)."""
    for c in main:
        if c.key not in vals_main:
            continue
        a, v = c.args, vals_main[c.key]
        for x in v.get("variants", [v]):
            keep = {k: x[k] for k in x if k in _DESIGN_KEYS}
            res.designs.append(
                DesignResult(
                    a["prior"].name,
                    labels[a["design"].label()],
                    a["design"].cutoff,
                    a["design"].events,
                    a["design"].n_randomised,
                    **keep,
                    population_kind=a["design"].population,
                    looks=_looks(x),
                )
            )
    for c in oc:
        if c.key not in vals_oc:
            continue
        a, v = c.args, vals_oc[c.key]
        for x in v.get("variants", [v]):
            keep = {k: x[k] for k in x if k in _OC_KEYS - {"population", "events", "true_hr"}}
            res.oc.append(
                OCPoint(
                    labels[a["design"].label()],
                    a["design"].events,
                    a["hr"],
                    **keep,
                    looks=_looks(x),
                )
            )


def analysis_text(cfg: NextPhase) -> str:
    """How each simulated trial is analysed, rules included (every output states it)."""
    base = cfg.analysis.describe(cfg.alpha, cfg.min_observed_hr)
    if not cfg.sequential:
        return base
    name = "Cox model (treatment only, Efron ties)" if cfg.analysis.method == "cox" else (
        "log-rank test")  # fmt: skip
    return f"{name} at each look; success: {cfg.efficacy_rule().describe(cfg.alpha)}"


def analysis_short(cfg: NextPhase) -> str:
    """The analysis and its decision rule in a few words (figure titles), looks included."""
    if not cfg.sequential:
        return cfg.analysis.short(cfg.alpha)
    e = cfg.efficacy_rule()
    name = "Cox" if cfg.analysis.method == "cox" else "log-rank"
    looks = ", ".join(f"{x:g}" for x in cfg.looks)
    rule = (
        f"P(HR < 1) > {'/'.join(f'{g:g}' for g in e.gamma)}"
        if e.kind == "posterior"
        else f"{e.function.replace('_', '–').title()} α-spending, α = {cfg.alpha:g}"
    )
    return f"{name} at looks {looks} of D; {rule}"


def sequential_text(cfg: NextPhase) -> str:
    """The group-sequential design in words (looks, stopping rules, analysis prior); "" if none."""
    if not cfg.sequential:
        return ""
    looks = ", ".join(f"{x:g}" for x in cfg.looks)
    parts = [f"looks at {looks} of the target deaths", cfg.efficacy_rule().describe(cfg.alpha)]
    if cfg.futility is not None:
        parts.append(cfg.futility.describe())
    a = cfg.analysis.prior
    if cfg.efficacy_rule().kind == "posterior" or (
        cfg.futility is not None and cfg.futility.kind != "conditional_power"
    ):
        parts.append(
            "posterior probabilities from the normal approximation of each look's log-HR "
            "estimate (Peto / Cox, variance 1/information) and the analysis prior "
            f"({a.kind if a.kind != 'none' else 'no borrowing'}; vague component "
            f"{vague(a.vague_mean, a.vague_sd).describe()})"
        )
    parts.append("a look whose deaths are reached only at the final analysis is skipped")
    return "; ".join(parts)


def _plan(cfg: NextPhase, events: int) -> SequentialPlan:
    return SequentialPlan(
        events, tuple(cfg.looks), cfg.alpha, cfg.allocation, cfg.efficacy_rule(),
        cfg.futility, math.log(cfg.design_hr), cfg.min_observed_hr,
    )  # fmt: skip


def planned_designs(cfg: NextPhase, states, pop) -> list[PlannedDesign]:
    """Closed form at the planned death counts, under the vague prior (no borrowing)."""
    a = cfg.analysis.prior
    prior = vague(a.vague_mean, a.vague_sd)
    return [PlannedDesign(d, planned(_plan(cfg, d), prior)) for d in cfg.events]


def _built(cfg: NextPhase, m2: float, s2: float):
    a = cfg.analysis.prior
    if a.kind == "robust_mixture":
        return robust_mixture(m2, s2, a.weight, a.vague_mean, a.vague_sd)
    return power_prior(m2, s2, a.a0, a.vague_mean, a.vague_sd)


def borrowing_summaries(cfg: NextPhase, states, pop, res, labels) -> list[BorrowingSummary]:
    """Per population and target deaths: the borrowed prior, its ESS, and type I error, power
    and assurance with and without borrowing (the same simulated trials)."""
    a = cfg.analysis.prior
    out = []
    first = cfg.design_priors[0].name
    for ps in cfg.populations:
        lh = states.population_log_hr(pop, pop.eligible(ps.kind, ps.cutoff))
        m2, s2 = float(np.mean(lh)), float(np.std(lh, ddof=1))
        prior = _built(cfg, m2, s2)
        label = labels[ps.label()]
        for d in cfg.events:
            oc = {
                (o.true_hr, o.analysis_prior): o
                for o in res.oc
                if o.population == label and o.events == d
            }
            des = {
                x.analysis_prior: x
                for x in res.designs
                if (x.population, x.events, x.design_prior) == (label, d, first)
            }

            def p(key, src):
                return src[key].p_success if key in src else None

            ses = [o.mc_se for o in oc.values()] + [x.mc_se for x in des.values()]
            out.append(
                BorrowingSummary(
                    population=label,
                    events=d,
                    prior=prior.describe(),
                    no_borrowing=vague(a.vague_mean, a.vague_sd).describe(),
                    phase2=HRSummary.from_log_draws(lh),
                    ess_elir=ess_elir(prior, cfg.allocation),
                    ess_moment=ess_moment(prior, cfg.allocation),
                    type_one_error=p((1.0, "borrowing"), oc),
                    type_one_error_none=p((1.0, "no borrowing"), oc),
                    power=p((cfg.design_hr, "borrowing"), oc),
                    power_none=p((cfg.design_hr, "no borrowing"), oc),
                    assurance=des["borrowing"].assurance if "borrowing" in des else None,
                    assurance_none=des["no borrowing"].assurance if "no borrowing" in des else None,
                    mc_se_max=float(max(ses)) if ses else float("nan"),
                )
            )
    return out


def enrichment_results(cfg: NextPhase, cells, vals, res) -> EnrichmentResults:
    """The adaptive-enrichment results from the enrichment cells' values ``vals``: a row per design
    prior and target deaths, and the false-enrichment rate at each HR without interaction
    (simulated and closed form)."""
    r = cfg.enrichment
    rows, false = [], []
    prevalence = float("nan")
    for c in cells:
        if c.key not in vals:
            continue
        v, a = vals[c.key], c.args
        prevalence = v["prevalence"]
        d = a["plan"].events
        hr = a.get("hr")
        name = a["prior"].name if hr is None else f"HR {hr:g}, no interaction"
        rows += [EnrichmentRow(design_prior=name, events=d, true_hr=hr, **x) for x in v["rows"]]
        if hr is not None:
            cf = false_enrichment_closed_form(
                r, hr, v["interim_events_s"], v["interim_events_c"], cfg.allocation
            )
            n = a["trials"]
            se = math.sqrt(max(v["p_enrich"] * (1 - v["p_enrich"]), 0) / n)
            false.append(FalseEnrichment(d, hr, cf, v["p_enrich"], se))
    sub = PopulationSpec(kind=r.kind, cutoff=r.cutoff).describe(res.biomarker, res.biomarker_unit)
    return EnrichmentResults(
        rule=r.describe(res.biomarker),
        subgroup=sub,
        prevalence=prevalence,
        rows=rows,
        false_enrichment=false,
        stated_false_enrichment=max((f.closed_form for f in false), default=float("nan")),
    )


def recommend(res: NextPhaseResults, rule: Recommendation) -> list[Recommended]:
    """Under each design prior: the design with the smallest criterion value among those with
    assurance ≥ rule.assurance, P(D reached) ≥ rule.min_p_events_reached and, if set, simulated
    P(success | HR 1) ≤ rule.max_type_one_error (each design's type I error reported)."""
    key = {"min_screened": "expected_screened", "min_randomised": "expected_randomised",
           "min_events": "events"}[rule.criterion]  # fmt: skip
    t1 = {(o.population, o.events, o.analysis_prior): o.p_success
          for o in res.oc if o.true_hr == 1.0}  # fmt: skip

    def size(d):
        return t1.get((d.population, d.events, d.analysis_prior))

    def fine(d):
        lim = rule.max_type_one_error
        return lim is None or (size(d) is not None and size(d) <= lim)

    out = []
    for prior in res.design_priors:
        rows = [d for d in res.designs if d.design_prior == prior]
        ok = [
            d
            for d in rows
            if d.assurance >= rule.assurance
            and d.p_events_reached >= rule.min_p_events_reached
            and fine(d)
        ]
        if not ok:
            best = max(rows, key=lambda d: d.assurance, default=None)
            note = (
                f"no design qualifies; the highest assurance is {best.assurance:.2f} "
                f"({best.population}, {best.events} deaths)"
                if best
                else "no design finished"
            )
            out.append(Recommended(prior, rule.describe(), None, None, "", None, None, None,
                                   None, note))  # fmt: skip
            continue
        b = min(ok, key=lambda d: (getattr(d, key), -d.assurance))
        out.append(
            Recommended(
                prior,
                rule.describe(),
                b.population,
                b.events,
                b.analysis_prior,
                b.assurance,
                b.expected_screened,
                b.expected_randomised,
                b.p_events_reached,
                type_one_error=size(b),
            )
        )
    return out


def events_flags(res: NextPhaseResults) -> list[Flag]:
    """One flag per population and target deaths whose P(D reached) < 0.9 under some design
    prior: there the trial is analysed at the calendar cut or the end of follow-up with fewer
    deaths, and its power / assurance is that of the smaller trial."""
    worst: dict = {}
    for d in res.designs:
        k = (d.population, d.events)
        if d.p_events_reached < P_EVENTS_REACHED_FLAG:
            worst[k] = min(worst.get(k, 1.0), d.p_events_reached)
    return [
        Flag(
            "target_deaths_not_reached",
            f"next phase: {pop}, {ev} target deaths: P(D reached) is {p:.3f} (< "
            f"{P_EVENTS_REACHED_FLAG:g}); trials that do not reach D are analysed at the calendar "
            "cut or the end of follow-up with fewer deaths",
            "caution",
            detail={"population": pop, "events": ev, "p_events_reached": p},
        )
        for (pop, ev), p in sorted(worst.items())
    ]


def failed_cells_flags(res: NextPhaseResults) -> list[Flag]:
    """A warning when cells of the grid failed (listed in the next-phase section)."""
    if not res.failed_cells:
        return []
    n = len(res.failed_cells)
    total = len(res.designs) + len(res.oc) + n
    first = next((e for e in res.failed_errors.values() if e), "")
    return [
        Flag(
            "next_phase_failed_cells",
            f"next phase: {n} of {total} simulation cells failed"
            + (" (every cell)" if n == total else "")
            + (f", e.g. {first}" if first else "")
            + "; they are listed in the next-phase section and missing from its tables",
            "warning",
            detail={"failed": n, "cells": total},
        )
    ]
