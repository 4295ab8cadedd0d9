"""Simulation of next trials from a fitted patient-level piecewise-exponential model (numpy only).

One simulated trial = one state of nature (one row of :class:`StatesOfNature`, normally one
posterior draw) + patients resampled from the observed cohort (:class:`Population`) + a
:class:`TrialDesign` (sample size, accrual, dropout, allocation, event-driven or calendar cut,
all-comers or enriched by a biomarker cut-off at screening). Hazard of simulated patient i:

    h_i(t) = exp(α_k(t) + x_iᵀγ + f(b_i) + trt_i·(β + g(b_i)))

with x_i standardised with the fitted model's means and SDs. Centre frailties of the old trial are
not carried over (a next trial has other centres; calibration, which refits the same cohort,
sets them). Everything is vectorised over trials × patients.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace

import numpy as np

#: trials × patients cells simulated at once (memory ~ 8 bytes × this × a few arrays)
CHUNK_CELLS = 2_000_000


@dataclass
class Population:
    """Patients to resample: standardised covariates, biomarker basis columns and raw values."""

    X: np.ndarray  # (N, p), standardised as in the fitted design
    bm_z: np.ndarray  # (N,) zeros without a biomarker term
    bm_pen: np.ndarray  # (N, q)
    biomarker: np.ndarray | None = None  # (N,) original units, for enrichment
    biomarker_name: str | None = None
    centre_idx: np.ndarray | None = (
        None  # (N,) only where centre frailties are simulated (calibration)
    )

    @classmethod
    def from_design(cls, design) -> Population:
        n = design.n
        if design.basis is None:
            return cls(design.X, np.zeros(n), np.zeros((n, 0)))
        return cls(
            design.X, design.bm_z, design.bm_pen, design.biomarker_values, design.spec.biomarker
        )

    @property
    def n(self) -> int:
        return self.X.shape[0]

    def eligible(self, population: str, cutoff: float | None) -> np.ndarray:
        """Boolean mask of patients eligible at screening (biomarker below / above the cut-off)."""
        if population == "all":
            return np.ones(self.n, bool)
        if self.biomarker is None:
            raise ValueError(
                f"an enriched population ('{population}') needs a model with a biomarker term"
            )
        return self.biomarker < cutoff if population == "below" else self.biomarker > cutoff


@dataclass
class StatesOfNature:
    """Generating parameters, one row per simulated trial (the design prior as draws)."""

    starts: np.ndarray  # (K,) interval starts, starts[0] = 0
    log_baseline: np.ndarray  # (S, K)
    treatment: np.ndarray  # (S,) log-HR at the biomarker reference (or overall)
    covariate_effects: np.ndarray  # (S, p)
    biomarker_effect: np.ndarray  # (S,)
    interaction: np.ndarray  # (S,)
    biomarker_spline: np.ndarray  # (S, q)
    interaction_spline: np.ndarray  # (S, q)
    label: str = "posterior as it is"
    centre_frailty: np.ndarray | None = None  # (S, C): used with Population.centre_idx only

    @classmethod
    def from_draws(cls, draws: dict, starts, label: str = "posterior as it is") -> StatesOfNature:
        """From ``PiecewiseExponentialModel.draws()`` (missing terms become zeros)."""
        s = draws["treatment"].shape[0]

        def get(name, shape):
            return np.asarray(draws[name], float) if name in draws else np.zeros(shape)

        return cls(
            np.asarray(starts, float),
            np.asarray(draws["log_baseline_hazard"], float),
            np.asarray(draws["treatment"], float),
            get("covariate_effects", (s, 0)),
            get("biomarker_effect", (s,)),
            get("interaction", (s,)),
            get("biomarker_spline", (s, 0)),
            get("interaction_spline", (s, 0)),
            label,
        )

    @property
    def n(self) -> int:
        return self.treatment.shape[0]

    def take(self, idx) -> StatesOfNature:
        idx = np.asarray(idx)
        return replace(
            self,
            log_baseline=self.log_baseline[idx],
            treatment=self.treatment[idx],
            covariate_effects=self.covariate_effects[idx],
            biomarker_effect=self.biomarker_effect[idx],
            interaction=self.interaction[idx],
            biomarker_spline=self.biomarker_spline[idx],
            interaction_spline=self.interaction_spline[idx],
            centre_frailty=None if self.centre_frailty is None else self.centre_frailty[idx],
        )

    def with_effect(self, log_hr, label: str) -> StatesOfNature:
        """The same baseline and prognostic draws, a constant treatment log-HR, no interaction."""
        lh = np.broadcast_to(np.asarray(log_hr, float), (self.n,)).copy()
        return replace(
            self,
            treatment=lh,
            interaction=np.zeros(self.n),
            interaction_spline=np.zeros_like(self.interaction_spline),
            label=label,
        )

    def patient_log_hr(self, pop: Population, idx: np.ndarray) -> np.ndarray:
        """Treatment log-HR of resampled patients ``idx`` (trials × n) under each row."""
        out = self.treatment[:, None] + self.interaction[:, None] * pop.bm_z[idx]
        if self.interaction_spline.shape[1]:
            out = out + np.einsum("tnq,tq->tn", pop.bm_pen[idx], self.interaction_spline)
        return out

    def prognostic(self, pop: Population, idx: np.ndarray) -> np.ndarray:
        out = self.biomarker_effect[:, None] * pop.bm_z[idx]
        if self.covariate_effects.shape[1]:
            out = out + np.einsum("tnp,tp->tn", pop.X[idx], self.covariate_effects)
        if self.biomarker_spline.shape[1]:
            out = out + np.einsum("tnq,tq->tn", pop.bm_pen[idx], self.biomarker_spline)
        if self.centre_frailty is not None and pop.centre_idx is not None:
            out = out + np.take_along_axis(self.centre_frailty, pop.centre_idx[idx], axis=1)
        return out

    def population_log_hr(self, pop: Population, mask: np.ndarray) -> np.ndarray:
        """Each row's average conditional treatment log-HR over the eligible population (S,):
        the log-HR is linear in the patient's basis columns, so its average is its value at
        their average (O(S), whatever the size of the population)."""
        out = self.treatment + self.interaction * pop.bm_z[mask].mean()
        if self.interaction_spline.shape[1]:
            out = out + self.interaction_spline @ pop.bm_pen[mask].mean(axis=0)
        return out


@dataclass(frozen=True)
class TrialDesign:
    """One candidate next trial. Times in the data's unit; rates per that unit."""

    events: int  # analysis at the D-th event (or at calendar_cut, whichever comes first)
    n_randomised: int
    accrual_time: float
    accrual_weights: tuple[float, ...] = (1.0,)  # relative accrual rate in equal-length segments
    dropout_rate: float = 0.0  # exponential dropout hazard
    allocation: float = 0.5  # share randomised to treatment
    calendar_cut: float | None = None  # latest analysis time from the first randomisation
    population: str = "all"  # all | below | above
    cutoff: float | None = None
    looks: tuple[float, ...] = (1.0,)  # analyses at these fractions of ``events`` (last: 1)

    def label(self) -> str:
        if self.population == "all":
            return "all comers"
        return f"{self.population} {self.cutoff:g}"


