"""data.missing: impute, statistically (slow): coverage of the truth, closeness to the full-data
fit compared with complete cases, and agreement with multiple imputation (scikit-learn's
IterativeImputer, Cox fits by lifelines, Rubin's rules).

Simulated trials with known truth: n = 250, 1:1 arms, x2 ~ Bernoulli(0.5), x1 = 0.8 (x2 − ½) +
N(0, 1); exponential event times with rate 0.1 exp(η), censoring uniform on [5, 15] (about 60%
events).
* covariate scenario: η = β trt + γ1 x1 + γ2 x2 (β = log 0.7, γ1 = 0.6, γ2 = 0.5); 20% of x1
  deleted; the model adjusts for x1 and x2 (no pooling: the truth is the conditional HR).
* biomarker scenario: log b = 0.5 x1 + N(0, 0.8²); η = β trt + γ2 x2 + 0.3 log b + δ trt log b
  (δ = −0.5); 20% of b deleted; log-linear interaction model adjusting for x2.
Deletion: MCAR (uniform), or MAR on observed values — weights exp(1.2 event + 0.8 x2 − 0.1 time)
(the outcome and a covariate: complete cases are then a biased sample).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from trialbayes.config.data_sources import ColumnMap
from trialbayes.config.schema import Baseline, ModelSpec, SamplerSpec
from trialbayes.data.table import from_frame
from trialbayes.models.pem import PiecewiseExponentialModel

pytestmark = pytest.mark.slow

BETA, G1, G2, B_MAIN, DELTA = np.log(0.7), 0.6, 0.5, 0.3, -0.5
N, SHARE, REPLICATES, LEVEL = 250, 0.2, 15, 0.9
COLS = ColumnMap(id="id", time="time", event="event", arm="arm", treatment_level=1,
                 biomarkers=["bm"], covariates=["x1", "x2"])
SAMPLER = SamplerSpec(chains=2, draws=400, tune=400, progress="off")


def trial(n: int, seed: int, biomarker: bool = False) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    trt = np.arange(n) % 2
    x2 = (rng.random(n) < 0.5).astype(float)
    x1 = 0.8 * (x2 - 0.5) + rng.normal(0, 1, n)
    lb = 0.5 * x1 + rng.normal(0, 0.8, n)
    if biomarker:
        eta = BETA * trt + G2 * x2 + B_MAIN * lb + DELTA * trt * lb
    else:
        eta = BETA * trt + G1 * x1 + G2 * x2
    t = rng.exponential(1 / (0.1 * np.exp(eta)))
    c = rng.uniform(5, 15, n)
    return pd.DataFrame({"id": np.arange(n), "time": np.minimum(t, c),
                         "event": (t <= c).astype(int), "arm": trt, "x1": x1, "x2": x2,
                         "bm": np.exp(lb)})


def delete(df: pd.DataFrame, col: str, mechanism: str, seed: int) -> pd.DataFrame:
    """Exactly SHARE of ``col`` deleted (a fixed count: every replicate's model has one shape,
    so it is compiled once)."""
    rng = np.random.default_rng(seed + 7919)
    w = (np.ones(len(df)) if mechanism == "mcar"
         else np.exp(1.2 * df["event"] + 0.8 * df["x2"] - 0.1 * df["time"]).to_numpy())
    rows = rng.choice(len(df), int(round(SHARE * len(df))), replace=False, p=w / w.sum())
    out = df.copy()
    out.loc[rows, col] = np.nan
    return out


def fit(df, spec, missing="error"):
    data = from_frame(df, COLS, missing=missing)
    m = PiecewiseExponentialModel(spec, baseline=Baseline(n_intervals=4), sampler=SAMPLER)
    return m.build(data).fit(seed=11, log_likelihood=False)


def targets(m, biomarker: bool) -> dict[str, np.ndarray]:
    """Draws of the two checked quantities and their truths: the treatment log-HR (at the
    model's biomarker reference) and the incomplete column's coefficient (γ1 per unit of x1, or
    δ per log unit of the biomarker)."""
    d = m.draws()
    if not biomarker:
        g1 = d["covariate_effects"][:, 0] / m.design.cov_sd[0]
        return {"treatment": (d["treatment"], BETA), "column": (g1, G1)}
    # z = (log b − centre) / scale: β_ref = β + δ·centre; δ = interaction / scale
    b = m.design.basis
    return {"treatment": (d["treatment"], BETA + DELTA * b.centre),
            "column": (d["interaction"] / b.scale, DELTA)}


def scenario(kind: str, mechanism: str, seed0: int) -> list[dict]:
    bm = kind == "biomarker"
    spec = (ModelSpec(name="i", covariates=["x2"], covariate_pooling="none",
                      interaction="log_linear", biomarker="bm") if bm
            else ModelSpec(name="a", covariates=["x1", "x2"], covariate_pooling="none"))
    rows = []
    for r in range(REPLICATES):
        seed = seed0 + r
        full = trial(N, seed, bm)
        holed = delete(full, "bm" if bm else "x1", mechanism, seed)
        fits = {"full": fit(full, spec), "imputed": fit(holed, spec, "impute"),
                "cc": fit(holed, spec, "complete_case")}
        t = {k: targets(m, bm) for k, m in fits.items()}
        row = {"kind": kind, "mechanism": mechanism, "seed": seed}
        for q in ("treatment", "column"):
            draws, truth = t["imputed"][q]
            lo, hi = np.quantile(draws, [(1 - LEVEL) / 2, (1 + LEVEL) / 2])
            row[f"{q}_covered"] = bool(lo <= truth <= hi)
            ref = t["full"][q][0].mean()
            row[f"{q}_imp_err"] = abs(draws.mean() - ref)
            row[f"{q}_cc_err"] = abs(t["cc"][q][0].mean() - ref)
        rows.append(row)
    return rows


@pytest.fixture(scope="module")
def simulation(tmp_path_factory):
    parts = [scenario(k, m, 1000 * i) for i, (k, m) in enumerate(
        [("covariate", "mcar"), ("covariate", "mar"), ("biomarker", "mcar"),
         ("biomarker", "mar")])]
    df = pd.DataFrame([r for p in parts for r in p])
    for q in ("treatment", "column"):
        df[f"{q}_closer"] = df[f"{q}_imp_err"] < df[f"{q}_cc_err"]
    print("\n", df.groupby(["kind", "mechanism"]).mean(numeric_only=True).round(3).to_string())
    print(df.filter(like="_covered").sum().to_dict(), df.filter(like="_closer").sum().to_dict())
    rms = {c: float(np.sqrt((df[c] ** 2).mean())) for c in df.filter(like="_err").columns}
    print("RMS distance to the full-data fit:", {k: round(v, 4) for k, v in rms.items()})
    path = tmp_path_factory.mktemp("missing_sim") / "replicates.csv"
    df.to_csv(path, index=False)
    print("per-trial results:", path)
    return df


#: pooled over the 4 scenarios × 15 replicates = 60 intervals per quantity
N_CHECKS = 4 * REPLICATES
#: pass when at least this many 90% intervals cover: P(Bin(60, 0.9) < 46) = 0.0007 at nominal
#: coverage (0.004 if the true coverage of these fixed-truth intervals were 0.88)
MIN_COVERED = 46


def test_minimum_covered_is_the_stated_binomial_quantile():
    assert stats.binom.cdf(MIN_COVERED - 1, N_CHECKS, LEVEL) < 0.001
    assert stats.binom.cdf(MIN_COVERED, N_CHECKS, LEVEL) > 0.001


@pytest.mark.parametrize("quantity", ["treatment", "column"])
def test_the_imputed_fit_covers_the_truth_at_the_nominal_rate(simulation, quantity):
    """90% intervals of the treatment log-HR and of the incomplete column's coefficient, MCAR
    and MAR, covariate and biomarker: at least 46 of 60 cover (false failure 0.07% each at
    nominal coverage)."""
    covered = int(simulation[f"{quantity}_covered"].sum())
    assert covered >= MIN_COVERED, simulation.groupby(["kind", "mechanism"])[
        f"{quantity}_covered"].mean()


#: closeness to the full-data fit's posterior mean (root mean square over trials). Measured on
#: these 60 trials: treatment log-HR 0.033 (imputed) vs 0.087 (complete cases), ratio 0.38
#: (bootstrap over trials within scenario: 99.9% quantile 0.54, above 0.7 in 0 of 20 000); x1's
#: coefficient in the covariate scenarios 0.75 (above 1 in 0.085% of bootstraps). Imputed
#: closer on the treatment log-HR in 47 of 60 trials; at a true share of 0.7, P(Bin(60, 0.7) <
#: 30) = 0.0004. Mean imputation (the missing cells left at the mean, no latent values) fails:
#: ratios 0.74 and 1.41 on 10 MAR covariate trials.
RMS_RATIO, MIN_CLOSER = 0.7, 30


def _rms_ratio(df, q):
    return np.sqrt((df[f"{q}_imp_err"] ** 2).mean()) / np.sqrt((df[f"{q}_cc_err"] ** 2).mean())


def test_the_imputed_fit_is_closer_to_the_full_data_fit_than_complete_cases(simulation):
    """Distance of posterior means to the full-data fit's. Treatment log-HR: RMS ratio
    imputed / complete case below 0.7 (false failure < 5e-5, bootstrap) and imputed closer in at
    least 30 of 60 trials (false failure 0.0004 at a true share of 0.7); the incomplete
    covariate's coefficient (covariate scenarios): RMS ratio below 1 (false failure 0.001,
    bootstrap). The biomarker's interaction gains little under MCAR (the rows without the value
    carry little information on it): reported in the model card, not tested."""
    imp, cc = simulation["treatment_imp_err"], simulation["treatment_cc_err"]
    assert _rms_ratio(simulation, "treatment") < RMS_RATIO
    assert int((imp < cc).sum()) >= MIN_CLOSER, simulation.groupby(["kind", "mechanism"])[
        "treatment_closer"].mean()
    assert _rms_ratio(simulation[simulation["kind"] == "covariate"], "column") < 1


# ----------------------------------------------------------------------------- MI cross-check
def rubin(estimates: np.ndarray, variances: np.ndarray) -> tuple[float, float]:
    """Rubin's rules: pooled estimate and total SE (within + (1 + 1/m) between)."""
    m = len(estimates)
    qbar, ubar, b = estimates.mean(), variances.mean(), estimates.var(ddof=1)
    return float(qbar), float(np.sqrt(ubar + (1 + 1 / m) * b))


