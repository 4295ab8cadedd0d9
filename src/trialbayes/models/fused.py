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

The numba kernels (:mod:`~.fused_kernels`) compute exp(η) with :func:`~.vexp.vexp_into` (a loop
the compiler vectorises, within 1 ulp of NumPy) and take integer index vectors in the type they
come in (PyMC stores them as int32: no cast at every gradient). Two PyTensor "specialize" rewrites
shape what a PyMC model compiles — the gradient of the plain sum of the terms:

* :func:`loglik_sum`: when the terms are only summed and exp(η) only feeds that sum's α-gradient,
  the forward kernel, the sum and the α-gradient kernel become one pass (:class:`PEMLogLikSum`,
  :class:`PEMStrataLogLikSum`: the sum, the residual and the α-gradient; no N terms or
  exponentials written and read again);
* :func:`alpha_grad_of_sum`: otherwise (the terms used elsewhere too), the α-gradient kernels
  take the sum's one weight instead of an N-vector of it.

Each Op has a NumPy ``perform`` (C / Python linkers) and a numba kernel registered for
PyTensor's numba backend (what nutpie compiles). ``version`` (a hash of the kernels' and the
rewrites' source) is an Op property, so both PyTensor's numba cache and :mod:`compile_cache` see
a kernel change.
"""

from __future__ import annotations

import inspect
from hashlib import sha256

import numpy as np
import pytensor.tensor as pt
from pytensor import scalar as ps
from pytensor.gradient import DisconnectedType, disconnected_type, grad_not_implemented
from pytensor.graph.basic import Apply
from pytensor.graph.op import Op
from pytensor.graph.rewriting.basic import node_rewriter
from pytensor.link.numba.dispatch.basic import numba_njit, register_funcify_default_op_cache_key
from pytensor.tensor.basic import Alloc
from pytensor.tensor.elemwise import CAReduce
from pytensor.tensor.rewriting.basic import register_specialize
from pytensor.tensor.type import integer_dtypes

from .fused_kernels import (
    SHARED,
    _alpha_grad_kernel,
    _forward_kernel,
    _forward_kernel_f32,
    _strata_alpha_grad_kernel,
    _strata_forward_kernel,
    _strata_forward_kernel_f32,
    _strata_sum_kernel,
    _sum_kernel,
)
from .vexp import vexp_into


def _one_weight(g):
    """The single weight of ``g`` (N output weights) when ``g`` repeats one value, as a sum's
    gradient does (``Alloc(w, N)``): that value as a length-1 vector, which the gradient kernels
    read for every patient (no N-vector of ones made and read at every gradient); else None."""
    if g.owner is None or not isinstance(g.owner.op, Alloc) or g.type.shape == (1,):
        return None
    w = g.owner.inputs[0]
    return w.reshape((1,)) if w.type.shape in ((), (1,)) else None


def _weight(g):
    """``g`` as one weight (a length-1 vector) when it is one, else None."""
    return g if g.type.shape == (1,) else _one_weight(g)


def _full_sum(fgraph, var):
    """The output of the one node that sums ``var`` over every axis in double precision, when
    that is ``var``'s only use; else None."""
    uses = fgraph.clients[var]
    if len(uses) != 1:
        return None
    node = uses[0][0]
    op = node.op
    if not (isinstance(op, CAReduce) and isinstance(op.scalar_op, ps.Add)):
        return None
    if op.axis not in (None, tuple(range(var.ndim))) or node.outputs[0].dtype != "float64":
        return None
    return node.outputs[0]


def _sum_replacements(fgraph, node, sum_op) -> dict | None:
    """When the terms of a fused node (forward, float64) are only summed and its exp(η) only feeds
    α-gradients of that sum (one weight each, the node's own inputs): the node's sum, residual
    and α-gradients from one ``sum_op`` node (one pass, no terms or exp(η) kept); else None."""
    grad_op = sum_op._grad
    if getattr(node.op, "precision", None) != "float64":
        return None
    ll, e, r = node.outputs
    total = _full_sum(fgraph, ll)
    if total is None:
        return None
    own = [node.inputs[0], *node.inputs[2:]]  # alpha, [stratum,] interval, offset, …
    grads = []
    for use, _ in fgraph.clients[e]:
        if not isinstance(use.op, grad_op):  # exp(η) used elsewhere: the old kernels stay
            return None
        w = _weight(use.inputs[0])
        same = use.inputs[1] is e and all(a is b for a, b in zip(use.inputs[2:], own, strict=True))
        if w is None or not same:
            return None
        grads.append((use.outputs[0], w))
    out_sum, out_r, out_grad = sum_op(version=node.op.version)(*node.inputs)
    repl = {total: out_sum, r: out_r}
    for old, w in grads:
        repl[old] = old.type.filter_variable(w * out_grad)
    return repl


def _source_hash(*functions) -> str:
    """16 hex digits of the functions' source, with what every kernel shares (the helpers and
    the exp of fused_kernels, and the rewrites' tests that put the one-weight and the one-pass
    kernels in place)."""
    rewrites = (_one_weight, _weight, _full_sum, _sum_replacements)
    shared = (*rewrites, *(f.py_func for f in (*SHARED, vexp_into)))
    text = "".join(inspect.getsource(f) for f in (*functions, *shared))
    return sha256(text.encode()).hexdigest()[:16]


