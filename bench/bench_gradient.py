"""Per-gradient cost at large N: the compiled model's C callback (what nutpie calls), with the
PyTensor-graph likelihood and with the fused Op (``baseline.likelihood: fused``, fused.py; and
``fused_float32``, its per-patient arithmetic in single precision), against
a hand-written numba O(N·P + K) log-likelihood and gradient of the same piecewise-exponential model.

The hand-written kernel covers the likelihood only (the priors are O(K + P), negligible at this N);
it is checked against the model's NumPy log-likelihood and a finite-difference gradient before
timing. Usage:

    .venv/bin/python bench/bench_gradient.py [--n 100000] [--evals 300] [--rounds 10]

Timings are interleaved (``rounds`` rounds of ``evals / rounds`` calls of each) and the median
round is reported, so a load change on a shared machine hits all candidates alike.
"""

from __future__ import annotations

import argparse
import ctypes
import json
import time

import numba
import numpy as np


@numba.njit(cache=True, fastmath=False)
def pem_logp_grad(alpha, beta, gamma, treat, X, interval, offset, event, widths):
    k, n, p = alpha.shape[0], treat.shape[0], gamma.shape[0]
    lam = np.exp(alpha)
    cum = np.zeros(k)
    for j in range(1, k):
        cum[j] = cum[j - 1] + lam[j - 1] * widths[j - 1]
    a_sum, b_sum, d_sum = np.zeros(k), np.zeros(k), np.zeros(k)
    g_beta, g_gamma, ll = 0.0, np.zeros(p), 0.0
    for i in range(n):
        eta = beta * treat[i]
        for c in range(p):
            eta += X[i, c] * gamma[c]
        j = interval[i]
        e = np.exp(eta)
        h0 = cum[j] + lam[j] * offset[i]
        ll += event[i] * (alpha[j] + eta) - e * h0
        r = event[i] - e * h0
        g_beta += r * treat[i]
        for c in range(p):
            g_gamma[c] += r * X[i, c]
        a_sum[j] += e
        b_sum[j] += e * offset[i]
        d_sum[j] += event[i]
    g_alpha = np.zeros(k)
    later = 0.0  # sum of exp(eta) over patients who left after interval j
    for j in range(k - 1, -1, -1):
        g_alpha[j] = d_sum[j] - lam[j] * b_sum[j] - lam[j] * widths[j] * later
        later += a_sum[j]
    return ll, g_alpha, g_beta, g_gamma


def build(n: int, likelihood: str = "graph"):
    from trialbayes.config.data_sources import ColumnMap
    from trialbayes.config.priors import merge_priors
    from trialbayes.config.schema import Baseline, ModelSpec
    from trialbayes.data.design import build_design
    from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
    from trialbayes.data.table import from_frame
    from trialbayes.models.graph import build_model

    df, _ = generate(n=n, seed=1)
    data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
    design = build_design(
        data,
        ModelSpec(name="adjusted", covariates="all"),
        Baseline(n_intervals=8, likelihood=likelihood),
    )
    return design, build_model(design, merge_priors({}))


def check_kernel(design, args) -> float:
    """Largest relative error of the hand-written gradient against central differences."""
    alpha, beta, gamma = args[:3]
    dd = design.data_dict()
    ll, ga, gb, gg = pem_logp_grad(*args)
    eta = beta * dd["treat"] + dd["X"] @ gamma  # the model's likelihood in NumPy (model.pem_parts)
    lam, j = np.exp(alpha), dd["interval_idx"]
    cum = np.concatenate([[0.0], np.cumsum(lam[:-1] * dd["widths"][:-1])])
    ref = np.sum(dd["event"] * (alpha[j] + eta) - np.exp(eta) * (cum[j] + lam[j] * dd["offset"]))
    assert abs(ll - ref) <= 1e-8 * abs(ref), (ll, ref)
    theta = np.concatenate([alpha, [beta], gamma])
    grad, k = np.concatenate([ga, [gb], gg]), len(alpha)
    worst = 0.0
    for i in range(len(theta)):
        h = 1e-6
        up, dn = theta.copy(), theta.copy()
        up[i] += h
        dn[i] -= h
        fd = (
            pem_logp_grad(up[:k], up[k], up[k + 1 :], *args[3:])[0]
            - pem_logp_grad(dn[:k], dn[k], dn[k + 1 :], *args[3:])[0]
        ) / (2 * h)
        worst = max(worst, abs(fd - grad[i]) / max(1.0, abs(grad[i])))
    assert worst < 1e-4, worst
    return worst


