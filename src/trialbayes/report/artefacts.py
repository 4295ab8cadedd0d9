"""Artefacts of a patient-level run: CSV tables, PNG figures and self-describing posterior netCDF
files. results.json, provenance.json and report.md are written by :mod:`trialbayes.report.writer`
from the typed results (report text: :mod:`trialbayes.report.markdown`)."""

from __future__ import annotations

import json
import re
from dataclasses import asdict

import pandas as pd
import xarray as xr

from ..core.outputs import OutputDir, dumps
from ..core.text import prob_columns
from ..plots.general import forest_plot
from ..plots.journal import quality_plot
from ..plots.style import ARM_COLOURS
from ..results.model import Results
from ..results.sections import SensitivityResults
from .markdown import any_pooled
from .nextphase import next_phase_figures, write_next_phase_tables
from .plan import FigurePlan, OutputSettings
from .run_figures import attach_prior, forest_caption, model_figures, sensitivity_figure
from .tables import coefficient_table, diagnostics_table, forest_rows, subgroup_table


def write_patient_tables(out: OutputDir, s: OutputSettings, data, run, priors: dict) -> None:
    """tables/ and posterior/ of a patient-level run (its figures: :func:`patient_figures`)."""
    r: Results = run.results
    out.write_csv("tables/coefficients.csv", prob_columns(coefficient_table(r), "n_draws"))
    sub = subgroup_table(r)
    if len(sub):
        out.write_csv("tables/subgroups.csv", prob_columns(sub, "n_draws"))
    out.write_csv("tables/diagnostics.csv", diagnostics_table(r))
    out.write_csv("tables/kaplan_meier.csv", run.tables["km"].assign(time_unit=r.time_unit))
    if run.tables["loo"] is not None:
        out.write_csv("tables/loo.csv", run.tables["loo"])
    for name, tabs in run.tables["per_model"].items():
        out.write_csv(
            f"tables/survival_{name}.csv", tabs["survival_curves"].assign(time_unit=r.time_unit)
        )
        if "hr_over_time" in tabs:
            out.write_csv(f"tables/hr_over_time_{name}.csv", tabs["hr_over_time"])
        if "hr_curve" in tabs:
            bm = run.models[name].spec.biomarker
            curve = tabs["hr_curve"].assign(biomarker_name=bm, unit=r.unit_of(bm))
            n = r.models[name].treatment_effect.n_draws
            out.write_csv(f"tables/hr_curve_{name}.csv", prob_columns(curve, n))
        pem = run.models[name]
        dt = posterior_file(pem, data, r, s.config_hash)
        attach_prior(dt, priors[name])
        dt.to_netcdf(out.path(f"posterior/{name}.nc"), engine="h5netcdf")
    if data.reconstruction is not None:
        out.write_csv("tables/reconstructed_ipd.csv", data.reconstruction.ipd)
    if r.sensitivity is not None:
        sens = prob_columns(sensitivity_table(r.sensitivity), "n_draws")
        out.write_csv("tables/sensitivity.csv", sens)
        if r.sensitivity.psense:
            out.write_csv(
                "tables/psense.csv", pd.DataFrame([asdict(x) for x in r.sensitivity.psense])
            )
    if r.next_phase is not None:
        write_next_phase_tables(out, r.next_phase)


def patient_figures(
    plan: FigurePlan, s: OutputSettings, data, run, draws_by_model: dict, priors: dict
) -> None:
    """Every figure of a patient-level run, with its caption (drawn by the writer)."""
    if not s.figures:
        return
    r: Results = run.results
    label = data_stamp(data)
    for name in run.models:
        model_figures(plan, s, data, run, name, draws_by_model[name], priors[name], label)
    rows = forest_rows(r)
    plan.add(
        "forest",
        forest_caption(s.level, any_pooled(r)),
        lambda: forest_plot(rows, label=label, level=s.level),
    )
    if data.reconstruction is not None:
        _reconstruction_figure(plan, data, r)
    if r.sensitivity is not None:
        sensitivity_figure(plan, s, r.sensitivity, label)
    if r.next_phase is not None:
        next_phase_figures(plan, r.next_phase, label)


def data_stamp(data) -> str | None:
    """The label stamped on every figure of the run: SYNTHETIC or RECONSTRUCTED DATA."""
    if data.synthetic:
        return "SYNTHETIC DATA"
    return "RECONSTRUCTED DATA" if data.reconstruction is not None else None


