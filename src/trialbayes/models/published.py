"""Reanalysis from published estimates (see models/published_estimates.md).

Evidence: the normal approximation of a published log-HR, y ~ N(θ, se²), with se from the 95% CI
((log upper − log lower) / (2·z)), given directly, or from events per arm (se = √(1/d₁ + 1/d₀)).
Posterior of θ under a prior scenario: closed form for flat and normal priors; NUTS (PyMC via
nutpie, one compiled model reused through pm.Data) for Student-t and mixture priors, each checked
against numerical quadrature on a fine grid.
"""

from __future__ import annotations

import math

import numpy as np
import pymc as pm
from pydantic import BaseModel
from scipy import integrate, stats

from ..config.priors import FlatPrior, NormalPrior, describe
from ..config.schema import Diagnostics, SamplerSpec
from ..data.evidence import Evidence
from ..estimands.draws import hr_summary
from ..inference.sampler import SamplerRunner, diagnose
from ..results.published import QuadratureCheck, ScenarioPosterior, TippingPoint
from ..results.summaries import HRSummary, tkey
from .graph import location_prior_rv, prior_data

# ----------------------------------------------------------------------------- evidence


# ----------------------------------------------------------------------------- summaries


def summary_normal(
    mean: float, sd: float, thresholds, harm, level: float = 0.95, method: str = "normal"
) -> HRSummary:
    """A normal log-HR: an exact posterior (``normal``), or a published estimate with its SE
    (``published``)."""
    return HRSummary.from_normal(mean, sd, thresholds, harm, level, method=method)


# ----------------------------------------------------------------------------- closed form


def conjugate_posterior(ev: Evidence, prior: BaseModel) -> tuple[float, float] | None:
    """(mean, sd) of θ for a flat or normal prior; None when the prior is not conjugate."""
    if prior.family == "flat":
        return ev.log_hr, ev.se
    if prior.family == "normal":
        prec = 1 / prior.sigma**2 + 1 / ev.se**2
        mean = (prior.mu / prior.sigma**2 + ev.log_hr / ev.se**2) / prec
        return mean, math.sqrt(1 / prec)
    return None


# ----------------------------------------------------------------------------- quadrature (oracle)


def log_prior_density(prior: BaseModel, theta: np.ndarray) -> np.ndarray:
    """Log density of a location prior (flat, normal, Student-t or a two-part mixture) at ``theta``;
    a flat prior gives 0 (unnormalised)."""
    f = prior.family
    if f == "flat":
        return np.zeros_like(theta)
    if f == "normal":
        return stats.norm.logpdf(theta, prior.mu, prior.sigma)
    if f == "student_t":
        return stats.t.logpdf(theta, prior.nu, prior.mu, prior.sigma)
    if f == "mixture":
        a = math.log(prior.weight) + log_prior_density(prior.informative, theta)
        b = math.log(1 - prior.weight) + log_prior_density(prior.vague, theta)
        return np.logaddexp(a, b)
    raise ValueError(f)


def quadrature_posterior(
    ev: Evidence, prior: BaseModel, thresholds, harm: float, level: float = 0.95, n: int = 40001
) -> HRSummary:
    """Posterior summary by numerical integration on a fine grid (any prior; used as an oracle)."""
    grid = np.linspace(ev.log_hr - 14 * ev.se, ev.log_hr + 14 * ev.se, n)
    logp = log_prior_density(prior, grid) + stats.norm.logpdf(ev.log_hr, grid, ev.se)
    w = np.exp(logp - logp.max())
    cdf = integrate.cumulative_trapezoid(w, grid, initial=0.0)
    cdf /= cdf[-1]
    w /= w.sum()
    mean = float((w * grid).sum())
    sd = float(math.sqrt((w * (grid - mean) ** 2).sum()))

    def q(p):
        return float(np.interp(p, cdf, grid))

    def below(x):
        return float(np.interp(x, grid, cdf))

    harms = (harm,) if isinstance(harm, (int, float)) else tuple(harm)
    return HRSummary(
        median=math.exp(q(0.5)),
        lower=math.exp(q((1 - level) / 2)),
        upper=math.exp(q((1 + level) / 2)),
        level=level,
        log_mean=mean,
        log_sd=sd,
        p_hr_below={tkey(t): below(math.log(t)) for t in thresholds},
        p_hr_above={tkey(h): 1 - below(math.log(h)) for h in harms},
        n_draws=None,
    )


# ----------------------------------------------------------------------------- NUTS


