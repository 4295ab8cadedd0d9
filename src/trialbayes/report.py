"""Artefacts of a patient-level run: CSV tables, PNG figures and self-describing posterior netCDF
files. results.json, provenance.json and report.md are written by :mod:`trialbayes.writer` from
the typed results (report text: :mod:`trialbayes.render`)."""

from __future__ import annotations

import json

import xarray as xr

from . import plots
from .outputs import OutputDir, dumps
from .render import coefficient_table, diagnostics_table, forest_rows, subgroup_table
from .results import Results


def arm_labels(data) -> tuple[str, str]:
    """(control, treatment) display labels; numeric codes are shown with their column and role."""
    return data.arm_display(False), data.arm_display(True)


def write_patient_outputs(out: OutputDir, cfg, data, run, draws_by_model: dict) -> None:
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
        if "hr_curve" in tabs:
            bm = run.models[name].spec.biomarker
            curve = tabs["hr_curve"].assign(biomarker_name=bm, unit=r.unit_of(bm))
            out.write_csv(f"tables/hr_curve_{name}.csv", curve)
        pem = run.models[name]
        posterior_file(pem, data, r, cfg.hash()).to_netcdf(
            out.path(f"posterior/{name}.nc"), engine="h5netcdf"
        )
        if cfg.report.figures:
            _model_figures(out, cfg, data, run, name, draws_by_model[name]["treatment"])
    if cfg.report.figures:
        plots.save(
            plots.forest_plot(forest_rows(r), label=_label(data), level=cfg.estimands.ci_prob),
            out.path("figures/forest.png"),
            cfg.report.dpi,
        )
        r.figures["forest"] = "figures/forest.png"
    if data.reconstruction is not None:
        _reconstruction(out, cfg, data, r)
    _sensitivity(out, cfg, data, run)


def _label(data):
    if data.synthetic:
        return "SYNTHETIC DATA"
    return "RECONSTRUCTED DATA" if data.reconstruction is not None else None


def _model_figures(out: OutputDir, cfg, data, run, name: str, treat_draws) -> None:
    r: Results = run.results
    m, tabs, pem, dpi, label = (
        r.models[name],
        run.tables["per_model"][name],
        run.models[name],
        cfg.report.dpi,
        _label(data),
    )
    plots.save(
        plots.hr_posterior_plot(treat_draws, title=f"{name}: {m.estimand}", label=label),
        out.path(f"figures/hr_posterior_{name}.png"),
        dpi,
    )
    r.figures[f"hr_posterior_{name}"] = f"figures/hr_posterior_{name}.png"
    plots.save(
        plots.survival_plot(
            tabs["survival_curves"],
            run.tables["km"],
            arm_labels=arm_labels(data),
            landmark=r.setting("landmark"),
            title=f"{name}: standardised survival vs Kaplan–Meier",
            label=label,
            time_unit=r.time_unit,
            level=cfg.estimands.ci_prob,
        ),
        out.path(f"figures/survival_{name}.png"),
        dpi,
    )
    r.figures[f"survival_{name}"] = f"figures/survival_{name}.png"
    if "hr_curve" in tabs:
        c, b = tabs["hr_curve"], pem.spec.biomarker
        cuts = r.setting("subgroup_cutoffs") if r.setting("biomarker") == b else []
        fig = plots.hr_curve_plot(
            c,
            biomarker=b,
            cox=c.rename(columns={"cox_hr": "hr"})[["biomarker", "hr"]],
            values=pem.design.biomarker_values,
            cutoffs=cuts or [],
            title=f"{name}: treatment HR by {b}",
            label=label,
            log_x=pem.design.basis.log,
            unit=r.unit_of(b),
            level=cfg.estimands.ci_prob,
            cox_label="Cox, log-linear term only"
            if pem.design.basis.kind == "spline"
            else "Cox estimate",
        )
        plots.save(fig, out.path(f"figures/hr_curve_{name}.png"), dpi)
        r.figures[f"hr_curve_{name}"] = f"figures/hr_curve_{name}.png"


def _reconstruction(out: OutputDir, cfg, data, r: Results) -> None:
    from .reconstruct import quality_plot

    out.write_csv("tables/reconstructed_ipd.csv", data.reconstruction["ipd"])
    if cfg.report.figures:
        rc = data.reconstruction
        plots.save(
            quality_plot(rc["ipd"], rc["curve"], rc["percent"]),
            out.path("figures/reconstruction_quality.png"),
            cfg.report.dpi,
        )
        r.figures["reconstruction_quality"] = "figures/reconstruction_quality.png"


def _sensitivity(out: OutputDir, cfg, data, run) -> None:
    sens = run.tables.get("sensitivity")
    if sens is None:
        return
    out.write_csv("tables/sensitivity.csv", sens["table"])
    if len(sens["psense"]):
        out.write_csv("tables/psense.csv", sens["psense"])
    if cfg.report.figures:
        rows = [
            {
                "label": f"{x['model']}: {x['scenario']}",
                "hr": x["hr_median"],
                "lower": x["hr_lower"],
                "upper": x["hr_upper"],
                "kind": "bayes",
            }
            for x in sens["table"].to_dict(orient="records")
        ]
        plots.save(
            plots.forest_plot(
                rows,
                title="Treatment HR under each prior scenario",
                label=_label(data),
                level=cfg.estimands.ci_prob,
            ),
            out.path("figures/sensitivity.png"),
            cfg.report.dpi,
        )
        run.results.figures["sensitivity"] = "figures/sensitivity.png"


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
