"""The typed results model: every number a run reports lives here, computed once.

One hazard-ratio summary type (:class:`HRSummary`) with one vocabulary — ``median``, ``lower``,
``upper`` (the equal-tailed credible interval at ``level``), ``p_hr_below[t]`` = P(HR < t) and
``p_hr_above[t]`` = P(HR > t), keyed by the threshold written with ``:g`` ("1", "0.8", "1.1").
Flat tables use the same names with an ``hr_`` prefix (``hr_median``, ``hr_lower``, ``hr_upper``,
``level``, ``p_hr_below_1``, ``p_hr_above_1.1``).

A run's :class:`Results` has a ``kind`` (``patient_level``, ``reconstructed``, ``published``), the
``schema_version`` below (changed whenever the JSON shape changes), the resolved ``settings`` (each
with where it came from: ``config`` or ``derived`` and the rule), run-level ``flags`` and, per
patient-level model, a :class:`ModelResult` with its own flags. ``Results.to_dict()`` is what
``results.json`` holds; CSV tables, reports and the CLI headline are rendered from these objects.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

import numpy as np
from scipy import stats

from .flags import Flag

SCHEMA_VERSION = "2.0"
SIGN_CONVENTION = "HR = hazard(treatment) / hazard(control); HR < 1 favours treatment"
Kind = Literal["patient_level", "reconstructed", "published"]


def tkey(t: float) -> str:
    """The key of a threshold in ``p_hr_below`` / ``p_hr_above``: 1.0 -> "1", 0.8 -> "0.8"."""
    return f"{float(t):g}"


def level_text(level: float) -> str:
    """0.95 -> "95%", 0.9 -> "90%", 0.975 -> "97.5%"."""
    return f"{100 * level:g}%"


# ----------------------------------------------------------------------------- HR summary
@dataclass(frozen=True)
class HRSummary:
    """Posterior (or closed-form normal) summary of a hazard ratio, from its log scale."""

    median: float
    lower: float
    upper: float
    level: float
    log_mean: float
    log_sd: float
    p_hr_below: dict[str, float]
    p_hr_above: dict[str, float]
    n_draws: int | None = None  # None: exact (closed form)

    @classmethod
    def from_log_draws(
        cls, log_hr, thresholds=(1.0,), harm=(1.1,), level: float = 0.95
    ) -> "HRSummary":
        v = np.asarray(log_hr, float).ravel()
        lo, med, hi = np.quantile(v, [(1 - level) / 2, 0.5, (1 + level) / 2])
        return cls(
            median=float(np.exp(med)),
            lower=float(np.exp(lo)),
            upper=float(np.exp(hi)),
            level=level,
            log_mean=float(v.mean()),
            log_sd=float(v.std(ddof=1)) if v.size > 1 else 0.0,
            p_hr_below={tkey(t): float((v < math.log(t)).mean()) for t in _seq(thresholds)},
            p_hr_above={tkey(t): float((v > math.log(t)).mean()) for t in _seq(harm)},
            n_draws=int(v.size),
        )

    @classmethod
    def from_normal(
        cls, mean: float, sd: float, thresholds=(1.0,), harm=(1.1,), level: float = 0.95
    ) -> "HRSummary":
        z = stats.norm.ppf((1 + level) / 2)
        return cls(
            median=math.exp(mean),
            lower=math.exp(mean - z * sd),
            upper=math.exp(mean + z * sd),
            level=level,
            log_mean=float(mean),
            log_sd=float(sd),
            p_hr_below={
                tkey(t): float(stats.norm.cdf(math.log(t), mean, sd)) for t in _seq(thresholds)
            },
            p_hr_above={tkey(t): float(stats.norm.sf(math.log(t), mean, sd)) for t in _seq(harm)},
            n_draws=None,
        )

    @property
    def p_benefit(self) -> float:
        """P(HR < 1)."""
        return self.p_hr_below["1"]

    def text(self, digits: int = 2) -> str:
        """ "0.70 (0.45–1.08)"."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)} ({f.format(self.lower)}–{f.format(self.upper)})"

    def sentence(self, digits: int = 2) -> str:
        """ "0.70 (95% CrI 0.45–1.08)"."""
        f = f"{{:.{digits}f}}"
        return (
            f"{f.format(self.median)} ({level_text(self.level)} CrI {f.format(self.lower)}–"
            f"{f.format(self.upper)})"
        )

    def flat(self, prefix: str = "") -> dict[str, float]:
        """One table row's worth: hr_median, hr_lower, hr_upper, level, p_hr_below_1, ..."""
        out = {
            f"{prefix}hr_median": self.median,
            f"{prefix}hr_lower": self.lower,
            f"{prefix}hr_upper": self.upper,
            f"{prefix}level": self.level,
        }
        out.update({f"{prefix}p_hr_below_{k}": v for k, v in self.p_hr_below.items()})
        out.update({f"{prefix}p_hr_above_{k}": v for k, v in self.p_hr_above.items()})
        return out

    def to_dict(self) -> dict:
        return asdict(self)


