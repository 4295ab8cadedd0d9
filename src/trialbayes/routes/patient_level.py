"""The patient-level analysis: config → validated data → fitted models → estimands → outputs.

Everything is validated before the first model is built; outputs are written atomically by
``outputs.OutputDir``. Returns a :class:`RunResult`; the CLI turns it into an exit status.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from pathlib import Path

import arviz as az
import numpy as np
import pandas as pd

from ..config.priors import describe
from ..config.schema import Config
from ..core import progress
from ..core.flags import Flag
from ..core.interrupts import phase
from ..data.settings import round_sig
from ..data.table import TrialData
from ..estimands import caution
from ..estimands.draws import (
    hr_curve,
    hr_summary,
    log_hr_at,
    subgroup_effects,
    survival_curves,
    survival_estimands,
)
from ..estimands.frequentist import cox_fit, km_at, km_curves, median_follow_up
from ..inference.sampler import stack_versions
from ..models.graph import used_prior_terms
from ..models.pem import PiecewiseExponentialModel
from ..nextphase.covariates import enrichment_flags
from ..nextphase.grid import run_for_models
from ..report.artefacts import write_patient_outputs
from ..report.writer import RunResult, write_run
from ..results.model import (
    Coefficient,
    CoxTerm,
    HRCurve,
    LooComparison,
    ModelResult,
    Results,
    Subgroups,
)
from .resolve import output_settings
from .sensitivity import run_sensitivity
from .time_varying import attach_ph_comparisons, average_role, with_hr_over_time
from .validate import preflight

__all__ = ["RunResult", "run_patient_level", "analyse_model"]


def estimand_role(pem: PiecewiseExponentialModel, units: dict | None = None) -> str:
    role = _role(pem, units)
    return average_role(role) if pem.spec.time_varying else role


def _role(pem: PiecewiseExponentialModel, units: dict | None) -> str:
    s = pem.spec
    if s.biomarker:
        u = (units or {}).get(s.biomarker)
        return (
            f"conditional HR at {s.biomarker} = {_num(pem.design.basis.reference, u)} (the median)"
        )
    if s.covariates == [] and not s.centre_frailty:
        return "unadjusted HR"
    return "adjusted HR (conditional on covariates" + (" and centre)" if s.centre_frailty else ")")


def coefficients(
    pem: PiecewiseExponentialModel, draws: dict, cox: dict, hs, units: dict
) -> list[Coefficient]:
    """Posterior beside Cox for every coefficient the two share, on the same coding and draws.
    ``hs(log_draws)`` makes the HRSummary (thresholds, harm, level of the run)."""
    des, b = pem.design, pem.design.basis
    ref = (
        f" at {pem.spec.biomarker} = {_num(b.reference, units.get(pem.spec.biomarker))}"
        if b
        else ""
    )
    avg = ", averaged over follow-up" if pem.spec.time_varying else ""
    rows = [("treatment", "treated vs control" + ref + avg, draws["treatment"], "treatment")]
    for j, c in enumerate(des.cov_names):
        rows.append(
            (
                c,
                f"per SD ({_num(des.cov_sd[j], units.get(c), 3)})",
                draws["covariate_effects"][:, j],
                c,
            )
        )
    if b is not None:
        bm = pem.spec.biomarker
        unit = "" if b.log else _u(units.get(bm))
        per = f"per SD of {'log ' if b.log else ''}{bm} ({b.scale:.3g}{unit})"
        rows.append((f"{bm} (main)", per, draws["biomarker_effect"], f"{bm}_z"))
        rows.append((f"treatment × {bm}", per, draws["interaction"], f"treatment × {bm}"))
    out = []
    for term, unit, v, ck in rows:
        # a Cox fit that failed or ran off gives no terms (its flag says why)
        c = cox["terms"].get(ck) if cox["status"] == "ok" else None
        cx = (
            None
            if c is None
            else CoxTerm(
                c["hr"],
                c["hr_lower"],
                c["hr_upper"],
                cox.get("level", 0.95),
                c["log_hr"],
                c["se"],
                c["p"],
            )
        )
        out.append(Coefficient(term, unit, hs(v), cx))
    return out


def _u(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _num(x: float, unit: str | None, sig: int = 4) -> str:
    return f"{x:.{sig}g}{_u(unit)}"


def biomarker_grid(x: np.ndarray, log: bool, n: int) -> np.ndarray:
    lo, hi = np.quantile(x, [0.02, 0.98])
    return np.geomspace(lo, hi, n) if log and lo > 0 else np.linspace(lo, hi, n)


def analyse_model(
    pem: PiecewiseExponentialModel, data: TrialData, cfg: Config, settings: dict
) -> dict:
    """All estimands of one fitted model from ONE set of draws, plus its Cox counterpart."""
    e = cfg.estimands
    draws = pem.draws(e.max_draws)
    thr, harm, prob = tuple(e.hr_thresholds), e.harm_threshold, e.ci_prob

    def hs(v):
        return hr_summary(v, thr, harm, prob)

    units, tu = settings["units"].value or {}, settings["time_unit"].value or "time units"
    landmark = settings["landmark"].value
    times = data.frame["time"].to_numpy()
    centre = data.frame["centre"].to_numpy() if data.has_centre else None
    cox = cox_fit(pem.design, times, centre, prob)
    cox["level"] = prob
    coefs = coefficients(pem, draws, cox, hs, units)
    res = ModelResult(
        name=pem.spec.name,
        estimand=estimand_role(pem, units),
        treatment_effect=coefs[0].posterior,
        reliable=pem.reliable,
        diagnostics=pem.diagnostics,
        sampler=pem.idata.attrs.get("sampler"),
        spec=pem.spec.model_dump(),
        priors={k: describe(pem.priors[k]) for k in used_prior_terms(pem.design)},
        n_intervals=pem.design.n_intervals,
        cut_points=pem.design.cuts.tolist(),
        cox_method=cox["method"],
        cox_status=cox["status"],
        coefficients=coefs,
        survival=survival_estimands(draws, pem.design, landmark, prob, time_unit=tu),
    )
    res.flags += caution.model_flags(
        pem.spec.name, cox, draws["treatment"], pem.priors["treatment"]
    )
    tables = {
        "survival_curves": survival_curves(
            draws, pem.design, float(times.max()), e.curve_points, prob
        )
    }
    bname, cuts = settings["biomarker"].value, settings["subgroup_cutoffs"]
    if bname and bname in data.frame and cuts.value:
        vals = data.frame[bname].to_numpy(float)
        groups = subgroup_effects(draws, pem.design, vals, cuts.value, landmark, thr, harm, prob)
        if pem.spec.biomarker == bname:
            for g in groups:
                g.flags.extend(subgroup_flags(pem.spec.name, bname, g))
        else:  # no interaction: the conditional HR is the overall HR in every subgroup
            res.flags.append(
                Flag(
                    "subgroup_without_interaction",
                    f"no treatment × {bname} interaction in this model: its {bname} subgroup HRs"
                    " restate the overall effect (only the standardisation differs), they are not"
                    " evidence of effect modification",
                    "caution",
                    pem.spec.name,
                )
            )
        res.subgroups = Subgroups(
            bname, units.get(bname, ""), list(cuts.value), cuts.text(), groups
        )
    if pem.design.basis is not None:
        res.hr_curve, tables["hr_curve"] = _hr_curve(pem, draws, cox, cfg, units, hs)
    if pem.design.time_varying:
        res, tables["hr_over_time"] = with_hr_over_time(
            res, pem.design, draws, times, centre, prob, thr, harm, tu
        )
    return {"result": res, "tables": tables, "draws": draws}


#: a subgroup P(benefit) resting on fewer events than this is flagged
MIN_SUBGROUP_EVENTS = 10


def subgroup_flags(model: str, biomarker: str, g) -> list[Flag]:
    if g.events >= MIN_SUBGROUP_EVENTS:
        return []
    return [
        Flag(
            "sparse_subgroup",
            f"subgroup {biomarker} {g.label} has {g.events} events "
            f"(< {MIN_SUBGROUP_EVENTS}): its P(benefit) rests mostly on the prior and the model",
            "caution",
            model,
            {"events": g.events, "n": g.n},
        )
    ]


def _hr_curve(pem, draws, cox, cfg, units, hs):
    e, b, bm = cfg.estimands, pem.design.basis, pem.spec.biomarker
    grid = biomarker_grid(pem.design.biomarker_values, b.log, e.curve_points)
    curve = hr_curve(draws, b, grid, tuple(e.hr_thresholds), e.ci_prob)
    z, _ = b.evaluate(grid)
    tc = cox["terms"]
    if cox["status"] == "ok":  # a failed or runaway Cox fit draws no curve
        curve["cox_hr"] = np.exp(tc["treatment"]["log_hr"] + tc[f"treatment × {bm}"]["log_hr"] * z)
    else:
        curve["cox_hr"] = np.nan
    crossing = curve.loc[curve["hr_median"] >= 1, "biomarker"]
    at = {
        f"{x:g}": hs(log_hr_at(draws, b, [x])[:, 0])
        for x in probe_points(pem.design.biomarker_values)
    }
    return HRCurve(
        biomarker=bm,
        unit=units.get(bm, ""),
        reference=b.reference,
        transform="log" if b.log else "identity",
        kind=b.kind,
        benefit_region=_region(curve, "p_hr_below_1", 0.9),
        median_crosses_1_at=float(crossing.iloc[0])
        if len(crossing) and crossing.iloc[0] > grid[0]
        else None,
        at=at,
    ), curve


def _region(curve: pd.DataFrame, col: str, level: float):
    sel = curve.loc[curve[col] > level, "biomarker"]
    return None if sel.empty else [float(sel.min()), float(sel.max())]


def probe_points(values) -> list[float]:
    """Biomarker values to report the HR at: the 10th, 50th and 90th percentiles of the data,
    rounded to 2 significant figures (distinct values only)."""
    return sorted({round_sig(float(q), 2) for q in np.quantile(values, [0.1, 0.5, 0.9])})


def psis_loos(models: dict[str, PiecewiseExponentialModel]) -> dict:
    """PSIS-LOO of every model that kept its pointwise log-likelihood (computed once)."""
    return {
        n: az.loo(m.idata, pointwise=True)
        for n, m in models.items()
        if "log_likelihood" in m.idata.children and m.idata.log_likelihood.data_vars
    }


def loo_table(
    models: dict[str, PiecewiseExponentialModel], loos: dict | None = None
) -> tuple[pd.DataFrame | None, LooComparison]:
    """PSIS-LOO of every model (computed once) and their comparison, with Pareto-k counts."""
    loos = psis_loos(models) if loos is None else loos
    khat = {}
    for n, loo in loos.items():
        k = np.asarray(loo.pareto_k).ravel()
        khat[n] = {"max_pareto_k": float(k.max()), "n_k_above_0.7": int((k > 0.7).sum())}
    left_out = [n for n in models if n not in loos]
    note = (
        f" Not compared: {', '.join(f'`{n}`' for n in left_out)} (draws × patients above "
        f"{PiecewiseExponentialModel.MAX_LOGLIK_CELLS:,}: no pointwise log-likelihood kept)."
        if left_out
        else ""
    )
    if len(loos) < 2:
        return None, LooComparison(None, khat, note.strip())
    df = az.compare(loos, round_to="none").reset_index().rename(columns={"index": "model"})
    keep = [
        c
        for c in ("model", "rank", "elpd", "p", "elpd_diff", "weight", "se", "dse", "warning")
        if c in df.columns
    ]
    df = df[keep]
    return df, LooComparison(df.to_dict(orient="records"), khat, loo_verdict(df) + note)


def loo_verdict(df: pd.DataFrame) -> str:
    """ "PSIS-LOO prefers `a`" only when the best model's elpd exceeds the next by more than 2 SE of
    the difference; otherwise "no clear preference"."""
    best, nxt = df.iloc[0], df.iloc[1]
    diff, se = abs(float(nxt["elpd_diff"])), float(nxt["dse"])
    nums = f"Δelpd to `{nxt['model']}` {diff:.1f}, SE {se:.1f}"
    if diff > 2 * se:
        return f"PSIS-LOO prefers `{best['model']}` ({nums})."
    return (
        f"PSIS-LOO: no clear preference between the models (best `{best['model']}`, {nums} < 2 SE)."
    )


def fit_with_progress(pem: PiecewiseExponentialModel, sampler, seed: int):
    """Compile (its own phase line: 15–60 s for a large model), then sample, each announced."""
    name = pem.spec.name
    pem.sampler.label = name
    with progress.phase(f"compiling model {name}", record=False):  # named "fitting model 'x'"
        pem.sampler.compile()
    text = progress.sampling_text(name, sampler.chains, sampler.draws, sampler.tune)
    with progress.phase(text, record=False):
        return pem.fit(seed=seed)


def run_patient_level(
    cfg: Config,
    out_root: str | Path = "outputs",
    config_path: str | None = None,
    write: bool = True,
) -> RunResult:
    """load → validate → fit → estimands → Results → write (one writer for every route)."""
    t_start = time.perf_counter()
    with progress.phase("loading and validating the data"):
        data, settings = preflight(cfg, out_root if write else None)

    models: dict[str, PiecewiseExponentialModel] = {}
    per_model, tables, draws_by_model, seeds = {}, {}, {}, {}
    for i, spec in enumerate(cfg.models):
        seeds[spec.name] = seed = cfg.sampler.seed + 1000 * i
        with phase(f"fitting model '{spec.name}'"):
            pem = PiecewiseExponentialModel(
                spec, cfg.priors, cfg.baseline, cfg.sampler, cfg.diagnostics
            ).build(data)
            models[spec.name] = fit_with_progress(pem, cfg.sampler, seed)
        with progress.phase(f"analysing model '{spec.name}'"):
            res = analyse_model(pem, data, cfg, settings)
        per_model[spec.name], tables[spec.name], draws_by_model[spec.name] = (
            res["result"],
            res["tables"],
            res["draws"],
        )

    with progress.phase("PSIS-LOO model comparison"):
        loos = psis_loos(models)
        loo_df, loo = loo_table(models, loos)
        attach_ph_comparisons(per_model, cfg.models, loos)
    f = data.frame
    km = km_curves(
        f["time"].to_numpy(),
        f["event"].to_numpy(),
        f["treat"].to_numpy(),
        level=cfg.estimands.ci_prob,
    )
    lm = settings["landmark"].value
    results = Results(
        kind="reconstructed" if data.reconstruction is not None else "patient_level",
        config_name=cfg.name,
        title=cfg.title or cfg.report.title or cfg.name,
        data_label=data.label,
        synthetic=data.synthetic,
        settings=settings,
        data={
            **data.describe(),
            "median_follow_up_reverse_km": median_follow_up(f["time"], f["event"]),
            "missing_policy": getattr(cfg.data, "missing", None),
        },
        models=per_model,
        loo=loo,
        kaplan_meier={
            "landmark": lm,
            "survival_control": km_at(km, 0, lm),
            "survival_treatment": km_at(km, 1, lm),
        },
    )
    results.reliable = all(m.reliable for m in models.values())
    results.unreliable_models = [n for n, m in models.items() if not m.reliable]
    _sections(results, data)
    results.flags += caution.data_flags(data)  # each model's own flags are on its ModelResult
    if cfg.next_phase is not None:
        results.flags += enrichment_flags(cfg.next_phase, data, cfg.models)
    sens = None
    if cfg.sensitivity.enabled:
        with progress.phase("refitting under the prior scenarios"):
            sens = run_sensitivity(cfg, models, settings)
        results.sensitivity = {
            "scenarios": sens["scenarios"],
            "table": sens["table"].to_dict(orient="records"),
            "psense": sens["psense"].to_dict(orient="records"),
            "compile_counts": sens["compile_counts"],
            "unreliable_refits": sens["table"]
            .loc[~sens["table"]["reliable"], ["model", "scenario"]]
            .to_dict(orient="records"),
        }
    nxt = None
    if cfg.next_phase is not None:
        with phase("simulating next trials"):
            nxt = run_for_models(
                cfg.next_phase, models, out_root, cfg.name,
                time_unit=results.time_unit, units=results.setting("units") or {},
            )  # fmt: skip
        results.sections["next_phase"] = nxt.to_dict()
    provenance = _provenance(cfg, data, models, seeds, config_path)
    run = RunResult(
        results=results,
        out_dir=None,
        reliable=results.reliable,
        models=models,
        tables={
            "per_model": tables,
            "km": km,
            "loo": loo_df,
            "sensitivity": sens,
            "next_phase": nxt,
        },
    )
    if write:
        provenance["wall_seconds"] = round(time.perf_counter() - t_start, 2)
        with progress.phase("writing outputs"):
            run.out_dir = write_run(
                results,
                provenance,
                out_root,
                lambda out: write_patient_outputs(
                    out, output_settings(cfg), data, run, draws_by_model
                ),
                csv_label=csv_label(data),
                html=cfg.report.html,
            )
    return run


def csv_label(data: TrialData) -> str | None:
    """The label every table of the run carries in a leading ``data`` column, if any."""
    if data.synthetic:
        return "SYNTHETIC"
    return "RECONSTRUCTED" if data.reconstruction is not None else None


def _sections(results: Results, data: TrialData) -> None:
    if data.synthetic and data.truth is not None:
        results.sections["synthetic_truth"] = data.truth.as_dict()
    if data.reconstruction is not None:
        results.sections["reconstruction"] = data.reconstruction["quality"]
        results.flags.append(
            Flag(
                "reconstructed_data",
                "the patient data were rebuilt from a digitised "
                "Kaplan–Meier figure: approximations of the real ones",
                "caution",
            )
        )
    if data.notes:
        results.sections["data_notes"] = data.notes


def _provenance(cfg: Config, data: TrialData, models: dict, seeds: dict, config_path) -> dict:
    return {
        "created_at": datetime.now(UTC).isoformat(timespec="seconds"),
        "config_path": config_path,
        "config_hash": cfg.hash(),
        "config": cfg.model_dump(mode="json"),
        "data_label": data.label,
        "data_sha256": data.sha256(),
        "seeds": seeds,
        "sampler": {
            "backend": cfg.sampler.backend,
            "chains": cfg.sampler.chains,
            "draws": cfg.sampler.draws,
            "tune": cfg.sampler.tune,
            "target_accept": {n: m.sampler.accept for n, m in models.items()},
        },
        "versions": stack_versions(),
        "timings_seconds": {
            n: {"compile": m.sampler.compile_seconds, "sample": sum(m.sampler.timings)}
            for n, m in models.items()
        },
        "timings": {n: m.sampler.timing_summary() for n, m in models.items()},
        "wall_seconds": None,
    }
