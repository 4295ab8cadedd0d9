"""The fused likelihood Op (fused.py, ``baseline.likelihood: fused``) computes the same
log-likelihood and gradient as the PyTensor graph (model.pem_loglik_terms), which is itself
checked against the Poisson-trick expansion (test_likelihood.py).

Checks: value and gradient against the graph to 1e-10 relative, through η = β·trt + Xγ +
trt·(δ z), with non-unit output weights (the general pullback), under both PyTensor backends
(NumPy ``perform`` and the numba kernel), after a data update of another size; the gradient
against central differences; whole PyMC models of several structures, before and after
``pm.set_data``; the compile-cache key; and (slow) posteriors under both likelihoods.
"""

import numpy as np
import pymc as pm
import pytensor
import pytensor.tensor as pt
import pytest

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.priors import merge_priors
from trialbayes.config.schema import Baseline, ModelSpec
from trialbayes.data.design import build_design, interval_stats
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.models.fused import (
    PEMAlphaGrad,
    PEMLogLik,
    PEMLogLikSum,
    PEMStrataAlphaGrad,
    PEMStrataLogLik,
    PEMStrataLogLikSum,
    fused_loglik_terms,
    fused_strata_loglik_terms,
)
from trialbayes.models.graph import build_model, pem_loglik_terms

REL = 1e-10
#: Python linker (the Ops' NumPy ``perform``), light rewrites: no C compilation, seconds cold
PY = pytensor.compile.mode.Mode(linker="py", optimizer="fast_compile")
#: Python linker with every rewrite (alpha_grad_of_sum is a "specialize" rewrite)
PY_ALL = pytensor.compile.mode.Mode(linker="py", optimizer="fast_run")


def survival_data(rng, n, k):
    times = rng.exponential(100, n) + 1e-3
    event = rng.binomial(1, 0.6, n).astype(float)
    cuts = np.sort(rng.uniform(1, np.quantile(times, 0.9), k - 1)) if k > 1 else np.array([])
    idx, off, starts = interval_stats(times, cuts)
    widths = np.append(np.diff(starts), 0.0)
    return {
        "interval": idx,
        "offset": off,
        "event": event,
        "widths": widths,
        "treat": rng.binomial(1, 0.5, n).astype(float),
        "X": rng.standard_normal((n, 3)),
        "z": rng.standard_normal(n),
        "w": rng.uniform(0.5, 2.0, n),  # output weights: the pullback for any cotangent
    }


def close(a, b, rel=REL):
    """Every component of ``a`` within ``rel`` × the largest |component| of ``b``."""
    a, b = np.asarray(a), np.asarray(b)
    scale = max(np.max(np.abs(b)), 1e-300)
    assert np.max(np.abs(a - b)) <= rel * scale, (a, b)


@pytest.mark.parametrize("mode", ["PY", "NUMBA"])
def test_fused_equals_graph_value_and_gradient(mode):
    rng = np.random.default_rng(11)
    data = survival_data(rng, 400, 7)
    sh = {k: pytensor.shared(v, name=k) for k, v in data.items()}
    alpha, gamma = pt.dvector("alpha"), pt.dvector("gamma")
    beta, delta = pt.dscalar("beta"), pt.dscalar("delta")
    eta = beta * sh["treat"] + pt.dot(sh["X"], gamma) + sh["treat"] * (delta * sh["z"])
    args = (alpha, eta, sh["interval"], sh["offset"], sh["event"], sh["widths"])
    outs = []
    for terms in (pem_loglik_terms(*args), fused_loglik_terms(*args)):
        total = (sh["w"] * terms).sum()
        outs += [terms, total, *pt.grad(total, [alpha, beta, gamma, delta])]
    f = pytensor.function([alpha, beta, gamma, delta], outs, mode=PY if mode == "PY" else mode)
    # then data of another size, and a single interval (K = 1), through the same function
    for n, k in [(400, 7), (257, 7), (90, 1)]:
        if n != 400:
            new = survival_data(np.random.default_rng(n), n, k)
            for key, v in new.items():
                sh[key].set_value(v)
        for _ in range(3):
            theta = (rng.normal(-4.5, 0.6, k), rng.normal(0, 0.5), rng.normal(0, 0.4, 3),
                     rng.normal(0, 0.3))
            res = f(*theta)
            graph, fused = res[:6], res[6:]
            assert fused[0].shape == (n,)
            for a, b in zip(fused, graph):
                close(a, b)


