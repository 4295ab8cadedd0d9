"""The piecewise-exponential log-likelihood as one fused PyTensor Op (``baseline.likelihood``).

Same quantity as :func:`trialbayes.models.graph.pem_loglik_terms` (per patient i leaving interval
j_i after o_i time units in it):

    ll_i = d_i (α_{j_i} + η_i) − exp(η_i) H0_i,   H0_i = C_{j_i} + exp(α_{j_i}) o_i,
    C_j = Σ_{k<j} exp(α_k) w_k,

but computed in one O(N + K) loop instead of PyTensor's graph of gathers, a cumsum and their
gradients (a scatter-add over N into K bins). :class:`PEMLogLik` returns the N terms together
with exp(η_i) and the residual r_i = d_i − exp(η_i) H0_i, so its gradient needs no second pass
over the exponentials: for output weights g (ones under a sum)

    ∂/∂η_i = g_i r_i
    ∂/∂α_j = Σ_{j_i=j} g_i d_i − e^{α_j} Σ_{j_i=j} g_i e^{η_i} o_i
             − e^{α_j} w_j Σ_{j_i>j} g_i e^{η_i}

(:class:`PEMAlphaGrad`, O(N + K)). PyTensor chains ∂/∂η through η = β·trt + Xγ + … as usual.
:class:`PEMStrataLogLik` is the same with one baseline row per stratum s_i (alpha[G, K]; the
time-varying treatment effect uses G = 2, the treated row α_k + β_k): every sum above runs over the
patients of one stratum, ∂/∂α_{s,j} as above restricted to s_i = s (:class:`PEMStrataAlphaGrad`).

The numba kernels compute exp(η) with :func:`~.vexp.vexp_into` (a loop the compiler vectorises,
within 1 ulp of NumPy), take integer index vectors in the type they come in (PyMC stores them as
int32: no cast at every gradient), and the gradient of the plain sum of the terms — what a PyMC
model differentiates — gives the α-gradient Ops one weight instead of an N-vector of ones
(:func:`alpha_grad_of_sum`, a PyTensor "specialize" rewrite).

Each Op has a NumPy ``perform`` (C / Python linkers) and a numba kernel registered for
PyTensor's numba backend (what nutpie compiles). ``version`` (a hash of the kernels' source) is
an Op property, so both PyTensor's numba cache and :mod:`compile_cache` see a kernel change.
"""

from __future__ import annotations

import inspect
from hashlib import sha256

import numpy as np
import pytensor.tensor as pt
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key
from pytensor.tensor.basic import Alloc
from pytensor.tensor.rewriting.basic import register_specialize
from pytensor.tensor.type import integer_dtypes

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


def _one_weight(g):
    """The single weight of ``g`` (N output weights) when ``g`` repeats one value, as a sum's
    gradient does (``Alloc(w, N)``): that value as a length-1 vector, which the gradient kernels
    read for every patient (no N-vector of ones made and read at every gradient); else None."""
    if g.owner is None or not isinstance(g.owner.op, Alloc) or g.type.shape == (1,):
        return None
    w = g.owner.inputs[0]
    return w.reshape((1,)) if w.type.shape in ((), (1,)) else None


def _source_hash(*functions) -> str:
    """16 hex digits of the functions' source, with what every kernel shares (the exp and the
    one-weight rewrite's test)."""
    shared = (_one_weight, vexp_into.py_func)
    text = "".join(inspect.getsource(f) for f in (*functions, *shared))
    return sha256(text.encode()).hexdigest()[:16]


#: identifies the kernels' code in every cache key (PyTensor's numba cache, compile_cache)
KERNEL_VERSION = _source_hash(_forward_kernel, _forward_kernel_f32, _alpha_grad_kernel)
#: the same for the stratified kernels (a change there leaves the unstratified models' keys alone)
STRATA_KERNEL_VERSION = _source_hash(
    _strata_forward_kernel, _strata_forward_kernel_f32, _strata_alpha_grad_kernel
)


