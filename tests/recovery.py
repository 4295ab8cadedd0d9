"""Interval coverage of the patient-level model over replicate synthetic trials (slow tier).

One compiled model is refitted on R replicate trials from the synthetic generator; each fit's
central interval of the treatment effect and of the treatment x biomarker interaction is checked
against the generator's truth. Used by tests/test_statistics.py; runnable on its own
(``python tests/recovery.py R``) to print the counts.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

import numpy as np
from scipy import stats

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
from trialbayes.data.synthetic import SYNTHETIC_COLUMNS, generate
from trialbayes.data.table import from_frame
from trialbayes.models.pem import PiecewiseExponentialModel

#: weak priors, so that the credible interval is close to a confidence interval (Bernstein-von
#: Mises) and its frequentist coverage at the generator's fixed truth is close to nominal
WEAK = {
    t: {"family": "normal", "mu": 0, "sigma": 10}
    for t in ("treatment", "interaction", "biomarker", "covariates")
}
#: the generator's structure: every covariate, centre frailty, a linear pNFH interaction
SPEC = ModelSpec(
    name="coverage",
    covariates="all",
    covariate_pooling="none",
    centre_frailty=True,
    interaction="linear",
    biomarker="pnfh",
)


@dataclass
class Coverage:
    replicates: int
    level: float
    covered: dict = field(default_factory=dict)  # term -> number of intervals holding the truth
    z: dict = field(
        default_factory=dict
    )  # term -> (posterior mean - truth) / posterior SD, per fit
    divergent_fits: int = 0
    compile_count: int = 0


def acceptance_region(r: int, level: float, false_failure: float, n_checks: int) -> tuple[int, int]:
    """Two-sided binomial acceptance region for a count of covered intervals out of ``r``.

    Each of ``n_checks`` counts gets ``false_failure / n_checks`` (Bonferroni), half per tail, so
    a correct procedure (coverage exactly ``level``) fails the whole check with probability at
    most ``false_failure``.
    """
    tail = false_failure / n_checks / 2
    lo = int(stats.binom.ppf(tail, r, level))  # P(K < lo) <= tail
    hi = int(stats.binom.isf(tail, r, level))  # P(K > hi) <= tail
    return lo, hi


def run_coverage(
    r: int = 200,
    level: float = 0.9,
    n: int = 220,
    seed: int = 20261129,
    sampler: SamplerSpec | None = None,
) -> Coverage:
    """Refit one compiled model on ``r`` generator replicates; count covering intervals."""
    cols = ColumnMap(**SYNTHETIC_COLUMNS)
    seeds = [int(s.generate_state(1)[0]) for s in np.random.SeedSequence(seed).spawn(r)]
    sampler = sampler or SamplerSpec(chains=2, draws=250, tune=250, seed=1, progress="off")
    model = PiecewiseExponentialModel(
        SPEC, priors=WEAK, baseline=Baseline(n_intervals=6), sampler=sampler
    )
    out = Coverage(
        replicates=r,
        level=level,
        covered={"treatment": 0, "interaction": 0},
        z={"treatment": [], "interaction": []},
    )
    q = [(1 - level) / 2, (1 + level) / 2]
    for i, s in enumerate(seeds):
        df, truth = generate(n=n, seed=s)
        data = from_frame(df, cols, synthetic=True, truth=truth)
        if i == 0:
            model.fit(data, seed=s, log_likelihood=False)
        else:  # the gate's summaries are not needed here: divergences are counted below
            model.refit(data, seed=s, gate=False, log_likelihood=False)
        d, b = model.draws(), model.design.basis
        # the model's terms: treatment log-HR at the biomarker reference (the replicate's median),
        # interaction per SD of the biomarker (the replicate's SD)
        truths = {
            "treatment": truth.log_hr(b.reference),
            "interaction": truth.log_hr_slope_per_pgml * b.scale,
        }
        for term, true in truths.items():
            lo, hi = np.quantile(d[term], q)
            out.covered[term] += int(lo <= true <= hi)
            out.z[term].append(float((d[term].mean() - true) / d[term].std(ddof=1)))
        out.divergent_fits += int(model.idata.sample_stats["diverging"].sum() > 0)
    out.compile_count = model.sampler.compile_count
    return out


if __name__ == "__main__":
    reps = int(sys.argv[1]) if len(sys.argv) > 1 else 200
    res = run_coverage(reps)
    print(res.covered, "of", reps, "region", acceptance_region(reps, 0.9, 5e-4, 2))
    for term, z in res.z.items():
        print(term, "mean z", np.mean(z), "sd z", np.std(z))
    print("divergent fits", res.divergent_fits, "compiles", res.compile_count)
