"""The fused likelihood's numba kernels: plain Python over NumPy arrays, compiled by
:mod:`~trialbayes.models.fused` for PyTensor's numba backend (and readable as the definition of
what each Op computes; the Ops' NumPy ``perform`` computes the same with array operations).

* ``_forward_kernel`` (``_f32``: per-patient arithmetic in single precision): the N terms, exp(η)
  and the residual r = d − exp(η) H0;
* ``_alpha_grad_kernel``: Σ_i g_i ∂ll_i/∂α from exp(η) (g: N weights or one for all);
* ``_sum_kernel``: the sum of the terms, the residual and the α-gradient of the sum in one pass
  (what a PyMC model's log-density and gradient need; the rewrite ``fused.loglik_sum`` puts it in
  place of the three above);
* ``_strata_*``: the same with one baseline row per stratum (alpha[G, K]).

Index vectors are checked in a loop of their own before the arithmetic (a raise inside the main
loop stops the compiler vectorising it).
"""

from __future__ import annotations

import numpy as np

from .vexp import vexp_into


def _forward_kernel(alpha, eta, interval, offset, event, widths):
    k, n = alpha.shape[0], eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros(k)
    for j in range(1, k):
        cum[j] = cum[j - 1] + lam[j - 1] * widths[j - 1]
    outside = 0
    for i in range(n):  # checked in a loop of its own: a raise inside the next one stops SIMD
        outside += (interval[i] < 0) | (interval[i] >= k)
    if outside:
        raise IndexError("interval index out of range")
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    vexp_into(eta, e, r)  # r: scratch until written below
    for i in range(n):
        j = interval[i]
        ch = e[i] * (cum[j] + lam[j] * offset[i])
        ll[i] = event[i] * (alpha[j] + eta[i]) - ch
        r[i] = event[i] - ch
    return ll, e, r


def _forward_kernel_f32(alpha, eta, interval, offset, event, widths):
    # as _forward_kernel, the per-patient arithmetic (exp included) in single precision
    k, n = alpha.shape[0], eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros(k)
    for j in range(1, k):
        cum[j] = cum[j - 1] + lam[j - 1] * widths[j - 1]
    a32, lam32, cum32 = alpha.astype(np.float32), lam.astype(np.float32), cum.astype(np.float32)
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        j = interval[i]
        if j < 0 or j >= k:
            raise IndexError("interval index out of range")
        eta_i, d_i = np.float32(eta[i]), np.float32(event[i])
        ei = np.exp(eta_i)
        ch = ei * (cum32[j] + lam32[j] * np.float32(offset[i]))
        ll[i] = d_i * (a32[j] + eta_i) - ch
        e[i] = ei
        r[i] = d_i - ch
    return ll, e, r


def _alpha_grad_kernel(g, e, alpha, interval, offset, event, widths):
    k, n = alpha.shape[0], e.shape[0]
    step = 0 if g.shape[0] == 1 else 1  # one weight per patient, or one for all (a sum's)
    here_e, here_eo, here_d = np.zeros(k), np.zeros(k), np.zeros(k)
    for i in range(n):
        j = interval[i]
        if j < 0 or j >= k:
            raise IndexError("interval index out of range")
        gi = g[i * step]
        ge = gi * e[i]
        here_e[j] += ge
        here_eo[j] += ge * offset[i]
        here_d[j] += gi * event[i]
    out = np.empty(k)
    later = 0.0  # Σ g_i exp(η_i) over the patients who left after interval j
    for j in range(k - 1, -1, -1):
        lam = np.exp(alpha[j])
        out[j] = here_d[j] - lam * here_eo[j] - lam * widths[j] * later
        later += here_e[j]
    return out


def _strata_forward_kernel(alpha, eta, stratum, interval, offset, event, widths):
    g, k = alpha.shape
    n = eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros((g, k))  # per stratum: C[s, j] = Σ_{k<j} exp(α_{s,k}) w_k (double precision)
    for s in range(g):
        for j in range(1, k):
            cum[s, j] = cum[s, j - 1] + lam[s, j - 1] * widths[j - 1]
    outside = 0
    for i in range(n):  # checked in a loop of its own (see _forward_kernel)
        outside += (interval[i] < 0) | (interval[i] >= k) | (stratum[i] < 0) | (stratum[i] >= g)
    if outside:
        raise IndexError("interval or stratum index out of range")
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    vexp_into(eta, e, r)  # r: scratch until written below
    for i in range(n):
        s, j = stratum[i], interval[i]
        ch = e[i] * (cum[s, j] + lam[s, j] * offset[i])
        ll[i] = event[i] * (alpha[s, j] + eta[i]) - ch
        r[i] = event[i] - ch
    return ll, e, r


