"""`make bench`: where users wait (issue 19), each ratio beside its target, in one run.

Every measurement is a fresh process started from here (one process tree), so imports, compiling
and writing are all counted; ratios compare times of the same process, which a shared machine
disturbs far less than absolute seconds. The load average is printed beside every figure.

  reference   the default analysis with nutpie's own compilation (TRIALBAYES_COMPILER=nutpie)
  first run   the default analysis with every cache empty (trialbayes, PyTensor, numba):
              compile share of the wall time, later models compiled in the
              background (TRIALBAYES_BACKGROUND_COMPILE=on; and =off beside it)   target <= 40%
  warm        the same analysis again on those caches, figures drawn by the sidecar
              (TRIALBAYES_SIDECAR=on; and =off beside it): wall / sum of sampling target <= 1.5
              analysis / sampling per model (N = 220, 8,000 draws)                target <= 0.25
  N = 1,151   a 10-covariate interaction model, 8,000 draws: analysis / sampling  target <= 0.25
  sensitivity 2 models x 6 prior scenarios on 594 patients (9 covariates), 2 workers:
              refits' wall / (sum of their sampling / workers)                   target <= 1.3
              each refit's non-sampling seconds / its sampling seconds           target <= 0.1
  refits      next-trial Bayesian analyses, N = 500, 2 x 500 draws, 2 workers:
              refits per second                                                  target >= 4
  N = 100 000 one fit of the default model, 4 x 1000 draws after 1000 tuning, its structure
              in the compile cache (compiled at N = 20 000 before, as on a second run):
              whole-process wall seconds                                         target <= 45

Usage (from the repository root; about 6 minutes on a quiet 2-core machine):

    .venv/bin/python bench/bench_speed.py [--skip NAME ...] [--refit-trials 100]

Writes bench/results/speed.json (git-ignored) and prints the table README "Benchmarks" keeps
(measurement | figure | target | load average).

``--smoke`` checks that the script runs through, not the figures: every analysis with a toy
sampler (2 chains x 100 draws after 100 tuning), 4 simulated-trial refits, no N = 100 000 fit
and no reference run; its rows are marked SMOKE and mean nothing against the targets.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import yaml

ROOT = Path(__file__).resolve().parents[1]
PY = sys.executable
CLI = [PY, "-m", "trialbayes.cli", "run"]

#: --smoke (set by main): toy sampler settings everywhere
SMOKE = False


def load() -> float:
    return round(os.getloadavg()[0], 1)


def run(cmd: list[str], env: dict | None = None, cwd: Path = ROOT) -> dict:
    """Run a command; its wall and CPU seconds (all its threads and children), load before."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    la = load()
    t0 = time.perf_counter()
    p = subprocess.run(cmd, capture_output=True, text=True, cwd=cwd,
                       env={**os.environ, "CI": "true", **(env or {})})  # fmt: skip
    wall = time.perf_counter() - t0
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    if p.returncode not in (0, 3):
        raise SystemExit(f"failed ({p.returncode}): {' '.join(map(str, cmd))}\n{p.stderr[-3000:]}")
    return {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "load_before": la,
            "load_after": load(), "stdout": p.stdout, "stderr": p.stderr}  # fmt: skip


def analysis(cfg: Path, out: Path, env: dict | None = None) -> dict:
    """A `trialbayes run`: wall, per-model compile / sampling / analysis seconds, phase lines."""
    r = run([*CLI, str(cfg), "--out", str(out)], env)
    name = yaml.safe_load(cfg.read_text())["name"]
    res = json.loads((out / name / "results.json").read_text())
    prov = json.loads((out / name / "provenance.json").read_text())
    t = res["provenance"]["timings"]
    r.update(
        models=t,
        compile_s=round(sum(m["compile_s"] for m in t.values()), 2),
        sample_s=round(sum(m["sample_s"] for m in t.values()), 2),
        analyse_s=round(sum(m["analyse_s"] for m in t.values()), 2),
        refits=prov.get("sensitivity_refit_seconds"),
        phases=[x for x in r["stderr"].splitlines() if ": done in " in x],
    )
    del r["stdout"]
    return r


