"""The one validate-before-fitting sequence of a patient-level config, used by ``run``, ``check``
and ``calibrate``: what would otherwise fail late (after all sampling) or not at all.

* the data, and its cross-checks with the models and the next-phase section;
* per model: a varying biomarker, no perfectly collinear fixed effects (``checks``);
* the sampler sizes must fit in memory (an estimate of the draws the run keeps);
* a configured compile cache folder (``sampler.cache_dir``) must be writable;
* the output folder must be writable.

Each failure raises ``DataError`` or ``ConfigError`` naming the key or columns; exit status 2.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..config.schema import Config, ModelSpec
from ..core.errors import ConfigError
from ..core.outputs import recover_stale, write_problem
from ..data.checks import (
    available_memory,
    check_against_models,
    check_biomarker,
    check_collinearity,
)
from ..data.design import build_design
from ..data.settings import resolve
from ..data.sources import load_data
from ..data.table import TrialData
from ..estimands.reconstruction import reconstruction_quality
from ..inference.compile_cache import cache_dir_problem, configured_cache_dir
from ..models.pem import PiecewiseExponentialModel
from ..nextphase.grid import check_data
from ..results.model import Setting
from ..results.sections import ReconstructionQuality
from .missing import check_imputation

#: share of the available memory a run may plan to fill with draws
MEMORY_SHARE = 0.5


def draws_bytes(cfg: Config, data: TrialData, spec: ModelSpec) -> float:
    """Rough size of what a fit keeps: the draws (about three copies: sampler, posterior,
    flattened) of every parameter and per-interval / per-term quantity, and the pointwise
    log-likelihood (capped at ``MAX_LOGLIK_CELLS``)."""
    s = cfg.sampler
    k = cfg.baseline.n_intervals if not cfg.baseline.cuts else len(cfg.baseline.cuts) + 1
    n_cov = len(data.model_columns(spec.covariates))
    spline = 4 * spec.spline_basis if spec.interaction == "spline" else 0
    n_bm = 2 + spline if spec.biomarker else 0
    n_centre = 2 * data.frame["centre"].nunique() if spec.centre_frailty else 0
    # imputed values (data.missing: impute): latent, completed and level weights (at most)
    n_imp = 4 * data.missing.n_values_missing if data.missing is not None else 0
    n_tv = 2 * k if spec.time_varying else 0  # the walk's steps and the interval log-HRs
    per_draw = 2 * k + 2 * n_cov + n_bm + n_centre + n_imp + n_tv + 16  # + sampler statistics
    cells = s.chains * s.draws
    loglik = min(cells * data.n, PiecewiseExponentialModel.MAX_LOGLIK_CELLS)
    return 8.0 * (3 * cells * per_draw + 2 * loglik)


def check_memory(cfg: Config, data: TrialData) -> None:
    """Raise ConfigError when a model's draws would need more than half the available memory."""
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
    What a killed earlier run of ``name`` left behind is tidied first
    (``outputs.recover_stale``)."""
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
    path = configured_cache_dir(cfg.sampler.cache_dir)
    if isinstance(path, Path) and cfg.sampler.backend == "nutpie":
        why = cache_dir_problem(path)
        if why:
            raise ConfigError(
                f"sampler.cache_dir: {path} cannot be used as a compile cache ({why})"
            )


@dataclass
class Checked:
    """What passed every check: the data, the resolved settings and, for reconstructed data,
    the reconstruction's agreement with its figure."""

    data: TrialData
    settings: dict[str, Setting]
    reconstruction: ReconstructionQuality | None = None


def preflight(cfg: Config, out_root: str | Path | None = None) -> Checked:
    """Every check before anything is fitted, in one order for ``run``, ``check`` and
    ``calibrate``: the data and its cross-checks with the models (and the next-phase section),
    biomarkers and collinearity per model, memory, the compile cache folder, the output folder
    (``out_root``; None: not written)."""
    data = load_data(cfg.data)
    check_against_models(data, cfg.models, cfg.baseline.cuts, cfg.estimands.biomarker)
    if cfg.next_phase is not None:
        check_data(cfg.next_phase, data, cfg.models)
    for spec in cfg.models:
        check_biomarker(data, spec)
        check_collinearity(data, spec, cfg.baseline)
        if data.missing is not None and data.missing.policy == "impute":
            check_imputation(build_design(data, spec, cfg.baseline), spec.name)
    check_memory(cfg, data)
    check_cache_dir(cfg)
    if out_root is not None:
        check_writable(out_root, cfg.name)
    settings = resolve(cfg.data, cfg.models, cfg.estimands, data)
    rq = reconstruction_quality(data.reconstruction) if data.reconstruction is not None else None
    return Checked(data, settings, rq)
