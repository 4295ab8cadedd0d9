"""Data checks against a model, beyond the schema and the per-column data validation: what
would otherwise fail late (after all sampling) or not at all.

* a biomarker under an interaction must vary (a constant one has no effect to modify);
* the fixed effects of each model (treatment, covariates, biomarker, treatment × biomarker) must
  not be perfectly collinear with each other or with the baseline (rank check).

Each failure raises ``DataError`` naming the model and columns; exit status 2. The run's whole
pre-sampling sequence (these, memory, output and cache folders) is ``routes.validate.preflight``.
"""

from __future__ import annotations

import difflib
import os
from pathlib import Path

import numpy as np

from ..config.schema import Baseline, ModelSpec
from ..core.errors import DataError
from .design import build_design, check_cuts, check_log_biomarker
from .table import TrialData

#: relative singular value below which two sets of columns count as perfectly collinear
RANK_TOL = 1e-8


def check_biomarker(data: TrialData, spec: ModelSpec) -> None:
    """The biomarker of an interaction must take several distinct values (finite: data.py)."""
    if not spec.biomarker:
        return
    x = data.frame[spec.biomarker].to_numpy(float)
    x = x[~np.isnan(x)]  # the observed values (data.missing: impute)
    distinct = np.unique(x).size
    need = spec.spline_basis if spec.interaction == "spline" else 3
    if distinct < need:
        what = "is constant" if distinct == 1 else f"takes only {distinct} distinct values"
        raise DataError(
            f"column '{spec.biomarker}' (biomarker): {what}; model '{spec.name}' "
            f"({spec.interaction} interaction) needs at least {need}"
        )


def fixed_effects(
    data: TrialData, spec: ModelSpec, baseline: Baseline
) -> tuple[np.ndarray, list[str]]:
    """The model's fixed-effect columns beside an intercept (the baseline hazard), standardised;
    with values to impute, on the patients with every value of the model observed."""
    d = build_design(data, spec, baseline)
    cols, names = [np.ones(d.n), d.treat], ["(baseline)", "treatment"]
    for j, c in enumerate(d.cov_names):
        cols.append(d.X[:, j])
        names.append(c)
    if d.basis is not None:
        cols += [d.bm_z, d.treat * d.bm_z]
        names += [spec.biomarker, f"treatment × {spec.biomarker}"]
    X = np.column_stack(cols)
    if d.missing is not None:
        X = X[np.setdiff1d(np.arange(d.n), d.missing.rows_imputed())]
    return X, names


def collinear_sets(X: np.ndarray, names: list[str]) -> list[list[str]]:
    """Groups of columns that are exact linear combinations of each other (null-space vectors)."""
    Xs = X / np.maximum(np.linalg.norm(X, axis=0), 1e-300)
    _, sv, vt = np.linalg.svd(Xs, full_matrices=False)
    null = vt[sv < RANK_TOL * sv.max()]
    return [[n for n, w in zip(names, v) if abs(w) > 1e-3] for v in null]


def check_collinearity(data: TrialData, spec: ModelSpec, baseline: Baseline) -> None:
    """Raise DataError naming each group of perfectly collinear fixed-effect terms of ``spec``."""
    X, names = fixed_effects(data, spec, baseline)
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


def check_against_models(
    data: TrialData,
    models: list[ModelSpec],
    cuts: list[float] | None,
    estimand_biomarker: str | None = None,
) -> None:
    """Cross-checks between data and config, before any model is built."""
    for m in models:
        names = [] if m.covariates == "all" else m.covariates
        sources = [c for c in data.covariates if "[" not in c] + list(data.factors)
        for c in names:
            level = next((f for f in data.factors if c.startswith(f"{f}[")), None)
            if level is not None:  # one level of a text covariate: the factor is all of them
                raise DataError(
                    f"model '{m.name}': covariate '{c}' is one level of the text covariate "
                    f"'{level}'; name '{level}' (its levels {data.factors[level]}, the first the "
                    "reference)"
                )
            if c not in data.covariates and c not in data.factors:
                close = difflib.get_close_matches(c, sources, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise DataError(
                    f"model '{m.name}': covariate '{c}' is not among the data's covariates "
                    f"{sources}{hint}"
                )
        if m.centre_frailty and not data.has_centre:
            raise DataError(
                f"model '{m.name}': centre_frailty needs a centre column (columns.centre)"
            )
        if m.biomarker:
            if m.biomarker not in data.biomarkers:
                raise DataError(
                    f"model '{m.name}': biomarker '{m.biomarker}' is not among the data's "
                    f"biomarkers {data.biomarkers}"
                )
            if m.log_biomarker:
                check_log_biomarker(data.frame[m.biomarker].to_numpy(float), m, data.rows_text)
    if estimand_biomarker and estimand_biomarker not in data.biomarkers:
        raise DataError(
            f"estimands.biomarker: '{estimand_biomarker}' is not among the data's biomarkers "
            f"{data.biomarkers}"
        )
    if cuts:
        check_cuts(cuts, float(data.frame["time"].max()))