#: identifies the kernels' code in every cache key (PyTensor's numba cache, compile_cache)
KERNEL_VERSION = _source_hash(
    _forward_kernel, _forward_kernel_f32, _alpha_grad_kernel, _sum_kernel
)
#: the same for the stratified kernels (a change there leaves the unstratified models' keys alone)
STRATA_KERNEL_VERSION = _source_hash(
    _strata_forward_kernel,
    _strata_forward_kernel_f32,
    _strata_alpha_grad_kernel,
    _strata_sum_kernel,
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


class _LogLikSum(Op):
    """A forward Op's summed terms, residual and α-gradient of the sum in one pass (same inputs as
    the forward Op ``_forward``): put in place by the rewrite :func:`loglik_sum` after
    differentiation, so it has no gradient itself. ``perform`` (NumPy) is the forward Op's and
    ``_grad``'s with one weight."""

    __props__ = ("version",)
    _forward: type[Op]
    _grad: type[Op]

    def __init__(self, version: str | None = None):
        self.version = version or self._forward().version

    def make_node(self, *args):
        ins = self._forward().make_node(*args).inputs
        n, f = ins[1].type.shape[0], "float64"
        outs = [pt.tensor(dtype=f, shape=()), pt.tensor(dtype=f, shape=(n,))]
        return Apply(self, ins, [*outs, pt.tensor(dtype=f, shape=ins[0].type.shape)])

    def perform(self, node, inputs, output_storage):
        ll, e, r, grad = ([None] for _ in range(4))
        self._forward().perform(None, inputs, [ll, e, r])
        # the gradient Op's inputs: (weight, exp(eta), alpha, then the forward's after eta)
        self._grad().perform(None, [np.ones(1), e[0], inputs[0], *inputs[2:]], [grad])
        for store, value in zip(output_storage, (np.asarray(ll[0].sum()), r[0], grad[0])):
            store[0] = value

    def infer_shape(self, node, shapes):
        return [(), shapes[1], shapes[0]]

    def pullback(self, inputs, outputs, output_grads):
        return [grad_not_implemented(self, i, x) for i, x in enumerate(inputs)]


class PEMLogLikSum(_LogLikSum):
    """(alpha[K], eta[N], interval[N] int, offset[N], event[N], widths[K]) ->
    (Σ_i ll_i, residual[N], Σ_i ∂ll_i/∂alpha [K]) in one pass: what a model's log-density and
    gradient need of :class:`PEMLogLik` when its terms are only summed."""

    _forward, _grad = PEMLogLik, PEMAlphaGrad


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


class PEMStrataLogLikSum(_LogLikSum):
    """(alpha[G, K], eta[N], stratum[N] int, interval[N] int, offset[N], event[N], widths[K]) ->
    (Σ_i ll_i, residual[N], Σ_i ∂ll_i/∂alpha [G × K]): :class:`PEMLogLikSum` with one baseline
    row per stratum."""

    _forward, _grad = PEMStrataLogLik, PEMStrataAlphaGrad


_forward_numba = numba_njit(_forward_kernel)
_forward_f32_numba = numba_njit(_forward_kernel_f32)
_alpha_grad_numba = numba_njit(_alpha_grad_kernel)


_sum_numba = numba_njit(_sum_kernel)
_strata_forward_numba = numba_njit(_strata_forward_kernel)
_strata_forward_f32_numba = numba_njit(_strata_forward_kernel_f32)
_strata_alpha_grad_numba = numba_njit(_strata_alpha_grad_kernel)
_strata_sum_numba = numba_njit(_strata_sum_kernel)


@register_funcify_default_op_cache_key(PEMLogLik)
def _funcify_loglik(op, node=None, **kwargs):
    return _forward_f32_numba if op.precision == "float32" else _forward_numba


@register_funcify_default_op_cache_key(PEMAlphaGrad)
def _funcify_alpha_grad(op, node=None, **kwargs):
    return _alpha_grad_numba


@register_funcify_default_op_cache_key(PEMLogLikSum)
def _funcify_sum(op, node=None, **kwargs):
    return _sum_numba


def fused_loglik_terms(alpha, eta, interval, offset, event, widths, precision="float64"):
    """Per-patient log-likelihood terms through the fused Op (PyTensor variables or arrays)."""
    return PEMLogLik(precision)(alpha, eta, interval, offset, event, widths)[0]


@register_funcify_default_op_cache_key(PEMStrataLogLik)
def _funcify_strata_loglik(op, node=None, **kwargs):
    return _strata_forward_f32_numba if op.precision == "float32" else _strata_forward_numba


@register_funcify_default_op_cache_key(PEMStrataAlphaGrad)
def _funcify_strata_alpha_grad(op, node=None, **kwargs):
    return _strata_alpha_grad_numba


@register_funcify_default_op_cache_key(PEMStrataLogLikSum)
def _funcify_strata_sum(op, node=None, **kwargs):
    return _strata_sum_numba


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


@register_specialize
@node_rewriter([PEMLogLik, PEMStrataLogLik])
def loglik_sum(fgraph, node):
    """A sum of the terms whose exp(η) only feeds that sum's α-gradients — what a PyMC model's
    log-density and gradient are — from one pass (:class:`PEMLogLikSum`,
    :class:`PEMStrataLogLikSum`) instead of the forward kernel, a sum and the α-gradient kernel:
    no N terms or exponentials written and read again (:func:`_sum_replacements`)."""
    one_pass = PEMLogLikSum if isinstance(node.op, PEMLogLik) else PEMStrataLogLikSum
    return _sum_replacements(fgraph, node, one_pass)