def mice_cox(df: pd.DataFrame, m: int = 40) -> dict[str, tuple[float, float]]:
    """Multiple imputation by chained equations with scikit-learn's IterativeImputer (Bayesian
    ridge, posterior draws), the imputation model including the outcome as White & Royston
    (2009) advise (event indicator and Nelson–Aalen cumulative hazard), then a lifelines Cox fit
    per imputed set, pooled by Rubin's rules."""
    from lifelines import CoxPHFitter, NelsonAalenFitter
    from sklearn.experimental import enable_iterative_imputer  # noqa: F401
    from sklearn.impute import IterativeImputer

    na = NelsonAalenFitter().fit(df["time"], df["event"])
    h = na.cumulative_hazard_at_times(df["time"]).to_numpy()
    cols = ["arm", "x1", "x2"]
    mat = np.column_stack([df[cols].to_numpy(float), df["event"].to_numpy(float), h])
    est = {c: [] for c in cols}
    var = {c: [] for c in cols}
    for k in range(m):
        imp = IterativeImputer(sample_posterior=True, random_state=k, max_iter=20)
        done = imp.fit_transform(mat)
        d = pd.DataFrame(done[:, :3], columns=cols).assign(time=df["time"], event=df["event"])
        cph = CoxPHFitter().fit(d, "time", "event")
        for c in cols:
            est[c].append(cph.params_[c])
            var[c].append(cph.standard_errors_[c] ** 2)
    return {c: rubin(np.array(est[c]), np.array(var[c])) for c in cols}


