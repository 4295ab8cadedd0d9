"""Benchmark (issue 21): 10 000 two-look log-rank trials (an interim at half the deaths, Lan–DeMets
O'Brien–Fleming boundaries) against 10 000 one-look trials, whole process. Target: the two-look
run takes ≤ 2× the one-look run. Usage (from the repository root):

    .venv/bin/python bench/bench_looks.py          # both, each in a fresh Python process

Each variant runs in its own process (imports included: the whole-process wall time) and reports
its compute time (simulation + analysis) as well; the ratio of both is printed beside the target.
Writes bench/results/next_phase_looks.json. Times on a shared machine are noisy: the 1-minute load
average before and after is recorded, and a ratio measured under load is not a final figure.
"""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "next_phase_looks.json"
TRIALS, EVENTS, PATIENTS = 10_000, 300, 600


def child(looks: int) -> dict:
    import numpy as np

    from trialbayes.config.next_phase import EfficacySpec
    from trialbayes.nextphase.borrowing import vague
    from trialbayes.nextphase.group_sequential import SequentialPlan, analyse_sequential
    from trialbayes.nextphase.logrank import logrank
    from trialbayes.nextphase.simulate import (
        Population,
        StatesOfNature,
        TrialDesign,
        simulate_trials,
    )

    rng = np.random.default_rng(1)
    n = TRIALS
    z = np.zeros(n)
    states = StatesOfNature(
        np.array([0.0, 200.0, 500.0]), np.tile(np.log([4e-4, 6e-4, 8e-4]), (n, 1)),
        rng.normal(math.log(0.75), 0.15, n), rng.normal(0, 0.2, (n, 2)), z, z.copy(),
        np.zeros((n, 0)), np.zeros((n, 0)),
    )  # fmt: skip
    pop = Population(rng.normal(size=(220, 2)), np.zeros(220), np.zeros((220, 0)))
    fr = (0.5, 1.0) if looks == 2 else (1.0,)
    d = TrialDesign(events=EVENTS, n_randomised=PATIENTS, accrual_time=700, dropout_rate=1e-4,
                    looks=fr)  # fmt: skip
    t0 = time.perf_counter()
    sim = simulate_trials(states, pop, d, rng)
    t1 = time.perf_counter()
    if looks == 2:
        plan = SequentialPlan(EVENTS, fr, 0.025, 0.5, EfficacySpec())
        ok = analyse_sequential(sim, plan, vague(0.0, None)).success
    else:
        ok = logrank(sim.time, sim.event, sim.treat).success(0.025)
    t2 = time.perf_counter()
    return {"simulate_s": round(t1 - t0, 2), "analyse_s": round(t2 - t1, 2),
            "compute_s": round(t2 - t0, 2), "assurance": float(ok.mean())}  # fmt: skip


def main() -> None:
    load_before = os.getloadavg()[0]
    out = {"trials": TRIALS, "events": EVENTS, "patients_per_trial": PATIENTS,
           "cpu_count": os.cpu_count()}  # fmt: skip
    for looks in (1, 2):
        t0 = time.perf_counter()
        r = subprocess.run([sys.executable, __file__, f"--child={looks}"], capture_output=True,
                           text=True, check=True)  # fmt: skip
        wall = time.perf_counter() - t0
        out[f"looks_{looks}"] = {**json.loads(r.stdout.strip().splitlines()[-1]),
                                 "whole_process_s": round(wall, 2)}  # fmt: skip
    one, two = out["looks_1"], out["looks_2"]
    out["ratio_whole_process"] = round(two["whole_process_s"] / one["whole_process_s"], 2)
    out["ratio_compute"] = round(two["compute_s"] / one["compute_s"], 2)
    out["target_ratio"] = 2.0
    out["load_average_1min"] = [round(load_before, 1), round(os.getloadavg()[0], 1)]
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))
    print(
        f"two looks / one look: {out['ratio_whole_process']}× whole process, "
        f"{out['ratio_compute']}× compute (target ≤ 2×); load average "
        f"{out['load_average_1min'][0]} → {out['load_average_1min'][1]} on {os.cpu_count()} "
        "cores" + ("  (measured under load: not a final figure)" if load_before > 1 else "")
    )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1].startswith("--child="):
        print(json.dumps(child(int(sys.argv[1].split("=")[1]))))
    else:
        main()