def trial_file(tmp: Path, n: int, extra: int, seed: int) -> tuple[Path, list[str]]:
    """The synthetic cohort (5 covariates) with ``extra`` more (normal and binary), as a CSV."""
    from trialbayes.data.synthetic import generate

    df, _ = generate(n=n, seed=seed)
    rng = np.random.default_rng(seed)
    names = []
    for j in range(extra):
        name = f"x{j + 1}"
        df[name] = rng.normal(size=n) if j % 2 == 0 else rng.integers(0, 2, n).astype(float)
        names.append(name)
    path = tmp / f"trial_{n}.csv"
    df.to_csv(path, index=False)
    return path, ["age", "bulbar_onset", "alsfrs_r", "svc", "symptom_duration", *names]


#: --smoke: the sampler of every analysis (a run-through check, not a measurement)
SMOKE_SAMPLER = {"chains": 2, "draws": 100, "tune": 100}


def smoke_config(src: Path, tmp: Path) -> Path:
    """``src`` with the smoke sampler and its data path made absolute (a copy in ``tmp``)."""
    cfg = yaml.safe_load(src.read_text())
    cfg["sampler"] = {**cfg.get("sampler", {}), **SMOKE_SAMPLER}
    cfg["diagnostics"] = {**cfg.get("diagnostics", {}), "allow_unreliable": True}
    path = cfg.get("data", {}).get("path")
    if path and not Path(path).is_absolute():
        cfg["data"]["path"] = str((src.parent / path).resolve())
    out = tmp / f"smoke_{src.name}"
    out.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return out


def trial_config(tmp: Path, name: str, data: Path, covs: list[str], models, **extra) -> Path:
    from trialbayes.data.synthetic import SYNTHETIC_COLUMNS

    cols = {**SYNTHETIC_COLUMNS, "covariates": covs}
    cfg = {
        "name": name,
        "data": {"kind": "file", "path": data.name, "columns": cols, "time_unit": "days"},
        "models": models,
        "baseline": {"n_intervals": 8},
        "sampler": {"chains": 4, "draws": 2000, "tune": 1000, "seed": 1},
        "diagnostics": {"allow_unreliable": True},
        "estimands": {"max_draws": 8000, "landmark": 640, "subgroup_cutoffs": [750, 3700],
                      "biomarker": "pnfh"},
        **extra,
    }  # fmt: skip
    if SMOKE:
        cfg["sampler"].update(SMOKE_SAMPLER)
        cfg["estimands"]["max_draws"] = 200
    path = tmp / f"{name}.yaml"
    path.write_text(yaml.safe_dump(cfg, sort_keys=False))
    return path


