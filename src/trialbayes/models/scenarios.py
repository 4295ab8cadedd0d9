"""Prior-scenario refits of a patient-level model, one executor cell per (model, scenario).

A worker builds the model once (design, PyMC graph, the compiled model from the compile cache:
loaded, not compiled) and refits it under each scenario it is given: the treatment and
interaction priors are ``pm.Data``, swapped without recompiling. A cell's numbers depend only on
the case and the scenario (seed: ``child_seed(sampler.seed, "scenario", model, scenario)``), not
on the worker, the order or the backend; run in-process, the route's own fitted model is reused
(:func:`lend`). Library warnings raised during a refit are returned as one line each, never
printed raw.
"""

from __future__ import annotations

import time
import warnings
from dataclasses import dataclass

from ..config.priors import (
    ScenarioSpec,
    describe,
    merge_priors,
    scenario_interaction_prior,
    scenario_prior,
)
from ..config.schema import Baseline, Diagnostics, ModelSpec, SamplerSpec
from ..core.seeds import child_seed
from ..data.table import TrialData
from ..estimands.draws import flatten_draws, hr_summary, log_hr_at
from ..results.sections import ScenarioRefit
from .pem import PiecewiseExponentialModel

#: per-process models: case key -> the built and compiled model (a worker's, or one lent by the
#: route when the cells run in its own process)
_MODELS: dict[str, PiecewiseExponentialModel] = {}


@dataclass(frozen=True)
class ScenarioCase:
    """What refitting one model under a prior scenario needs: the model (spec, configured
    priors, baseline, sampler, gate), the data, what to report (thresholds, harm, level, draws,
    the biomarker values of ``at``) and the run's seed. ``key`` names the model in the per-process
    cache (config hash and model name)."""

    key: str
    spec: ModelSpec
    priors: dict
    baseline: Baseline
    sampler: SamplerSpec
    gate: Diagnostics
    data: TrialData
    thresholds: tuple[float, ...]
    harm: float
    level: float
    max_draws: int | None
    probes: tuple[float, ...]
    seed: int


def lend(case: ScenarioCase, pem: PiecewiseExponentialModel) -> None:
    """Refit ``pem`` itself for ``case`` in this process (the caller restores its fit)."""
    _MODELS[case.key] = pem


def give_back(case: ScenarioCase) -> None:
    """Forget the model lent for ``case`` (:func:`lend`)."""
    _MODELS.pop(case.key, None)


def case_model(case: ScenarioCase) -> tuple[PiecewiseExponentialModel, int]:
    """This process's model for ``case``, built on first use, and how many times that first use
    compiled it (0 when the compiled model came from the compile cache or the model was lent)."""
    if case.key in _MODELS:
        return _MODELS[case.key], 0
    sampler = case.sampler.model_copy(update={"progress": "off"})
    pem = PiecewiseExponentialModel(case.spec, case.priors, case.baseline, sampler, case.gate)
    pem.build(case.data).sampler.compile()
    _MODELS[case.key] = pem
    return pem, int(pem.sampler.compile_source in ("compiled", "uncached"))


def scenario_cell(args: dict, seed=None) -> dict:
    """One refit: ``args`` = {"case": ScenarioCase, "scenario": ScenarioSpec}. Returns the
    ScenarioRefit (``refit``), its sampling and total seconds, where the compiled model came from,
    and the warnings raised (one line each)."""
    case: ScenarioCase = args["case"]
    sc: ScenarioSpec = args["scenario"]
    t0 = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        pem, n_fresh = case_model(case)
        tp = scenario_prior(sc)
        ip = scenario_interaction_prior(sc, merge_priors(case.priors)["interaction"])
        t1 = time.perf_counter()
        pem.fit(
            prior_overrides={"treatment": tp, "interaction": ip},
            seed=child_seed(case.seed, "scenario", case.spec.name, sc.name),
            log_likelihood=False,
        )
        refit = summarise_refit(pem, case, sc.name, tp, ip)
    return {
        "refit": refit,
        "sample_s": pem.sampler.timings[-1],
        "refit_s": time.perf_counter() - t1,
        "seconds": time.perf_counter() - t0,
        "fresh_compilations": n_fresh,
        "warnings": warning_lines(caught),
    }


def summarise_refit(pem, case: ScenarioCase, scenario: str, tp, ip) -> ScenarioRefit:
    """The refit's treatment HR and, with a biomarker, the HR at the probe values; only the
    draws these need are read."""
    names = ["treatment"] + (
        ["interaction", "interaction_spline"] if pem.design.basis is not None else []
    )
    d = flatten_draws(pem.idata.posterior, names, case.max_draws)
    thr, harm, level = case.thresholds, case.harm, case.level
    b = pem.design.basis
    at = {f"{x:g}": hr_summary(log_hr_at(d, b, [x])[:, 0], thr, harm, level) for x in case.probes}
    return ScenarioRefit(
        model=case.spec.name,
        scenario=scenario,
        treatment_prior=describe(tp),
        interaction_prior=describe(ip) if b is not None else "",
        reliable=pem.reliable,
        divergences=pem.diagnostics.divergences,
        rhat_max=pem.diagnostics.rhat_max,
        treatment=hr_summary(d["treatment"], thr, harm, level),
        at=at if b is not None else {},
    )


def warning_lines(caught) -> list[str]:
    """Each distinct warning as one line: its category and the first line of its message."""
    out: list[str] = []
    for w in caught:
        first = str(w.message).strip().splitlines()[0] if str(w.message).strip() else ""
        line = f"{w.category.__name__}: {first}"[:300]
        if line not in out:
            out.append(line)
    return out
