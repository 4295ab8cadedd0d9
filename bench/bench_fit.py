"""Whole-process benchmarks: the default analysis, and a single fit at N = 220 … 100 000 with
the PyTensor-graph likelihood (form ``pem``) and the fused likelihood Op (``baseline.likelihood:
fused`` / ``fused_float32``, forms ``fused`` / ``fused32``) at every N, and the Poisson-trick
(patient × interval expansion) formulation side by side at the smaller N.

Each measurement runs in a fresh Python process (wall time and peak RSS of that process), so
imports, compilation and sampling are all counted. The default analysis runs three times: with
nutpie's own compilation (reference, ``TRIALBAYES_COMPILER=nutpie``), cold (an empty compile
cache) and warm (a second process on that cache); per-model compile and sampling seconds come
from results.json (``provenance.timings``). Single fits share one cache that starts empty, so
the first N = 220 fit compiles and every later fit of the same structure (any N) loads it.
Usage:

    .venv/bin/python bench/bench_fit.py     # everything, writes bench/results/latest.json
    .venv/bin/python bench/bench_fit.py --sizes 220 2000 --poisson-up-to 2000
    .venv/bin/python bench/bench_fit.py --skip-default --sizes 100000 --poisson-up-to 0 \
        --out bench/results/n100000.json   # N = 100 000 only, each form compiled cold
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SINGLE_FIT = r"""
import json, sys, time
t0 = time.perf_counter()
import numpy as np, pymc as pm, pytensor.tensor as pt
from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
from trialbayes.data.table import from_frame
from trialbayes.data.design import build_design
from trialbayes.inference.sampler import SamplerRunner, diagnose
from trialbayes.models.graph import build_model, poisson_expand
from trialbayes.config.priors import merge_priors
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate

n, form = int(sys.argv[1]), sys.argv[2]
df, _ = generate(n=n, seed=1)
data = from_frame(df, ColumnMap(**SYNTHETIC_COLUMNS))
spec = ModelSpec(name="adjusted", covariates="all")
lik = {"fused": "fused", "fused32": "fused_float32"}.get(form, "graph")  # pem: PyTensor graph
design = build_design(data, spec, Baseline(n_intervals=8, likelihood=lik))
priors = merge_priors({})
if form in ("pem", "fused", "fused32"):
    model = build_model(design, priors)
else:  # reference: Poisson trick on the patient x interval expansion, same priors and
    # parametrisation
    rows, ks, expo, dk = poisson_expand(data.frame["time"].to_numpy(), design.event, design.starts)
    with pm.Model() as model:
        s = pm.HalfNormal("baseline_rw_sigma", 0.5)
        from trialbayes.models.graph import baseline_centred
        if baseline_centred(design):
            walk = pm.GaussianRandomWalk("baseline_walk", sigma=s, steps=design.n_intervals - 1,
                                        init_dist=pm.Normal.dist(0, 1.5))
        else:
            steps = pm.Normal("baseline_steps", 0, 1, shape=design.n_intervals - 1)
            walk = pm.Normal("baseline_start", 0, 1.5) + pt.concatenate(
                [pt.zeros(1), pt.cumsum(s * steps)])
        alpha = design.log_rate + walk
        beta = pm.Normal("treatment", 0, 1)
        tau = pm.HalfNormal("covariate_scale", 1.0)
        gamma = pm.Normal("covariate_effects", 0, tau, shape=design.X.shape[1])
        eta = beta * design.treat + pt.dot(design.X, gamma)
        pm.Poisson("d", mu=expo * pt.exp(alpha[ks] + eta[rows]), observed=dk)
from trialbayes.models.graph import default_target_accept
cfg = SamplerSpec(chains=4, draws=1000, tune=1000, seed=1, progress="off")
runner = SamplerRunner(model, cfg, target_accept=default_target_accept(design)).compile()
t1 = time.perf_counter()
idata = runner.sample(log_likelihood=False)
t2 = time.perf_counter()
from trialbayes.config.schema import Diagnostics
dg = diagnose(idata, [v.name for v in model.free_RVs], Diagnostics())
import resource
print(json.dumps({"n": n, "form": form, "compiled_from": runner.compile_source,
                  "peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                  "rows": int(len(rows)) if form == "poisson" else n,
                  "compile_s": runner.compile_seconds, "sample_s": t2 - t1,
                  "setup_s": t1 - t0 - runner.compile_seconds,
                  "divergences": dg.divergences, "rhat_max": dg.rhat_max,
                  "ess_bulk_min": dg.ess_bulk_min,
                  "grads_per_draw": float(idata.sample_stats["n_steps"].mean()),
                  "tree_depth": float(idata.sample_stats["depth"].mean()),
                  "step_size": float(idata.sample_stats["step_size"].mean()),
                  "target_accept": runner.accept}))
