"""Shrinkage of published subgroup estimates: a Bayesian hierarchical (random-effects) model.

    y_g ~ N(θ_g, se_g²),  θ_g = μ + τ·z_g,  z_g ~ N(0, 1)  (non-centred),
    τ ~ HalfNormal(tau_sigma),  μ ~ prior (default N(0, 10²), effectively flat)

Exchangeable subgroup effects around an overall effect μ. Returns shrunken subgroup HRs,
P(benefit) per subgroup, the posterior of every pairwise contrast (ratio of subgroup HRs) and of τ.
"""

from __future__ import annotations

import itertools

import numpy as np
import pymc as pm

from ..config.priors import FLAT_SIGMA, NormalPrior, require_normal_or_flat
from ..config.schema import Diagnostics, SamplerSpec
from ..data.evidence import Evidence
from ..estimands.draws import hr_summary
from ..inference.sampler import SamplerRunner, diagnose
from ..results.published import Contrast, Shrinkage, ShrunkGroup
from ..results.summaries import Quantity
from .published import summary_normal


def build_shrinkage_model(evs: list[Evidence], tau_sigma: float, mu_prior=None) -> pm.Model:
    """The PyMC random-effects model of the subgroup log-HRs ``evs`` (see the module docstring); a
    flat ``mu_prior`` is taken as N(0, FLAT_SIGMA²)."""
    mu_prior = mu_prior or NormalPrior(mu=0.0, sigma=FLAT_SIGMA)
    require_normal_or_flat("published.subgroups.mu_prior", mu_prior)
    if mu_prior.family == "flat":
        mu_prior = NormalPrior(mu=0.0, sigma=FLAT_SIGMA)
    with pm.Model(coords={"subgroup": [e.name for e in evs]}) as model:
        y = pm.Data("y", np.array([e.log_hr for e in evs]), dims="subgroup")
        se = pm.Data("se", np.array([e.se for e in evs]), dims="subgroup")
        mu = pm.Normal("mu", mu_prior.mu, mu_prior.sigma)
        tau = pm.HalfNormal("tau", tau_sigma)
        z = pm.Normal("z", 0.0, 1.0, dims="subgroup")
        theta = pm.Deterministic("theta", mu + tau * z, dims="subgroup")
        pm.Normal("obs", theta, se, observed=y, dims="subgroup")
    return model


def shrink(
    evs: list[Evidence],
    tau_sigma: float = 0.5,
    mu_prior=None,
    thresholds=(1.0, 0.8),
    harm: float = 1.1,
    level: float = 0.95,
    chains: int = 4,
    draws: int = 5000,
    tune: int = 2000,
    seed: int = 1,
    target_accept: float = 0.99,
    backend: str = "nutpie",
    gate=None,
) -> tuple[Shrinkage, dict[str, np.ndarray]]:
    """Fit the hierarchical model by NUTS and summarise it (``gate``: diagnostics thresholds);
    with the draws of θ (per subgroup), μ and τ."""

    if len(evs) < 2:
        raise ValueError("subgroup shrinkage needs at least two subgroup estimates")
    model = build_shrinkage_model(evs, tau_sigma, mu_prior)
    cfg = SamplerSpec(
        chains=chains,
        draws=draws,
        tune=tune,
        seed=seed,
        target_accept=target_accept,
        progress="off",
        backend=backend,
    )
    idata = SamplerRunner(model, cfg).sample(log_likelihood=False)
    post = idata.posterior
    theta = np.asarray(post["theta"].values).reshape(-1, len(evs))
    mu = np.asarray(post["mu"].values).ravel()
    tau = np.asarray(post["tau"].values).ravel()
    groups = [
        ShrunkGroup(
            e.name,
            e.subgroup,
            e.share,
            summary_normal(e.log_hr, e.se, thresholds, harm, level, method="published"),
            hr_summary(theta[:, j], thresholds, harm, level),
        )
        for j, e in enumerate(evs)
    ]
    contrasts = []
    for a, b in itertools.combinations(range(len(evs)), 2):
        raw, raw_se = evs[a].log_hr - evs[b].log_hr, float(np.hypot(evs[a].se, evs[b].se))
        contrasts.append(
            Contrast(
                f"{evs[a].name} / {evs[b].name}",
                hr_summary(theta[:, a] - theta[:, b], (1.0,), (), level),
                summary_normal(raw, raw_se, (), (), level, method="published"),
            )
        )
    out = Shrinkage(
        model=f"y_g ~ N(θ_g, se_g²), θ_g = μ + τ z_g, τ ~ HalfNormal({tau_sigma:g}), non-centred",
        tau_prior_sigma=tau_sigma,
        groups=groups,
        overall_mu=hr_summary(mu, thresholds, harm, level),
        contrasts=contrasts,
        tau=Quantity.from_draws(tau, level),
        p_tau_above_0_2=float((tau > 0.2).mean()),
        diagnostics=diagnose(idata, ["mu", "tau", "z"], gate or Diagnostics()),
    )
    return out, {"theta": theta, "mu": mu, "tau": tau}


def pooled(evs: list[Evidence]) -> tuple[float, float]:
    """Fixed-effect (precision-weighted) pooled log-HR and its SE: the τ = 0 limit."""
    w = np.array([1 / e.se**2 for e in evs])
    y = np.array([e.log_hr for e in evs])
    return float((w * y).sum() / w.sum()), float(np.sqrt(1 / w.sum()))
