"""Benchmarks of the many-trial workloads (issue 12). Writes bench/results/next_phase.json and
bench/results/next_phase.png. Usage (from the repository root):

    .venv/bin/python bench/bench_next_phase.py logrank      # 10 000 simulated trials by log-rank
    .venv/bin/python bench/bench_next_phase.py dask         # throughput on 1 vs 2 Dask workers
    .venv/bin/python bench/bench_next_phase.py refits       # 200 trials, each a Bayesian refit
    .venv/bin/python bench/bench_next_phase.py bayes        # 200 next trials analysed by the
                                                            # Bayesian model (next_phase.analysis)
    .venv/bin/python bench/bench_next_phase.py plot         # the figure from the stored results

Wall-clock times on a shared machine are noisy: compare ratios, and rerun on a quiet machine.
"""

from __future__ import annotations

import json
import math
import os
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "next_phase.json"


def _states(n: int, rng):
    from trialbayes.nextphase.simulate import StatesOfNature

    z = np.zeros(n)
    return StatesOfNature(
        np.array([0.0, 200.0, 500.0]),
        np.tile(np.log([4e-4, 6e-4, 8e-4]), (n, 1)),
        rng.normal(math.log(0.75), 0.15, n),
        rng.normal(0, 0.2, (n, 2)),
        z,
        z.copy(),
        np.zeros((n, 0)),
        np.zeros((n, 0)),
    )


def _population(n=220, seed=1):
    from trialbayes.nextphase.simulate import Population

    rng = np.random.default_rng(seed)
    return Population(rng.normal(size=(n, 2)), np.zeros(n), np.zeros((n, 0)))


def bench_logrank(trials=10_000, events=300, per_event=2.0) -> dict:
    """Simulate and analyse ``trials`` event-driven trials (D = 300, 600 patients), one process."""
    from trialbayes.nextphase.logrank import logrank
    from trialbayes.nextphase.simulate import TrialDesign, simulate_trials

    rng = np.random.default_rng(1)
    d = TrialDesign(
        events=events, n_randomised=int(events * per_event), accrual_time=700, dropout_rate=1e-4
    )
    t0 = time.perf_counter()
    sim = simulate_trials(_states(trials, rng), _population(), d, rng)
    t1 = time.perf_counter()
    ok = logrank(sim.time, sim.event, sim.treat).success(0.025)
    t2 = time.perf_counter()
    return {
        "trials": trials,
        "patients_per_trial": d.n_randomised,
        "events": events,
        "simulate_s": round(t1 - t0, 2),
        "logrank_s": round(t2 - t1, 2),
        "total_s": round(t2 - t0, 2),
        "assurance": float(ok.mean()),
    }


def bench_dask(cells=16, trials=1000) -> dict:
    """The same grid of assurance cells on a LocalCluster with 1 and with 2 workers."""
    from trialbayes.config.next_phase import DecisionRule, DesignPriorSpec
    from trialbayes.core.executor import Cell, Executor
    from trialbayes.nextphase.grid import assurance_cell
    from trialbayes.nextphase.simulate import TrialDesign

    rng = np.random.default_rng(2)
    args = {
        "states": _states(2000, rng),
        "population": _population(),
        "alpha": 0.025,
        "min_hr": None,
        "design": TrialDesign(events=300, n_randomised=600, accrual_time=700, dropout_rate=1e-4),
        "prior": DesignPriorSpec(name="as_is"),
        "trials": trials,
        "decision": DecisionRule(),
    }
    grid = [Cell(f"c{i}", args) for i in range(cells)]
    out = {"cells": cells, "trials_per_cell": trials}
    values = {}
    for w in (1, 2):
        with Executor("dask", workers=w, scheduler="local") as ex:
            ex.map(assurance_cell, grid[:w], 0)  # warm the workers (imports) before timing
            t0 = time.perf_counter()
            rep = ex.map(assurance_cell, grid, 0)
            out[f"workers_{w}_s"] = round(time.perf_counter() - t0, 2)
            values[w] = rep.values()
    out["same_numbers"] = values[1] == values[2]
    out["speed_up"] = round(out["workers_1_s"] / out["workers_2_s"], 2)
    return out