REFITS = r"""
import json, sys, time, resource
sys.path.insert(0, "bench")
from bench_next_phase import bench_bayes
if __name__ == "__main__":
    r = bench_bayes(trials=int(sys.argv[1]), n=500, events=300, workers=2, cells=4)
    print(json.dumps(r))
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument(
        "--skip",
        nargs="*",
        default=[],
        choices=["reference", "first", "warm", "n1151", "sensitivity", "refits", "n100000"],
    )
    ap.add_argument("--refit-trials", type=int, default=100)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "speed.json"))
    ap.add_argument(
        "--smoke",
        action="store_true",
        help="a run-through check with toy sampler settings (rows marked SMOKE; no figures)",
    )
    a = ap.parse_args()
    global SMOKE
    SMOKE = a.smoke
    if a.smoke:
        a.skip = sorted(set(a.skip) | {"reference", "n100000"})
        a.refit_trials = min(a.refit_trials, 4)
        a.out = str(Path(a.out).with_name("speed_smoke.json"))
    t_start = time.perf_counter()
    res: dict = {
        "command": "make bench (.venv/bin/python bench/bench_speed.py "
        + " ".join(sys.argv[1:])
        + ")",
        "date": datetime.now(UTC).isoformat(timespec="minutes"),
        "machine": f"{platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
        f"Python {platform.python_version()}",
        "load_at_start": load(),
    }
    tmp = Path(tempfile.mkdtemp(prefix="trialbayes-bench-"))
    caches = {"TRIALBAYES_CACHE_DIR": str(tmp / "tb"),
              "PYTENSOR_FLAGS": f"base_compiledir={tmp / 'pytensor'}",
              "NUMBA_CACHE_DIR": str(tmp / "numba")}  # fmt: skip
    default = ROOT / "configs" / "mirocals.yaml"
    if a.smoke:
        default = smoke_config(default, tmp)
    rows = []

    def row(what, value, target, ok, la, note=""):
        if a.smoke:
            what = "SMOKE " + what.strip()
        rows.append(
            (what, value, target, "-" if target == "-" else ("met" if ok else "NOT met"), la, note)
        )
        met = "" if target == "-" else ("met" if ok else "NOT met")
        print(f"{what:<62} {value:>9} {target:>8}  {met}  load {la}"
              + (f"  {note}" if note else ""), flush=True)  # fmt: skip

    if "reference" not in a.skip:
        r = res["reference"] = analysis(default, tmp / "ref", {"TRIALBAYES_COMPILER": "nutpie"})
        row(
            "reference (nutpie's compile): compile / wall",
            f"{r['compile_s'] / r['wall_s']:.0%}",
            "-",
            True,
            r["load_before"],
            f"wall {r['wall_s']:.0f} s, compile {r['compile_s']:.0f} s",
        )
    if "first" not in a.skip:
        # every cache empty; the background compilation forced on (what `auto` does on a quiet
        # machine) and, for comparison, off (models compiled one after another)
        for mode in ("on", "off"):
            env = {**caches, "TRIALBAYES_BACKGROUND_COMPILE": mode}
            if mode == "off":
                env = {k: v.replace(str(tmp), str(tmp / "cold_off")) for k, v in env.items()}
            r = res[f"first_run_{mode}"] = analysis(default, tmp / f"cold_{mode}", env)
            share = r["compile_s"] / r["wall_s"]
            row(f"first run (every cache empty), background compile {mode}: compile / wall",
                f"{share:.0%}", "<= 40%" if mode == "on" else "-",
                share <= 0.40 or mode == "off", r["load_before"],
                f"wall {r['wall_s']:.0f} s, compile {r['compile_s']:.0f} s")  # fmt: skip
    for mode in ("on", "off") if "warm" not in a.skip else ():  # the figures' sidecar on (what
        # `auto` does when a CPU is idle) and off
        r = res[f"warm_{mode}"] = analysis(
            default, tmp / f"warm_{mode}", {**caches, "TRIALBAYES_SIDECAR": mode}
        )
        ratio = r["wall_s"] / r["sample_s"]
        row(f"warm default analysis, sidecar {mode}: wall / sum of sampling", f"{ratio:.2f}",
            "<= 1.5" if mode == "on" else "-", ratio <= 1.5 or mode == "off", r["load_before"],
            f"wall {r['wall_s']:.1f} s, sampling {r['sample_s']:.1f} s")  # fmt: skip
    r = res.get("warm_on", {})
    for m, t in r.get("models", {}).items():
        x = t["analyse_s"] / t["sample_s"]
        row(
            f"  analysis / sampling, N = 220, model {m}",
            f"{x:.2f}",
            "<= 0.25",
            x <= 0.25,
            r["load_before"],
            f"{t['analyse_s']:.2f} / {t['sample_s']:.2f} s",
        )
    if "n1151" not in a.skip:
        data, covs = trial_file(tmp, 1151, 5, 11)
        models = [{"name": "interaction", "covariates": covs, "interaction": "linear",
                   "biomarker": "pnfh", "centre_frailty": True}]  # fmt: skip
        cfg = trial_config(tmp, "n1151", data, covs, models)
        r = res["n1151"] = analysis(cfg, tmp / "n1151", caches)
        t = r["models"]["interaction"]
        x = t["analyse_s"] / t["sample_s"]
        row(
            "analysis / sampling, N = 1,151, 10 covariates + interaction",
            f"{x:.2f}",
            "<= 0.25",
            x <= 0.25,
            r["load_before"],
            f"{t['analyse_s']:.2f} / {t['sample_s']:.2f} s",
        )
    if "sensitivity" not in a.skip:
        data, covs = trial_file(tmp, 594, 4, 12)
        models = [{"name": "adjusted", "covariates": covs},
                  {"name": "interaction", "covariates": covs, "interaction": "linear",
                   "biomarker": "pnfh"}]  # fmt: skip
        cfg = trial_config(tmp, "sens594", data, covs, models,
                           sensitivity={"enabled": True, "executor": "processes", "workers": 2},
                           report={"figures": False})  # fmt: skip
        r = res["sensitivity"] = analysis(cfg, tmp / "sens", caches)
        cells = [x for x in r["refits"] if "refit" in x]
        job = r["refits"][-1]
        phase = next(float(x.rsplit("done in ", 1)[1].split()[0]) for x in r["phases"]
                     if "refitting under the prior scenarios" in x)  # fmt: skip
        per = phase / (sum(x["sample_s"] for x in cells) / job["workers"])
        over = max((x["refit_s"] - x["sample_s"]) / x["sample_s"] for x in cells)
        build = max(x["seconds"] - x["refit_s"] for x in cells)
        row(
            f"sensitivity ({len(cells)} refits, {job['backend']}, {job['workers']} workers): "
            "wall / (sampling / workers)", f"{per:.2f}", "<= 1.3", per <= 1.3, r["load_before"],
            f"phase {phase:.0f} s incl. power-scaling, refits' job {job['wall_s']:.0f} s",
        )  # fmt: skip
        row(
            "  each refit: non-sampling / sampling (largest)",
            f"{over:.3f}",
            "<= 0.1",
            over <= 0.1,
            r["load_before"],
            f"+ once per worker and model: build and load the compiled model, <= {build:.1f} s",
        )
    if "refits" not in a.skip:
        r = run([PY, "-c", REFITS, str(a.refit_trials)])
        out = json.loads(r["stdout"].strip().splitlines()[-1])
        res["refits"] = {**out, **{k: r[k] for k in ("wall_s", "cpu_s", "load_before")}}
        rate = out["trials"] / out["wall_s"]
        row("Bayesian refits of simulated trials (N = 500, 2 x 500), 2 workers: per s",
            f"{rate:.2f}", ">= 4", rate >= 4, r["load_before"],
            f"{out['trials']} in {out['wall_s']:.0f} s, {out['analysis_failed']} failed, "
            f"{out['analysis_divergent']} divergent")  # fmt: skip
    if "n100000" not in a.skip:
        from bench_fit import SINGLE_FIT

        # N = 20 000 first (the same centred baseline walk: its structure is then in the compile
        # cache, as on a user's second run), for the sampler's work per draw beside N = 100 000
        r20 = run([PY, "-c", SINGLE_FIT, "20000", "fused"], caches)
        res["n20000"] = json.loads(r20["stdout"].strip().splitlines()[-1])
        r = run([PY, "-c", SINGLE_FIT, "100000", "fused"], caches)
        fit = json.loads(r["stdout"].strip().splitlines()[-1])
        res["n100000"] = {**fit, **{k: r[k] for k in ("wall_s", "cpu_s", "load_before")}}
        row("N = 100 000, default model, 4 x 1000 + 1000 tuning: wall (s)", f"{r['wall_s']:.1f}",
            "<= 45", r["wall_s"] <= 45, r["load_before"],
            f"compile {fit['compile_s']:.1f} ({fit['compiled_from']}), sampling "
            f"{fit['sample_s']:.1f}")  # fmt: skip
        for n, f in ((20000, res["n20000"]), (100000, fit)):
            row(f"  N = {n}: gradients per draw (tree depth, step size)",
                f"{f['grads_per_draw']:.1f}",
                "-", True, r["load_before"],
                f"depth {f['tree_depth']:.2f}, step {f['step_size']:.3f}, target_accept "
                f"{f['target_accept']}, sampling {f['sample_s']:.1f} s")  # fmt: skip
    res["rows"] = rows
    res["bench_wall_s"] = round(time.perf_counter() - t_start, 1)
    print(f"\n{res['machine']}; {res['date']}; load average at start {res['load_at_start']}; "
          f"{res['bench_wall_s']:.0f} s in all; {res['command']}")  # fmt: skip
    print("| measurement | figure | target | load average |")
    print("|---|---|---|---|")
    for what, value, target, ok, la, note in rows:
        figure = value if target == "-" else f"{value} ({ok})"
        print(f"| {what.strip()}{' (' + note + ')' if note else ''} | {figure} | {target} | {la} |")
    Path(a.out).parent.mkdir(parents=True, exist_ok=True)
    Path(a.out).write_text(json.dumps(res, indent=2))


if __name__ == "__main__":
    sys.path.insert(0, str(ROOT / "bench"))
    main()
