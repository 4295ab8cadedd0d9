"""Artefacts of a patient-level run: CSV tables, PNG figures and self-describing posterior netCDF
files. results.json, provenance.json and report.md are written by :mod:`trialbayes.writer` from
the typed results (report text: :mod:`trialbayes.render`)."""

from __future__ import annotations

import json

import xarray as xr

from . import figures, plots
from . import report_figures as rf
from .outputs import OutputDir, dumps
from .tables import coefficient_table, diagnostics_table, forest_rows, subgroup_table
from .results import Results


def arm_labels(data) -> tuple[str, str]:
    """(control, treatment) display labels; numeric codes are shown with their column and role."""
    return data.arm_display(False), data.arm_display(True)


def write_patient_outputs(out: OutputDir, cfg, data, run, draws_by_model: dict) -> None:
    r: Results = run.results
    f = data.frame
    r.data["median_follow_up_reverse_km"] = figures.median_follow_up(f["time"], f["event"])
    r.data["missing_policy"] = getattr(cfg.data, "missing", None)
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
        if "hr_curve" in tabs:
            bm = run.models[name].spec.biomarker
            curve = tabs["hr_curve"].assign(biomarker_name=bm, unit=r.unit_of(bm))
            out.write_csv(f"tables/hr_curve_{name}.csv", curve)
        pem = run.models[name]
        prior = rf.prior_group(pem, cfg.sampler.seed)
        dt = posterior_file(pem, data, r, cfg.hash())
        rf.attach_prior(dt, prior)
        dt.to_netcdf(out.path(f"posterior/{name}.nc"), engine="h5netcdf")
        if cfg.report.figures:
            rf.model_figures(out, cfg, data, run, name, draws_by_model[name], prior, _label(data))
    if cfg.report.figures:
        rf.save(
            out,
            r,
            "forest",
            plots.forest_plot(forest_rows(r), label=_label(data), level=cfg.estimands.ci_prob),
            rf.forest_caption(cfg.estimands.ci_prob),
            cfg.report.dpi,
        )
    if data.reconstruction is not None:
        _reconstruction(out, cfg, data, r)
    _sensitivity(out, cfg, data, run)
    if run.tables.get("next_phase") is not None:
        from .nextphase_report import write_next_phase

        figs = write_next_phase(
            out, run.tables["next_phase"], cfg.report.dpi, cfg.report.figures, _label(data)
        )
        r.figures.update({f"next_phase: {k}": v for k, v in figs.items()})


def _label(data):
    if data.synthetic:
        return "SYNTHETIC DATA"
    return "RECONSTRUCTED DATA" if data.reconstruction is not None else None


def _reconstruction(out: OutputDir, cfg, data, r: Results) -> None:
    from .reconstruct import quality_plot

    out.write_csv("tables/reconstructed_ipd.csv", data.reconstruction["ipd"])
    if cfg.report.figures:
        rc = data.reconstruction
        colours = {
            data.control_label: plots.ARM_COLOURS[0],
            data.treatment_label: plots.ARM_COLOURS[1],
        }
        rf.save(
            out,
            r,
            "reconstruction_quality",
            quality_plot(
                rc["ipd"], rc["curve"], rc["percent"], colours=colours, time_unit=r.time_unit
            ),
            "Reconstruction quality: the digitised points (dots) against the Kaplan–Meier curve of the "
            "reconstructed patient data (steps), per arm.",
            cfg.report.dpi,
        )


def _sensitivity(out: OutputDir, cfg, data, run) -> None:
    sens = run.tables.get("sensitivity")
    if sens is None:
        return
    out.write_csv("tables/sensitivity.csv", sens["table"])
    if len(sens["psense"]):
        out.write_csv("tables/psense.csv", sens["psense"])
    if cfg.report.figures:
        rf.sensitivity_figure(out, cfg, sens, run.results, _label(data))


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


def netcdf_names(columns: list[str], taken: set[str] = frozenset()) -> dict[str, str]:
    """A variable name netCDF / DataTree accept for each column (``cd4/cd8 ratio`` ->
    ``cd4_cd8_ratio``; ``svc[b]`` -> ``svc_b``), unique; the original stays in the variable's
    ``column`` attribute and in the file's ``columns_json``."""
    import re

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
    return {"model": results.to_dict()["models"][name], "settings": results.to_dict()["settings"]}
