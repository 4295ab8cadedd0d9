"""The PyMC piecewise-exponential proportional-hazards model (see models/piecewise_exponential.md).

    h_i(t) = exp(α_k(t) + η_i),   η_i = β·trt_i + x_iᵀγ + f(b_i) + trt_i·g(b_i) + u_centre(i)

``treatment_effect: time_varying`` replaces β by β_k, one log-HR per baseline interval under a
random walk: the treated arm has its own baseline row α_k + β_k (a stratified likelihood), and
the baseline walk is the log-hazard midway between the arms.

Likelihood from per-patient sufficient statistics, O(N + K): for patient i leaving in interval
j_i after o_i time units in it,  log L_i = d_i (α_{j_i} + η_i) − exp(η_i) · H0(t_i),
H0(t_i) = C_{j_i} + exp(α_{j_i}) o_i,  C = cumsum over full intervals of exp(α_k) w_k.
No patient × interval expansion. All per-patient arrays and the treatment / interaction prior
hyperparameters are ``pm.Data``, so one compiled model is refitted on new data of the same shape,
or under another prior scenario, without recompiling.
"""

from __future__ import annotations

import numpy as np
import pymc as pm
import pytensor.tensor as pt

from ..config.priors import FLAT_SIGMA, as_mixture_params, require_normal_or_flat
from ..data.design import Design
from .fused import fused_loglik_terms, fused_strata_loglik_terms
from .impute import discrete_terms, fill_missing

# ----------------------------------------------------------------------------- likelihood


def pem_parts(alpha, eta, interval, offset, widths):
    """(log hazard at exit, cumulative hazard at exit) per patient: a cumsum over K and a gather."""
    lam = pt.exp(alpha)
    cum_start = pt.concatenate([pt.zeros(1), pt.cumsum(lam[:-1] * widths[:-1])])
    h0 = cum_start[interval] + lam[interval] * offset
    return alpha[interval] + eta, pt.exp(eta) * h0


def pem_strata_parts(alpha, eta, stratum, interval, offset, widths):
    """:func:`pem_parts` with one baseline row per stratum (alpha: G × K; patient i uses row
    stratum[i]). The time-varying treatment effect: rows (α, α + β), stratum = treatment arm."""
    lam = pt.exp(alpha)
    zeros = pt.zeros((alpha.shape[0], 1))
    cum_start = pt.concatenate([zeros, pt.cumsum(lam[:, :-1] * widths[:-1], axis=1)], axis=1)
    h0 = cum_start[stratum, interval] + lam[stratum, interval] * offset
    return alpha[stratum, interval] + eta, pt.exp(eta) * h0


def pem_loglik_terms(alpha, eta, interval, offset, event, widths):
    """Per-patient log-likelihood of the piecewise-exponential model (PyTensor or NumPy inputs)."""
    log_h, cum_h = pem_parts(alpha, eta, interval, offset, widths)
    return event * log_h - cum_h


def poisson_expand(times, event, starts):
    """Reference only (tests, benchmark): the patient × interval expansion of the Poisson trick."""
    ends = np.append(starts[1:], np.inf)
    rows, ks, expo, dk = [], [], [], []
    for i, (t, d) in enumerate(zip(times, event)):
        for k, (s, e) in enumerate(zip(starts, ends)):
            if t <= s:
                break
            rows.append(i)
            ks.append(k)
            expo.append(min(t, e) - s)
            dk.append(d if t <= e else 0.0)
    return np.array(rows), np.array(ks), np.array(expo), np.array(dk)


def poisson_loglik_terms(alpha, eta, rows, ks, exposure, d):
    """Poisson-trick log-likelihood terms: d log μ − μ with μ = exposure · exp(α_k + η_i)."""
    log_mu = pt.log(exposure) + alpha[ks] + eta[rows]
    return d * log_mu - pt.exp(log_mu)


def _pem_logp(value, log_h, cum_h):
    return value * log_h - cum_h


def _fused_logp(value, alpha, eta, interval, offset, widths):
    return fused_loglik_terms(alpha, eta, interval, offset, value, widths)


def _fused32_logp(value, alpha, eta, interval, offset, widths):
    return fused_loglik_terms(alpha, eta, interval, offset, value, widths, precision="float32")


