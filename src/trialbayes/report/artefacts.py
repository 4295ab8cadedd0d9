"""Artefacts of a patient-level run: CSV tables, PNG figures and self-describing posterior netCDF
files. results.json, provenance.json and report.md are written by :mod:`trialbayes.report.writer` from
the typed results (report text: :mod:`trialbayes.report.markdown`)."""

from __future__ import annotations

import json

import xarray as xr

from ..core.outputs import OutputDir, dumps
from ..plots.general import forest_plot
from ..plots.journal import quality_plot
from ..plots.style import ARM_COLOURS
from ..results.model import Results
from .nextphase import write_next_phase
from .run_figures import (
    attach_prior,
    forest_caption,
    model_figures,
    prior_group,
    save_figure,
    sensitivity_figure,
)
from .tables import coefficient_table, diagnostics_table, forest_rows, subgroup_table
from .writer import OutputSettings


def arm_labels(data) -> tuple[str, str]:
    """(control, treatment) display labels; numeric codes are shown with their column and role."""
    return data.arm_display(False), data.arm_display(True)


def write_patient_outputs(
    out: OutputDir, s: OutputSettings, data, run, draws_by_model: dict
) -> None:
    r: Results = run.results
    out.write_csv("tables/coefficients.csv", coefficient_table(r))
    sub = subgroup_table(r)
    if len(sub):
        out.write_csv("tables/subgroups.csv", sub)
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
            out.write_csv(f"tables/hr_curve_{name}.csv", curve)
        pem = run.models[name]
        prior = prior_group(pem, s.seed)
        dt = posterior_file(pem, data, r, s.config_hash)
        attach_prior(dt, prior)
        dt.to_netcdf(out.path(f"posterior/{name}.nc"), engine="h5netcdf")
        if s.figures:
            model_figures(out, s, data, run, name, draws_by_model[name], prior, _label(data))
    if s.figures:
        save_figure(
            out,
            r,
            "forest",
            forest_plot(forest_rows(r), label=_label(data), level=s.level),
            forest_caption(s.level),
            s.dpi,
        )
    if data.reconstruction is not None:
        _reconstruction(out, s, data, r)
    _sensitivity(out, s, data, run)
    if run.tables.get("next_phase") is not None:
        figs = write_next_phase(out, run.tables["next_phase"], s.dpi, s.figures, _label(data))
        r.figures.update({f"next_phase: {k}": v for k, v in figs.items()})


def _label(data):
    if data.synthetic:
        return "SYNTHETIC DATA"
    return "RECONSTRUCTED DATA" if data.reconstruction is not None else None


def _reconstruction(out: OutputDir, s: OutputSettings, data, r: Results) -> None:
    out.write_csv("tables/reconstructed_ipd.csv", data.reconstruction["ipd"])
    if s.figures:
        rc = data.reconstruction
        colours = {
            data.control_label: ARM_COLOURS[0],
            data.treatment_label: ARM_COLOURS[1],
        }
        save_figure(
            out,
            r,
            "reconstruction_quality",
            quality_plot(
                rc["ipd"], rc["curve"], rc["percent"], colours=colours, time_unit=r.time_unit
            ),
            "Reconstruction quality: the digitised points (dots) against the Kaplan–Meier curve of the "
            "reconstructed patient data (steps), per arm.",
            s.dpi,
        )


def _sensitivity(out: OutputDir, s: OutputSettings, data, run) -> None:
    sens = run.tables.get("sensitivity")
    if sens is None:
        return
    out.write_csv("tables/sensitivity.csv", sens["table"])
    if len(sens["psense"]):
        out.write_csv("tables/psense.csv", sens["psense"])
    if s.figures:
        sensitivity_figure(out, s, sens, run.results, _label(data))


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
                "biomarker_transform": "log" if b.log else "identity",
                "biomarker_basis": b.kind,
            }
        )
    return attrs


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
    for c in [*data.biomarkers, *data.covariates]:
        obs[c.replace("[", "_").replace("]", "")] = ("patient", f[c].to_numpy(float))
    ds = xr.Dataset(obs, coords={"patient": f["id"].astype(str).to_numpy()})
    ds.attrs["results_json"] = dumps(_model_results(results, pem.spec.name))
    dt["observed_data"] = xr.DataTree(ds)
    return dt


def _model_results(results: Results, name: str) -> dict:
    return {"model": results.to_dict()["models"][name], "settings": results.to_dict()["settings"]}