class PublishedSampler:
    """One compiled PyMC model y ~ N(θ, se²), θ ~ 2-component Student-t mixture with data
    hyperparameters; every (estimate, prior) pair is new ``pm.Data``, not a recompilation."""

    def __init__(
        self,
        chains: int = 4,
        draws: int = 5000,
        tune: int = 1000,
        seed: int = 1,
        target_accept: float = 0.9,
        backend: str = "nutpie",
    ):

        with pm.Model() as model:
            y = pm.Data("y", 0.0)
            se = pm.Data("se", 1.0)
            theta = location_prior_rv("log_hr", NormalPrior(mu=0.0, sigma=1.0))
            pm.Normal("obs", theta, se, observed=y)
        cfg = SamplerSpec(
            chains=chains,
            draws=draws,
            tune=tune,
            seed=seed,
            target_accept=target_accept,
            progress="off",
            backend=backend,
        )
        self.runner = SamplerRunner(model, cfg)
        self.backend = backend

    @property
    def compile_count(self) -> int:
        return self.runner.compile_count

    def sample(self, ev: Evidence, prior: BaseModel, seed: int | None = None):
        data = {"y": np.asarray(ev.log_hr), "se": np.asarray(ev.se), **prior_data("log_hr", prior)}
        return self.runner.sample(data=data, seed=seed, log_likelihood=False)


def posterior(
    ev: Evidence,
    prior: BaseModel,
    thresholds,
    harm: float,
    level: float = 0.95,
    sampler: PublishedSampler | None = None,
    seed: int | None = None,
    gate=None,
) -> ScenarioPosterior:
    """Posterior for one estimate under one prior: closed form if conjugate, else NUTS (checked
    against quadrature). ``gate``: the run's diagnostics thresholds (config ``diagnostics``)."""
    conj = conjugate_posterior(ev, prior)
    if conj is not None:
        return ScenarioPosterior(
            describe(prior),
            "",
            "closed form (normal-normal)",
            summary_normal(*conj, thresholds, harm, level),
        )
    if sampler is None:
        raise ValueError("a non-conjugate prior needs a PublishedSampler")

    idata = sampler.sample(ev, prior, seed)
    draws = np.asarray(idata.posterior["log_hr"].values).ravel()
    hs = hr_summary(draws, thresholds, harm, level)
    quad = quadrature_posterior(ev, prior, thresholds, harm, level)
    check = QuadratureCheck(
        max_abs_diff_p=max(abs(hs.p_hr_below[k] - quad.p_hr_below[k]) for k in quad.p_hr_below),
        abs_diff_median_hr=abs(hs.median - quad.median),
    )
    return ScenarioPosterior(
        describe(prior),
        "",
        f"NUTS ({sampler.backend})",
        hs,
        diagnose(idata, ["log_hr"], gate or Diagnostics()),
        check,
    )


# ----------------------------------------------------------------------------- prior grid, tipping
# point


def prior_grid(
    ev: Evidence, means: np.ndarray, sds: np.ndarray, threshold: float = 1.0
) -> np.ndarray:
    """P(HR < threshold) for a normal prior N(m, s²) over a grid (len(sds) × len(means)), closed
    form."""
    m, s = np.meshgrid(means, sds)
    prec = 1 / s**2 + 1 / ev.se**2
    mean = (m / s**2 + ev.log_hr / ev.se**2) / prec
    return stats.norm.cdf((math.log(threshold) - mean) * np.sqrt(prec))


def p_benefit_sceptical(ev: Evidence, sd: float) -> float:
    """P(HR < 1) under N(0, sd²) (sd = inf: flat)."""
    prior = NormalPrior(mu=0.0, sigma=sd) if np.isfinite(sd) else FlatPrior()
    mean, post_sd = conjugate_posterior(ev, prior)
    return float(stats.norm.cdf(-mean / post_sd))


def tipping_point(ev: Evidence, level: float, design_hr: float = 0.5) -> TippingPoint:
    """The least sceptical prior N(0, s²) under which P(HR < 1) falls below ``level``: the
    largest such s. P(HR < 1) under N(0, s²) rises monotonically with s (for y < 0) from 0.5 to the
    flat-prior value, so s solves P(s) = level when level lies between them."""
    flat = p_benefit_sceptical(ev, np.inf)
    if ev.log_hr >= 0 or flat <= level:
        return TippingPoint(
            level, flat, None, "P(HR < 1) is below the level even under a flat prior"
        )
    # closed form: −y·s / (se·√(s² + se²)) = Φ⁻¹(level)  ⇒  s = z·se² / √(y² − z²·se²)
    z = stats.norm.ppf(level)
    sd = z * ev.se**2 / math.sqrt(ev.log_hr**2 - (z * ev.se) ** 2)
    return TippingPoint(
        level=level,
        p_flat=flat,
        sd=sd,
        note=f"centred priors N(0, s²) with s < {sd:.3f} give P(HR < 1) < {level}",
        design_hr=design_hr,
        prior_p_hr_below_design=float(stats.norm.cdf(math.log(design_hr) / sd)),
    )