def _strata_logp(value, alpha, eta, stratum, interval, offset, widths):
    return fused_strata_loglik_terms(alpha, eta, stratum, interval, offset, value, widths)


def _strata32_logp(value, alpha, eta, stratum, interval, offset, widths):
    return fused_strata_loglik_terms(
        alpha, eta, stratum, interval, offset, value, widths, precision="float32"
    )


# ----------------------------------------------------------------------------- priors


def location_prior_rv(name: str, prior) -> pt.TensorVariable:
    """A scalar coefficient whose prior is a 2-component Student-t mixture with data
    hyperparameters."""
    p = as_mixture_params(prior)
    w = pm.Data(f"prior_{name}_w", np.asarray(p["w"], float))
    nu = pm.Data(f"prior_{name}_nu", np.asarray(p["nu"], float))
    mu = pm.Data(f"prior_{name}_mu", np.asarray(p["mu"], float))
    sigma = pm.Data(f"prior_{name}_sigma", np.asarray(p["sigma"], float))
    return pm.Mixture(name, w=w, comp_dists=pm.StudentT.dist(nu=nu, mu=mu, sigma=sigma, shape=(2,)))


def prior_data(name: str, prior) -> dict[str, np.ndarray]:
    """The pm.Data values that set a location prior (for ``with_data`` refits)."""
    p = as_mixture_params(prior)
    return {f"prior_{name}_{k}": np.asarray(v, float) for k, v in p.items()}


def _normal(name, prior, **kw):
    require_normal_or_flat(f"the prior of '{name}'", prior)
    if prior.family == "flat":
        return pm.Normal(name, 0.0, FLAT_SIGMA, **kw)
    return pm.Normal(name, prior.mu, prior.sigma, **kw)


# ----------------------------------------------------------------------------- model

#: events per baseline interval from which the centred walk is used under ``parametrisation: auto``
CENTRED_FROM_EVENTS_PER_INTERVAL = 400


def baseline_centred(design: Design) -> bool:
    """Centred walk when the intervals are data-rich on average (the non-centred steps are then
    strongly correlated: 4x slower at N = 20 000); non-centred when events are sparse."""
    mode = design.baseline_parametrisation
    if mode != "auto":
        return mode == "centred"
    return design.event.sum() / design.n_intervals >= CENTRED_FROM_EVENTS_PER_INTERVAL


#: events from which partially pooled covariate effects are sampled centred (below: non-centred)
CENTRED_COVARIATES_FROM_EVENTS = 1000


def covariates_centred(design: Design) -> bool:
    """Partially pooled covariate effects γ_j ~ N(0, τ²): centred when the events pin each γ_j
    down well below τ (posterior SD ≈ 1/√events per standardised covariate: 0.03 at 1000
    events), non-centred (γ = τ·z, z ~ N(0, 1)) below, where the centred form has a funnel at
    small τ (NUTS divergences on the 90-event synthetic cohort, models/piecewise_exponential.md)."""
    return design.event.sum() >= CENTRED_COVARIATES_FROM_EVENTS


def default_target_accept(design: Design) -> float:
    """0.99 for the non-centred walk (funnel-like tails in its scale), 0.9 otherwise."""
    return 0.9 if (design.n_intervals == 1 or baseline_centred(design)) else 0.99


