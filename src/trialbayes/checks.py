"""Checks before anything is sampled, beyond the schema and the per-column data validation:
what would otherwise fail late (after all sampling) or not at all.

* a biomarker under an interaction must vary (a constant one has no effect to modify);
* the fixed effects of each model (treatment, covariates, biomarker, treatment × biomarker) must
  not be perfectly collinear with each other or with the baseline (rank check);
* the sampler sizes must fit in memory (an estimate of the draws the run keeps);
* the output folder must be writable;
* a configured compile cache folder (``sampler.cache_dir``) must be writable.

Each failure raises ``DataError`` (or ``ConfigError``) naming the key or columns; exit status 2.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from .config import Config, ConfigError, ModelSpec
from .data import DataError, TrialData

#: share of the available memory a run may plan to fill with draws
MEMORY_SHARE = 0.5
#: relative singular value below which two sets of columns count as perfectly collinear
RANK_TOL = 1e-8


def check_biomarker(data: TrialData, spec: ModelSpec) -> None:
    """The biomarker of an interaction must take several distinct values (finite: data.py)."""
    if not spec.biomarker:
        return
    x = data.frame[spec.biomarker].to_numpy(float)
    distinct = np.unique(x).size
    need = spec.spline_basis if spec.interaction == "spline" else 3
    if distinct < need:
        what = "is constant" if distinct == 1 else f"takes only {distinct} distinct values"
        raise DataError(
            f"column '{spec.biomarker}' (biomarker): {what}; model '{spec.name}' "
            f"({spec.interaction} interaction) needs at least {need}"
        )


def fixed_effects(data: TrialData, spec: ModelSpec, cfg: Config) -> tuple[np.ndarray, list[str]]:
    """The model's fixed-effect columns beside an intercept (the baseline hazard), standardised."""
    from .design import build_design

    d = build_design(data, spec, cfg.baseline)
    cols, names = [np.ones(d.n), d.treat], ["(baseline)", "treatment"]
    for j, c in enumerate(d.cov_names):
        cols.append(d.X[:, j])
        names.append(c)
    if d.basis is not None:
        cols += [d.bm_z, d.treat * d.bm_z]
        names += [spec.biomarker, f"treatment × {spec.biomarker}"]
    return np.column_stack(cols), names


def collinear_sets(X: np.ndarray, names: list[str]) -> list[list[str]]:
    """Groups of columns that are exact linear combinations of each other (null-space vectors)."""
    Xs = X / np.maximum(np.linalg.norm(X, axis=0), 1e-300)
    _, sv, vt = np.linalg.svd(Xs, full_matrices=False)
    null = vt[sv < RANK_TOL * sv.max()]
    return [[n for n, w in zip(names, v) if abs(w) > 1e-3] for v in null]


def check_collinearity(data: TrialData, spec: ModelSpec, cfg: Config) -> None:
    X, names = fixed_effects(data, spec, cfg)
    sets = collinear_sets(X, names)
    if sets:
        groups = "; ".join("{" + ", ".join(s) + "}" for s in sets)
        raise DataError(
            f"model '{spec.name}': perfectly collinear terms {groups}; their effects "
            "cannot be told apart — drop one of each group"
        )


def available_memory() -> float:
    """Bytes of memory available now (MemAvailable), or the physical memory."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES"))


def draws_bytes(cfg: Config, data: TrialData, spec: ModelSpec) -> float:
    """Rough size of what a fit keeps: the draws (about three copies: sampler, posterior,
    flattened) of every parameter and per-interval / per-term quantity, and the pointwise
    log-likelihood (capped at ``MAX_LOGLIK_CELLS``)."""
    from .pem import PiecewiseExponentialModel

    s = cfg.sampler
    k = cfg.baseline.n_intervals if not cfg.baseline.cuts else len(cfg.baseline.cuts) + 1
    n_cov = len(data.covariates) if spec.covariates == "all" else len(spec.covariates)
    spline = 4 * spec.spline_basis if spec.interaction == "spline" else 0
    n_bm = 2 + spline if spec.biomarker else 0
    n_centre = 2 * data.frame["centre"].nunique() if spec.centre_frailty else 0
    per_draw = 2 * k + 2 * n_cov + n_bm + n_centre + 16  # + sampler statistics
    cells = s.chains * s.draws
    loglik = min(cells * data.n, PiecewiseExponentialModel.MAX_LOGLIK_CELLS)
    return 8.0 * (3 * cells * per_draw + 2 * loglik)


def check_memory(cfg: Config, data: TrialData) -> None:
    avail = available_memory()
    for spec in cfg.models:
        need = draws_bytes(cfg, data, spec)
        if need > MEMORY_SHARE * avail:
            raise ConfigError(
                f"sampler: {cfg.sampler.chains} chains × {cfg.sampler.draws} draws of model "
                f"'{spec.name}' need about {need / 1e9:.1f} GB, more than half the "
                f"{avail / 1e9:.1f} GB available; lower sampler.draws"
            )


def check_writable(root: str | Path, name: str) -> None:
    """The output folder can be created and written to (probe file removed, created folders too).
    What a killed earlier run of ``name`` left behind is tidied first (``outputs.recover_stale``)."""
    from .outputs import recover_stale, write_problem

    root = Path(root)
    final = root / name
    if root.is_dir():
        recover_stale(root, name)
    for p, what in ((root, "--out"), (final, "the output folder")):
        if p.exists() and not p.is_dir():
            raise ConfigError(f"{what} {p} exists and is not a folder")
    created = []
    p = root
    while not p.exists():
        created.append(p)
        p = p.parent
    why = write_problem(root)
    for c in created:  # the probe leaves nothing behind: folders it created go too
        try:
            c.rmdir()
        except OSError:
            pass
    if why:
        raise ConfigError(f"--out {root}: the output folder cannot be written ({why})")


def check_cache_dir(cfg: Config) -> None:
    """``sampler.cache_dir``, when set, can be created and written (the environment variable and
    the default folder are not checked: an unusable one is warned about and skipped)."""
    from .compile_cache import cache_dir_problem, configured_cache_dir

    path = configured_cache_dir(cfg.sampler.cache_dir)
    if isinstance(path, Path) and cfg.sampler.backend == "nutpie":
        why = cache_dir_problem(path)
        if why:
            raise ConfigError(
                f"sampler.cache_dir: {path} cannot be used as a compile cache ({why})"
            )


def preflight(cfg: Config, data: TrialData, out_root: str | Path | None = None) -> None:
    """Every pre-sampling check of a patient-level run (after ``data.check_against_models``)."""
    for spec in cfg.models:
        check_biomarker(data, spec)
        check_collinearity(data, spec, cfg)
    check_memory(cfg, data)
    check_cache_dir(cfg)
    if out_root is not None:
        check_writable(out_root, cfg.name)