def _strata_forward_kernel_f32(alpha, eta, stratum, interval, offset, event, widths):
    # as _strata_forward_kernel, the per-patient arithmetic (exp included) in single precision
    g, k = alpha.shape
    n = eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros((g, k))  # per stratum: C[s, j] = Σ_{k<j} exp(α_{s,k}) w_k (double precision)
    for s in range(g):
        for j in range(1, k):
            cum[s, j] = cum[s, j - 1] + lam[s, j - 1] * widths[j - 1]
    a32, lam32, cum32 = alpha.astype(np.float32), lam.astype(np.float32), cum.astype(np.float32)
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):
        s, j = stratum[i], interval[i]
        if j < 0 or j >= k or s < 0 or s >= g:
            raise IndexError("interval or stratum index out of range")
        eta_i, d_i = np.float32(eta[i]), np.float32(event[i])
        ei = np.exp(eta_i)
        ch = ei * (cum32[s, j] + lam32[s, j] * np.float32(offset[i]))
        ll[i] = d_i * (a32[s, j] + eta_i) - ch
        e[i] = ei
        r[i] = d_i - ch
    return ll, e, r


def _strata_alpha_grad_kernel(gr, e, alpha, stratum, interval, offset, event, widths):
    g, k = alpha.shape
    n = e.shape[0]
    step = 0 if gr.shape[0] == 1 else 1  # one weight per patient, or one for all (a sum's)
    here_e, here_eo, here_d = np.zeros((g, k)), np.zeros((g, k)), np.zeros((g, k))
    for i in range(n):
        s, j = stratum[i], interval[i]
        if j < 0 or j >= k or s < 0 or s >= g:
            raise IndexError("interval or stratum index out of range")
        gi = gr[i * step]
        ge = gi * e[i]
        here_e[s, j] += ge
        here_eo[s, j] += ge * offset[i]
        here_d[s, j] += gi * event[i]
    out = np.empty((g, k))
    for s in range(g):
        later = 0.0  # Σ g_i exp(η_i) over the stratum's patients who left after interval j
        for j in range(k - 1, -1, -1):
            lam = np.exp(alpha[s, j])
            out[s, j] = here_d[s, j] - lam * here_eo[s, j] - lam * widths[j] * later
            later += here_e[s, j]
    return out


def _sum_kernel(alpha, eta, interval, offset, event, widths):
    # Σ_i ll_i, r and Σ_i ∂ll_i/∂α in one pass (the terms, exp(η) and a second pass not kept)
    k, n = alpha.shape[0], eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros(k)
    for j in range(1, k):
        cum[j] = cum[j - 1] + lam[j - 1] * widths[j - 1]
    outside = 0
    for i in range(n):
        outside += (interval[i] < 0) | (interval[i] >= k)
    if outside:
        raise IndexError("interval index out of range")
    e, r = np.empty(n), np.empty(n)
    vexp_into(eta, e, r)  # r: scratch until written below
    here_e, here_eo, here_d = np.zeros(k), np.zeros(k), np.zeros(k)
    ll = 0.0
    for i in range(n):
        j, ei, oi, di = interval[i], e[i], offset[i], event[i]
        ch = ei * (cum[j] + lam[j] * oi)
        ll += di * (alpha[j] + eta[i]) - ch
        r[i] = di - ch
        here_e[j] += ei
        here_eo[j] += ei * oi
        here_d[j] += di
    grad = np.empty(k)
    later = 0.0  # Σ exp(η_i) over the patients who left after interval j
    for j in range(k - 1, -1, -1):
        grad[j] = here_d[j] - lam[j] * here_eo[j] - lam[j] * widths[j] * later
        later += here_e[j]
    return np.array(ll, dtype=np.float64), r, grad


def _strata_sum_kernel(alpha, eta, stratum, interval, offset, event, widths):
    # _sum_kernel with one baseline row per stratum
    g, k = alpha.shape
    n = eta.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros((g, k))
    for s in range(g):
        for j in range(1, k):
            cum[s, j] = cum[s, j - 1] + lam[s, j - 1] * widths[j - 1]
    outside = 0
    for i in range(n):
        outside += (interval[i] < 0) | (interval[i] >= k) | (stratum[i] < 0) | (stratum[i] >= g)
    if outside:
        raise IndexError("interval or stratum index out of range")
    e, r = np.empty(n), np.empty(n)
    vexp_into(eta, e, r)  # r: scratch until written below
    here_e, here_eo, here_d = np.zeros((g, k)), np.zeros((g, k)), np.zeros((g, k))
    ll = 0.0
    for i in range(n):
        s, j, ei, oi, di = stratum[i], interval[i], e[i], offset[i], event[i]
        ch = ei * (cum[s, j] + lam[s, j] * oi)
        ll += di * (alpha[s, j] + eta[i]) - ch
        r[i] = di - ch
        here_e[s, j] += ei
        here_eo[s, j] += ei * oi
        here_d[s, j] += di
    grad = np.empty((g, k))
    for s in range(g):
        later = 0.0
        for j in range(k - 1, -1, -1):
            grad[s, j] = here_d[s, j] - lam[s, j] * here_eo[s, j] - lam[s, j] * widths[j] * later
            later += here_e[s, j]
    return np.array(ll, dtype=np.float64), r, grad
