"""Prior specifications: families, the default prior per model term, and named scenarios.

A prior is data (a pydantic model), never code. The same objects serve the patient-level
PyMC models (``model.py``) and the published-estimate reanalysis (``published.py``).

Sign convention: priors on treatment coefficients are on the log hazard ratio scale,
treatment vs control; negative values (HR < 1) are benefit.
"""

from __future__ import annotations

import difflib
import math
from typing import Annotated, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, TypeAdapter, ValidationError, model_validator
from scipy import stats


class _Strict(BaseModel):
    # NaN / inf are never a valid setting
    model_config = ConfigDict(extra="forbid", allow_inf_nan=False)

    @model_validator(mode="before")
    @classmethod
    def _typo_hint(cls, data):
        if isinstance(data, dict):
            known = set(cls.model_fields) | _aliases(cls)
            for key in data:
                if key not in known:
                    close = difflib.get_close_matches(str(key), sorted(known), n=1)
                    hint = (
                        f" (did you mean '{close[0]}'?)"
                        if close
                        else f" (allowed: {', '.join(sorted(known))})"
                    )
                    raise ValueError(f"unknown key '{key}'{hint}")
        return data


def _aliases(cls) -> set[str]:
    """Former names a field still accepts (``validation_alias=AliasChoices(name, former)``)."""
    out = set()
    for f in cls.model_fields.values():
        choices = getattr(f.validation_alias, "choices", None) or []
        out |= {c for c in choices if isinstance(c, str)}
    return out


# Bounds of prior parameters (log scales): beyond them a prior is numerically degenerate (the
# sampler cannot initialise) and never meant; a vaguer prior than SD 100 is `family: flat`.
Sigma = Annotated[float, Field(ge=1e-3, le=100.0)]
Mu = Annotated[float, Field(ge=-20.0, le=20.0)]
Nu = Annotated[float, Field(ge=0.5, le=1e6)]


class NormalPrior(_Strict):
    """Normal(``mu``, ``sigma``) prior on the term's log scale (log-HR for treatment terms)."""

    family: Literal["normal"] = "normal"
    mu: Mu = 0.0
    sigma: Sigma


class StudentTPrior(_Strict):
    """Student-t(``nu``, ``mu``, ``sigma``) prior, on the log scale of the term (heavier tails)."""

    family: Literal["student_t"] = "student_t"
    nu: Nu = 3.0
    mu: Mu = 0.0
    sigma: Sigma


class FlatPrior(_Strict):
    """Improper uniform prior. Exact in closed forms; patient-level models use N(0, 10²)."""

    family: Literal["flat"] = "flat"


class MixturePrior(_Strict):
    """Robust mixture: ``weight`` on an informative component, the rest on a vague one."""

    family: Literal["mixture"] = "mixture"
    weight: float = Field(0.8, gt=0.0, lt=1.0)
    informative: NormalPrior | StudentTPrior
    vague: NormalPrior | StudentTPrior = NormalPrior(mu=0.0, sigma=2.0)


class HalfNormalPrior(_Strict):
    """Half-normal(``sigma``) prior of a scale parameter (a standard deviation)."""

    family: Literal["half_normal"] = "half_normal"
    sigma: Sigma


LocationPrior = Annotated[
    NormalPrior | StudentTPrior | FlatPrior | MixturePrior, Field(discriminator="family")
]
ScalePrior = HalfNormalPrior
#: any prior of a model term (a location prior or a scale prior)
Prior = NormalPrior | StudentTPrior | FlatPrior | MixturePrior | HalfNormalPrior

#: Patient-level stand-in for an improper flat prior (log-HR scale: HR from 1e-9 to 1e9 at ±2 SD).
FLAT_SIGMA = 10.0

# Default priors, keyed by model term. Documented in models/piecewise_exponential.md.
NORMAL_ONLY = ("biomarker", "baseline_start", "covariates")
SCALE_TERMS = (
    "baseline_rw_sigma",
    "covariate_scale",
    "centre_sigma",
    "spline_sigma",
    "treatment_rw_sigma",
)


