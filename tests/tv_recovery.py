"""Replicate trials for the time-varying treatment effect (``treatment_effect: time_varying``).

Trials are simulated from a piecewise-exponential model with interval-specific hazard ratios (the
model's own form), so the truth of HR(t) per interval is known exactly. One compiled model per
structure is refitted on every replicate. Used by tests/test_time_varying.py; runnable on its own
(``python tests/tv_recovery.py crossing|ph R [N]``) to print the measured rates.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import arviz as az
import numpy as np
import pandas as pd

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
from trialbayes.data.table import from_frame
from trialbayes.models.pem import PiecewiseExponentialModel

#: eight intervals at the event-time octiles of the crossing truth below (years; fixed point of
#: simulate → octiles, 200 000 patients): ~88 events per interval and arm pair at N = 1000, as the
#: package's default cut points would give; the last interval is open
CUTS = [0.2, 0.45, 0.75, 1.12, 1.58, 2.16, 2.92]
#: crossing hazards: HR 1.6 in the first interval to 0.5 in the last, log-linear between
CROSSING = np.exp(np.linspace(np.log(1.6), np.log(0.5), len(CUTS) + 1))
#: proportional hazards at HR 0.7
PH = np.full(len(CUTS) + 1, 0.7)
COLUMNS = ColumnMap(id="id", time="time", event="event", arm="arm", treatment_level=1)
TV = ModelSpec(name="tv", treatment_effect="time_varying")
CONSTANT = ModelSpec(name="ph")


def simulate_pem(rng, n: int, hrs, rate: float = 0.35, cuts=CUTS, follow_up=(3.0, 5.0)):
    """A 1:1 randomised trial: control hazard ``rate`` per year, treated hazard rate · hrs[k] in
    interval k of ``cuts``; administrative censoring uniform on ``follow_up`` (staggered entry).
    Exact inversion of the piecewise-linear cumulative hazard."""
    starts = np.concatenate([[0.0], cuts])
    widths = np.append(np.diff(starts), np.inf)
    arm = rng.permutation(np.arange(n) % 2)
    h = rate * np.where(arm[:, None] == 1, np.asarray(hrs)[None, :], 1.0)  # n × K
    cum = np.concatenate([np.zeros((n, 1)), np.cumsum(h[:, :-1] * widths[:-1], 1)], 1)
    e = rng.exponential(size=n)
    k = (cum <= e[:, None]).sum(1) - 1
    t = starts[k] + (e - cum[np.arange(n), k]) / h[np.arange(n), k]
    c = rng.uniform(*follow_up, size=n)
    return pd.DataFrame(
        {"id": np.arange(n), "time": np.minimum(t, c), "event": (t <= c).astype(int), "arm": arm}
    )


@dataclass
class Study:
    truth: np.ndarray
    replicates: int = 0
    n: int = 0
    events: list = field(default_factory=list)
    quantiles: list = field(default_factory=list)  # per replicate: QUANTILES × K of the log-HRs
    p_late_below_early: list = field(default_factory=list)  # P(β_K < β_1)
    p_change_beyond: list = field(default_factory=list)  # P(|β_K − β_1| > log 1.5)
    change_z: list = field(default_factory=list)  # posterior mean / SD of β_K − β_1
    loo_diff: list = field(default_factory=list)  # elpd(tv) − elpd(constant), and its SE
    loo_se: list = field(default_factory=list)
    divergences: list = field(default_factory=list)
    rhat: list = field(default_factory=list)
    ess: list = field(default_factory=list)
    compile_count: int = 0


def run_study(
    truth,
    r: int,
    n: int = 1000,
    seed: int = 20261201,
    sampler: SamplerSpec | None = None,
    with_constant: bool = False,
    priors: dict | None = None,
) -> Study:
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(r)]
    sampler = sampler or SamplerSpec(chains=2, draws=500, tune=500, seed=1, progress="off")
    base = Baseline(cuts=CUTS)
    out = Study(np.log(truth), r, n)
    models = {}
    for i, s in enumerate(seeds):
        data = from_frame(simulate_pem(np.random.default_rng(s), n, truth), COLUMNS)
        out.events.append(int(data.frame["event"].sum()))
        for spec in [TV] + ([CONSTANT] if with_constant else []):
            m = models.get(spec.name)
            if m is None:
                m = models[spec.name] = PiecewiseExponentialModel(
                    spec, priors=priors, baseline=base, sampler=sampler
                ).fit(data, seed=i, log_likelihood=with_constant)
            else:
                m.refit(data, seed=i, gate=True, log_likelihood=with_constant)
        tv = models["tv"]
        bt = tv.draws()["treatment_over_time"]
        out.quantiles.append(np.quantile(bt, QUANTILES, axis=0))
        d = bt[:, -1] - bt[:, 0]
        out.p_late_below_early.append(float((d < 0).mean()))
        out.p_change_beyond.append(float((np.abs(d) > np.log(1.5)).mean()))
        out.change_z.append(float(d.mean() / d.std(ddof=1)))
        dg = tv.diagnostics
        out.divergences.append(dg.divergences)
        out.rhat.append(dg.rhat_max)
        out.ess.append(min(dg.ess_bulk_min, dg.ess_tail_min))
        if with_constant:
            loo_tv = az.loo(tv.idata, pointwise=True)
            loo_ph = az.loo(models["ph"].idata, pointwise=True)
            cmp = az.compare({"tv": loo_tv, "ph": loo_ph}, round_to="none")
            out.loo_diff.append(float(cmp.loc["tv", "elpd"] - cmp.loc["ph", "elpd"]))
            out.loo_se.append(float(cmp["dse"].max()))
    out.compile_count = sum(m.sampler.compile_count for m in models.values())
    return out


#: posterior quantiles kept per interval: the central 99% and 95% bands and the median
QUANTILES = (0.005, 0.025, 0.5, 0.975, 0.995)


def covered(study: Study, level: float = 0.95) -> np.ndarray:
    """replicates × K: the interval's central ``level`` band holds the true log-HR."""
    q = np.array(study.quantiles)  # R × 5 × K
    lo, hi = (
        int(np.argmin(np.abs(np.array(QUANTILES) - x))) for x in ((1 - level) / 2, (1 + level) / 2)
    )
    return (q[:, lo] <= study.truth) & (study.truth <= q[:, hi])


