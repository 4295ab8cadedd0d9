"""Prior sensitivity of the patient-level models.

1. Scenario refits: every selected model is refitted under each named prior scenario for its
   treatment and interaction coefficients. The priors are pm.Data, so each model is compiled once
   and reused across scenarios (``compile_count`` is recorded).
2. Power-scaling sensitivity (Kallioinen et al. 2024, ArviZ ``psense_summary``) of the original fit:
   how much the treatment / interaction posteriors move when the prior or the likelihood is
   raised to a power near 1; flags conclusions that depend on the prior.
"""

from __future__ import annotations

import arviz as az
import pandas as pd
import pymc as pm

from ..config.priors import default_scenarios, describe, scenario_interaction_prior, scenario_prior
from ..core.seeds import child_seed
from ..estimands.draws import hr_summary, log_hr_at
from ..models.graph import prior_data
from ..models.pem import PiecewiseExponentialModel
from ..results.sections import (
    Compilations,
    PsenseRow,
    ScenarioInfo,
    ScenarioRefit,
    SensitivityResults,
)


def psense_table(pem: PiecewiseExponentialModel) -> pd.DataFrame:
    """Power-scaling prior / likelihood sensitivity (``az.psense_summary``) of the treatment (and
    interaction) terms of a fitted model, one row per parameter."""
    idata = pem.idata
    if "log_prior" not in idata.children:
        pm.stats.compute_log_prior(
            idata, model=pem.model, extend_inferencedata=True, progressbar=False
        )
    names = ["treatment"] + (["interaction"] if pem.design.basis is not None else [])
    tab = az.psense_summary(idata, var_names=names)
    tab = tab.reset_index().rename(columns={"index": "parameter"})
    if "parameter" not in tab.columns:
        tab = tab.rename(columns={tab.columns[0]: "parameter"})
    return tab


def run_sensitivity(
    cfg, models: dict[str, PiecewiseExponentialModel], settings: dict | None = None
) -> SensitivityResults:
    """Refit the selected models under every prior scenario (one compilation per model) and
    the power-scaling sensitivity of the main fits; the main fits are restored afterwards."""
    s, e = cfg.sensitivity, cfg.estimands
    scenarios = s.scenarios or default_scenarios(s.design_hr)
    refits, psense, compilations = [], [], {}
    for name in s.models or list(models):
        pem = models[name]
        before = pem.sampler.compile_count
        saved = (pem.idata, pem.diagnostics, dict(pem.priors))
        if s.psense:
            psense += _psense_rows(name, psense_table(pem))
        for sc in scenarios:
            tp = scenario_prior(sc)
            ip = scenario_interaction_prior(sc, saved[2]["interaction"])
            pem.fit(
                prior_overrides={"treatment": tp, "interaction": ip},
                seed=child_seed(cfg.sampler.seed, "scenario", name, sc.name),
                log_likelihood=False,
            )
            refits.append(_refit(pem, name, sc.name, tp, ip, e, settings))
        _restore(pem, saved)
        compilations[name] = Compilations(
            pem.sampler.compile_count, pem.sampler.compile_count - before
        )
    infos = [ScenarioInfo(sc.name, sc.kind, describe(scenario_prior(sc))) for sc in scenarios]
    return SensitivityResults(infos, refits, psense, compilations)


def _refit(pem, name, scenario, tp, ip, e, settings) -> ScenarioRefit:
    d = pem.draws(e.max_draws)
    thr, harm, level = tuple(e.hr_thresholds), e.harm_threshold, e.level
    b = pem.design.basis
    at = {}
    if b is not None:
        cuts = settings["subgroup_cutoffs"].value if settings else (e.subgroup_cutoffs or [])
        at = {
            f"{x:g}": hr_summary(log_hr_at(d, b, [x])[:, 0], thr, harm, level)
            for x in _probe_values(cuts, b)
        }
    return ScenarioRefit(
        model=name,
        scenario=scenario,
        treatment_prior=describe(tp),
        interaction_prior=describe(ip) if b is not None else "",
        reliable=pem.reliable,
        divergences=pem.diagnostics.divergences,
        rhat_max=pem.diagnostics.rhat_max,
        treatment=hr_summary(d["treatment"], thr, harm, level),
        at=at,
    )


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
