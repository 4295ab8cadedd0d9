"""How many patients a candidate next trial randomises: ``next_phase.patients`` (fixed), the
population's own ``patients_per_event``, the section's, or ``auto`` from the fitted event rate.

``auto`` (needs ``calendar_cut``): for each state of nature of the design prior (up to 400 draws)
the probability q that a randomised patient of the population has died by the calendar cut
(entry over the accrual period, the model's hazard for resampled patients, allocation, dropout)
is computed by simulation (1000 patients per draw); the trial randomises the smallest N with
mean over the draws of P(Binomial(N, q) ≥ D) ≥ 0.9, i.e. P(D reached by the cut) ≈ 0.9 under
the design prior (deaths of different patients taken as independent given the state).
"""

from __future__ import annotations

import math

import numpy as np
from scipy import stats

from ..config.next_phase import NextPhase, PopulationSpec
from .simulate import Population, StatesOfNature, TrialDesign, entry_times, pem_times

#: draws and patients per draw of the ``auto`` rule, and the P(D reached) it aims at
AUTO_DRAWS, AUTO_PATIENTS = 400, 1000
TARGET_REACHED = 0.9
#: simulated patient-trials below which ``executor: auto`` runs in-process (about 30 s of numpy)
LIGHT_WORK = 150_000_000


def death_probability(
    cfg: NextPhase, states: StatesOfNature, pop: Population, ps: PopulationSpec, seed: int
) -> np.ndarray:
    """Per state of nature: P(a randomised patient of ``ps`` has died by ``calendar_cut``)."""
    rng = np.random.default_rng([seed & 0xFFFFFFFF, 7])
    st = states.take(rng.integers(0, states.n, min(AUTO_DRAWS, states.n)))
    elig = np.flatnonzero(pop.eligible(ps.kind, ps.cutoff))
    idx = elig[rng.integers(0, len(elig), (st.n, AUTO_PATIENTS))]
    treat = rng.random((st.n, AUTO_PATIENTS)) < cfg.allocation
    eta = st.prognostic(pop, idx) + treat * st.patient_log_hr(pop, idx)
    surv = pem_times(rng, st.log_baseline, st.starts, eta)
    entry = entry_times(rng, surv.shape, cfg.accrual.time, cfg.accrual.weights)
    drop = (
        rng.standard_exponential(surv.shape) / cfg.dropout_rate
        if cfg.dropout_rate > 0
        else np.full(surv.shape, np.inf)
    )
    dead = (surv <= drop) & (entry + surv <= cfg.calendar_cut)
    return dead.mean(axis=1)


def patients_per_event(
    cfg: NextPhase, ps: PopulationSpec, states=None, pop=None
) -> tuple[float, str]:
    """(patients per target death, how it was set) for population ``ps``."""
    ppe = ps.patients_per_event if ps.patients_per_event is not None else cfg.patients_per_event
    if ppe != "auto":
        where = "population" if ps.patients_per_event is not None else "next_phase"
        return float(ppe), f"{float(ppe):g} ({where}.patients_per_event)"
    q = death_probability(cfg, states, pop, ps, cfg.seed)
    d = max(cfg.events)

    def reached(n: int) -> float:
        return float(stats.binom.sf(d - 1, n, q).mean())

    hi = d
    while reached(hi) < TARGET_REACHED:
        hi *= 2
        if hi > 1000 * d:
            raise ValueError(
                f"next_phase: patients_per_event 'auto' for {ps.label()}: even {hi} patients "
                f"do not reach {d} deaths by calendar_cut {cfg.calendar_cut:g} with probability "
                f"{TARGET_REACHED:g}; set it by hand or move the cut"
            )
    lo = d
    while lo < hi:
        mid = (lo + hi) // 2
        lo, hi = (mid + 1, hi) if reached(mid) < TARGET_REACHED else (lo, mid)
    return lo / d, (
        f"{lo / d:.2f} (auto: P(D reached by {cfg.calendar_cut:g}) ≥ {TARGET_REACHED:g} at the "
        f"largest D = {d} under the design prior; mean P(death by then) {float(q.mean()):.3f})"
    )


def trial_design(cfg: NextPhase, ps: PopulationSpec, events: int, ppe: float) -> TrialDesign:
    """The :class:`TrialDesign` of population ``ps`` with ``events`` target deaths, randomising
    ``next_phase.patients`` or ceil(``events`` × ``ppe``) patients."""
    n = cfg.patients if cfg.patients is not None else math.ceil(events * ppe)
    return TrialDesign(
        events=events,
        n_randomised=n,
        accrual_time=cfg.accrual.time,
        accrual_weights=tuple(cfg.accrual.weights),
        dropout_rate=cfg.dropout_rate,
        allocation=cfg.allocation,
        calendar_cut=cfg.calendar_cut,
        population=ps.kind,
        cutoff=ps.cutoff,
        looks=tuple(cfg.looks),
    )