def default_priors() -> dict[str, Prior]:
    """The package's default prior of every model term, by term name (reasons in the comments)."""
    return {
        # log-HR of treatment at the biomarker reference value: 95% prior mass on HR 0.14–7.1
        "treatment": NormalPrior(mu=0.0, sigma=1.0),
        # change in log-HR per SD of the (transformed) biomarker, and the biomarker's main effect
        "interaction": NormalPrior(mu=0.0, sigma=1.0),
        "biomarker": NormalPrior(mu=0.0, sigma=1.0),
        # first interval's log-hazard, centred on the crude log event rate (an offset in the model)
        "baseline_start": NormalPrior(mu=0.0, sigma=1.5),
        # step SD of the random walk across baseline intervals
        "baseline_rw_sigma": HalfNormalPrior(sigma=0.5),
        # common scale of the standardised covariate effects (covariate_pooling: partial)
        "covariate_scale": HalfNormalPrior(sigma=1.0),
        # independent prior of each standardised covariate effect (covariate_pooling: none)
        "covariates": NormalPrior(mu=0.0, sigma=1.0),
        # SD of the centre log-frailty
        "centre_sigma": HalfNormalPrior(sigma=0.5),
        # SD of the penalised (non-linear) spline coefficients
        "spline_sigma": HalfNormalPrior(sigma=0.5),
        # treatment_effect: time_varying — SD of the change in the treatment log-HR from the
        # first to the last baseline interval under the random walk (steps σ/√(K−1))
        "treatment_rw_sigma": HalfNormalPrior(sigma=0.5),
    }


def require_normal_or_flat(where: str, prior: Prior) -> None:
    """The one check of the terms a model gives a normal prior only (the non-centred baseline,
    covariates, the subgroup-shrinkage mean): ValueError naming ``where`` otherwise."""
    if prior.family not in ("normal", "flat"):
        raise ValueError(f"{where} must be normal or flat, got {prior.family}")