def _vector(x, dtype=None, ndim=1):
    x = pt.as_tensor_variable(x)
    if dtype is not None and x.dtype != dtype:
        x = pt.cast(x, dtype)
    if x.ndim != ndim:
        raise TypeError(f"expected a {'vector' if ndim == 1 else 'matrix'}, got {x.type}")
    return x


def _index(x):
    """An index vector in the integer type it comes in (PyMC stores index data as int32: a cast
    to int64 would copy N numbers at every gradient); anything else cast to int64."""
    x = pt.as_tensor_variable(x)
    return _vector(x, None if x.dtype in integer_dtypes else "int64")


class PEMLogLik(Op):
    """(alpha[K], eta[N], interval[N] int, offset[N], event[N], widths[K]) ->
    (ll[N], exp(eta)[N], residual[N]); only ll has a gradient (w.r.t. alpha and eta).
    ``precision='float32'``: the per-patient arithmetic in single precision (inputs, outputs,
    the cumulative baseline's computation and every sum stay double)."""

    __props__ = ("precision", "version")

    def __init__(self, precision: str = "float64", version: str = KERNEL_VERSION):
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be float64 or float32, got {precision!r}")
        self.precision, self.version = precision, version

    def make_node(self, alpha, eta, interval, offset, event, widths):
        f = "float64"
        ins = [
            _vector(alpha, f),
            _vector(eta, f),
            _index(interval),
            _vector(offset, f),
            _vector(event, f),
            _vector(widths, f),
        ]
        n = ins[1].type.shape[0]
        outs = [pt.tensor(dtype=f, shape=(n,)) for _ in range(3)]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage):
        alpha, eta, interval, offset, event, widths = inputs
        if interval.size and (interval.min() < 0 or interval.max() >= alpha.size):
            raise IndexError("interval index out of range")
        lam = np.exp(alpha)
        cum = np.concatenate([[0.0], np.cumsum(lam[:-1] * widths[:-1])])
        if self.precision == "float32":
            alpha, lam, cum, eta, offset, event = (
                np.asarray(x, np.float32) for x in (alpha, lam, cum, eta, offset, event)
            )
        e = np.exp(eta)
        ch = e * (cum[interval] + lam[interval] * offset)
        outs = (event * (alpha[interval] + eta) - ch, e, event - ch)
        for store, value in zip(output_storage, outs):
            store[0] = np.asarray(value, np.float64)

    def infer_shape(self, node, shapes):
        return [shapes[1]] * 3

    def connection_pattern(self, node):
        # rows: inputs; columns: outputs (ll, exp(eta), residual)
        return [
            [True, False, True],
            [True, True, True],
            [False, False, False],
            [True, False, True],
            [True, False, True],
            [True, False, True],
        ]

    def pullback(self, inputs, outputs, output_grads):
        alpha, eta, interval, offset, event, widths = inputs
        g_ll, g_e, g_r = output_grads
        if not (isinstance(g_e.type, DisconnectedType) and isinstance(g_r.type, DisconnectedType)):
            raise NotImplementedError("PEMLogLik: only the log-likelihood output is differentiable")
        _, e, r = outputs
        g_alpha = PEMAlphaGrad(version=self.version)(
            g_ll, e, alpha, interval, offset, event, widths
        )
        return [
            g_alpha,
            g_ll * r,
            disconnected_type(),
            *(grad_not_implemented(self, i, inputs[i]) for i in (3, 4, 5)),
        ]