def _seq(t) -> tuple[float, ...]:
    if t is None:
        return ()
    return (float(t),) if isinstance(t, (int, float)) else tuple(float(x) for x in t)


@dataclass(frozen=True)
class Quantity:
    """A summary of a non-HR posterior quantity (survival probability, RMST, their difference)."""

    median: float
    lower: float
    upper: float
    level: float
    p_positive: float | None = None

    @classmethod
    def from_draws(cls, v, level: float = 0.95, with_p: bool = False) -> "Quantity":
        v = np.asarray(v, float).ravel()
        lo, med, hi = np.quantile(v, [(1 - level) / 2, 0.5, (1 + level) / 2])
        return cls(
            float(med), float(lo), float(hi), level, float((v > 0).mean()) if with_p else None
        )


# ----------------------------------------------------------------------------- settings
@dataclass(frozen=True)
class Setting:
    """A resolved analysis setting and where it came from (``config`` or ``derived`` + rule)."""

    value: Any
    source: Literal["config", "derived", "default", "none"]
    rule: str = ""

    def text(self) -> str:
        return (
            "from the config"
            if self.source == "config"
            else (f"derived: {self.rule}" if self.source == "derived" else self.rule or self.source)
        )


# ----------------------------------------------------------------------------- patient-level
@dataclass(frozen=True)
class CoxTerm:
    """A frequentist Cox estimate on the same coding: HR with its confidence interval
    at ``level``."""

    hr: float
    lower: float
    upper: float
    level: float
    log_hr: float
    se: float
    p: float

    def text(self, digits: int = 2) -> str:
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.hr)} ({f.format(self.lower)}–{f.format(self.upper)})"


@dataclass
class Coefficient:
    term: str
    unit: str
    posterior: HRSummary
    cox: CoxTerm | None = None


@dataclass
class SurvivalSummary:
    landmark: float
    time_unit: str
    survival_treatment: Quantity
    survival_control: Quantity
    survival_difference: Quantity
    rmst_treatment: Quantity
    rmst_control: Quantity
    rmst_difference: Quantity


@dataclass
class SubgroupResult:
    label: str
    n: int
    share: float
    events: int
    conditional: HRSummary | None = None
    marginal: HRSummary | None = None
    flags: list[Flag] = field(default_factory=list)


@dataclass
class Subgroups:
    biomarker: str
    unit: str
    cutoffs: list[float]
    cutoffs_source: str
    groups: list[SubgroupResult]


@dataclass
class HRCurve:
    biomarker: str
    unit: str
    reference: float
    transform: str
    kind: str
    benefit_region: list[float] | None  # where P(HR < 1) > 0.9
    median_crosses_1_at: float | None
    at: dict[str, HRSummary]  # keyed by the biomarker value (:g)


@dataclass
class ModelResult:
    """One fitted patient-level model. ``treatment_effect`` is the ``treatment`` coefficient's
    posterior (the same object, from the same draws)."""

    name: str
    estimand: str
    treatment_effect: HRSummary
    reliable: bool
    diagnostics: dict
    sampler: str | None
    spec: dict
    priors: dict[str, str]
    n_intervals: int
    cut_points: list[float]
    cox_method: str
    coefficients: list[Coefficient]
    survival: SurvivalSummary
    subgroups: Subgroups | None = None
    hr_curve: HRCurve | None = None
    flags: list[Flag] = field(default_factory=list)
    cox_status: str = "ok"  # "not_converged" / "failed": no Cox terms are reported (see flags)


@dataclass
class LooComparison:
    table: list[dict] | None
    pareto_k: dict[str, dict]
    verdict: str  # "`a` preferred (Δelpd 5.1, SE 1.9)" or "no clear preference (...)"


# ----------------------------------------------------------------------------- published route
@dataclass
class ScenarioPosterior:
    prior: str
    kind: str
    method: str
    hr: HRSummary
    diagnostics: dict | None = None
    quadrature_check: dict | None = None


@dataclass
class PublishedEstimateResult:
    name: str
    log_hr: float
    se: float
    hr: float
    subgroup: str | None
    share: float | None
    scenarios: dict[str, ScenarioPosterior]
    tipping_points: list[dict] = field(default_factory=list)