def _sum_case(rng, keep_terms: bool):
    """Graph, fused and stratified fused log-likelihoods summed (and, with ``keep_terms``, the
    fused terms also returned), with their gradients; int32 indices as PyMC stores them."""
    d = survival_data(rng, 300, 6)
    interval = d["interval"].astype("int32")
    stratum = d["treat"].astype("int32")
    alpha, alpha2, eta = pt.dvector("alpha"), pt.dmatrix("alpha2"), pt.dvector("eta")
    plain = (alpha, eta, interval, d["offset"], d["event"], d["widths"])
    graph = pem_loglik_terms(*plain).sum()
    terms = fused_loglik_terms(*plain)
    strata_terms = fused_strata_loglik_terms(alpha2, eta, stratum, *plain[2:])
    fused, strata = terms.sum(), strata_terms.sum()
    outs = [graph, *pt.grad(graph, [alpha, eta]), fused, *pt.grad(fused, [alpha, eta])]
    outs += [strata, *pt.grad(strata, [alpha2, eta])]
    if keep_terms:
        outs += [terms, strata_terms]
    return [alpha, alpha2, eta], outs


def _check_sums(rng, f):
    for _ in range(3):
        a = rng.normal(-4.5, 0.6, 6)
        e = rng.normal(0, 0.5, 300)
        graph_f, graph_ga, graph_ge, fused_f, fused_ga, fused_ge, s_f, s_ga, s_ge = f(
            a, np.stack([a, a]), e
        )[:9]
        close(fused_f, graph_f)
        close(fused_ga, graph_ga)
        close(fused_ge, graph_ge)
        close(s_f, graph_f)  # both strata with the same baseline: the plain model
        close(s_ga.sum(axis=0), graph_ga)
        close(s_ge, graph_ge)


def _int32_indices(nodes):
    """The index inputs as given (int32), no Cast{int64} before them."""
    for n in nodes:
        assert {i.dtype for i in n.inputs if "int" in i.dtype} == {"int32"}


@pytest.mark.parametrize("mode", ["PY_ALL", "NUMBA"])
def test_plain_sum_is_one_pass_with_int32_indices(mode):
    """What a PyMC model differentiates — the plain sum of the terms and its gradient — compiles
    to one pass per likelihood (fused.loglik_sum: PEMLogLikSum / PEMStrataLogLikSum, no forward or
    α-gradient kernel left), reading int32 indices as they are; value and gradient equal the
    graph's. Fails if the rewrite does not fire (the old kernels would be in the graph)."""
    rng = np.random.default_rng(12)
    ins, outs = _sum_case(rng, keep_terms=False)
    f = pytensor.function(ins, outs, mode=PY_ALL if mode == "PY_ALL" else mode)
    nodes = f.maker.fgraph.toposort()
    old = (PEMLogLik, PEMStrataLogLik, PEMAlphaGrad, PEMStrataAlphaGrad)
    assert not [n for n in nodes if isinstance(n.op, old)]
    sums = [n for n in nodes if isinstance(n.op, (PEMLogLikSum, PEMStrataLogLikSum))]
    assert sorted(type(n.op).__name__ for n in sums) == ["PEMLogLikSum", "PEMStrataLogLikSum"]
    _int32_indices(sums)
    _check_sums(rng, f)


