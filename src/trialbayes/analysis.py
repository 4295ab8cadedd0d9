"""The patient-level analysis: config → validated data → fitted models → estimands → outputs.

Everything is validated before the first model is built; outputs are written atomically by
``outputs.OutputDir``. Returns a :class:`RunResult`; the CLI turns it into an exit status.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from . import estimands as est
from .config import Config
from .data import TrialData, check_against_models, load_data
from .frequentist import cox_fit, km_at, km_curves
from .inference import stack_versions
from .model import used_prior_terms
from .outputs import OutputDir
from .pem import PiecewiseExponentialModel
from .priors import describe

SCHEMA_VERSION = "1.0"


@dataclass
class RunResult:
    results: dict
    out_dir: Path | None
    reliable: bool
    models: dict = field(default_factory=dict)
    tables: dict = field(default_factory=dict)


def estimand_role(pem: PiecewiseExponentialModel) -> str:
    s = pem.spec
    if s.biomarker:
        return f"conditional HR at {s.biomarker} = {pem.design.basis.reference:g} (the median)"
    if s.covariates == [] and not s.centre_frailty:
        return "unadjusted HR"
    return "adjusted HR (conditional on covariates" + (" and centre)" if s.centre_frailty else ")")


def comparison_rows(name: str, pem: PiecewiseExponentialModel, cox: dict, prob: float) -> list[dict]:
    """Posterior vs Cox for every coefficient the two share, on the same coding."""
    d = pem.draws()
    pairs = [("treatment", d["treatment"], "treatment")]
    for j, c in enumerate(pem.design.cov_names):
        pairs.append((c, d["covariate_effects"][:, j], c))
    if pem.design.basis is not None:
        b = pem.spec.biomarker
        pairs.append((f"{b} (per SD, main)", d["biomarker_effect"], f"{b}_z"))
        pairs.append((f"treatment × {b} (per SD)", d["interaction"], f"treatment × {b}"))
    rows = []
    for term, v, ck in pairs:
        lo, hi = est.interval(v, prob)
        c = cox["terms"].get(ck, {})
        rows.append({
            "model": name, "term": term,
            "post_log_hr_mean": float(v.mean()), "post_log_hr_sd": float(v.std(ddof=1)),
            "post_hr_median": float(np.exp(np.median(v))), "post_hr_lower": float(np.exp(lo)),
            "post_hr_upper": float(np.exp(hi)), "post_p_hr_below_1": float((v < 0).mean()),
            "cox_log_hr": c.get("log_hr"), "cox_se": c.get("se"), "cox_hr": c.get("hr"),
            "cox_hr_lower": c.get("hr_lower"), "cox_hr_upper": c.get("hr_upper"), "cox_p": c.get("p"),
        })
    return rows


def biomarker_grid(x: np.ndarray, log: bool, n: int) -> np.ndarray:
    lo, hi = np.quantile(x, [0.02, 0.98])
    return np.geomspace(lo, hi, n) if log and lo > 0 else np.linspace(lo, hi, n)


def analyse_model(pem: PiecewiseExponentialModel, data: TrialData, cfg: Config) -> dict:
    """All estimands of one fitted model, plus its Cox counterpart. Pure apart from the fit."""
    e = cfg.estimands
    draws = pem.draws(e.max_draws)
    thr, harm, prob = tuple(e.hr_thresholds), e.harm_threshold, e.ci_prob
    times = data.frame["time"].to_numpy()
    centre = data.frame["centre"].to_numpy() if data.has_centre else None
    cox = cox_fit(pem.design, times, centre, prob)
    out = {
        "spec": pem.spec.model_dump(),
        "reliable": pem.reliable,
        "diagnostics": pem.diagnostics,
        "sampler": pem.idata.attrs.get("sampler"),
        "priors": {k: describe(pem.priors[k]) for k in used_prior_terms(pem.design)},
        "n_intervals": pem.design.n_intervals,
        "cut_points": pem.design.cuts.tolist(),
        "treatment_effect": {"estimand": estimand_role(pem), **est.hr_summary(draws["treatment"], thr, harm, prob)},
        "cox": cox,
        "coefficients": comparison_rows(pem.spec.name, pem, cox, prob),
        "survival": est.survival_estimands(draws, pem.design, e.landmark, prob),
    }
    tables = {"survival_curves": est.survival_curves(draws, pem.design, float(times.max()), e.curve_points, prob)}
    bname = e.biomarker or (pem.spec.biomarker or (data.biomarkers[0] if data.biomarkers else None))
    if bname and bname in data.frame:
        vals = data.frame[bname].to_numpy(float)
        out["subgroups"] = {
            "biomarker": bname,
            "cutoffs": e.subgroup_cutoffs,
            "groups": est.subgroup_effects(draws, pem.design, vals, e.subgroup_cutoffs, e.landmark, thr, harm, prob),
        }
    b = pem.design.basis
    if b is not None:
        grid = biomarker_grid(pem.design.biomarker_values, b.log, e.curve_points)
        curve = est.hr_curve(draws, b, grid, thr, prob)
        z, _ = b.evaluate(grid)
        tc = cox["terms"]
        curve["cox_hr"] = np.exp(tc["treatment"]["log_hr"] + tc[f"treatment × {pem.spec.biomarker}"]["log_hr"] * z)
        tables["hr_curve"] = curve
        crossing = curve.loc[curve["hr_median"] >= 1, "biomarker"]
        out["hr_curve"] = {
            "biomarker": pem.spec.biomarker,
            "reference": b.reference,
            "transform": "log" if b.log else "identity",
            "kind": b.kind,
            "benefit_region_p_gt_0.9": _region(curve, "p_hr_below_1", 0.9),
            "median_hr_crosses_1_at": float(crossing.iloc[0]) if len(crossing) and crossing.iloc[0] > grid[0] else None,
            "at": {f"{x:g}": est.hr_summary(est.log_hr_at(draws, b, [x])[:, 0], thr, harm, prob)
                   for x in _landmarks(grid)},
        }
    return {"result": out, "tables": tables, "draws": draws}


def _region(curve: pd.DataFrame, col: str, level: float):
    sel = curve.loc[curve[col] > level, "biomarker"]
    return None if sel.empty else [float(sel.min()), float(sel.max())]


def _landmarks(grid) -> list[float]:
    """Round biomarker values inside the grid to report the HR at (e.g. 1000, 2000, 3700, 5000)."""
    cands = [250, 500, 750, 1000, 2000, 3000, 3700, 5000, 7500, 10000]
    inside = [c for c in cands if grid[0] <= c <= grid[-1]]
    return inside or list(np.quantile(grid, [0.1, 0.5, 0.9]).round(3))


def loo_table(models: dict[str, PiecewiseExponentialModel]) -> tuple[pd.DataFrame | None, dict]:
    """PSIS-LOO of every model (computed once) and their comparison, with Pareto-k counts."""
    loos = {n: az.loo(m.idata, pointwise=True) for n, m in models.items() if "log_likelihood" in m.idata.children
            and m.idata.log_likelihood.data_vars}
    khat = {}
    for n, loo in loos.items():
        k = np.asarray(loo.pareto_k).ravel()
        khat[n] = {"max_pareto_k": float(k.max()), "n_k_above_0.7": int((k > 0.7).sum())}
    if len(loos) < 2:
        return None, khat
    df = az.compare(loos, round_to="none").reset_index().rename(columns={"index": "model"})
    keep = [c for c in ("model", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse", "warning") if c in df.columns]
    return df[keep], khat


def run_patient_level(cfg: Config, out_root: str | Path = "outputs", config_path: str | None = None,
                      write: bool = True) -> RunResult:
    t_start = time.perf_counter()
    data = load_data(cfg)
    check_against_models(data, cfg.models, cfg.baseline.cuts, cfg.estimands.biomarker)

    models: dict[str, PiecewiseExponentialModel] = {}
    per_model, tables, draws_by_model, seeds = {}, {}, {}, {}
    for i, spec in enumerate(cfg.models):
        seed = cfg.sampler.seed + 1000 * i
        seeds[spec.name] = seed
        pem = PiecewiseExponentialModel(spec, cfg.priors, cfg.baseline, cfg.sampler, cfg.diagnostics).build(data)
        pem.fit(seed=seed)
        models[spec.name] = pem
        res = analyse_model(pem, data, cfg)
        per_model[spec.name], tables[spec.name], draws_by_model[spec.name] = res["result"], res["tables"], res["draws"]

    loo_df, khat = loo_table(models)
    km = km_curves(data.frame["time"].to_numpy(), data.frame["event"].to_numpy(), data.frame["treat"].to_numpy())
    reliable = all(m.reliable for m in models.values())
    lm = cfg.estimands.landmark
    results = {
        "schema_version": SCHEMA_VERSION,
        "config_name": cfg.name,
        "title": cfg.title or cfg.report.title or cfg.name,
        "synthetic": data.synthetic,
        "data_label": data.label,
        "data": data.describe(),
        "reliable": reliable,
        "unreliable_models": [n for n, m in models.items() if not m.reliable],
        "sign_convention": "HR = hazard(treatment) / hazard(control); HR < 1 favours treatment",
        "models": per_model,
        "loo": {"table": None if loo_df is None else loo_df.to_dict(orient="records"), "pareto_k": khat},
        "kaplan_meier": {
            "landmark": lm,
            "survival_control": km_at(km, 0, lm) if lm <= data.frame["time"].max() else None,
            "survival_treatment": km_at(km, 1, lm) if lm <= data.frame["time"].max() else None,
        },
    }
    if data.synthetic and data.truth is not None:
        results["synthetic_truth"] = data.truth.as_dict()
    if data.reconstruction is not None:
        results["reconstruction"] = data.reconstruction["quality"]
    if data.notes:
        results["data_notes"] = data.notes
    sens = None
    if cfg.sensitivity.enabled:
        from .sensitivity import run_sensitivity

        sens = run_sensitivity(cfg, models)
        results["sensitivity"] = {
            "scenarios": sens["scenarios"],
            "table": sens["table"].to_dict(orient="records"),
            "psense": sens["psense"].to_dict(orient="records"),
            "compile_counts": sens["compile_counts"],
            "unreliable_refits": sens["table"].loc[~sens["table"]["reliable"], ["model", "scenario"]].to_dict(orient="records"),
        }
    provenance = {
        "created_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "config_path": config_path,
        "config_hash": cfg.hash(),
        "config": cfg.model_dump(mode="json"),
        "data_sha256": data.sha256(),
        "seeds": seeds,
        "sampler": {"backend": cfg.sampler.backend, "chains": cfg.sampler.chains, "draws": cfg.sampler.draws,
                    "tune": cfg.sampler.tune,
                    "target_accept": {n: m.sampler.accept for n, m in models.items()}},
        "versions": stack_versions(),
        "timings_seconds": {n: {"compile": m.sampler.compile_seconds, "sample": sum(m.sampler.timings)}
                            for n, m in models.items()},
        "timings": {n: m.sampler.timing_summary() for n, m in models.items()},
        "wall_seconds": None,
    }
    run = RunResult(results=results, out_dir=None, reliable=reliable, models=models,
                    tables={"per_model": tables, "km": km, "loo": loo_df, "sensitivity": sens})
    if write:
        from .report import write_patient_outputs

        provenance["wall_seconds"] = round(time.perf_counter() - t_start, 2)
        with OutputDir(out_root, cfg.name, csv_label="SYNTHETIC" if data.synthetic else None) as out:
            write_patient_outputs(out, cfg, data, run, draws_by_model, provenance)
            run.out_dir = out.commit()
    return run