class PEMAlphaGrad(Op):
    """(g[N], exp(eta)[N], alpha[K], interval[N], offset[N], event[N], widths[K]) ->
    Σ_i g_i ∂ll_i/∂alpha (K). Not differentiable itself (NUTS needs first derivatives only)."""

    __props__ = ("version",)

    def __init__(self, version: str = KERNEL_VERSION):
        self.version = version

    def make_node(self, g, e, alpha, interval, offset, event, widths):
        f = "float64"
        ins = [_vector(g, f), _vector(e, f), _vector(alpha, f), _index(interval)]
        ins += [_vector(offset, f), _vector(event, f), _vector(widths, f)]
        return Apply(self, ins, [pt.tensor(dtype=f, shape=ins[2].type.shape)])

    def perform(self, node, inputs, output_storage):
        g, e, alpha, interval, offset, event, widths = inputs
        k = alpha.size
        lam = np.exp(alpha)
        here_e = np.bincount(interval, g * e, minlength=k)
        here_eo = np.bincount(interval, g * e * offset, minlength=k)
        here_d = np.bincount(interval, g * event, minlength=k)
        later = np.concatenate([np.cumsum(here_e[::-1])[::-1][1:], [0.0]])
        output_storage[0][0] = here_d - lam * here_eo - lam * widths * later

    def infer_shape(self, node, shapes):
        return [shapes[2]]

    def pullback(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, i, x) for i, x in enumerate(inputs)]


class PEMStrataLogLik(Op):
    """(alpha[G, K], eta[N], stratum[N] int, interval[N] int, offset[N], event[N], widths[K]) ->
    (ll[N], exp(eta)[N], residual[N]): :class:`PEMLogLik` with one baseline row per stratum
    (patient i uses row stratum[i]); only ll has a gradient (w.r.t. alpha and eta)."""

    __props__ = ("precision", "version")

    def __init__(self, precision: str = "float64", version: str = STRATA_KERNEL_VERSION):
        if precision not in ("float64", "float32"):
            raise ValueError(f"precision must be float64 or float32, got {precision!r}")
        self.precision, self.version = precision, version

    def make_node(self, alpha, eta, stratum, interval, offset, event, widths):
        f = "float64"
        ins = [
            _vector(alpha, f, ndim=2),
            _vector(eta, f),
            _index(stratum),
            _index(interval),
            _vector(offset, f),
            _vector(event, f),
            _vector(widths, f),
        ]
        n = ins[1].type.shape[0]
        outs = [pt.tensor(dtype=f, shape=(n,)) for _ in range(3)]
        return Apply(self, ins, outs)

    def perform(self, node, inputs, output_storage):
        alpha, eta, stratum, interval, offset, event, widths = inputs
        g, k = alpha.shape
        if interval.size and (interval.min() < 0 or interval.max() >= k):
            raise IndexError("interval or stratum index out of range")
        if stratum.size and (stratum.min() < 0 or stratum.max() >= g):
            raise IndexError("interval or stratum index out of range")
        lam = np.exp(alpha)
        cum = np.concatenate([np.zeros((g, 1)), np.cumsum(lam[:, :-1] * widths[:-1], 1)], 1)
        if self.precision == "float32":
            alpha, lam, cum, eta, offset, event = (
                np.asarray(x, np.float32) for x in (alpha, lam, cum, eta, offset, event)
            )
        e = np.exp(eta)
        ch = e * (cum[stratum, interval] + lam[stratum, interval] * offset)
        outs = (event * (alpha[stratum, interval] + eta) - ch, e, event - ch)
        for store, value in zip(output_storage, outs):
            store[0] = np.asarray(value, np.float64)

    def infer_shape(self, node, shapes):
        return [shapes[1]] * 3

    def connection_pattern(self, node):
        # rows: inputs; columns: outputs (ll, exp(eta), residual)
        return [
            [True, False, True],
            [True, True, True],
            [False, False, False],
            [False, False, False],
            [True, False, True],
            [True, False, True],
            [True, False, True],
        ]

    def pullback(self, inputs, outputs, output_grads):
        alpha, eta, stratum, interval, offset, event, widths = inputs
        g_ll, g_e, g_r = output_grads
        if not (isinstance(g_e.type, DisconnectedType) and isinstance(g_r.type, DisconnectedType)):
            raise NotImplementedError(
                "PEMStrataLogLik: only the log-likelihood output is differentiable"
            )
        _, e, r = outputs
        g_alpha = PEMStrataAlphaGrad(version=self.version)(
            g_ll, e, alpha, stratum, interval, offset, event, widths
        )
        return [
            g_alpha,
            g_ll * r,
            disconnected_type(),
            disconnected_type(),
            *(grad_not_implemented(self, i, inputs[i]) for i in (4, 5, 6)),
        ]