def build_model(design: Design, priors: dict) -> pm.Model:
    """Build (not sample) the PyMC model for a design. ``priors`` is ``merge_priors(...)``
    output."""
    spec = design.spec
    coords = {
        "interval": [
            f"[{a:g}, {b:g})" for a, b in zip(design.starts, np.append(design.starts[1:], np.inf))
        ]
    }
    if design.cov_names:
        coords["covariate"] = design.cov_names
    if design.centre_labels:
        coords["centre"] = design.centre_labels
    n_pen = design.basis.n_penalised() if design.basis is not None else 0
    if n_pen:
        coords["spline_term"] = [f"s{k + 1}" for k in range(n_pen)]

    with pm.Model(coords=coords) as model:
        dd = design.data_dict()
        event = pm.Data("event", dd["event"])
        treat = pm.Data("treat", dd["treat"])
        interval = pm.Data("interval_idx", dd["interval_idx"])
        offset = pm.Data("offset", dd["offset"])
        widths = pm.Data("widths", dd["widths"])
        log_rate = pm.Data("log_rate", dd["log_rate"])

        # baseline log-hazard: a random walk across intervals around the crude rate
        k = design.n_intervals
        p0 = priors["baseline_start"]
        if k == 1:
            walk = _normal("baseline_start", p0)[None]
        elif baseline_centred(design):  # data-rich intervals: the walk itself is the parameter
            rw_sigma = pm.HalfNormal("baseline_rw_sigma", priors["baseline_rw_sigma"].sigma)
            mu0, sd0 = (0.0, FLAT_SIGMA) if p0.family == "flat" else (p0.mu, p0.sigma)
            walk = pm.GaussianRandomWalk(
                "baseline_walk", sigma=rw_sigma, steps=k - 1, init_dist=pm.Normal.dist(mu0, sd0)
            )
        else:  # few events per interval: non-centred steps
            start = _normal("baseline_start", p0)
            rw_sigma = pm.HalfNormal("baseline_rw_sigma", priors["baseline_rw_sigma"].sigma)
            steps = pm.Normal("baseline_steps", 0.0, 1.0, shape=k - 1)
            walk = start + pt.concatenate([pt.zeros(1), pt.cumsum(rw_sigma * steps)])
        beta = location_prior_rv("treatment", priors["treatment"])
        if design.time_varying:  # β_k per interval; β (`treatment`) their event-weighted mean
            beta_t = treatment_walk(beta, dd["event_share"], priors["treatment_rw_sigma"])
            eta = pt.zeros_like(treat)
            # the baseline walk is the log-hazard midway between the arms (control α = walk −
            # β_k/2, treated walk + β_k/2): its posterior is nearly uncorrelated with β_k when
            # the arms have similar event counts, unlike the control log-hazard's (corr. ≈
            # √(d_1/d)); measured: no divergent fit in 16 against 2 in 14 (model card)
            walk = walk - beta_t / 2
        else:
            eta = beta * treat
        alpha = pm.Deterministic("log_baseline_hazard", log_rate + walk, dims="interval")
        # data.missing: impute — the columns with their missing values as parameters (impute.py)
        filled = fill_missing(design, dd, treat) if design.missing is not None else {}

        gamma = None
        if design.cov_names:
            X = filled["X"] if "X" in filled else pm.Data("X", dd["X"])
            if spec.covariate_pooling == "partial":  # exchangeable effects, common estimated scale
                tau = pm.HalfNormal("covariate_scale", priors["covariate_scale"].sigma)
                if covariates_centred(design):  # data-rich: the effects themselves
                    gamma = pm.Normal("covariate_effects", 0.0, tau, dims="covariate")
                else:  # few events: non-centred, no funnel where the scale is small
                    raw = pm.Normal("covariate_raw", 0.0, 1.0, dims="covariate")
                    gamma = pm.Deterministic("covariate_effects", tau * raw, dims="covariate")
            else:
                gamma = _normal("covariate_effects", priors["covariates"], dims="covariate")
            eta = eta + pt.dot(X, gamma)

        if design.basis is not None:
            z = filled["bm_z"] if "bm_z" in filled else pm.Data("bm_z", dd["bm_z"])
            main = _normal("biomarker_effect", priors["biomarker"])
            inter = location_prior_rv("interaction", priors["interaction"])
            f_b, g_b = main * z, inter * z
            if n_pen:
                pen = filled.get("bm_pen")
                pen = pm.Data("bm_pen", dd["bm_pen"]) if pen is None else pen
                s_f = pm.HalfNormal("biomarker_spline_sigma", priors["spline_sigma"].sigma)
                s_g = pm.HalfNormal("interaction_spline_sigma", priors["spline_sigma"].sigma)
                u_f = pm.Normal("biomarker_spline_raw", 0.0, 1.0, dims="spline_term")
                u_g = pm.Normal("interaction_spline_raw", 0.0, 1.0, dims="spline_term")
                pm.Deterministic("biomarker_spline", s_f * u_f, dims="spline_term")
                pm.Deterministic("interaction_spline", s_g * u_g, dims="spline_term")
                f_b = f_b + pt.dot(pen, s_f * u_f)
                g_b = g_b + pt.dot(pen, s_g * u_g)
            eta = eta + f_b + treat * g_b

        if design.centre_labels:
            cidx = pm.Data("centre_idx", dd["centre_idx"])
            c_sigma = pm.HalfNormal("centre_sigma", priors["centre_sigma"].sigma)
            c_raw = pm.Normal("centre_raw", 0.0, 1.0, dims="centre")
            frailty = pm.Deterministic("centre_frailty", c_sigma * c_raw, dims="centre")
            eta = eta + frailty[cidx]

        if design.missing is not None:  # missing discrete values: marginalised over their levels
            surv = {"interval": interval, "offset": offset, "event": event, "widths": widths}
            discrete_terms(design, filled, treat, alpha, eta, gamma, surv)

        if design.time_varying:  # one baseline row per arm: control α, treated α + β_k
            rows = pt.stack([alpha, alpha + beta_t])
            stratum = pt.cast(treat, "int64")
            args = (rows, eta, stratum, interval, offset, widths)
            if design.likelihood != "graph":
                f32 = design.likelihood == "fused_float32"
                pm.CustomDist(
                    "survival",
                    *args,
                    logp=_strata32_logp if f32 else _strata_logp,
                    signature="(g,k),(n),(n),(n),(n),(k)->(n)",
                    observed=event,
                )
            else:
                log_h, cum_h = pem_strata_parts(*args)
                pm.CustomDist("survival", log_h, cum_h, logp=_pem_logp, observed=event)
        elif design.likelihood != "graph":  # the same terms from one O(N + K) Op (fused.py)
            pm.CustomDist(
                "survival",
                alpha,
                eta,
                interval,
                offset,
                widths,
                logp=_fused32_logp if design.likelihood == "fused_float32" else _fused_logp,
                signature="(k),(n),(n),(n),(k)->(n)",
                observed=event,
            )
        else:
            log_h, cum_h = pem_parts(alpha, eta, interval, offset, widths)
            pm.CustomDist("survival", log_h, cum_h, logp=_pem_logp, observed=event)
    return model