def summary(study: Study) -> str:
    lines = [f"R = {study.replicates}, N = {study.n}, events median {np.median(study.events):.0f}"]
    for level in (0.95, 0.99):
        cov = covered(study, level)
        lines += [
            f"{level:.0%} bands: per-interval coverage {np.round(cov.mean(0), 3).tolist()}, "
            f"all {cov.mean():.3f}; replicates with every interval covered: "
            f"{cov.all(1).sum()} / {study.replicates}; covered intervals per replicate: "
            f"{np.bincount(cov.sum(1), minlength=len(study.truth) + 1).tolist()}",
        ]
    lines += [
        f"P(late < early): min {min(study.p_late_below_early):.4f}, "
        f"median {np.median(study.p_late_below_early):.4f}",
        f"P(|change| > log 1.5): max {max(study.p_change_beyond):.3f}, "
        f"median {np.median(study.p_change_beyond):.3f}, mean {np.mean(study.p_change_beyond):.3f}",
        f"change z = mean / SD of β_K − β_1: mean {np.mean(study.change_z):+.2f}, "
        f"SD {np.std(study.change_z, ddof=1):.2f}, max {max(study.change_z):+.2f}",
        f"divergences: {sum(study.divergences)} in {sum(x > 0 for x in study.divergences)} fits; "
        f"R-hat max {max(study.rhat):.4f}; min ESS {min(study.ess):.0f}",
        f"compilations {study.compile_count}",
    ]
    if study.loo_diff:
        z = np.array(study.loo_diff) / np.array(study.loo_se)
        lines.append(
            f"LOO diff (tv − ph) median {np.median(study.loo_diff):+.2f}; z > 2 in "
            f"{(z > 2).sum()}, z < −2 in {(z < -2).sum()} of {len(z)}"
        )
    return "\n".join(lines)


if __name__ == "__main__":
    which = sys.argv[1]
    r = int(sys.argv[2]) if len(sys.argv) > 2 else 20
    n = int(sys.argv[3]) if len(sys.argv) > 3 else 1000
    truth = CROSSING if which == "crossing" else PH
    priors = None
    if len(sys.argv) > 5 and sys.argv[5] == "pinned":  # power: the walk pinned at PH
        priors = {"treatment_rw_sigma": {"family": "half_normal", "sigma": 0.001}}
    study = run_study(truth, r, n, with_constant=(which == "ph"), priors=priors)
    print(summary(study))
    if len(sys.argv) > 4:  # keep the replicates for the tests' rate calculations
        import pickle

        with open(sys.argv[4], "wb") as fh:
            pickle.dump(study, fh)