def call(compiled, x):
    dbl = ctypes.POINTER(ctypes.c_double)
    out, lp = np.zeros_like(x), np.zeros(())
    ptrs = (
        x.ctypes.data_as(dbl),
        out.ctypes.data_as(dbl),
        lp.ctypes.data_as(dbl),
        compiled.user_data.ctypes.data,
    )
    return compiled.compiled_logp_func.ctypes, ptrs, lp, out


def time_callback(compiled, x, evals: int) -> float:
    f, ptrs, _, _ = call(compiled, x)
    f(len(x), *ptrs)
    t0 = time.perf_counter()
    for _ in range(evals):
        f(len(x), *ptrs)
    return (time.perf_counter() - t0) / evals


def logp_grad(compiled, x):
    f, ptrs, lp, out = call(compiled, x)
    assert f(len(x), *ptrs) == 0
    return float(lp), out.copy()


LIKELIHOODS = ("graph", "fused", "fused_float32")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--n", type=int, default=100_000)
    ap.add_argument("--evals", type=int, default=300)
    ap.add_argument("--rounds", type=int, default=10)
    a = ap.parse_args()
    from threadpoolctl import threadpool_limits

    from trialbayes.inference.compile_cache import compile_model

    design, _ = build(a.n)
    compiled = {lik: compile_model(build(a.n, lik)[1]) for lik in LIKELIHOODS}
    x = compiled["graph"][0].initial_point_func(1)  # same parameters, same order in all three
    dd = design.data_dict()
    rng = np.random.default_rng(0)
    args = (
        np.log(design.event.sum() / dd["widths"].sum())
        + 0.1 * rng.standard_normal(design.n_intervals),
        -0.2,
        0.1 * rng.standard_normal(dd["X"].shape[1]),
        dd["treat"].astype(float),
        np.ascontiguousarray(dd["X"]),
        dd["interval_idx"].astype(np.int64),
        dd["offset"],
        dd["event"].astype(float),
        dd["widths"],
    )
    fd_err = check_kernel(design, args)
    res = {"n": a.n}
    lp64, g64 = logp_grad(compiled["fused"][0], x)
    lp32, g32 = logp_grad(compiled["fused_float32"][0], x)
    res["float32_logp_rel_err"] = abs(lp32 - lp64) / abs(lp64)
    res["float32_grad_rel_err"] = float(np.max(np.abs(g32 - g64)) / np.max(np.abs(g64)))

    def hand_written(evals):
        pem_logp_grad(*args)
        t0 = time.perf_counter()
        for _ in range(evals):
            pem_logp_grad(*args)
        return (time.perf_counter() - t0) / evals

    rounds = {lik: [] for lik in (*compiled, "hand")}
    with threadpool_limits(1, user_api="blas"):  # interleaved rounds, median: a shared machine
        for _ in range(a.rounds):
            for lik, (c, _) in compiled.items():
                rounds[lik].append(time_callback(c, x, a.evals // a.rounds))
            rounds["hand"].append(hand_written(a.evals // a.rounds))
    times = {lik: float(np.median(v)) for lik, v in rounds.items()}
    t_hand = times.pop("hand")
    for lik, t in times.items():
        res[f"{lik}_callback_us"] = round(t * 1e6, 1)
        res[f"{lik}_over_hand_written"] = round(t / t_hand, 2)
        res[f"{lik}_compiled_from"] = compiled[lik][1].source
    res["hand_written_us"] = round(t_hand * 1e6, 1)
    res["graph_over_fused"] = round(times["graph"] / times["fused"], 2)
    res["fused_over_fused_float32"] = round(times["fused"] / times["fused_float32"], 2)
    res["fd_check_max_rel_err"] = fd_err
    print(json.dumps(res))


if __name__ == "__main__":
    main()
