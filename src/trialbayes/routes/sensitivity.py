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
import numpy as np
import pandas as pd
import pymc as pm

from ..config.priors import default_scenarios, describe, scenario_interaction_prior, scenario_prior
from ..estimands.draws import hr_summary, log_hr_at
from ..models.graph import prior_data
from ..models.pem import PiecewiseExponentialModel


def psense_table(pem: PiecewiseExponentialModel) -> pd.DataFrame:
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
) -> dict:
    s = cfg.sensitivity
    e = cfg.estimands
    scenarios = s.scenarios or default_scenarios(s.design_hr)
    rows, psense_rows, compile_counts = [], [], {}
    for name in s.models or list(models):
        pem = models[name]
        before = pem.sampler.compile_count
        saved = (pem.idata, pem.diagnostics, dict(pem.priors))
        if s.psense:
            tab = psense_table(pem)
            for r in tab.to_dict(orient="records"):
                psense_rows.append({"model": name, **r})
        for i, sc in enumerate(scenarios):
            tp = scenario_prior(sc)
            ip = scenario_interaction_prior(sc, saved[2]["interaction"])
            pem.fit(
                prior_overrides={"treatment": tp, "interaction": ip},
                seed=cfg.sampler.seed + 7919 * (i + 1),
                log_likelihood=False,
            )
            d = pem.draws(e.max_draws)
            te = hr_summary(d["treatment"], tuple(e.hr_thresholds), e.harm_threshold, e.ci_prob)
            row = {
                "model": name,
                "scenario": sc.name,
                "treatment_prior": describe(tp),
                "interaction_prior": describe(ip) if pem.design.basis is not None else "",
                "reliable": pem.reliable,
                "divergences": pem.diagnostics["divergences"],
                "rhat_max": pem.diagnostics["rhat_max"],
                **te.flat(),
            }
            b = pem.design.basis
            if b is not None:
                cuts = (
                    settings["subgroup_cutoffs"].value if settings else (e.subgroup_cutoffs or [])
                )
                for x in _probe_values(cuts, b):
                    lh = log_hr_at(d, b, [x])[:, 0]
                    row[f"hr_at_{x:g}"] = float(np.exp(np.median(lh)))
                    row[f"p_hr_below_1_at_{x:g}"] = float((lh < 0).mean())
            rows.append(row)
        # restore the main fit and the PyMC model's prior data
        pem.idata, pem.diagnostics, pem.priors = saved
        restore = {**prior_data("treatment", saved[2]["treatment"])}
        if pem.design.basis is not None:
            restore.update(prior_data("interaction", saved[2]["interaction"]))
        pm.set_data(restore, model=pem.model)
        pem.sampler.current_data.update(restore)
        compile_counts[name] = {
            "compilations": pem.sampler.compile_count,
            "during_scenarios": pem.sampler.compile_count - before,
        }
    return {
        "scenarios": [
            {"name": sc.name, "kind": sc.kind, "treatment_prior": describe(scenario_prior(sc))}
            for sc in scenarios
        ],
        "table": pd.DataFrame(rows),
        "psense": pd.DataFrame(psense_rows),
        "compile_counts": compile_counts,
    }


def _probe_values(cutoffs, basis) -> list[float]:
    """Biomarker values at which to report HR across scenarios: the reference and the cut-offs."""
    vals = [basis.reference] + [c for c in cutoffs if (c > 0 or not basis.log)]
    return sorted(set(round(v, 6) for v in vals))