def merge_priors(overrides: dict[str, dict] | None) -> dict[str, Prior]:
    """Default | user priors, keyed by term. Unknown terms and wrong families are errors."""
    merged = default_priors()
    for term, spec in (overrides or {}).items():
        if term not in merged:
            close = difflib.get_close_matches(term, list(merged), n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(f"priors: unknown term '{term}'{hint}; terms are {', '.join(merged)}")
        try:
            merged[term] = parse_prior(term, spec)
            if term in NORMAL_ONLY:
                require_normal_or_flat(f"priors.{term}", merged[term])
        except ValidationError as err:
            msgs = "; ".join(
                f"{'.'.join(map(str, e['loc'])) or term}: {e['msg']}" for e in err.errors()
            )
            kind = (
                "a scale (half_normal)"
                if term in SCALE_TERMS
                else "a location (normal, student_t, flat, mixture)"
            )
            raise ValueError(f"priors.{term} must be {kind} prior: {msgs}") from None
    return merged


def parse_prior(term: str, spec) -> Prior:
    """The prior of model term ``term`` from its config form (a scale prior for the scale terms,
    else a location prior)."""
    if isinstance(spec, BaseModel):
        spec = spec.model_dump()
    if term in SCALE_TERMS:
        return HalfNormalPrior.model_validate(spec)
    prior: Prior = TypeAdapter(LocationPrior).validate_python(spec)
    return prior


def describe(prior: Prior) -> str:
    """One-line human description, used in reports."""
    match prior:
        case NormalPrior():
            return f"Normal({prior.mu:.3g}, {prior.sigma:.3g}²)"
        case StudentTPrior():
            return f"Student-t(ν={prior.nu:.3g}, {prior.mu:.3g}, {prior.sigma:.3g})"
        case FlatPrior():
            return "flat (improper uniform)"
        case HalfNormalPrior():
            return f"HalfNormal({prior.sigma:.3g})"
        case MixturePrior():
            w = prior.weight
            return f"{w:.2g}·{describe(prior.informative)} + {1 - w:.2g}·{describe(prior.vague)}"
    raise ValueError(prior)


# --------------------------------------------------------------------------------------
# Named scenarios (Spiegelhalter, Abrams & Myles 2004, ch. 5), on the log-HR scale.
# --------------------------------------------------------------------------------------
SCENARIOS = ("flat", "sceptical", "enthusiastic", "pessimistic", "heavy_tailed", "robust_mixture")


class ScenarioSpec(_Strict):
    """A named prior scenario. ``custom`` takes an explicit ``prior``."""

    name: str
    kind: Literal[
        "flat",
        "sceptical",
        "enthusiastic",
        "pessimistic",
        "heavy_tailed",
        "robust_mixture",
        "custom",
    ]
    design_hr: float = Field(0.5, gt=0.0, lt=1.0)
    tail: float = Field(0.05, gt=0.0, lt=0.5)
    nu: Nu = 3.0
    weight: float = Field(0.8, gt=0.0, lt=1.0)
    vague_sigma: Sigma = 2.0
    prior: LocationPrior | None = None

    @model_validator(mode="after")
    def _custom_needs_prior(self):
        if self.kind == "custom" and self.prior is None:
            raise ValueError(f"scenario '{self.name}': kind 'custom' needs a 'prior'")
        if self.kind != "custom" and self.prior is not None:
            raise ValueError(f"scenario '{self.name}': 'prior' is only for kind 'custom'")
        return self


def sceptical_sigma(design_hr: float = 0.5, tail: float = 0.05) -> float:
    """SD of N(0, s²) with P(HR < design_hr) = tail. 0.4214 for (0.5, 5%)."""
    return abs(math.log(design_hr)) / stats.norm.ppf(1 - tail)


def scenario_prior(spec: ScenarioSpec) -> Prior:
    """The log-HR prior a scenario stands for."""
    s = sceptical_sigma(spec.design_hr, spec.tail)
    d = math.log(spec.design_hr)
    match spec.kind:
        case "flat":
            return FlatPrior()
        case "sceptical":
            return NormalPrior(mu=0.0, sigma=s)
        case "enthusiastic":  # centred on the design effect, P(HR > 1) = tail
            return NormalPrior(mu=d, sigma=s)
        case "pessimistic":  # mirror image: centred on harm of the same size, P(HR < 1) = tail
            return NormalPrior(mu=-d, sigma=s)
        case "heavy_tailed":  # sceptical centre and scale, Student-t tails
            return StudentTPrior(nu=spec.nu, mu=0.0, sigma=s)
        case "robust_mixture":  # sceptical informative part, vague remainder
            return MixturePrior(
                weight=spec.weight,
                informative=NormalPrior(mu=0.0, sigma=s),
                vague=NormalPrior(mu=0.0, sigma=spec.vague_sigma),
            )
        case "custom" if spec.prior is not None:
            return spec.prior
    raise ValueError(spec.kind)


def scenario_interaction_prior(spec: ScenarioSpec, configured: Prior) -> Prior:
    """The interaction (effect-modification) prior that goes with a scenario in the patient-level
    models: the scenario's spread, centred on no effect modification. ``custom`` keeps the
    configured interaction prior."""
    if spec.kind == "custom":
        return configured
    p = scenario_prior(spec)
    if isinstance(p, NormalPrior | StudentTPrior):
        return p.model_copy(update={"mu": 0.0})
    return p  # flat, or a mixture already centred on 0


def default_scenarios(design_hr: float = 0.5) -> list[ScenarioSpec]:
    """One :class:`ScenarioSpec` per named scenario (:data:`SCENARIOS`), all at ``design_hr``."""
    return [ScenarioSpec(name=k, kind=k, design_hr=design_hr) for k in SCENARIOS]


def as_mixture_params(prior: Prior) -> dict[str, list[float]]:
    """Any location prior as a two-component Student-t mixture (weights, nu, mu, sigma).

    The patient-level models carry the treatment and interaction priors in this form as
    ``pm.Data``, so that one compiled model is refitted under every scenario. A single
    component is written as two identical ones (the same density); a normal as ν = 1e6
    (indistinguishable from the normal to ~1e-6 in log density at |z| < 5).
    """
    big = 1e6
    if isinstance(prior, FlatPrior):
        prior = NormalPrior(mu=0.0, sigma=FLAT_SIGMA)
    if isinstance(prior, NormalPrior | StudentTPrior):
        nu = big if isinstance(prior, NormalPrior) else prior.nu
        return {"w": [0.5, 0.5], "nu": [nu, nu], "mu": [prior.mu] * 2, "sigma": [prior.sigma] * 2}
    if isinstance(prior, MixturePrior):
        comps = [prior.informative, prior.vague]
        return {
            "w": [prior.weight, 1 - prior.weight],
            "nu": [big if isinstance(c, NormalPrior) else c.nu for c in comps],
            "mu": [c.mu for c in comps],
            "sigma": [c.sigma for c in comps],
        }
    raise ValueError(f"family '{prior.family}' is not a location prior")


def prior_draws(prior: Prior, n: int, seed: int = 0) -> np.ndarray:
    """``n`` draws from a location prior exactly as the patient-level model carries it (the
    two-component Student-t mixture of :func:`as_mixture_params`; flat as N(0, FLAT_SIGMA²)).
    Stored as the ``prior`` group of the posterior file for prior-vs-posterior figures."""
    p = as_mixture_params(prior)
    rng = np.random.default_rng(seed)
    comp = rng.choice(2, size=n, p=np.asarray(p["w"]) / np.sum(p["w"]))
    nu, mu, sd = (np.asarray(p[k], float)[comp] for k in ("nu", "mu", "sigma"))
    return mu + sd * rng.standard_t(nu)