def treatment_walk(beta, event_share: np.ndarray, sigma_prior) -> pt.TensorVariable:
    """The time-varying treatment log-HR, one per interval (``treatment_over_time``):

        β_k = β + W_k − Σ_j π_j W_j,   W_1 = 0,   W_k = W_{k−1} + σ/√(K−1)·ε_k,   ε_k ~ N(0, 1)

    π = each interval's share of the events (``event_share``, data), so β — the ``treatment``
    parameter, under the treatment prior — is the event-weighted mean of the β_k, and σ
    (``treatment_rw_sigma``) is the prior SD of the change from the first interval to the last.
    Non-centred: the steps are the parameters."""
    k = len(event_share)
    share = pm.Data("event_share", np.asarray(event_share, float))
    sigma = pm.HalfNormal("treatment_rw_sigma", sigma_prior.sigma)
    steps = pm.Normal("treatment_rw_steps", 0.0, 1.0, shape=k - 1)
    walk = pt.concatenate([pt.zeros(1), pt.cumsum(sigma / np.sqrt(k - 1) * steps)])
    return pm.Deterministic(
        "treatment_over_time", beta + walk - pt.dot(share, walk), dims="interval"
    )


def used_prior_terms(design: Design) -> list[str]:
    """The prior terms a design's model actually uses (for reports)."""
    terms = ["treatment", "baseline_start"] + (
        ["baseline_rw_sigma"] if design.n_intervals > 1 else []
    )
    if design.cov_names:
        terms.append(
            "covariate_scale" if design.spec.covariate_pooling == "partial" else "covariates"
        )
    if design.basis is not None:
        terms += ["biomarker", "interaction"] + (
            ["spline_sigma"] if design.basis.n_penalised() else []
        )
    if design.centre_labels:
        terms.append("centre_sigma")
    if design.time_varying:
        terms.append("treatment_rw_sigma")
    return terms
