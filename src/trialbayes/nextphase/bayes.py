"""Bayesian piecewise-exponential analysis of many simulated trials: one compiled model per worker.

The analysis model is the package's own (model.build_model) with treatment as the only term,
built once per process on a placeholder design of fixed shape — ``n`` patients (the largest
number randomised in the grid) and ``intervals`` baseline intervals — compiled once, and refitted
for every trial through its pm.Data containers (event, treat, interval_idx, offset, widths,
log_rate). A trial with fewer patients, or patients not randomised by the analysis cut (time inf
in the simulator), fills the rest with zero exposure and no event: interval 0, offset 0, event 0,
so their log-likelihood term d·log h − e^η·H0(0) is exactly 0 (H0(0) = 0). The arrays go straight
into the model (no TrialData validation, which rightly rejects time 0 for real patients).

Cut points: per trial, at the quantiles k/K of that trial's event times, the rule
``baseline.n_intervals`` applies to real data (the widths are data, so they change without a
recompilation); if that trial's event times have ties at a quantile, K equal steps up to its last
follow-up are used instead. Fits that raise are counted (``failed``) and never succeed;
fits with divergent transitions are counted (``divergent``) and kept.

Sampler: always nutpie through the compile-once path (inference.SamplerRunner with its default
backend), with ``analysis.chains`` / ``draws`` / ``tune`` / ``target_accept``; the config's
``sampler:`` section (``backend`` included) applies to the fit of the trial data, not here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config.next_phase import AnalysisSpec
from ..config.priors import merge_priors
from ..config.schema import ModelSpec, SamplerSpec
from ..data.design import Design, interval_stats
from ..inference.sampler import SamplerRunner
from ..models.graph import build_model, default_target_accept

#: per-process memo: (patients, analysis settings) -> a compiled inference.SamplerRunner
_SAMPLERS: dict = {}


@dataclass
class BayesAnalysis:
    """Bayesian refits of T simulated trials: posterior P(HR < 1), posterior median log-HR,
    divergences and failures per trial."""

    p_benefit: np.ndarray  # (T,) posterior P(HR < 1); nan where the fit failed
    median_log_hr: np.ndarray  # (T,)
    divergences: np.ndarray  # (T,) int
    failed: np.ndarray  # (T,) bool
    errors: list[str]

    def success(self, gamma: float, max_hr: float | None = None) -> np.ndarray:
        ok = ~self.failed & (np.nan_to_num(self.p_benefit, nan=0.0) > gamma)
        if max_hr is not None:
            ok &= self.median_log_hr < np.log(max_hr)
        return ok


def placeholder_design(n: int, spec: AnalysisSpec, events_hint: int):
    """A design of the analysis model's shape (its values are replaced at every refit).
    ``events_hint`` (the grid's largest event count) decides ``parametrisation: auto``."""

    k = spec.intervals
    starts = np.arange(k, dtype=float)
    event = np.zeros(n)
    event[: min(events_hint, n)] = 1.0
    return Design(
        spec=ModelSpec(name="next_trial_analysis"),
        cuts=starts[1:],
        starts=starts,
        widths=np.append(np.ones(k - 1), 0.0),
        interval=np.zeros(n, "int64"),
        offset=np.ones(n),
        event=event,
        treat=(np.arange(n) % 2).astype(float),
        X=np.zeros((n, 0)),
        cov_names=[],
        cov_mean=np.zeros(0),
        cov_sd=np.zeros(0),
        centre_idx=np.zeros(n, "int64"),
        centre_labels=[],
        log_rate=0.0,
    )


def analysis_sampler(n: int, spec: AnalysisSpec, events_hint: int):
    """The worker's compiled analysis model for ``n`` patients (built and compiled once)."""
    key = (n, events_hint, spec.model_dump_json())
    if key not in _SAMPLERS:
        design = placeholder_design(n, spec, events_hint)
        model = build_model(design, merge_priors(spec.priors))
        cfg = SamplerSpec(
            chains=spec.chains,
            draws=spec.draws,
            tune=spec.tune,
            target_accept=spec.target_accept,
            progress="off",
        )
        sampler = SamplerRunner(model, cfg, target_accept=default_target_accept(design))
        sampler.label = "next-trial analysis"
        _SAMPLERS[key] = sampler.compile()
    return _SAMPLERS[key]


def trial_cuts(t: np.ndarray, ev: np.ndarray, k: int) -> np.ndarray:
    """K − 1 interior cut points: quantiles of the event times, or equal steps if they tie."""
    if k == 1:
        return np.zeros(0)
    q = np.quantile(t[ev], np.arange(1, k) / k) if ev.sum() >= 2 else np.zeros(0)
    if len(q) == k - 1 and q[0] > 0 and (np.diff(q) > 0).all() and q[-1] < t.max():
        return q
    return t.max() * np.arange(1, k) / k


def trial_data(time, event, treat, n: int, k: int) -> dict[str, np.ndarray]:
    """pm.Data values for one simulated trial, padded to ``n`` zero-exposure patients."""
    time = np.asarray(time, float)
    fin = np.isfinite(time)
    t = np.zeros(n)
    ev = np.zeros(n, bool)
    tr = np.zeros(n)
    m = len(time)
    t[:m] = np.where(fin, time, 0.0)
    ev[:m] = np.asarray(event, bool) & fin
    tr[:m] = np.asarray(treat, bool) & fin
    cuts = trial_cuts(t, ev, k)
    interval, offset, starts = interval_stats(t, cuts)
    return {
        "event": ev.astype(float),
        "treat": tr,
        "interval_idx": interval,
        "offset": offset,
        "widths": np.append(np.diff(starts), 0.0),
        "log_rate": np.asarray(np.log(max(ev.sum(), 0.5) / max(t.sum(), 1e-300))),
    }


def bayes_many(
    sim, spec: AnalysisSpec, n: int, events_hint: int, rng: np.random.Generator
) -> BayesAnalysis:
    """Refit the worker's compiled analysis model on every trial of ``sim`` (SimulatedTrials)."""
    sampler = analysis_sampler(n, spec, events_hint)
    t_count = sim.time.shape[0]
    p = np.full(t_count, np.nan)
    med = np.full(t_count, np.nan)
    div = np.zeros(t_count, int)
    failed = np.zeros(t_count, bool)
    errors = []
    for i in range(t_count):
        data = trial_data(sim.time[i], sim.event[i], sim.treat[i], n, spec.intervals)
        seed = int(rng.integers(2**31))
        try:  # only the treatment draws and the divergences: no DataTree of every variable
            d = sampler.sample_draws(["treatment"], data=data, seed=seed, stats=("diverging",))
        except Exception as exc:  # noqa: BLE001 - counted and reported, never dropped
            failed[i] = True
            errors.append(f"trial {i}: {type(exc).__name__}: {exc}")
            continue
        beta = d.flat("treatment")
        p[i], med[i] = float((beta < 0).mean()), float(np.median(beta))
        div[i] = d.divergences
    return BayesAnalysis(p, med, div, failed, errors)