@pytest.mark.parametrize("mode", ["PY_ALL", "NUMBA"])
def test_terms_kept_take_one_weight(mode):
    """When the terms are used besides their sum (here also returned), the one-pass rewrite
    does not apply: the sum's gradient reaches the α-gradient kernels as one weight, not an
    N-vector of ones (fused.alpha_grad_of_sum), with int32 indices; the values are the same."""
    rng = np.random.default_rng(13)
    ins, outs = _sum_case(rng, keep_terms=True)
    f = pytensor.function(ins, outs, mode=PY_ALL if mode == "PY_ALL" else mode)
    nodes = f.maker.fgraph.toposort()
    assert not [n for n in nodes if isinstance(n.op, (PEMLogLikSum, PEMStrataLogLikSum))]
    grads = [n for n in nodes if isinstance(n.op, (PEMAlphaGrad, PEMStrataAlphaGrad))]
    assert len(grads) == 2 and all(n.inputs[0].type.shape == (1,) for n in grads)
    fused_nodes = grads + [n for n in nodes if isinstance(n.op, (PEMLogLik, PEMStrataLogLik))]
    assert len(fused_nodes) == 4
    _int32_indices(fused_nodes)
    _check_sums(rng, f)


@pytest.mark.parametrize("mode", ["PY_ALL", "NUMBA"])
def test_exp_eta_used_elsewhere_keeps_the_kernels(mode):
    """exp(η) used besides the α-gradient (here scaled and returned): the one-pass rewrite
    declines (no error from the other use's inputs), and every output is right."""
    rng = np.random.default_rng(14)
    d = survival_data(rng, 200, 5)
    alpha, eta = pt.dvector("alpha"), pt.dvector("eta")
    args = (alpha, eta, d["interval"].astype("int32"), d["offset"], d["event"], d["widths"])
    ll, e, _ = PEMLogLik()(*args)
    total = ll.sum()
    graph = pem_loglik_terms(*args).sum()
    outs = [total, *pt.grad(total, [alpha, eta]), pt.mul(2.0, e), graph]
    outs += pt.grad(graph, [alpha, eta])
    f = pytensor.function([alpha, eta], outs, mode=PY_ALL if mode == "PY_ALL" else mode)
    nodes = f.maker.fgraph.toposort()
    assert not [n for n in nodes if isinstance(n.op, (PEMLogLikSum, PEMStrataLogLikSum))]
    a, x = rng.normal(-4.5, 0.6, 5), rng.normal(0, 0.5, 200)
    t, ga, ge, two_e, g, g_ga, g_ge = f(a, x)
    close(t, g)
    close(ga, g_ga)
    close(ge, g_ge)
    close(two_e, 2 * np.exp(x))


def test_fused_gradient_against_finite_differences():
    """Central differences (h = 1e-6, truncation error O(h²) ~ 1e-12, rounding ~1e-10 relative)
    agree with the Op's gradient to 1e-6 relative."""
    rng = np.random.default_rng(5)
    d = survival_data(rng, 150, 5)
    alpha, eta = pt.dvector("alpha"), pt.dvector("eta")
    total = (d["w"] * fused_loglik_terms(alpha, eta, d["interval"], d["offset"], d["event"],
                                         d["widths"])).sum()
    f = pytensor.function([alpha, eta], [total, *pt.grad(total, [alpha, eta])], mode=PY)
    a0, e0 = rng.normal(-4.5, 0.5, 5), rng.normal(0, 0.7, 150)
    _, ga, ge = f(a0, e0)
    h = 1e-6
    fd_a = [(f(a0 + h * u, e0)[0] - f(a0 - h * u, e0)[0]) / (2 * h) for u in np.eye(5)]
    fd_e = [(f(a0, e0 + h * u)[0] - f(a0, e0 - h * u)[0]) / (2 * h) for u in np.eye(150)[:20]]
    close(ga, fd_a, rel=1e-6)
    close(ge[:20], fd_e, rel=1e-6)
    assert np.all(np.abs(ga) > 1e-3)  # a non-degenerate point: the comparison has content