def test_the_imputed_fit_agrees_with_multiple_imputation_and_cox():
    """One larger trial (n = 600, 20% of x1 missing at random on the outcome and x2): the
    posterior mean treatment log-HR and x1 coefficient of the imputed PEM fit agree with MICE
    + Cox + Rubin's rules within 0.5 of the MI standard error, and the posterior SD with the MI
    SE within 20%. The two differ by model (piecewise-exponential vs Cox partial likelihood;
    the joint model's exact survival likelihood vs MI's linear use of the Nelson–Aalen hazard),
    priors, and Monte Carlo error. Measured 0.04 SE (treatment) and 0.24 SE (x1) apart; the
    Monte Carlo part of a difference (MI's sqrt(B/m) with 40 imputations and the posterior
    mean's MCSE at 2 × 1000 draws) is about 0.07 SE, so the 0.26-SE margin left is 3.5 of its
    SDs: a false failure from the seeds about 5e-4."""
    df = delete(trial(600, 4242), "x1", "mar", 4242)
    mi = mice_cox(df)
    spec = ModelSpec(name="a", covariates=["x1", "x2"], covariate_pooling="none")
    data = from_frame(df, COLS, missing="impute")
    m = PiecewiseExponentialModel(spec, baseline=Baseline(n_intervals=6),
                                  sampler=SamplerSpec(chains=2, draws=1000, tune=1000)).build(data)
    d = m.fit(seed=5, log_likelihood=False).draws()
    bayes = {"arm": d["treatment"], "x1": d["covariate_effects"][:, 0] / m.design.cov_sd[0]}
    for name, v in bayes.items():
        est, se = mi[name]
        print(f"\n{name}: PEM imputed {v.mean():.4f} (SD {v.std():.4f}); MI {est:.4f} "
              f"(SE {se:.4f})")
        assert abs(v.mean() - est) < 0.5 * se, (name, v.mean(), est, se)
        assert 0.8 < v.std() / se < 1.2, (name, v.std(), se)