def _reconstruction_figure(plan: FigurePlan, data, r: Results) -> None:
    rc = data.reconstruction
    colours = {data.control_label: ARM_COLOURS[0], data.treatment_label: ARM_COLOURS[1]}
    plan.add(
        "reconstruction_quality",
        "Reconstruction quality: the digitised points (dots) against the Kaplan–Meier curve of "
        "the reconstructed patient data (steps), per arm.",
        lambda: quality_plot(rc.ipd, rc.curve, rc.percent, colours=colours, time_unit=r.time_unit),
    )


def sensitivity_table(sens: SensitivityResults) -> pd.DataFrame:
    """tables/sensitivity.csv: one row per model and scenario; the treatment HR's columns, then
    the HR at each biomarker value of an interaction model (prefixed ``at_<value>_``)."""
    rows = []
    for x in sens.refits:
        row = {"model": x.model, "scenario": x.scenario, "treatment_prior": x.treatment_prior,
               "interaction_prior": x.interaction_prior, "reliable": x.reliable,
               "divergences": x.divergences, "rhat_max": x.rhat_max,
               "n_draws": x.treatment.n_draws, **x.treatment.flat()}  # fmt: skip
        for v, h in x.at.items():
            row |= h.flat(f"at_{v}_")
        rows.append(row)
    return pd.DataFrame(rows)


# ----------------------------------------------------------------------------- netCDF
def coding_attrs(pem, data, results: Results, config_hash: str) -> dict:
    """Everything needed to reuse a posterior file on its own (netCDF attributes are flat)."""
    des, b = pem.design, pem.design.basis
    attrs = {
        "trialbayes_schema": results.schema_version,
        "config_hash": config_hash,
        "model": pem.spec.name,
        "data_label": data.label,
        "time_unit": results.time_unit,
        "sign_convention": results.sign_convention,
        "spec_json": json.dumps(pem.spec.model_dump(mode="json")),
        "cut_points": des.cuts.tolist(),
        "covariates": list(des.cov_names),
        "covariate_means": des.cov_mean.tolist(),
        "covariate_sds": des.cov_sd.tolist(),
        "treatment_level": data.treatment_label,
        "control_level": data.control_label,
        "units_json": json.dumps(results.setting("units") or {}),
    }
    if des.time_varying:  # the weights of the `treatment` average over the intervals
        attrs["event_share"] = des.event_share.tolist()
    if b is not None:
        attrs.update(
            {
                "biomarker": pem.spec.biomarker,
                "biomarker_reference": b.reference,
                "biomarker_centre": b.centre,
                "biomarker_scale": b.scale,
                "biomarker_transform": b.transform_name,
                "biomarker_basis": b.kind,
            }
        )
    return attrs


def netcdf_names(columns: list[str], taken: set[str] = frozenset()) -> dict[str, str]:
    """A variable name netCDF / DataTree accept for each column (``cd4/cd8 ratio`` ->
    ``cd4_cd8_ratio``; ``svc[b]`` -> ``svc_b``), unique; the original stays in the variable's
    ``column`` attribute and in the file's ``columns_json``."""
    out, used = {}, set(taken)
    for c in columns:
        base = re.sub(r"[^A-Za-z0-9_.-]+", "_", c.replace("[", "_").replace("]", "")).strip("_")
        base = base if base and not base[0].isdigit() and base[0] != "." else f"v_{base}"
        name, k = base, 2
        while name in used:
            name, k = f"{base}_{k}", k + 1
        out[c] = name
        used.add(name)
    return out


def posterior_file(pem, data, results: Results, config_hash: str):
    """The model's DataTree with the coding as attributes and the observed data as a group."""
    dt = pem.idata.copy()
    dt.attrs.update(coding_attrs(pem, data, results, config_hash))
    f = data.frame
    obs = {
        "time": ("patient", f["time"].to_numpy(float)),
        "event": ("patient", f["event"].to_numpy(int)),
        "treat": ("patient", f["treat"].to_numpy(int)),
    }
    names = netcdf_names([*data.biomarkers, *data.covariates], taken=set(obs))
    for c, safe in names.items():
        obs[safe] = ("patient", f[c].to_numpy(float), {"column": c})
    ds = xr.Dataset(obs, coords={"patient": f["id"].astype(str).to_numpy()})
    ds.attrs["results_json"] = dumps(_model_results(results, pem.spec.name))
    ds.attrs["columns_json"] = json.dumps({v: k for k, v in names.items()}, ensure_ascii=False)
    dt["observed_data"] = xr.DataTree(ds)
    return dt


def _model_results(results: Results, name: str) -> dict:
    d = results.to_dict()
    return {"model": d["models"][name], "settings": d["settings"]}
