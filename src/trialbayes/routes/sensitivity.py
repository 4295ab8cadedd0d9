"""Prior sensitivity of the patient-level models.

1. Scenario refits: every selected model is refitted under each named prior scenario for its
   treatment and interaction coefficients. The priors are pm.Data, so each model is compiled once
   and reused across scenarios (``compile_count`` is recorded).
2. Power-scaling sensitivity (Kallioinen et al. 2024, ArviZ ``psense_summary``) of the original fit:
   how much the treatment / interaction posteriors move when the prior or the likelihood is
   raised to a power near 1; flags conclusions that depend on the prior.
"""

from __future__ import annotations

import os
import time
import warnings

import arviz_stats as azs
import pandas as pd
import pymc as pm

from ..config.priors import default_scenarios, describe, scenario_prior
from ..core import progress
from ..core.executor import Cell, Executor
from ..inference.compile_cache import COMPILER_ENV_VAR, configured_cache_dir
from ..models.graph import prior_data
from ..models.pem import PiecewiseExponentialModel
from ..models.scenarios import ScenarioCase, give_back, lend, scenario_cell, warning_lines
from ..results.sections import (
    Compilations,
    PsenseRow,
    ScenarioInfo,
    SensitivityResults,
)


def psense_table(pem: PiecewiseExponentialModel) -> pd.DataFrame:
    """Power-scaling prior / likelihood sensitivity (``azs.psense_summary``) of the treatment (and
    interaction) terms of a fitted model, one row per parameter."""
    idata = pem.idata
    if "log_prior" not in idata.children:
        pm.stats.compute_log_prior(
            idata, model=pem.model, extend_inferencedata=True, progressbar=False
        )
    names = ["treatment"] + (["interaction"] if pem.design.basis is not None else [])
    tab = azs.psense_summary(idata, var_names=names)
    tab = tab.reset_index().rename(columns={"index": "parameter"})
    if "parameter" not in tab.columns:
        tab = tab.rename(columns={tab.columns[0]: "parameter"})
    return tab


def run_sensitivity(
    cfg,
    models: dict[str, PiecewiseExponentialModel],
    settings: dict | None = None,
    timings: list | None = None,
) -> SensitivityResults:
    """Refit the selected models under every prior scenario and the power-scaling sensitivity
    of the main fits; the main fits are untouched (restored when refitted in this process).

    The refits are executor cells (models.scenarios): on a process pool of
    ``sensitivity.workers`` (executor ``auto``: more than 4 refits) when the compiled models can
    be loaded from the compile cache (each worker loads each model once), else in this process on
    the route's own compiled models. A progress line per refit (model, scenario, seconds, time
    left); library warnings as one line each naming the model and scenario. ``timings`` (a list)
    receives each refit's seconds (provenance.json)."""
    s = cfg.sensitivity
    scenarios = s.scenarios or default_scenarios(s.design_hr)
    names = s.models or list(models)
    psense = []
    for name in names:
        if s.psense:
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                psense += _psense_rows(name, psense_table(models[name]))
            for line in warning_lines(caught):
                progress.say(f"warning in the power-scaling sensitivity of model {name}: {line}")
    cases = {n: _case(cfg, models[n], settings) for n in names}
    cells = [
        Cell(f"{n}/{sc.name}", {"case": cases[n], "scenario": sc})
        for n in names
        for sc in scenarios
    ]
    workers = s.workers if refits_in_workers(models[names[0]]) else 1
    with Executor(s.executor, workers) as ex:
        in_process = ex.backend_for(len(cells)) == "inprocess"
        saved = {n: (models[n].idata, models[n].diagnostics, dict(models[n].priors)) for n in names}
        if in_process:
            for n in names:
                lend(cases[n], models[n])
        try:
            rep = ex.map(scenario_cell, cells, cfg.sampler.seed, on_cell=_RefitLines(len(cells)))
        finally:
            if in_process:
                for n in names:
                    give_back(cases[n])
                    _restore(models[n], saved[n])
    if rep.failed:
        raise RuntimeError("prior-sensitivity refit failed: " + "; ".join(rep.first_errors()))
    values = rep.values()
    refits = [values[c.key]["refit"] for c in cells]
    compilations = {
        n: Compilations(
            models[n].sampler.compile_count,
            max(values[c.key]["fresh_compilations"] for c in cells if c.key.startswith(n + "/")),
        )
        for n in names
    }
    if timings is not None:
        timings += [
            {"refit": c.key, **{k: round(values[c.key][k], 3) for k in TIMED}} for c in cells
        ]
        timings.append({"backend": rep.backend, "workers": rep.workers,
                        "wall_s": round(rep.wall_seconds, 3)})  # fmt: skip
    infos = [ScenarioInfo(sc.name, sc.kind, describe(scenario_prior(sc))) for sc in scenarios]
    return SensitivityResults(infos, refits, psense, compilations)