@dataclass
class LookData:
    """The data of every trial at an interim look: the analysis at the ``target``-th death (or at
    the final analysis if that comes first; then ``performed`` is False and the look is skipped)."""

    target: int
    time: np.ndarray  # (T, n), inf: not yet randomised
    event: np.ndarray  # (T, n)
    analysis_time: np.ndarray  # (T,)
    performed: np.ndarray  # (T,) bool: strictly before the final analysis

    @property
    def n_events(self) -> np.ndarray:
        return self.event.sum(axis=1)

    @property
    def n_randomised(self) -> np.ndarray:
        return np.isfinite(self.time).sum(axis=1)


@dataclass
class SimulatedTrials:
    """Observed data of T simulated trials (patients not randomised by the analysis: time inf)."""

    time: np.ndarray  # (T, n) follow-up at the analysis
    event: np.ndarray  # (T, n) bool
    treat: np.ndarray  # (T, n) bool
    patient: np.ndarray  # (T, n) index into the Population
    analysis_time: np.ndarray  # (T,)
    n_screened: np.ndarray  # (T,)
    true_log_hr: np.ndarray  # (T,) average conditional log-HR of the eligible population
    extra: dict = field(default_factory=dict)
    looks: list[LookData] = field(default_factory=list)  # interim looks (the final is the above)

    @property
    def n_events(self) -> np.ndarray:
        return self.event.sum(axis=1)

    @property
    def n_randomised(self) -> np.ndarray:
        return np.isfinite(self.time).sum(axis=1)


def entry_times(rng, shape, accrual_time: float, weights) -> np.ndarray:
    """Calendar times of randomisation: piecewise-uniform accrual over equal-length segments."""
    w = np.asarray(weights, float)
    cum = np.concatenate([[0.0], np.cumsum(w) / w.sum()])
    u = rng.random(shape)
    seg = np.clip(np.searchsorted(cum, u, side="right") - 1, 0, len(w) - 1)
    frac = (u - cum[seg]) / (cum[seg + 1] - cum[seg])
    return (seg + frac) * accrual_time / len(w)


def pem_times(rng, log_baseline: np.ndarray, starts: np.ndarray, eta: np.ndarray) -> np.ndarray:
    """Survival times with hazard exp(α_k + η): the piecewise-linear cumulative hazard inverted."""
    lam = np.exp(log_baseline)  # (T, K)
    widths = np.diff(starts)
    cum = np.concatenate(
        [np.zeros((lam.shape[0], 1)), np.cumsum(lam[:, :-1] * widths, axis=1)], axis=1
    )
    target = rng.standard_exponential(eta.shape) * np.exp(-eta)  # H0(t) to reach
    k = (target[:, :, None] >= cum[:, None, 1:]).sum(axis=2)  # interval of exit
    rows = np.arange(lam.shape[0])[:, None]
    return starts[k] + (target - cum[rows, k]) / lam[rows, k]