@pytest.mark.parametrize("mode", ["PY", "NUMBA"])
def test_float32_fused_accuracy_against_float64(mode):
    """``precision='float32'`` (the per-patient arithmetic in single precision, sums in double):
    every term, the log-likelihood and the gradient (α, β, γ) within 1e-6 of the float64 value
    relative to the gross scale Σ_i (d_i + exp(η_i) H0_i) (·max|x_i| for a covariate): about
    17 float32 epsilons (6e-8) of accumulated rounding, far below anything NUTS resolves. And
    not identical: the option does change the arithmetic."""
    rng = np.random.default_rng(21)
    d = survival_data(rng, 2000, 8)
    alpha, gamma, beta = pt.dvector("alpha"), pt.dvector("gamma"), pt.dscalar("beta")
    eta = beta * d["treat"] + pt.dot(d["X"], gamma)
    args = (alpha, eta, d["interval"], d["offset"], d["event"], d["widths"])
    outs = []
    for precision in ("float64", "float32"):
        op_out = PEMLogLik(precision)(*args)
        total = op_out[0].sum()
        outs += [op_out[0], total, *pt.grad(total, [alpha, beta, gamma]), op_out[2]]
    f = pytensor.function([alpha, beta, gamma], outs, mode=PY if mode == "PY" else mode)
    for _ in range(3):
        res = f(rng.normal(-4.5, 0.6, 8), rng.normal(0, 0.5), rng.normal(0, 0.4, 3))
        r64 = res[5]
        gross = np.sum(d["event"] + np.abs(d["event"] - r64))  # Σ (d_i + exp(η_i) H0_i)
        scale = [np.abs(res[0]) + 1.0, gross, gross, gross, gross * np.abs(d["X"]).max()]
        for a, b, sc in zip(res[6:11], res[:5], scale):
            assert np.all(np.abs(a - b) <= 1e-6 * sc)
        assert not np.array_equal(res[6], res[0])


@pytest.mark.parametrize("mode", ["PY", "NUMBA"])
def test_fused_rejects_an_interval_index_out_of_range(mode):
    alpha, eta = pt.dvector("alpha"), pt.dvector("eta")
    terms = PEMLogLik()(alpha, eta, np.array([0, 3]), np.ones(2), np.ones(2), np.ones(3))[0]
    f = pytensor.function([alpha, eta], terms, mode=PY if mode == "PY" else mode)
    with pytest.raises(IndexError):
        f(np.zeros(3), np.zeros(2))


SPECS = {
    "unadjusted": ModelSpec(name="u"),
    "covariates": ModelSpec(name="a", covariates="all", covariate_pooling="partial"),
    "interaction": ModelSpec(name="i", covariates="all", interaction="log_linear",
                             biomarker="pnfh", centre_frailty=True),
}


def synthetic(n, seed):
    df, _ = generate(n=n, seed=seed)
    return from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))


def both_models(spec, data, k=4):
    return [build_model(build_design(data, spec, Baseline(n_intervals=k, likelihood=lik)),
                        merge_priors({})) for lik in ("graph", "fused")]


@pytest.mark.parametrize(
    "which",
    ["unadjusted", "interaction", pytest.param("covariates", marks=pytest.mark.slow)],
)
def test_fused_model_equals_graph_model_before_and_after_set_data(which):
    """Whole PyMC models (priors + likelihood): log-density and gradient at random points, then
    after ``pm.set_data`` with another trial of another size (the refit path)."""
    spec = SPECS[which]
    models = both_models(spec, synthetic(160, 1))
    fns = [(m.compile_logp(mode=PY), m.compile_dlogp(mode=PY)) for m in models]
    rng = np.random.default_rng(2)
    new = build_design(synthetic(230, 7), spec, Baseline(n_intervals=4)).data_dict()
    for step in ("fit", "refit"):
        if step == "refit":
            for m in models:
                with m:
                    pm.set_data({k: v for k, v in new.items() if k != "log_rate"})
        ip = models[0].initial_point()
        for _ in range(3):
            point = {k: v + 0.4 * rng.standard_normal(np.shape(v)) for k, v in ip.items()}
            (lp_g, dlp_g), (lp_f, dlp_f) = [(f(point), g(point)) for f, g in fns]
            close(lp_f, lp_g)
            close(dlp_f, dlp_g)