"""


def run(cmd: list[str], env: dict | None = None) -> tuple[float, float, str]:
    """Wall seconds, peak RSS (MiB) over the children so far (exact for the first), and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    t0 = time.perf_counter()
    p = subprocess.run(
        cmd,
        capture_output=True,
        text=True,
        cwd=ROOT,
        env={**os.environ, "CI": "true", **(env or {})},
    )
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
    if p.returncode not in (0, 3):
        raise SystemExit(
            f"benchmark command failed ({p.returncode}): {' '.join(cmd)}\n{p.stderr[-2000:]}"
        )
    return wall, max(after, before) / 1024, p.stdout


def default_analysis(py: str, cache: str) -> dict:
    """Reference (nutpie's compile), cold and warm runs of configs/mirocals.yaml."""
    out = {}
    for label, env in (
        ("reference_nutpie_compile", {"TRIALBAYES_COMPILER": "nutpie"}),
        ("cold_cache", {"TRIALBAYES_CACHE_DIR": cache}),
        ("warm_cache", {"TRIALBAYES_CACHE_DIR": cache}),
    ):
        with tempfile.TemporaryDirectory() as tmp:
            wall, rss, _ = run(
                [py, "-m", "trialbayes.cli", "run", "configs/mirocals.yaml", "--out", tmp], env
            )
            timings = json.loads((Path(tmp) / "mirocals" / "results.json").read_text())[
                "provenance"
            ]["timings"]
        compile_s = sum(t["compile_s"] for t in timings.values())
        out[label] = {
            "wall_s": round(wall, 1),
            "peak_rss_mib": round(rss),
            "compile_s": round(compile_s, 1),
            "compile_share": round(compile_s / wall, 2),
            "models": timings,
        }
        print(
            f"default analysis, {label}: {wall:.1f} s wall, compile {compile_s:.1f} s "
            f"({compile_s / wall:.0%}), "
            + ", ".join(
                f"{m} {t['compile_s']:.1f}+{t['sample_s']:.1f} s ({t['compiled_from']})"
                for m, t in timings.items()
            ),
            flush=True,
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[220, 2000, 20000, 100000])
    ap.add_argument("--poisson-up-to", type=int, default=20000)
    ap.add_argument("--skip-default", action="store_true")
    ap.add_argument(
        "--fused",
        nargs="*",
        default=["fused", "fused32"],
        choices=["fused", "fused32"],
        help="fused-likelihood forms timed beside the graph one (pem)",
    )
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "latest.json"))
    args = ap.parse_args()
    py = sys.executable
    results = {
        "machine": {"cores": os.cpu_count(), "python": sys.version.split()[0]},
        "single_fit": [],
    }
    cache = tempfile.mkdtemp(prefix="trialbayes-bench-cache-")
    if not args.skip_default:
        results["default_analysis"] = default_analysis(py, cache)
    single_cache = tempfile.mkdtemp(prefix="trialbayes-bench-cache-")
    for n in args.sizes:
        forms = ["pem", *args.fused] + (["poisson"] if n <= args.poisson_up_to else [])
        for form in forms:
            wall, rss, out = run(
                [py, "-c", SINGLE_FIT, str(n), form], {"TRIALBAYES_CACHE_DIR": single_cache}
            )
            rec = json.loads(out.strip().splitlines()[-1])
            rec.update({"wall_s": round(wall, 1), "peak_rss_mib": round(rec["peak_rss_mib"])})
            results["single_fit"].append(rec)
            print(
                f"N={n:>6} {form:<8} wall {wall:6.1f} s  compile {rec['compile_s']:5.1f} "
                f"({rec['compiled_from']})  "
                f"sample {rec['sample_s']:6.1f}  "
                f"rows {rec['rows']:>7}  div {rec['divergences']}  R-hat {rec['rhat_max']:.3f}",
                flush=True,
            )
    if 100000 in args.sizes:  # per-gradient cost against a hand-written kernel (bench_gradient.py)
        _, _, out = run(
            [py, "bench/bench_gradient.py", "--n", "100000"], {"TRIALBAYES_CACHE_DIR": single_cache}
        )
        results["gradient_n100000"] = json.loads(out.strip().splitlines()[-1])
        print("gradient at N=100000:", results["gradient_n100000"], flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
