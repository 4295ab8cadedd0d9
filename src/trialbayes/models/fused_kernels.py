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

What every kernel shares is written once: :func:`baseline` (exp(α) and the cumulative baseline at
each interval's start), :func:`outside` (the vectorised kernels check index vectors in a loop of
their own before the arithmetic: a raise inside the main loop stops the compiler vectorising it;
the scalar and scatter loops check inline) and
:func:`alpha_from_sums` (the α-gradient from per-interval sums). Each takes one baseline row per
stratum (G × K); the unstratified kernels give them one row (:func:`one_row`).
"""

from __future__ import annotations

import numba
import numpy as np

from .vexp import vexp_into


@numba.njit(nogil=True)
def baseline(alpha, widths):
    """(exp(α), C) per stratum row of ``alpha`` (G × K): C[s, j] = Σ_{k<j} exp(α_{s,k}) w_k, the
    cumulative baseline hazard at interval j's start (double precision)."""
    g, k = alpha.shape
    lam = np.exp(alpha)
    cum = np.zeros((g, k))
    for s in range(g):
        for j in range(1, k):
            cum[s, j] = cum[s, j - 1] + lam[s, j - 1] * widths[j - 1]
    return lam, cum


@numba.njit(nogil=True)
def outside(index, size):
    """How many entries of ``index`` fall outside [0, size)."""
    count = 0
    for i in range(index.shape[0]):
        count += (index[i] < 0) | (index[i] >= size)
    return count


@numba.njit(nogil=True)
def alpha_from_sums(here_d, here_eo, here_e, lam, widths):
    """∂/∂α_{s,j} = D_sj − λ_sj·EO_sj − λ_sj·w_j·Σ_{j'>j} E_sj' (G × K) from the per-interval
    sums of the (weighted) events D, exp(η)·offset EO and exp(η) E of each stratum."""
    g, k = lam.shape
    out = np.empty((g, k))
    for s in range(g):
        later = 0.0  # Σ exp(η_i) over the stratum's patients who left after interval j
        for j in range(k - 1, -1, -1):
            out[s, j] = here_d[s, j] - lam[s, j] * here_eo[s, j] - lam[s, j] * widths[j] * later
            later += here_e[s, j]
    return out


@numba.njit(nogil=True)
def one_row(alpha):
    """alpha[K] as a 1 × K row for the helpers above (a copy of K numbers: an array PyTensor
    passes need not be contiguous, so no reshaped view)."""
    row = np.empty((1, alpha.shape[0]))
    row[0] = alpha
    return row


#: the helpers the kernels call (their source is in the kernels' version hash)
SHARED = (baseline, outside, alpha_from_sums, one_row)


def _forward_kernel(alpha, eta, interval, offset, event, widths):
    k, n = alpha.shape[0], eta.shape[0]
    lam2, cum2 = baseline(one_row(alpha), widths)
    lam, cum = lam2[0], cum2[0]
    if outside(interval, k):
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
    lam2, cum2 = baseline(one_row(alpha), widths)
    a32, lam32 = alpha.astype(np.float32), lam2[0].astype(np.float32)
    cum32 = cum2[0].astype(np.float32)
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):  # a scalar loop (np.exp on float32): checked inline, no second pass
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
    sums = np.zeros((3, 1, k))  # events, exp(η)·offset, exp(η) per interval
    here_d, here_eo, here_e = sums[0, 0], sums[1, 0], sums[2, 0]
    for i in range(n):  # a scatter loop (never vectorised): checked inline, no second pass
        j = interval[i]
        if j < 0 or j >= k:
            raise IndexError("interval index out of range")
        gi = g[i * step]
        ge = gi * e[i]
        here_e[j] += ge
        here_eo[j] += ge * offset[i]
        here_d[j] += gi * event[i]
    lam, _ = baseline(one_row(alpha), widths)
    return alpha_from_sums(sums[0], sums[1], sums[2], lam, widths)[0]


def _sum_kernel(alpha, eta, interval, offset, event, widths):
    # Σ_i ll_i, r and Σ_i ∂ll_i/∂α in one pass (the terms, exp(η) and a second pass not kept)
    k, n = alpha.shape[0], eta.shape[0]
    lam2, cum2 = baseline(one_row(alpha), widths)
    lam, cum = lam2[0], cum2[0]
    if outside(interval, k):
        raise IndexError("interval index out of range")
    e, r = np.empty(n), np.empty(n)
    vexp_into(eta, e, r)  # r: scratch until written below
    sums = np.zeros((3, 1, k))  # events, exp(η)·offset, exp(η) per interval
    here_d, here_eo, here_e = sums[0, 0], sums[1, 0], sums[2, 0]
    ll = 0.0
    for i in range(n):
        j, ei, oi, di = interval[i], e[i], offset[i], event[i]
        ch = ei * (cum[j] + lam[j] * oi)
        ll += di * (alpha[j] + eta[i]) - ch
        r[i] = di - ch
        here_e[j] += ei
        here_eo[j] += ei * oi
        here_d[j] += di
    grad = alpha_from_sums(sums[0], sums[1], sums[2], lam2, widths)[0]
    return np.array(ll, dtype=np.float64), r, grad


def _strata_forward_kernel(alpha, eta, stratum, interval, offset, event, widths):
    g, k = alpha.shape
    n = eta.shape[0]
    lam, cum = baseline(alpha, widths)
    if outside(interval, k) + outside(stratum, g):
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
    lam, cum = baseline(alpha, widths)
    a32, lam32, cum32 = alpha.astype(np.float32), lam.astype(np.float32), cum.astype(np.float32)
    ll, e, r = np.empty(n), np.empty(n), np.empty(n)
    for i in range(n):  # a scalar loop: checked inline (see _forward_kernel_f32)
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
    for i in range(n):  # a scatter loop: checked inline (see _alpha_grad_kernel)
        s, j = stratum[i], interval[i]
        if j < 0 or j >= k or s < 0 or s >= g:
            raise IndexError("interval or stratum index out of range")
        gi = gr[i * step]
        ge = gi * e[i]
        here_e[s, j] += ge
        here_eo[s, j] += ge * offset[i]
        here_d[s, j] += gi * event[i]
    lam, _ = baseline(alpha, widths)
    return alpha_from_sums(here_d, here_eo, here_e, lam, widths)


def _strata_sum_kernel(alpha, eta, stratum, interval, offset, event, widths):
    # _sum_kernel with one baseline row per stratum
    g, k = alpha.shape
    n = eta.shape[0]
    lam, cum = baseline(alpha, widths)
    if outside(interval, k) + outside(stratum, g):
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
    return np.array(ll, dtype=np.float64), r, alpha_from_sums(here_d, here_eo, here_e, lam, widths)