def test_compile_cache_key_separates_the_likelihoods():
    from trialbayes.inference.compile_cache import structure_key

    data = synthetic(120, 3)
    g1, f1 = both_models(SPECS["covariates"], data)
    g2, f2 = both_models(SPECS["covariates"], synthetic(90, 4))
    keys = [structure_key(m)[0] for m in (g1, f1, g2, f2)]
    assert None not in keys
    assert keys[0] == keys[2] and keys[1] == keys[3]  # data values are not in the key
    assert keys[0] != keys[1]  # the likelihood is


@pytest.mark.slow  # three nutpie compiles (~10-15 s each cold) and three short fits
def test_fused_posteriors_match_graph_posterior(tmp_path, monkeypatch):
    """The same model fitted with each likelihood (graph, fused, fused_float32) through the real
    path (compile_cache, nutpie): nutpie's compiled callback for the fused model equals PyMC's
    log-density, and the posterior means of the treatment effect, the 3 covariate effects and
    the first log baseline hazard under each fused variant agree with the graph's:
    z = Δmean / sqrt(MCSE_graph² + MCSE_fused²), |z| < z_bound(1e-3, 10) = 3.89 for all ten
    (Bonferroni: false-failure rate < 1/1000 when the posteriors are the same; MCSE from
    2 × 500 draws per fit)."""
    from helpers import mcse, z_bound

    from trialbayes.config.schema import SamplerSpec
    from trialbayes.inference import compile_cache as cc
    from trialbayes.models.pem import PiecewiseExponentialModel

    monkeypatch.setenv("TRIALBAYES_CACHE_DIR", str(tmp_path / "cache"))
    cc.clear_memory()  # a fresh compile, whichever test compiled this structure before
    data = synthetic(300, 9)
    fits = {
        lik: PiecewiseExponentialModel(
            SPECS["covariates"],
            baseline=Baseline(n_intervals=4, likelihood=lik),
            sampler=SamplerSpec(chains=2, draws=500, tune=500, seed=3, progress="off"),
        ).fit(data, log_likelihood=False)
        for lik in ("graph", "fused", "fused_float32")
    }
    fused = fits["fused"]
    assert fused.sampler.compile_source == "compiled"
    x = fused.sampler.compiled.initial_point_func(4)
    lp, grad = _callback(fused.sampler.compiled, x)
    names, slices, shapes = fused.sampler.compiled.shape_info
    point = {n: x[s].reshape(sh) for n, s, sh in zip(names, slices, shapes)
             if n in {v.name for v in fused.model.value_vars}}
    close(lp, fused.model.compile_logp(mode=PY)(point))
    close(grad, fused.model.compile_dlogp(mode=PY)(point))

    def draws(fit):
        post = fit.idata.posterior
        cols = [post["treatment"].values, post["log_baseline_hazard"].values[..., 0]]
        cols += [post["covariate_effects"].values[..., j] for j in range(3)]
        return cols

    bound = z_bound(1e-3, 10)
    for lik in ("fused", "fused_float32"):
        for g, f in zip(draws(fits["graph"]), draws(fits[lik])):
            z = (g.mean() - f.mean()) / np.hypot(mcse(g), mcse(f))
            assert abs(z) < bound, (lik, z)


def _callback(compiled, x):
    """logp and gradient from the C callback nutpie calls."""
    import ctypes

    x = np.ascontiguousarray(x, float)
    out, lp = np.zeros_like(x), np.zeros(())
    dbl = ctypes.POINTER(ctypes.c_double)
    rc = compiled.compiled_logp_func.ctypes(len(x), x.ctypes.data_as(dbl), out.ctypes.data_as(dbl),
                                            lp.ctypes.data_as(dbl), compiled.user_data.ctypes.data)
    assert rc == 0
    return float(lp), out
