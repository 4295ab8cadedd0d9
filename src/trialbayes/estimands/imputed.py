"""Posterior draws of the values ``data.missing: impute`` imputed, and their part in the
estimands (a pure function of the draws and the design's imputation structure).

A continuous value's draws are the model's latent draws (``imputed_continuous``). A discrete
value is marginalised in the model, so it has no draws there: for each posterior draw θ its
level is drawn from p(level | θ, data) ∝ π(level | θ) L(level | θ) — the normalised
``imputed_level_logweight`` of the patient's copies — which makes (θ, levels) a draw of the joint
posterior. The estimands then use each draw's completed columns: the standardised survival and
the subgroups average over every patient, the imputed ones included.
"""

from __future__ import annotations

import numpy as np

from ..data.design import Design

#: the seed of the discrete level draws (fixed: the same draws give the same estimands)
LEVEL_SEED = 20250601


def complete_missing(draws: dict, design: Design, seed: int = LEVEL_SEED) -> dict:
    """``draws`` with ``imputed_x`` (draws × cells of ``design.missing.x_cells``) and
    ``imputed_z`` (draws × patients whose biomarker is imputed) added; as is without missing
    values."""
    md = design.missing
    if md is None or "treatment" not in draws:
        return draws
    s, p = draws["treatment"].shape[0], design.X.shape[1]
    rows, cols = md.cont_cells()
    vals = draws.get("imputed_continuous", np.zeros((s, 0)))
    is_x = cols < p
    x_vals = [vals[:, is_x]]
    if len(md.mix_rows):
        logw = draws["imputed_level_logweight"]
        rng = np.random.default_rng(seed)
        copy_vals = md.copy_values()
        n_copies = len(md.copy_row)
        for k, row in enumerate(md.mix_rows):
            copies = md.pad_idx[k][md.pad_idx[k] < n_copies]
            w = logw[:, copies]
            w = np.exp(w - w.max(axis=1, keepdims=True))
            cum = np.cumsum(w / w.sum(axis=1, keepdims=True), axis=1)
            pick = np.minimum((rng.random(s)[:, None] > cum).sum(axis=1), len(copies) - 1)
            x_vals.append(copy_vals[copies[pick]][:, md.missing_discrete_cols(row)])
    return {**draws, "imputed_x": np.concatenate(x_vals, axis=1), "imputed_z": vals[:, ~is_x]}


def add_covariate_cells(eta: np.ndarray, draws: dict, design: Design, pos=None) -> None:
    """Add γ_j x_ij of every imputed cell (the design holds 0 there) to ``eta`` (draws × N), or,
    with ``pos`` (each patient's column of ``eta``, −1 if absent), to the patients it holds."""
    md = design.missing
    if md is None or not design.cov_names:
        return
    rows, cols = md.x_cells(design.X.shape[1])
    vals = draws["imputed_x"]
    if pos is not None:
        keep = pos[rows] >= 0
        rows, cols, vals = pos[rows[keep]], cols[keep], vals[:, keep]
    if len(rows):
        np.add.at(eta.T, rows, (draws["covariate_effects"][:, cols] * vals).T)


def imputed_biomarker(draws: dict, design: Design):
    """(rows, z draws × m, penalised columns draws × m × P) of the patients whose biomarker is
    imputed; None if there are none."""
    md, b = design.missing, design.basis
    if md is None or b is None:
        return None
    p = design.X.shape[1]
    rows = np.concatenate([t.miss_rows for t in md.continuous if t.vcol == p] or [[]])
    if not len(rows):
        return None
    z = draws["imputed_z"]
    if b.n_penalised():
        pen = (b._penalised_raw(z.ravel()) - b.ref_row).reshape(*z.shape, -1)
    else:
        pen = np.zeros((*z.shape, 0))
    return rows.astype("int64"), z, pen