def bench_refits(fits=200, n=500, workers=2) -> dict:
    """``fits`` simulated trials of N patients, each refitted (2 × 500 draws) by the compiled model
    of its worker: the SBC cell (prior draw → simulated trial → refit), process pool."""
    import tempfile

    from trialbayes.calibration.sbc import sbc_cell
    from trialbayes.config.calibration import CalibrationSettings
    from trialbayes.config.schema import parse_config
    from trialbayes.core.executor import Cell, Executor
    from trialbayes.routes.calibration import calibration_case

    cfg = parse_config(
        {
            "name": "bench",
            "data": {"kind": "synthetic", "n": n, "seed": 5},
            "models": [{"name": "adjusted", "covariates": ["age", "alsfrs_r"]}],
            "baseline": {"n_intervals": 4},
        }
    )
    s = CalibrationSettings(model="adjusted", fits=fits, chains=2, draws=500, tune=500)
    case = calibration_case(cfg, "adjusted")
    cells = [Cell(f"r{i:04d}", {"case": case, "settings": s}) for i in range(fits)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Executor("processes", workers, store=tmp) as ex:
        rep = ex.map(sbc_cell, cells, 9)
    wall = time.perf_counter() - t0
    return {
        "fits": fits,
        "n": n,
        "draws": "2 x 500 (+500 tune)",
        "workers": workers,
        "wall_s": round(wall, 1),
        "failed": len(rep.failed),
        "per_fit_s": round(wall / fits, 2),
    }


def bench_bayes(trials=200, n=500, events=300, workers=2, cells=4) -> dict:
    """``trials`` simulated next trials of ``n`` patients (D = ``events``) in ``cells`` assurance
    cells, each trial analysed by the Bayesian piecewise-exponential model (next_phase.analysis
    method bayes: 3 intervals, 2 × 500 draws + 500 tune), one compiled model per worker."""
    import tempfile

    from trialbayes.config.next_phase import AnalysisSpec, DecisionRule, DesignPriorSpec
    from trialbayes.core.executor import Cell, Executor
    from trialbayes.nextphase.grid import assurance_cell
    from trialbayes.nextphase.simulate import TrialDesign

    rng = np.random.default_rng(3)
    args = {
        "states": _states(2000, rng),
        "population": _population(),
        "alpha": 0.025,
        "min_hr": None,
        "design": TrialDesign(events=events, n_randomised=n, accrual_time=700, dropout_rate=1e-4),
        "prior": DesignPriorSpec(name="as_is"),
        "trials": trials // cells,
        "decision": DecisionRule(),
        "analysis": AnalysisSpec(method="bayes", draws=500, tune=500),
        "n_model": n,
        "events_hint": events,
    }
    grid = [Cell(f"b{i}", args) for i in range(cells)]
    t0 = time.perf_counter()
    with tempfile.TemporaryDirectory() as tmp, Executor("processes", workers, store=tmp) as ex:
        rep = ex.map(assurance_cell, grid, 4)
    wall = time.perf_counter() - t0
    vals = list(rep.values().values())
    return {
        "trials": trials,
        "n": n,
        "events": events,
        "draws": "2 x 500 (+500 tune)",
        "workers": workers,
        "wall_s": round(wall, 1),
        "per_trial_s": round(wall / trials, 2),
        "failed_cells": len(rep.failed),
        "analysis_failed": sum(v["analysis_failed"] for v in vals),
        "analysis_divergent": sum(v["analysis_divergent"] for v in vals),
        "assurance": round(float(np.mean([v["assurance"] for v in vals])), 3),
    }


def plot() -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    r = json.loads(OUT.read_text())
    fig, axes = plt.subplots(1, 3, figsize=(11, 3.4))
    if "logrank" in r:
        x = r["logrank"]
        axes[0].bar(
            ["simulate", "log-rank"],
            [x["simulate_s"], x["logrank_s"]],
            color=["#1f5fa8", "#d9731a"],
        )
        axes[0].axhline(60, color="#a00000", ls="--", lw=0.8)
        axes[0].set_title(
            f"{x['trials']:,} trials × {x['patients_per_trial']} patients\n(target ≤ 60 s)",
            fontsize=9,
        )
        axes[0].set_ylabel("seconds")
    bars = {}
    if "refits" in r:
        bars[f"SBC refits\n(adjusted, N = {r['refits']['n']})"] = r["refits"]["wall_s"]
    if "bayes" in r:
        bars[f"next-trial analyses\n(N = {r['bayes']['n']}, D = {r['bayes']['events']})"] = r[
            "bayes"
        ]["wall_s"]
    if bars:
        axes[1].bar(list(bars), list(bars.values()), color="#2a9d55")
        axes[1].axhline(300, color="#a00000", ls="--", lw=0.8)
        axes[1].tick_params(axis="x", labelsize=7)
        axes[1].set_title(
            "200 Bayesian refits, 2 × 500 draws,\n2 workers (target ≤ 300 s)", fontsize=9
        )
    if "dask" in r:
        x = r["dask"]
        axes[2].bar(
            ["1 worker", "2 workers"], [x["workers_1_s"], x["workers_2_s"]], color="#a23b72"
        )
        axes[2].set_title(
            f"Dask LocalCluster: {x['cells']} cells × {x['trials_per_cell']} trials\n"
            f"speed-up {x['speed_up']}×, same numbers: {x['same_numbers']}",
            fontsize=9,
        )
    fig.suptitle("shared, loaded 2-core machine: compare ratios", fontsize=8, color="#a00000")
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=100)


def main(argv) -> None:
    what = argv[1] if len(argv) > 1 else "logrank"
    if what == "plot":
        return plot()
    res = json.loads(OUT.read_text()) if OUT.exists() else {}
    benches = {
        "logrank": bench_logrank,
        "dask": bench_dask,
        "refits": bench_refits,
        "bayes": bench_bayes,
    }
    res[what] = benches[what]()
    res[what]["cpu_count"] = os.cpu_count()
    res[what]["load_average_1min"] = round(os.getloadavg()[0], 1)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res[what], indent=2))


if __name__ == "__main__":
    main(sys.argv)