#: the seconds of each refit recorded in provenance.json
TIMED = ("seconds", "refit_s", "sample_s")


def refits_in_workers(pem: PiecewiseExponentialModel) -> bool:
    """Whether a worker process can load the compiled models instead of compiling them: nutpie
    with the compile cache on (not ``TRIALBAYES_COMPILER=nutpie``)."""
    if pem.sampler_config.backend != "nutpie":
        return False
    if os.environ.get(COMPILER_ENV_VAR, "").lower() == "nutpie":
        return False
    return bool(configured_cache_dir(pem.sampler_config.cache_dir))


def _case(cfg, pem: PiecewiseExponentialModel, settings) -> ScenarioCase:
    e, b = cfg.estimands, pem.design.basis
    cuts = settings["subgroup_cutoffs"].value if settings else (e.subgroup_cutoffs or [])
    return ScenarioCase(
        key=f"{cfg.hash()}/{pem.spec.name}",
        spec=pem.spec,
        priors=cfg.priors,
        baseline=cfg.baseline,
        sampler=cfg.sampler,
        gate=cfg.diagnostics,
        data=pem.data,
        thresholds=tuple(e.hr_thresholds),
        harm=e.harm_threshold,
        level=e.level,
        max_draws=e.max_draws,
        probes=tuple(_probe_values(cuts or [], b)) if b is not None else (),
        seed=cfg.sampler.seed,
    )


class _RefitLines:
    """A progress line per finished refit: model, scenario, its seconds (sampling), the job's
    elapsed time and the time left at the rate so far; its warnings, one line each."""

    def __init__(self, total: int):
        self.total, self.done, self.t0 = total, 0, time.perf_counter()

    def __call__(self, res) -> None:
        self.done += 1
        model, scenario = res.key.split("/", 1)
        el = time.perf_counter() - self.t0
        left = el / self.done * (self.total - self.done)
        head = f"refit {self.done}/{self.total}: model {model}, scenario {scenario}"
        if res.status != "ok":
            progress.say(f"{head}: FAILED ({res.error})")
            return
        v = res.value
        progress.say(
            f"{head} in {v['seconds']:.1f} s (sampling {v['sample_s']:.1f} s); "
            f"{el:.0f} s elapsed, about {left:.0f} s left"
        )
        for line in v["warnings"]:
            progress.say(f"warning while refitting model {model} under scenario {scenario}: {line}")


def _restore(pem, saved) -> None:
    """The main fit back, and the PyMC model's prior data."""
    pem.restore_fit(*saved)
    restore = {**prior_data("treatment", saved[2]["treatment"])}
    if pem.design.basis is not None:
        restore.update(prior_data("interaction", saved[2]["interaction"]))
    pm.set_data(restore, model=pem.model)
    pem.sampler.current_data.update(restore)


def _psense_rows(model: str, tab: pd.DataFrame) -> list[PsenseRow]:
    return [
        PsenseRow(
            model,
            str(r["parameter"]),
            float(r["prior"]),
            float(r["likelihood"]),
            str(r.get("diagnosis", "")),
        )  # fmt: skip
        for r in tab.to_dict(orient="records")
    ]


def _probe_values(cutoffs, basis) -> list[float]:
    """Biomarker values at which to report HR across scenarios: the reference and the cut-offs."""
    vals = [basis.reference] + [c for c in cutoffs if (c + basis.offset > 0 or not basis.log)]
    return sorted(set(round(v, 6) for v in vals))