class PEMStrataAlphaGrad(Op):
    """(g[N], exp(eta)[N], alpha[G, K], stratum[N], interval[N], offset[N], event[N], widths[K])
    -> Σ_i g_i ∂ll_i/∂alpha (G × K). Not differentiable itself."""

    __props__ = ("version",)

    def __init__(self, version: str = STRATA_KERNEL_VERSION):
        self.version = version

    def make_node(self, g, e, alpha, stratum, interval, offset, event, widths):
        f = "float64"
        ins = [_vector(g, f), _vector(e, f), _vector(alpha, f, ndim=2)]
        ins += [_index(stratum), _index(interval)]
        ins += [_vector(offset, f), _vector(event, f), _vector(widths, f)]
        return Apply(self, ins, [pt.tensor(dtype=f, shape=ins[2].type.shape)])

    def perform(self, node, inputs, output_storage):
        g, e, alpha, stratum, interval, offset, event, widths = inputs
        ng, k = alpha.shape
        lam = np.exp(alpha)
        cell = stratum * k + interval
        here_e, here_eo, here_d = (
            np.bincount(cell, w, minlength=ng * k).reshape(ng, k)
            for w in (g * e, g * e * offset, g * event)
        )
        later = np.concatenate(
            [np.cumsum(here_e[:, ::-1], 1)[:, ::-1][:, 1:], np.zeros((ng, 1))], 1
        )
        output_storage[0][0] = here_d - lam * here_eo - lam * widths * later

    def infer_shape(self, node, shapes):
        return [shapes[2]]

    def pullback(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, i, x) for i, x in enumerate(inputs)]


_forward_numba = numba_njit(_forward_kernel)
_forward_f32_numba = numba_njit(_forward_kernel_f32)
_alpha_grad_numba = numba_njit(_alpha_grad_kernel)


_strata_forward_numba = numba_njit(_strata_forward_kernel)
_strata_forward_f32_numba = numba_njit(_strata_forward_kernel_f32)
_strata_alpha_grad_numba = numba_njit(_strata_alpha_grad_kernel)


@register_funcify_default_op_cache_key(PEMLogLik)
def _funcify_loglik(op, node=None, **kwargs):
    return _forward_f32_numba if op.precision == "float32" else _forward_numba


@register_funcify_default_op_cache_key(PEMAlphaGrad)
def _funcify_alpha_grad(op, node=None, **kwargs):
    return _alpha_grad_numba


def fused_loglik_terms(alpha, eta, interval, offset, event, widths, precision="float64"):
    """Per-patient log-likelihood terms through the fused Op (PyTensor variables or arrays)."""
    return PEMLogLik(precision)(alpha, eta, interval, offset, event, widths)[0]


@register_funcify_default_op_cache_key(PEMStrataLogLik)
def _funcify_strata_loglik(op, node=None, **kwargs):
    return _strata_forward_f32_numba if op.precision == "float32" else _strata_forward_numba


@register_funcify_default_op_cache_key(PEMStrataAlphaGrad)
def _funcify_strata_alpha_grad(op, node=None, **kwargs):
    return _strata_alpha_grad_numba


def fused_strata_loglik_terms(
    alpha, eta, stratum, interval, offset, event, widths, precision="float64"
):
    """Per-patient terms through the stratified fused Op (alpha: one baseline row per stratum)."""
    return PEMStrataLogLik(precision)(alpha, eta, stratum, interval, offset, event, widths)[0]


@register_specialize
@node_rewriter([PEMAlphaGrad, PEMStrataAlphaGrad])
def alpha_grad_of_sum(fgraph, node):
    """The gradient of a sum of the terms weights every patient alike: the kernels take that one
    weight instead of an N-vector of it (:func:`_one_weight`)."""
    w = _one_weight(node.inputs[0])
    return None if w is None else [node.op(w, *node.inputs[1:])]
