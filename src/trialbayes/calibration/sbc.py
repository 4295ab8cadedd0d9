"""Simulation-based calibration (SBC; Talts et al. 2018) of a patient-level model.

Per cell: draw every parameter from the configured priors (the compiled PyMC model's own prior),
simulate survival for the fitted cohort (its covariates, biomarker, centres and arms) with the
trial simulator's hazard and censoring (uniform entry over half the longest follow-up, the
analysis at the longest follow-up, optional exponential dropout), refit the SAME compiled model
on the new (event, interval, offset) arrays — one compilation per worker — and record the rank
of each true parameter among L thinned posterior draws. If the inference is calibrated the ranks
are uniform on 0..L: checked by a chi-square test on binned ranks and by the ECDF of the
fractional ranks against simultaneous 95% bands (Säilynoja, Bürkner & Vehtari 2022, computed
with arviz_stats). The prior draws also give a prior predictive summary.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pymc as pm
from arviz_stats.ecdf_utils import ecdf_pit
from scipy import stats

from ..config.calibration import CalibrationSettings
from ..config.data_sources import PatientSource
from ..config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from ..data.design import interval_stats
from ..data.sources import load_data
from ..inference.sampler import diagnose, free_var_names
from ..models.pem import DRAW_NAMES, PiecewiseExponentialModel
from ..nextphase.simulate import Population, StatesOfNature, TrialDesign, observe, pem_times
from ..results.calibration import (
    CalibrationSummary,
    ParameterCalibration,
    PriorPredictive,
    Quantiles,
)

#: worker-level cache: one built and compiled model per (config hash, model, sampler sizes)
_MODELS: dict = {}


@dataclass(frozen=True)
class CalibrationCase:
    """What a calibration replicate needs of the config, resolved by the route: the model (its
    spec, priors, baseline and gate), the sampler settings, the patient data source, and the
    config hash (the key of the worker-level model cache)."""

    key: str
    spec: ModelSpec
    priors: dict
    baseline: Baseline
    sampler: SamplerSpec
    diagnostics: Diagnostics
    data: PatientSource


def _model(case: CalibrationCase, s: CalibrationSettings):
    key = (case.key, case.spec.name, s.chains, s.draws, s.tune)
    if key not in _MODELS:
        sampler = case.sampler.model_copy(
            update={"chains": s.chains, "draws": s.draws, "tune": s.tune, "progress": "off"}
        )
        pem = PiecewiseExponentialModel(
            case.spec, case.priors, case.baseline, sampler, case.diagnostics
        )
        pem.build(load_data(case.data)).sampler.compile()
        _MODELS[key] = pem
    return _MODELS[key]


def tracked(design) -> list[str]:
    """Scalar parameters whose ranks are recorded."""
    k = design.n_intervals
    out = ["treatment", "log_baseline_hazard[0]", f"log_baseline_hazard[{k - 1}]"]
    if k > 1:
        out.insert(2, "baseline_rw_sigma")
    if design.basis is not None:
        out[1:1] = ["interaction", "biomarker_effect"]
    return out


def _scalar(values: dict, name: str) -> np.ndarray:
    if "[" in name:
        base, j = name[:-1].split("[")
        return np.asarray(values[base])[..., int(j)]
    return np.asarray(values[name])


def _prior_draw(pem, rng) -> dict:
    names = [v.name for v in pem.model.free_RVs] + ["log_baseline_hazard"]
    names += [  # deterministics the simulation needs (covariate effects when non-centred)
        n
        for n in ("centre_frailty", "biomarker_spline", "interaction_spline", "covariate_effects")
        if n in pem.model.named_vars and n not in names
    ]
    vals = pm.draw([pem.model[n] for n in names], draws=1, random_seed=rng)
    return {n: np.asarray(v)[None] for n, v in zip(names, vals)}


def _simulate(pem, prior: dict, rng, dropout: float):
    d = pem.design
    t_max = float((d.starts[d.interval] + d.offset).max())
    states = StatesOfNature.from_draws(prior, d.starts)
    states.centre_frailty = prior.get("centre_frailty")
    pop = Population.from_design(d)
    pop.centre_idx = d.centre_idx if d.centre_labels else None
    idx = np.arange(d.n)[None, :]
    treat = d.treat[None, :].astype(bool)
    eta = states.prognostic(pop, idx) + treat * states.patient_log_hr(pop, idx)
    surv = pem_times(rng, states.log_baseline, states.starts, eta)
    design = TrialDesign(
        events=d.n + 1,
        n_randomised=d.n,
        accrual_time=t_max / 2,
        dropout_rate=dropout,
        calendar_cut=t_max,
    )
    time, event, _, _ = observe(rng, surv, design)
    return time[0], event[0], eta[0], states


def sbc_cell(args: dict, seed: np.random.SeedSequence) -> dict:
    """One SBC replicate: prior draw → simulated trial → refit (one compilation per worker)
    → ranks."""

    s: CalibrationSettings = args["settings"]
    pem = _model(args["case"], s)
    rng = np.random.default_rng(seed)
    prior = _prior_draw(pem, rng)
    time, event, eta, states = _simulate(pem, prior, rng, s.dropout_rate)
    interval, offset, _ = interval_stats(time, pem.design.cuts)
    data = {"event": event.astype(float), "interval_idx": interval, "offset": offset}
    free = free_var_names(pem.model)
    # the draws the ranks and the diagnostics read, without a DataTree of every variable
    raw = pem.sampler.sample_draws(
        list(dict.fromkeys(DRAW_NAMES + ["baseline_rw_sigma"] + free)),
        data=data,
        seed=int(rng.integers(2**31)),
    )
    post = {n: raw.flat(n) for n in raw.draws}
    m = post["treatment"].shape[0]
    keep = np.linspace(0, m - 1, s.thin).round().astype(int)
    ranks = {
        p: int((_scalar(post, p)[keep] < _scalar(prior, p)[0]).sum()) for p in tracked(pem.design)
    }
    diag = diagnose(raw.datatree(), free, pem.gate)
    landmark = float(np.median(time))
    h0 = float(
        np.exp(states.log_baseline[0])
        @ np.clip(landmark - pem.design.starts, 0, np.diff(np.append(pem.design.starts, np.inf)))
    )
    control = pem.design.treat == 0
    return {
        "ranks": ranks,
        "truth": {p: float(_scalar(prior, p)[0]) for p in ranks},
        "events": int(event.sum()),
        "event_share": float(event.mean()),
        "control_survival_at_median_follow_up": float(np.exp(-h0 * np.exp(eta[control])).mean()),
        "divergences": diag.divergences,
        "rhat_max": diag.rhat_max,
    }


# ----------------------------------------------------------------------------- summaries
def fractional_ranks(ranks, thin: int, rng) -> np.ndarray:
    """Ranks 0..L spread to (0, 1): (r + U)/(L + 1), exactly uniform under calibration."""
    r = np.asarray(ranks, float)
    return (r + rng.random(r.shape)) / (thin + 1)


def ecdf_band(u: np.ndarray, level: float = 0.95, seed: int = 0):
    """(x, ECDF − x, lower − x, upper − x) with simultaneous bands (arviz_stats.ecdf_utils)."""
    x, ecdf, lo, hi = ecdf_pit(u, level, 1000, rng=np.random.default_rng(seed))
    return x, ecdf - x, lo - x, hi - x


def rank_uniformity(ranks, thin: int, bins: int, seed: int = 0) -> dict:
    """Chi-square test of equal counts in ``bins`` groups of ranks 0..L, and the ECDF band check."""
    r = np.asarray(ranks)
    counts = np.bincount(np.minimum(r * bins // (thin + 1), bins - 1), minlength=bins)
    chi2 = float(((counts - len(r) / bins) ** 2 / (len(r) / bins)).sum())
    u = fractional_ranks(r, thin, np.random.default_rng(seed))
    x, diff, lo, hi = ecdf_band(u, 0.95, seed)
    return {
        "chi2": chi2,
        "chi2_p": float(stats.chi2.sf(chi2, bins - 1)),
        "outside": bool(((diff < lo - 1e-12) | (diff > hi + 1e-12)).any()),
        "max_abs": float(np.abs(diff).max()),
    }


def summarise(values: dict[str, dict], s: CalibrationSettings) -> CalibrationSummary:
    """The calibration summary of the finished replicates ``values``: rank uniformity per parameter
    (chi-square and ECDF), a prior predictive summary, and the ranks."""
    ok = list(values.values())
    params = list(ok[0]["ranks"]) if ok else []
    ranks = {p: [v["ranks"][p] for v in ok] for p in params}
    rows = []
    for p in params:
        u = rank_uniformity(ranks[p], s.thin, s.bins)
        rows.append(
            ParameterCalibration(
                p, len(ranks[p]), u["chi2"], u["chi2_p"], u["outside"], u["max_abs"]
            )
        )

    def q(values) -> Quantiles | None:
        if not len(values):
            return None
        return Quantiles(*(float(x) for x in np.quantile(values, [0.05, 0.5, 0.95])))

    surv = np.array([x["control_survival_at_median_follow_up"] for x in ok])
    pp = PriorPredictive(
        event_share=q([x["event_share"] for x in ok]),
        control_survival_at_median_follow_up=q(surv),
        treatment_hr=q(np.exp([x["truth"]["treatment"] for x in ok])),
        share_extreme_survival=float(((surv < 0.01) | (surv > 0.99)).mean()) if ok else None,
    )
    return CalibrationSummary(
        s.model,
        s,
        rows,
        pp,
        {k: [int(r) for r in v] for k, v in ranks.items()},
        divergent_fits=sum(1 for x in ok if x["divergences"] > 0),
    )
