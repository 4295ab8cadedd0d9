"""What the simulator's log-rank analysis does at unequal allocation (issue 18 point 13, issue 21
point 5): its one-sided size at α = 0.025 for 1:1, 2:1 and 3:1 allocation and 100–400 deaths, and
its power at 2:1 beside Schoenfeld's closed form Φ(|log HR|·√(D r (1 − r)) − z_α). Writes
bench/results/logrank_allocation.json and .png (the figure the README shows). Usage:

    .venv/bin/python bench/logrank_allocation.py [trials]     # default 20 000 per point

Exponential survival (constant hazard), uniform accrual, no dropout, analysis at the D-th death.
"""

from __future__ import annotations

import json
import math
import sys
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "bench" / "results" / "logrank_allocation.json"


def _states(log_hr: float, n: int):
    from trialbayes.nextphase.simulate import StatesOfNature

    z = np.zeros(n)
    e = np.zeros((n, 0))
    base = np.full((n, 1), math.log(0.5))
    return StatesOfNature(np.array([0.0]), base, np.full(n, log_hr), e, z, z.copy(), e, e)


def rate(log_hr: float, events: int, allocation: float, trials: int, seed: int) -> float:
    from trialbayes.nextphase.logrank import logrank
    from trialbayes.nextphase.simulate import Population, TrialDesign, simulate_trials

    rng = np.random.default_rng(seed)
    pop = Population(np.zeros((100, 0)), np.zeros(100), np.zeros((100, 0)))
    d = TrialDesign(events=events, n_randomised=int(events * 1.25), accrual_time=1.0,
                    allocation=allocation)  # fmt: skip
    out = []
    for a in range(0, trials, 5000):  # chunks keep memory modest
        sim = simulate_trials(_states(log_hr, min(5000, trials - a)), pop, d, rng)
        out.append(logrank(sim.time, sim.event, sim.treat).success(0.025))
    return float(np.concatenate(out).mean())


def main(trials: int) -> dict:
    from trialbayes.estimands.assurance import power

    res = {"trials": trials, "alpha": 0.025, "size": [], "power_2to1": []}
    for k, alloc in enumerate((0.5, 2 / 3, 0.75)):
        for events in (100, 200, 400):
            p = rate(0.0, events, alloc, trials, 100 + 10 * k + events)
            res["size"].append({"allocation": round(alloc, 4), "events": events, "size": p,
                                "mc_se": math.sqrt(p * (1 - p) / trials)})  # fmt: skip
            print(res["size"][-1], flush=True)
    for hr in (0.7, 0.8):
        for events in (100, 200, 400):
            p = rate(math.log(hr), events, 2 / 3, trials, 1000 + events + int(100 * hr))
            res["power_2to1"].append({"hr": hr, "events": events, "simulated": p,
                                      "schoenfeld": power(math.log(hr), events, 2 / 3),
                                      "mc_se": math.sqrt(p * (1 - p) / trials)})  # fmt: skip
            print(res["power_2to1"][-1], flush=True)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(res, indent=2) + "\n")
    plot(res)
    return res


def plot(res: dict) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (a, b) = plt.subplots(1, 2, figsize=(10, 3.8))
    cols = {0.5: "#1f5fa8", 0.6667: "#d9731a", 0.75: "#2a9d55"}
    names = {0.5: "1:1", 0.6667: "2:1", 0.75: "3:1"}
    for alloc in cols:
        rows = [r for r in res["size"] if r["allocation"] == alloc]
        a.errorbar([r["events"] for r in rows], [r["size"] for r in rows],
                   yerr=[2 * r["mc_se"] for r in rows], marker="o", capsize=3, color=cols[alloc],
                   label=names[alloc])  # fmt: skip
    a.axhline(0.025, color="k", ls=":", lw=0.8)
    a.set_xlabel("deaths at the analysis")
    a.set_ylabel("P(reject) at HR 1 (one-sided α = 0.025)")
    a.set_title("log-rank size by allocation (±2 MC SE)", fontsize=9)
    a.legend(fontsize=8)
    for i, hr in enumerate((0.7, 0.8)):
        rows = [r for r in res["power_2to1"] if r["hr"] == hr]
        x = [r["events"] for r in rows]
        c = ["#1f5fa8", "#d9731a"][i]
        b.errorbar(x, [r["simulated"] - r["schoenfeld"] for r in rows],
                   yerr=[2 * r["mc_se"] for r in rows], marker="o", capsize=3, color=c,
                   label=f"HR {hr:g}")  # fmt: skip
    b.axhline(0, color="k", lw=0.8, ls=":")
    b.set_xlabel("deaths at the analysis")
    b.set_ylabel("simulated power − Schoenfeld")
    b.set_title("2:1 allocation: Schoenfeld's power error (±2 MC SE)", fontsize=9)
    b.legend(fontsize=8)
    fig.suptitle(f"{res['trials']} simulated trials per point; exponential survival", fontsize=9)
    fig.tight_layout()
    fig.savefig(OUT.with_suffix(".png"), dpi=100)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 20_000)
