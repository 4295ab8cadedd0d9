"""The patient-level route: config → validated data → fitted models → estimands → typed Results
→ the writer. Everything is validated before the first model is built; everything the run reports
(figures' paths and captions and provenance included) is in the Results before anything is
written, so ``tb.run(cfg)`` returns what results.json holds."""

from __future__ import annotations

import time
from contextlib import nullcontext
from datetime import UTC, datetime
from pathlib import Path

from ..config.priors import prior_draws
from ..config.schema import Config
from ..core import progress
from ..core.flags import Flag
from ..core.interrupts import phase
from ..core.seeds import child_seed
from ..core.text import shown_path
from ..data.synthetic import truth_section
from ..data.table import TrialData
from ..estimands import caution
from ..estimands.frequentist import cohort_checks, km_at, km_curves, median_follow_up
from ..inference.sampler import stack_versions
from ..models import precompile
from ..models.pem import PiecewiseExponentialModel
from ..nextphase.covariates import enrichment_flags
from ..nextphase.grid import run_for_models
from ..nextphase.summaries import events_flags, failed_cells_flags
from ..report.artefacts import data_stamp, patient_figures, write_patient_tables
from ..report.plan import FigurePlan
from ..report.writer import RunResult, write_run
from ..results.model import Results
from ..results.sections import (
    KaplanMeierAt,
    ModelTimings,
    Provenance,
    ReconstructionQuality,
    SamplerProvenance,
)
from .analyse import analyse_model, loo_table, psis_loos
from .missing import compare_with_complete_case, missing_section
from .resolve import output_settings
from .sensitivity import run_sensitivity
from .time_varying import attach_ph_comparisons
from .validate import preflight

__all__ = ["RunResult", "run_patient_level"]

#: draws of each prior stored beside its posterior (the prior-vs-posterior figure)
N_PRIOR_DRAWS = 4000


def fit_with_progress(pem: PiecewiseExponentialModel, sampler, seed: int):
    """Compile (its own phase line: 15–60 s for a large model), then sample, each announced."""
    name = pem.spec.name
    pem.sampler.label = name
    with progress.phase(f"compiling model {name}", record=False):  # named "fitting model 'x'"
        pem.sampler.compile()
    text = progress.sampling_text(name, sampler.chains, sampler.draws, sampler.tune)
    with progress.phase(text, record=False):
        return pem.fit(seed=seed)


def compile_in_background(pems: list, priors: dict, data: TrialData):
    """Later models the compile cache does not hold compile in worker processes while the first
    is compiled and sampled here (models.precompile); a phase line says so."""
    pre = precompile.start(pems, priors, data)
    if pre is None:
        return nullcontext()
    progress.say(
        f"compiling model{'s' if len(pre.names) > 1 else ''} {', '.join(pre.names)} in the "
        "background (not in the compile cache yet)"
    )
    return pre


def run_patient_level(
    cfg: Config,
    out_root: str | Path = "outputs",
    config_path: str | None = None,
    write: bool = True,
) -> RunResult:
    """load → validate → fit → estimands → Results → write (one writer for every route)."""
    t_start = time.perf_counter()
    with progress.phase("loading and validating the data"):
        checked = preflight(cfg, out_root if write else None)
    data, settings = checked.data, checked.settings
    models, analyses, seeds, analyse_s, built = {}, {}, {}, {}, {}
    imputations = []  # data.missing: impute — each imputing model beside its complete cases
    for spec in cfg.models:
        with phase(f"fitting model '{spec.name}'"):
            built[spec.name] = PiecewiseExponentialModel(
                spec, cfg.priors, cfg.baseline, cfg.sampler, cfg.diagnostics
            ).build(data)
    with compile_in_background(list(built.values()), cfg.priors, data):
        for spec in cfg.models:
            seeds[spec.name] = seed = child_seed(cfg.sampler.seed, "fit", spec.name)
            pem = built[spec.name]
            with phase(f"fitting model '{spec.name}'"):
                models[spec.name] = fit_with_progress(pem, cfg.sampler, seed)
            t0 = time.perf_counter()
            with progress.phase(f"analysing model '{spec.name}'"):
                analyses[spec.name] = analyse_model(pem, data, cfg.estimands, settings)
            analyse_s[spec.name] = time.perf_counter() - t0
            if pem.design.missing is not None:
                cc_seed = child_seed(cfg.sampler.seed, "complete_case", spec.name)
                with phase(f"fitting model '{spec.name}' on complete cases"):
                    imputations.append(compare_with_complete_case(pem, data, cfg, cc_seed)[0])
    with progress.phase("PSIS-LOO model comparison"):
        loos = psis_loos(models)
        loo_df, loo = loo_table(models, loos)
        attach_ph_comparisons({n: a.result for n, a in analyses.items()}, cfg.models, loos)
    results = _results(cfg, data, settings, analyses, loo, checked.reconstruction)
    results.missing_data = missing_section(data, imputations)
    km = _kaplan_meier(results, data, cfg.estimands.level)
    refit_s: list = []
    if cfg.sensitivity.enabled:
        with progress.phase("refitting under the prior scenarios"):
            results.sensitivity = run_sensitivity(cfg, models, settings, refit_s)
    if cfg.next_phase is not None:
        results.flags += enrichment_flags(cfg.next_phase, data, cfg.models)
        with phase("simulating next trials"):
            results.next_phase = run_for_models(
                cfg.next_phase, models, out_root if write else None, cfg.name,
                time_unit=results.time_unit, units=results.setting("units") or {},
            )  # fmt: skip
        nxt = results.next_phase
        results.flags += events_flags(nxt) + failed_cells_flags(nxt)
    results.provenance = _provenance(cfg, data, models, seeds, analyse_s, config_path)
    run = RunResult(
        results=results,
        out_dir=None,
        reliable=results.reliable,
        models=models,
        tables={"per_model": {n: a.tables for n, a in analyses.items()}, "km": km, "loo": loo_df},
    )
    s = output_settings(cfg)
    priors = {n: prior_group(m, cfg.sampler.seed) for n, m in models.items()}
    plan = FigurePlan()
    patient_figures(plan, s, data, run, {n: a.draws for n, a in analyses.items()}, priors)
    plan.apply(results)
    if write:
        with progress.phase("writing outputs"):
            run.out_dir = write_run(
                results,
                out_root,
                lambda out: write_patient_tables(out, s, data, run, priors),
                plan,
                s,
                {"config": cfg.shown_dump(), **_timings(models, t_start, refit_s)},
                csv_label=csv_label(data),
            )
    return run


