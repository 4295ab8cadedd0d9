"""Adaptive enrichment at an interim look, against fixed all-comers and fixed enriched designs
on the same simulated patients (``next_phase.enrichment``; the rule: config.next_phase).

Per trial, two streams share entry times, allocation and dropout: stream A resamples all comers,
stream S only subgroup patients (biomarker below / above the cut-off). Fixed all comers = stream
A analysed at its D-th death; fixed enriched = stream S at its D-th death (its screening counted);
adaptive = stream A up to the interim (the ⌈look·D⌉-th death), then

* stop (futility) if Φ(Z_S) < ``futility``, Z the benefit-positive log-rank statistic of the
  subgroup's patients at the interim;
* else enrich if Φ(Z_C) < ``enrich_if`` (Z_C: the complement's): patients randomised after the
  interim come from stream S, the final analysis at the D-th death among subgroup patients;
* else continue all comers (= stream A to its D-th death).

Final test (closed testing, inverse-normal combination, weights √look and √(1 − look)): stage 1
p-values from the interim log-rank statistics of F (all) and S, stage 2 from the increments of
the log-rank score and variance between the interim and the final analysis (independent
increments; the adaptation uses only these statistics). The intersection H_F ∩ H_S by Simes (or
Bonferroni) at each stage; after enrichment only H_S (and the intersection, with the stage-2 S
increment) is tested. Success: H_F or H_S rejected; the claim is F if H_F is rejected, else S.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

from ..config.next_phase import AdaptiveEnrichment, DecisionRule
from .logrank import logrank
from .simulate import (
    CHUNK_CELLS,
    Population,
    StatesOfNature,
    cut,
    entry_times,
    nth_death,
    pem_times,
)


@dataclass(frozen=True)
class EnrichmentPlan:
    """The trial an adaptive-enrichment cell simulates: target deaths, patients randomised, accrual,
    dropout, allocation, calendar cut, the enrichment rule and the one-sided alpha."""

    events: int
    n_randomised: int
    accrual_time: float
    accrual_weights: tuple[float, ...]
    dropout_rate: float
    allocation: float
    calendar_cut: float | None
    rule: AdaptiveEnrichment
    alpha: float


def _z(time, event, treat, member) -> tuple[np.ndarray, np.ndarray]:
    """Benefit-positive score and variance of the log-rank test among ``member`` patients."""
    lr = logrank(np.where(member, time, np.inf), event & member, treat)
    return -lr.o_minus_e, lr.variance


def _p(score, var) -> np.ndarray:
    """One-sided p-value (benefit) of a score with variance ``var`` (no information: 0.5)."""
    z = np.where(var > 0, score / np.sqrt(np.maximum(var, 1e-12)), 0.0)
    return special.ndtr(-z)


def _intersection(p1, p2, how: str) -> np.ndarray:
    lo, hi = np.minimum(p1, p2), np.maximum(p1, p2)
    return np.minimum(2 * lo, hi) if how == "simes" else np.minimum(1.0, 2 * lo)


def _final_time(cal_death, member, end, d: int, cap) -> np.ndarray:
    t = nth_death(np.where(member, cal_death, np.inf), d)
    t = np.where(np.isfinite(t), t, end)
    return np.minimum(t, cap) if cap is not None else t


def _chunk(states: StatesOfNature, pop: Population, in_s: np.ndarray, plan, rng) -> dict:
    t, n = states.n, plan.n_randomised
    all_idx = np.arange(pop.n)
    s_idx = np.flatnonzero(in_s)
    idx_a = all_idx[rng.integers(0, pop.n, (t, n))]
    idx_s = s_idx[rng.integers(0, len(s_idx), (t, n))]
    treat = rng.permuted(np.tile(np.arange(n) < round(n * plan.allocation), (t, 1)), axis=1)
    entry = entry_times(rng, (t, n), plan.accrual_time, plan.accrual_weights)
    entry -= entry.min(axis=1, keepdims=True)
    drop = (
        rng.standard_exponential((t, n)) / plan.dropout_rate
        if plan.dropout_rate > 0
        else np.full((t, n), np.inf)
    )

    def stream(idx):
        eta = states.prognostic(pop, idx) + treat * states.patient_log_hr(pop, idx)
        surv = pem_times(rng, states.log_baseline, states.starts, eta)
        return surv, np.where(surv <= drop, entry + surv, np.inf)

    surv_a, cal_a = stream(idx_a)
    surv_s, cal_s = stream(idx_s)
    mem_a = in_s[idx_a]
    every = np.ones((t, n), bool)
    d, cap = plan.events, plan.calendar_cut
    end_a = (entry + np.minimum(surv_a, drop)).max(axis=1)
    end_s = (entry + np.minimum(surv_s, drop)).max(axis=1)
    tau_a = _final_time(cal_a, every, end_a, d, cap)
    tau_s = _final_time(cal_s, every, end_s, d, cap)
    ta, ea = cut(entry, surv_a, drop, cal_a, tau_a)
    ts, es = cut(entry, surv_s, drop, cal_s, tau_s)
    sf_a, vf_a = _z(ta, ea, treat, every)
    sfix_s, vfix_s = _z(ts, es, treat, every)
    # interim on stream A
    d1 = max(1, math.ceil(plan.rule.look * d))
    tau1 = np.minimum(nth_death(cal_a, d1), tau_a)
    t1, e1 = cut(entry, surv_a, drop, cal_a, tau1)
    s1f, v1f = _z(t1, e1, treat, every)
    s1s, v1s = _z(t1, e1, treat, mem_a)
    s1c, v1c = _z(t1, e1, treat, ~mem_a)
    ps_ = special.ndtr(np.where(v1s > 0, s1s / np.sqrt(np.maximum(v1s, 1e-12)), 0.0))
    pc_ = special.ndtr(np.where(v1c > 0, s1c / np.sqrt(np.maximum(v1c, 1e-12)), 0.0))
    r = plan.rule
    stop = ps_ < r.futility
    enrich = ~stop & (pc_ < r.enrich_if)
    # the enriched continuation: stream S after the interim, final at D subgroup deaths
    later = entry > tau1[:, None]
    surv_m = np.where(later, surv_s, surv_a)
    cal_m = np.where(later, cal_s, cal_a)
    mem_m = np.where(later, True, mem_a)
    end_m = (entry + np.minimum(surv_m, drop)).max(axis=1)
    tau2 = _final_time(cal_m, mem_m, end_m, d, cap)
    tm, em = cut(entry, surv_m, drop, cal_m, tau2)
    s2s_m, v2s_m = _z(tm, em, treat, mem_m)
    s2s_a, v2s_a = _z(ta, ea, treat, mem_a)
    # stage-2 increments
    p1f, p1s = _p(s1f, v1f), _p(s1s, v1s)
    p1fs = _intersection(p1f, p1s, r.intersection)
    p2f = _p(sf_a - s1f, vf_a - v1f)
    p2s_cont = _p(s2s_a - s1s, v2s_a - v1s)
    p2s_enr = _p(s2s_m - s1s, v2s_m - v1s)
    w1, w2 = math.sqrt(r.look), math.sqrt(1 - r.look)
    crit = stats.norm.isf(plan.alpha)

    def comb(p1, p2):
        clip = np.clip
        return (
            w1 * special.ndtri(1 - clip(p1, 1e-16, 1)) + w2 * special.ndtri(1 - clip(p2, 1e-16, 1))
            >= crit
        )

    p2fs_cont = _intersection(p2f, p2s_cont, r.intersection)
    rej_f = ~stop & ~enrich & comb(p1fs, p2fs_cont) & comb(p1f, p2f)
    rej_s = ~stop & np.where(
        enrich,
        comb(p1fs, p2s_enr) & comb(p1s, p2s_enr),
        comb(p1fs, p2fs_cont) & comb(p1s, p2s_cont),
    )
    z_fix = stats.norm.isf(plan.alpha)
    ok_a = sf_a / np.sqrt(np.maximum(vf_a, 1e-12)) >= z_fix
    ok_s = sfix_s / np.sqrt(np.maximum(vfix_s, 1e-12)) >= z_fix
    prev = len(s_idx) / pop.n
    ran_s = np.isfinite(ts).sum(1)
    n2 = (np.isfinite(tm) & later).sum(1)
    n_end = np.where(stop, np.isfinite(t1).sum(1), np.where(enrich, np.isfinite(tm).sum(1),
                     np.isfinite(ta).sum(1)))  # fmt: skip
    def fails(k):  # patients screened and not eligible before k eligible ones
        return rng.negative_binomial(np.maximum(k, 1), prev) * (k > 0) if prev < 1 else 0

    return {
        "ok_a": ok_a,
        "ok_s": ok_s,
        "rej_f": rej_f,
        "rej_s": rej_s,
        "stop": stop,
        "enrich": enrich,
        "screened_a": np.isfinite(ta).sum(1),
        "screened_s": ran_s + fails(ran_s),
        "screened_ad": n_end + np.where(enrich, fails(n2), 0),
        "randomised_a": np.isfinite(ta).sum(1),
        "randomised_s": ran_s,
        "randomised_ad": n_end,
        "events_a": ea.sum(1),
        "events_s": es.sum(1),
        "events_ad": np.where(stop, e1.sum(1), np.where(enrich, (em & mem_m).sum(1), ea.sum(1))),
        "time_a": tau_a,
        "time_s": tau_s,
        "time_ad": np.where(stop, tau1, np.where(enrich, tau2, tau_a)),
        "reached_a": ea.sum(1) >= d,
        "reached_s": es.sum(1) >= d,
        "reached_ad": np.where(enrich, (em & mem_m).sum(1) >= d, ea.sum(1) >= d),
        "interim_events_s": (e1 & mem_a).sum(1),
        "interim_events_c": (e1 & ~mem_a).sum(1),
    }


def simulate_enrichment(states, pop: Population, plan: EnrichmentPlan, rng) -> dict:
    """Per-trial outcomes of the three designs (arrays of ``states.n`` trials)."""
    r = plan.rule
    x = pop.biomarker
    in_s = x < r.cutoff if r.kind == "below" else x > r.cutoff
    if not in_s.any() or in_s.all():
        raise ValueError(f"adaptive enrichment: the subgroup {r.kind} {r.cutoff:g} is empty or all")
    step = max(1, CHUNK_CELLS // (4 * plan.n_randomised))
    parts = [
        _chunk(states.take(np.arange(a, min(a + step, states.n))), pop, in_s, plan, rng)
        for a in range(0, states.n, step)
    ]
    out = {k: np.concatenate([np.atleast_1d(p[k]) for p in parts]) for k in parts[0]}
    out["true_f"] = states.population_log_hr(pop, np.ones(pop.n, bool))
    out["true_s"] = states.population_log_hr(pop, in_s)
    out["prevalence"] = float(in_s.mean())
    return out


def _se(p: float, n: int) -> float:
    return math.sqrt(max(p * (1 - p), 0.0) / n)


def summarise(o: dict, decision: DecisionRule) -> list[dict]:
    """The comparison rows (fixed all comers, fixed enriched, adaptive) of one cell."""
    n = len(o["ok_a"])
    bad_f = np.exp(o["true_f"]) >= decision.null_hr
    bad_s = np.exp(o["true_s"]) >= decision.null_hr
    ad_ok = o["rej_f"] | o["rej_s"]
    claim_s = ~o["rej_f"] & o["rej_s"]
    go = o["stop"] == 0
    rows = []
    for name, ok, suffix, false_go, extra in (
        ("fixed all comers", o["ok_a"], "a", o["ok_a"] & bad_f, {}),
        ("fixed enriched", o["ok_s"], "s", o["ok_s"] & bad_s, {}),
        (
            "adaptive",
            ad_ok,
            "ad",
            (o["rej_f"] & bad_f) | (claim_s & bad_s),
            {"p_enrich": float(o["enrich"].mean()), "p_stop": float(o["stop"].mean())},
        ),
    ):
        p = float(ok.mean())
        sub = claim_s if suffix == "ad" else ok & (suffix == "s")
        reached = o[f"reached_{suffix}"] if suffix != "ad" else o["reached_ad"][go]
        rows.append(
            {
                "design": name,
                "assurance": p,
                "mc_se": _se(p, n),
                "trials": n,
                "expected_screened": float(o[f"screened_{suffix}"].mean()),
                "expected_randomised": float(o[f"randomised_{suffix}"].mean()),
                "expected_events": float(o[f"events_{suffix}"].mean()),
                "expected_duration": float(o[f"time_{suffix}"].mean()),
                "p_events_reached": float(reached.mean()) if len(reached) else float("nan"),
                "false_go": float(false_go.mean()),
                "p_enrich": extra.get("p_enrich", 0.0),
                "p_stop": extra.get("p_stop", 0.0),
                "p_claim_subgroup": float(sub.mean()),
            }
        )
    return rows


def false_enrichment_closed_form(rule: AdaptiveEnrichment, hr, d_s, d_c, allocation) -> float:
    """P(enrich) with zero interaction at a common HR: (1 − Φ(c_S − θ√I_S))·Φ(c_C − θ√I_C),
    θ = −log HR, I = deaths·r(1 − r) at the interim, c = Φ⁻¹ of the rule's thresholds."""
    u = allocation * (1 - allocation)
    th = -math.log(hr)
    c_s, c_c = stats.norm.ppf(rule.futility), stats.norm.ppf(rule.enrich_if)
    return float(
        stats.norm.sf(c_s - th * math.sqrt(d_s * u)) * stats.norm.cdf(c_c - th * math.sqrt(d_c * u))
    )