def nth_death(cal_death: np.ndarray, d: int) -> np.ndarray:
    """Calendar time of each row's d-th death (inf when fewer deaths ever occur)."""
    n = cal_death.shape[1]
    return np.partition(cal_death, min(d, n) - 1, axis=1)[:, min(d, n) - 1]


def _analysis_time(cal_death: np.ndarray, cal_last: np.ndarray, d: TrialDesign) -> np.ndarray:
    """Calendar time of the D-th death; if fewer deaths ever, the end of all follow-up; capped."""
    dth = nth_death(cal_death, d.events)
    tau = np.where(np.isfinite(dth), dth, cal_last.max(axis=1))
    return np.minimum(tau, d.calendar_cut) if d.calendar_cut is not None else tau


def cut(entry, surv, drop, cal_death, tau):
    """(time, event) of every patient at calendar time ``tau`` (T,): follow-up since entry, an
    event if the death came by then; patients randomised at or after ``tau``: time inf."""
    in_trial = entry < tau[:, None]
    time = np.where(in_trial, np.minimum(np.minimum(surv, drop), tau[:, None] - entry), np.inf)
    event = in_trial & (cal_death <= tau[:, None])  # calendar comparison: the D-th death counts
    return time, event


def observe(rng, surv: np.ndarray, d: TrialDesign):
    """Entry, dropout and the analysis cut applied to survival times (T, n):
    (time, event, analysis time, interim looks); patients not randomised by the analysis get time
    inf. Calendar time 0 is each trial's first randomisation (``calendar_cut`` counts from it)."""
    t, n = surv.shape
    drop = (
        rng.standard_exponential((t, n)) / d.dropout_rate
        if d.dropout_rate > 0
        else np.full((t, n), np.inf)
    )
    entry = entry_times(rng, (t, n), d.accrual_time, d.accrual_weights)
    entry -= entry.min(axis=1, keepdims=True)  # the first randomisation of each trial at 0
    cal_death = np.where(surv <= drop, entry + surv, np.inf)
    tau = _analysis_time(cal_death, entry + np.minimum(surv, drop), d)
    time, event = cut(entry, surv, drop, cal_death, tau)
    looks = []
    for f in d.looks[:-1]:
        target = max(1, math.ceil(f * d.events))
        at = np.minimum(nth_death(cal_death, target), tau)
        lt, le = cut(entry, surv, drop, cal_death, at)
        looks.append(LookData(target, lt, le, at, at < tau))
    return time, event, tau, looks


def _chunk(
    states: StatesOfNature,
    pop: Population,
    eligible: np.ndarray,
    d: TrialDesign,
    rng: np.random.Generator,
) -> SimulatedTrials:
    t, n = states.n, d.n_randomised
    elig = np.flatnonzero(eligible)
    idx = elig[rng.integers(0, len(elig), (t, n))]
    n_trt = int(round(n * d.allocation))
    treat = rng.permuted(np.tile(np.arange(n) < n_trt, (t, 1)), axis=1)
    eta = states.prognostic(pop, idx) + treat * states.patient_log_hr(pop, idx)
    surv = pem_times(rng, states.log_baseline, states.starts, eta)
    time, event, tau, looks = observe(rng, surv, d)
    p = len(elig) / pop.n
    fails = rng.negative_binomial(n, p, t) if p < 1 else np.zeros(t, int)
    true = states.population_log_hr(pop, eligible)
    return SimulatedTrials(time, event, treat, idx, tau, n + fails, true, looks=looks)


def simulate_trials(
    states: StatesOfNature, pop: Population, design: TrialDesign, rng: np.random.Generator
) -> SimulatedTrials:
    """One trial per row of ``states``, in chunks of about CHUNK_CELLS trial × patient cells."""
    eligible = pop.eligible(design.population, design.cutoff)
    if not eligible.any():
        raise ValueError(f"no patient is eligible for '{design.label()}'")
    step = max(1, CHUNK_CELLS // design.n_randomised)
    parts = [
        _chunk(states.take(np.arange(a, min(a + step, states.n))), pop, eligible, design, rng)
        for a in range(0, states.n, step)
    ]
    if len(parts) == 1:
        return parts[0]
    cat = {
        f: np.concatenate([getattr(p, f) for p in parts])
        for f in ("time", "event", "treat", "patient", "analysis_time", "n_screened", "true_log_hr")
    }
    looks = [
        LookData(
            parts[0].looks[k].target,
            *(
                np.concatenate([getattr(p.looks[k], f) for p in parts])
                for f in ("time", "event", "analysis_time", "performed")
            ),
        )
        for k in range(len(parts[0].looks))
    ]
    return SimulatedTrials(**cat, looks=looks)