def _results(cfg: Config, data: TrialData, settings, analyses, loo, reconstruction) -> Results:
    f = data.frame
    summary = data.describe()
    summary.median_follow_up_reverse_km = median_follow_up(f["time"], f["event"])
    summary.median_observed_time = float(f["time"].median())
    results = Results(
        kind="reconstructed" if data.reconstruction is not None else "patient_level",
        config_name=cfg.name,
        title=cfg.title or cfg.report.title or cfg.name,
        data_label=data.label,
        synthetic=data.synthetic,
        settings=settings,
        data=summary,
        models={n: a.result for n, a in analyses.items()},
        loo=loo,
        data_notes=list(data.notes),
    )
    results.reliable = all(m.reliable for m in results.models.values())
    results.unreliable_models = [n for n, m in results.models.items() if not m.reliable]
    if data.synthetic and data.truth is not None:
        checks = cohort_checks(f, data.truth.published, cfg.estimands.level)
        results.synthetic_truth = truth_section(data.truth, checks)
    if reconstruction is not None:
        _reconstructed(results, reconstruction)
    results.flags += caution.data_flags(data, reconstruction)  # models' flags: ModelResult
    return results


def _reconstructed(results: Results, q: ReconstructionQuality) -> None:
    results.reconstruction = q
    results.data_notes += [f"reconstruction warning: {w}" for w in q.warnings]
    results.flags.append(
        Flag(
            "reconstructed_data",
            "the patient data were rebuilt from a digitised "
            "Kaplan–Meier figure: approximations of the real ones",
            "caution",
        )
    )


def _kaplan_meier(results: Results, data: TrialData, level: float):
    """Kaplan–Meier curves per arm (the tables and figures), and survival at the landmark."""
    f = data.frame
    km = km_curves(f["time"].to_numpy(), f["event"].to_numpy(), f["treat"].to_numpy(), level=level)
    lm = results.setting("landmark")
    results.kaplan_meier = KaplanMeierAt(lm, km_at(km, 0, lm), km_at(km, 1, lm))
    return km


def prior_group(pem: PiecewiseExponentialModel, seed: int) -> dict:
    """Draws of the treatment (and interaction) priors as the model carries them."""
    name = pem.spec.name
    out = {
        "treatment": prior_draws(
            pem.priors["treatment"], N_PRIOR_DRAWS, child_seed(seed, "prior_draws", name, "t")
        )
    }
    if pem.design.basis is not None:
        out["interaction"] = prior_draws(
            pem.priors["interaction"], N_PRIOR_DRAWS, child_seed(seed, "prior_draws", name, "i")
        )
    return out


def csv_label(data: TrialData) -> str | None:
    """The label every table of the run carries in a leading ``data`` column, if any."""
    stamp = data_stamp(data)
    return stamp.removesuffix(" DATA") if stamp else None


def _provenance(
    cfg: Config, data: TrialData, models: dict, seeds: dict, analyse_s: dict, config_path
) -> Provenance:
    return Provenance(
        created_at=datetime.now(UTC).isoformat(timespec="seconds"),
        config_path=shown_path(config_path),
        config_hash=cfg.hash(),
        data_label=data.label,
        data_sha256=data.sha256(),
        seeds=seeds,
        seed_rule="child_seed(sampler.seed, 'fit', model) (trialbayes.core.seeds)",
        sampler=SamplerProvenance(
            backend=cfg.sampler.backend,
            chains=cfg.sampler.chains,
            draws=cfg.sampler.draws,
            tune=cfg.sampler.tune,
            target_accept={n: float(m.sampler.accept) for n, m in models.items()},
        ),
        versions=stack_versions(),
        timings={
            n: ModelTimings(**m.sampler.timing_summary(), analyse_s=round(analyse_s[n], 2))
            for n, m in models.items()
        },
    )


def _timings(models: dict, t_start: float, refits: list | None = None) -> dict:
    """provenance.json only (they differ between otherwise identical runs); ``refits``: each
    prior-sensitivity refit's seconds and how the refits ran."""
    out = {
        "timings_seconds": {
            n: {"compile": m.sampler.compile_seconds, "sample": sum(m.sampler.timings)}
            for n, m in models.items()
        },
        "wall_seconds": round(time.perf_counter() - t_start, 2),
    }
    if refits:
        out["sensitivity_refit_seconds"] = refits
    return out
