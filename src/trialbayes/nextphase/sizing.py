"""How many patients a candidate next trial randomises: ``next_phase.patients`` (fixed), the
population's own ``patients_per_event``, the section's, or ``auto`` from the fitted event rate.

``auto`` (needs ``calendar_cut``): for each state of nature of the design prior (up to 400 draws)
the probability q that a randomised patient of the population has died by the calendar cut
(entry over the accrual period, the model's hazard for resampled patients, allocation, dropout)
is computed by simulation (1000 patients per draw); the trial randomises N = ⌈D / q₁₀⌉, q₁₀ the
10th percentile of q over the draws, so that the expected deaths by the cut reach D in about 90%
of the states of nature (P(D reached) ≈ 0.9 up to the binomial spread of the deaths).
"""

from __future__ import annotations

import math

import numpy as np

from ..config.next_phase import NextPhase, PopulationSpec
from .simulate import Population, StatesOfNature, TrialDesign, entry_times, pem_times

#: draws and patients per draw of the ``auto`` rule
AUTO_DRAWS, AUTO_PATIENTS = 400, 1000


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
    q10 = float(np.quantile(q, 0.1))
    if q10 <= 0:
        raise ValueError(
            f"next_phase: patients_per_event 'auto' for {ps.label()}: no death expected by "
            f"calendar_cut {cfg.calendar_cut:g} in 10% of the states of nature; set it by hand"
        )
    return 1.0 / q10, (
        f"{1 / q10:.2f} (auto: 1 / the 10th percentile over the design prior of P(death by "
        f"{cfg.calendar_cut:g}) = 1 / {q10:.3f})"
    )


def trial_design(cfg: NextPhase, ps: PopulationSpec, events: int, ppe: float) -> TrialDesign:
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