# ----------------------------------------------------------------------------- the run
@dataclass
class Results:
    kind: Kind
    config_name: str
    title: str
    data_label: str
    synthetic: bool = False
    schema_version: str = SCHEMA_VERSION
    sign_convention: str = SIGN_CONVENTION
    reliable: bool = True
    unreliable_models: list[str] = field(default_factory=list)
    flags: list[Flag] = field(default_factory=list)
    settings: dict[str, Setting] = field(default_factory=dict)
    data: dict = field(default_factory=dict)
    models: dict[str, ModelResult] = field(default_factory=dict)
    loo: LooComparison | None = None
    kaplan_meier: dict | None = None
    estimates: dict[str, PublishedEstimateResult] = field(default_factory=dict)
    sensitivity: dict | None = None  # prior-scenario refits and power-scaling (patient level)
    sections: dict[str, Any] = field(
        default_factory=dict
    )  # reconstruction, shrinkage, assurance...
    figures: dict[str, str] = field(default_factory=dict)
    figure_captions: dict[str, str] = field(
        default_factory=dict
    )  # what each figure shows (report.html)
    provenance: dict = field(default_factory=dict)

    @property
    def all_flags(self) -> list[Flag]:
        """Run-level flags, then every model's and subgroup's."""
        out = list(self.flags)
        for m in self.models.values():
            out += m.flags
            out += [f for g in (m.subgroups.groups if m.subgroups else []) for f in g.flags]
        return out

    def setting(self, key: str, default=None):
        s = self.settings.get(key)
        return default if s is None else s.value

    @property
    def time_unit(self) -> str:
        return self.setting("time_unit") or "time units"

    def unit_of(self, column: str | None) -> str:
        return (self.setting("units") or {}).get(column, "") if column else ""

    def to_dict(self) -> dict:
        return asdict(self)


# ----------------------------------------------------------------------------- reading back
def from_dict(cls, data):
    """Rebuild a results object (e.g. :class:`Results`) from its ``to_dict()`` / results.json form,
    guided by the dataclass type hints. Used by ``trialbayes report OUTDIR``."""
    import dataclasses
    import types
    import typing

    def build(tp, v):
        if v is None:
            return None
        origin, args = typing.get_origin(tp), typing.get_args(tp)
        if origin in (typing.Union, types.UnionType):
            inner = [a for a in args if a is not type(None)]
            return build(inner[0], v) if len(inner) == 1 else v
        if origin is dict and args:
            return {k: build(args[1], x) for k, x in v.items()}
        if origin is list and args:
            return [build(args[0], x) for x in v]
        if dataclasses.is_dataclass(tp):
            hints = typing.get_type_hints(tp)
            return tp(
                **{
                    f.name: build(hints[f.name], v[f.name])
                    for f in dataclasses.fields(tp)
                    if f.name in v
                }
            )
        return v

    return build(cls, data)


def load_results(path) -> Results:
    """Read a run's results.json back into :class:`Results` (schema 2.x only), checked first
    (:func:`results_check.check_results`: types and ranges; ``ResultsError`` names the key)."""
    import json

    from .outputs import read_nofollow
    from .results_check import ResultsError, check_results

    raw = read_nofollow(path, limit=512 * 2**20)
    if raw is None:
        raise FileNotFoundError(f"{path} not found")

    def no_constant(name):
        raise ResultsError(f"{name} is not a JSON number")

    try:
        d = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError as exc:
        raise ResultsError(f"not UTF-8 text ({exc.reason} at byte {exc.start})") from None
    except json.JSONDecodeError as exc:
        raise ResultsError(f"not JSON ({exc})") from None
    if not isinstance(d, dict) or not str(d.get("schema_version", "")).startswith("2."):
        sv = d.get("schema_version") if isinstance(d, dict) else None
        raise ResultsError(f"schema_version {sv!r}; this trialbayes reads 2.x")
    check_results(d)
    r = from_dict(Results, d)
    r.sections = _revive_sections(r.sections)
    return r


def _revive_sections(sections: dict) -> dict:
    """HR summaries nested in free-form sections (subgroup shrinkage) back to HRSummary."""
    sg = sections.get("subgroup_shrinkage")
    if sg:
        for g in sg["groups"]:
            g["unshrunk"], g["shrunk"] = (
                from_dict(HRSummary, g["unshrunk"]),
                from_dict(HRSummary, g["shrunk"]),
            )
        sg["overall_mu"] = from_dict(HRSummary, sg["overall_mu"])
    return sections
