"""Missing covariate and biomarker values inside the PyMC model (``data.missing: impute``).

The structure (which columns, in which order, with which predictors) is the design's
:class:`~trialbayes.data.missing.MissingDesign`; the maths and priors are in
``models/missing_data.md``. On the design's scale (V: standardised covariates, then the
biomarker's standardised (log-)value z):

* continuous target t (fewest missing first):
  v_it = a_t + wᵢᵀ b_t + σ_t ε_it,  wᵢ = (arm, fully observed columns, earlier targets);
  a_t ~ N(0, 1), b_t ~ N(0, 1), σ_t ~ HalfNormal(1); observed values are data, missing ones
  latent (non-centred: ε ~ N(0, 1)). The survival likelihood sees the completed columns.
* discrete group g (binary, or a factor's dummy columns; after every continuous target):
  P(level l | wᵢ) = softmax_l(c_gl + wᵢᵀ d_gl), level 0 the reference (c, d = 0);
  c ~ N(0, 2.5), d ~ N(0, 1). A patient with a missing discrete value contributes
  log Σ_combos π(combo) L_surv(combo) (every level combination of their missing groups):
  the survival node holds the patient at the placeholder, so a potential adds the difference.

Draws of the continuous latents are ``imputed_continuous`` (cells in ``cont_cells()`` order); the
unnormalised log posterior weight of each copy (combination) is ``imputed_level_logweight``.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..data.design import BiomarkerBasis, Design
from ..data.missing import MissingDesign
from .fused import fused_loglik_terms

#: prior scales of the imputation models (design scale; stated in models/missing_data.md)
CONT_INTERCEPT_SD, CONT_COEF_SD, CONT_SIGMA_SD = 1.0, 1.0, 1.0
DISC_INTERCEPT_SD, DISC_COEF_SD = 2.5, 1.0
#: the log-weight of a padding cell in the per-patient log-sum-exp (exp of it is 0)
_PAD = -1e30


def cardinal_cubic(u):
    """The uniform cubic B-spline on [0, 4] (PyTensor), C² piecewise cubic, 0 outside."""
    p1 = u**3 / 6
    p2 = (-3 * u**3 + 12 * u**2 - 12 * u + 4) / 6
    p3 = (3 * u**3 - 24 * u**2 + 60 * u - 44) / 6
    p4 = (4 - u) ** 3 / 6
    return pt.switch(
        u < 0,
        0.0,
        pt.switch(u < 1, p1, pt.switch(u < 2, p2, pt.switch(u < 3, p3, pt.switch(u < 4, p4, 0.0)))),
    )


def spline_penalised(basis: BiomarkerBasis, z):
    """The biomarker's penalised spline columns at (latent) z, as ``basis.evaluate`` computes
    them from data: B-splines on the uniform knots at z clipped to the data range, times the
    mixed-model transform, minus the reference row."""
    zc = pt.clip(z, basis.lo, basis.hi)
    step = basis.knots[1] - basis.knots[0]
    nb = basis.transform.shape[0]
    u = (zc[:, None] - basis.knots[:nb][None, :]) / step
    return pt.dot(cardinal_cubic(u), basis.transform) - basis.ref_row[None, :]


def _data(name, value, dtype=None):
    v = np.asarray(value)
    return pm.Data(name, v.astype(dtype) if dtype else v)


def _stack(cols: list) -> pt.TensorVariable:
    return pt.stack(cols, axis=1)


def fill_missing(design: Design, dd: dict, treat) -> dict:
    """Inside a model context: the pm.Data of X / bm_z / bm_pen, the continuous targets' models,
    and the completed columns. Returns {"X", "bm_z", "bm_pen" (if any), "cols"}: tensors, "cols"
    the completed V columns (vectors; kept as columns so that filling one is a 1-d scatter)."""
    md: MissingDesign = design.missing
    p = design.X.shape[1]
    out = {}
    cols = []
    if p:
        X = pm.Data("X", dd["X"])
        cols = [X[:, j] for j in range(p)]
    if design.basis is not None:
        cols.append(pm.Data("bm_z", dd["bm_z"]))
    latents = []
    for i, t in enumerate(md.continuous):
        miss = _data(f"impute_c{i}_miss", t.miss_rows, "int64")
        obs = _data(f"impute_c{i}_obs", t.obs_rows, "int64")
        W = _stack([treat] + [cols[j] for j in t.predictors])
        a = pm.Normal(f"impute_c{i}_intercept", 0.0, CONT_INTERCEPT_SD)
        b = pm.Normal(f"impute_c{i}_coef", 0.0, CONT_COEF_SD, shape=1 + len(t.predictors))
        s = pm.HalfNormal(f"impute_c{i}_sigma", CONT_SIGMA_SD)
        mu = a + pt.dot(W, b)
        pm.Normal(
            f"impute_c{i}_observed",
            mu[obs],
            s,
            observed=_data(f"impute_c{i}_values", t.obs_values, "float64"),
        )
        raw = pm.Normal(f"impute_c{i}_raw", 0.0, 1.0, shape=len(t.miss_rows))
        value = mu[miss] + s * raw
        cols[t.vcol] = pt.set_subtensor(cols[t.vcol][miss], value)
        latents.append(value)
    if latents:
        pm.Deterministic("imputed_continuous", pt.concatenate(latents))
    out["cols"] = cols
    if p:
        out["X"] = _stack(cols[:p])
    if design.basis is not None:
        z = cols[p]
        out["bm_z"] = z
        if design.basis.n_penalised():
            pen = pm.Data("bm_pen", dd["bm_pen"])
            bm_rows = [t.miss_rows for t in md.continuous if t.vcol == p]
            if bm_rows:
                rows = _data("impute_bm_rows", bm_rows[0], "int64")
                pen = pt.set_subtensor(pen[rows], spline_penalised(design.basis, z[rows]))
            out["bm_pen"] = pen
    return out


def _onehot(levels: np.ndarray, n_levels: int) -> np.ndarray:
    return (levels[:, None] == np.arange(n_levels)[None, :]).astype(float)


def dense_copies(md: MissingDesign) -> tuple[np.ndarray, np.ndarray]:
    """The copies laid out as (patients with a missing discrete value) × (most combinations):
    the copy index of each cell (a short row repeats its first copy) and the cell's penalty
    (0, or a large negative log-weight for a repeat)."""
    n = len(md.copy_row)
    idx = np.where(md.pad_idx < n, md.pad_idx, md.pad_idx[:, :1])
    return idx, np.where(md.pad_idx < n, 0.0, _PAD)


def discrete_terms(design: Design, filled: dict, treat, alpha, eta, gamma, surv: dict) -> None:
    """The discrete groups' models and the survival likelihood marginalised over their missing
    levels (see the module doc). ``surv``: interval, offset, event, widths (pm.Data)."""
    md: MissingDesign = design.missing
    if not md.discrete:
        return
    cols, p = filled["cols"], design.X.shape[1]
    plain = _data("impute_plain_rows", md.plain_rows, "int64")
    has_mix = len(md.mix_rows) > 0
    if has_mix:
        idx, penalty = dense_copies(md)
        crow_np = md.copy_row[idx.ravel()]
        crow = _data("impute_copy_row", crow_np, "int64")
        cvals = md.copy_values()[idx.ravel()]  # copies × V: the copy's discrete values
        disc = {c for g in md.discrete for c in g.vcols}
        # a copy's columns: its discrete values, else the patient's completed column
        ccols = {
            j: (_data(f"impute_copy_v{j}", cvals[:, j], "float64") if j in disc else None)
            for j in range(len(cols))
        }

        def copy_col(j):
            return ccols[j] if ccols[j] is not None else cols[j][crow]

    log_pi = 0.0
    for k, grp in enumerate(md.discrete):
        nl, npred = len(grp.levels), 1 + len(grp.predictors)
        c = pm.Normal(f"impute_d{k}_intercept", 0.0, DISC_INTERCEPT_SD, shape=nl - 1)
        d = pm.Normal(f"impute_d{k}_coef", 0.0, DISC_COEF_SD, shape=(npred, nl - 1))

        def logprob(w, c=c, d=d):
            lg = pt.concatenate([pt.zeros((w.shape[0], 1)), c[None, :] + pt.dot(w, d)], axis=1)
            return lg - pt.logsumexp(lg, axis=1, keepdims=True)

        W = _stack([treat[plain]] + [cols[j][plain] for j in grp.predictors])
        hot = _data(f"impute_d{k}_plain_onehot", _onehot(grp.level[md.plain_rows], nl), "float64")
        pm.Potential(f"impute_d{k}_observed", (logprob(W) * hot).sum())
        if has_mix:
            Wc = _stack([treat[crow]] + [copy_col(j) for j in grp.predictors])
            chot = _onehot(md.copy_level[idx.ravel(), k], nl)
            log_pi = log_pi + (logprob(Wc) * _data(f"impute_d{k}_copy_onehot", chot)).sum(axis=1)
    if not has_mix:
        return
    mrow = _data("impute_mix_rows", md.mix_rows, "int64")
    # η of a copy: the patient's η (0 at their missing discrete cells) + the copy's values · γ
    delta = np.where(np.isnan(cvals[:, :p]), 0.0, cvals[:, :p] - design.X[crow_np])
    eta_c = eta[crow] + pt.dot(_data("impute_copy_delta", delta, "float64"), gamma)

    def ll(e, rows):
        return fused_loglik_terms(
            alpha, e, surv["interval"][rows], surv["offset"][rows], surv["event"][rows],
            surv["widths"],
        )  # fmt: skip

    logw = (log_pi + ll(eta_c, crow)).reshape(idx.shape)
    logw = logw + _data("impute_copy_penalty", penalty, "float64")
    first = np.flatnonzero(md.pad_idx.ravel() < len(md.copy_row))  # each copy once, in order
    pm.Deterministic(
        "imputed_level_logweight", logw.ravel()[_data("impute_copy_cells", first, "int64")]
    )
    mixed = pt.logsumexp(logw, axis=1).sum()
    pm.Potential("impute_marginal_levels", mixed - ll(eta[mrow], mrow).sum())
