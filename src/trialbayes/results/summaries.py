"""The summaries every section is made of: a hazard ratio (:class:`HRSummary`), a posterior
quantity (:class:`Quantity`), and the one equal-tailed interval from draws. Vocabulary:
:mod:`.model`."""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Annotated, Literal

import numpy as np
from pydantic import Field, StringConstraints
from scipy import stats

from ..core.text import level_text

#: a probability: results.json is refused when one lies outside [0, 1]
Probability = Annotated[float, Field(ge=0.0, le=1.0)]
Level = Annotated[float, Field(gt=0.0, lt=1.0)]
#: the key of an HR threshold (``tkey``: "1", "0.8", "1e-05"): a number written out
Threshold = Annotated[str, StringConstraints(pattern=r"^[0-9]+(\.[0-9]+)?(e[+-]?[0-9]+)?$")]
#: a number of patients, events or draws
Count = Annotated[int, Field(ge=0)]
#: a hazard ratio (or a ratio of them): never negative
Ratio = Annotated[float, Field(ge=0.0)]
HRMethod = Literal["draws", "normal", "cox", "published"]


def _exp(x: float) -> float:
    """exp that saturates at the largest float instead of raising (a runaway estimate)."""
    return math.exp(min(x, 709.0))


def tkey(t: float) -> str:
    """The key of a threshold in ``p_hr_below`` / ``p_hr_above``: 1.0 -> "1", 0.8 -> "0.8"."""
    return f"{float(t):g}"


def equal_tailed(v, level: float, axis: int | None = None):
    """(lower, median, upper) of draws ``v``: the equal-tailed interval at ``level`` and the
    median — the one interval from draws in the package. ``axis``: the draws' axis of an array
    (arrays over the other axes are returned); None: every value is a draw (floats)."""
    q = [(1 - level) / 2, 0.5, (1 + level) / 2]
    if axis is None:
        lo, med, hi = np.quantile(np.asarray(v, float).ravel(), q)
        return float(lo), float(med), float(hi)
    lo, med, hi = np.quantile(np.asarray(v, float), q, axis=axis)
    return lo, med, hi


# ----------------------------------------------------------------------------- HR summary
@dataclass(frozen=True)
class HRSummary:
    """A hazard ratio (or a ratio of hazard ratios), from its log scale. See the module docstring
    for the vocabulary."""

    median: Ratio
    lower: Ratio
    upper: Ratio
    level: Level
    log_mean: float
    log_sd: Annotated[float, Field(ge=0.0)]
    p_hr_below: dict[Threshold, Probability] = field(default_factory=dict)
    p_hr_above: dict[Threshold, Probability] = field(default_factory=dict)
    n_draws: Annotated[int, Field(ge=1)] | None = None  # None: exact (closed form) or frequentist
    method: HRMethod = "draws"
    p_value: Probability | None = None  # frequentist estimates only (Wald test of log HR = 0)

    def __post_init__(self):
        """An interval in order (also checked when results.json is read back)."""
        ends = (self.lower, self.median, self.upper)
        if all(math.isfinite(x) for x in ends) and not self.lower <= self.median <= self.upper:
            raise ValueError(
                f"HR interval out of order: lower {self.lower:g}, median {self.median:g}, "
                f"upper {self.upper:g}"
            )

    @classmethod
    def from_log_draws(
        cls, log_hr, thresholds=(1.0,), harm=(1.1,), level: float = 0.95
    ) -> HRSummary:
        """The summary of draws of the log HR (posterior probabilities from the draws)."""
        v = np.asarray(log_hr, float).ravel()
        lo, med, hi = equal_tailed(v, level)
        return cls(
            median=math.exp(med),
            lower=math.exp(lo),
            upper=math.exp(hi),
            level=level,
            log_mean=float(v.mean()),
            log_sd=float(v.std(ddof=1)) if v.size > 1 else 0.0,
            p_hr_below={tkey(t): float((v < math.log(t)).mean()) for t in _seq(thresholds)},
            p_hr_above={tkey(t): float((v > math.log(t)).mean()) for t in _seq(harm)},
            n_draws=int(v.size),
            method="draws",
        )

    @classmethod
    def from_normal(
        cls,
        mean: float,
        sd: float,
        thresholds=(1.0,),
        harm=(1.1,),
        level: float = 0.95,
        method: HRMethod = "normal",
        p_value: float | None = None,
    ) -> HRSummary:
        """A normal distribution of the log HR: a closed-form posterior (``normal``), or a
        frequentist / published estimate with its standard error (``cox``, ``published``:
        probabilities are then left empty, as they are not posterior probabilities)."""
        z = stats.norm.ppf((1 + level) / 2)
        posterior = method == "normal"
        return cls(
            median=_exp(mean),
            lower=_exp(mean - z * sd),
            upper=_exp(mean + z * sd),
            level=level,
            log_mean=float(mean),
            log_sd=float(sd),
            p_hr_below={
                tkey(t): float(stats.norm.cdf(math.log(t), mean, sd)) for t in _seq(thresholds)
            }
            if posterior
            else {},
            p_hr_above={tkey(t): float(stats.norm.sf(math.log(t), mean, sd)) for t in _seq(harm)}
            if posterior
            else {},
            n_draws=None,
            method=method,
            p_value=p_value,
        )

    @property
    def p_benefit(self) -> float:
        """P(HR < 1)."""
        return self.p_hr_below["1"]

    @property
    def frequentist(self) -> bool:
        """A Cox or published estimate (a confidence interval, no posterior probabilities)."""
        return self.method in ("cox", "published")

    def text(self, digits: int = 2) -> str:
        """ "0.70 (0.45–1.08)"."""
        f = f"{{:.{digits}f}}"
        return f"{f.format(self.median)} ({f.format(self.lower)}–{f.format(self.upper)})"

    def sentence(self, digits: int = 2) -> str:
        """ "0.70 (95% CrI 0.45–1.08)" ("CI" for a frequentist or published estimate)."""
        f = f"{{:.{digits}f}}"
        kind = "CI" if self.frequentist else "CrI"
        return (
            f"{f.format(self.median)} ({level_text(self.level)} {kind} {f.format(self.lower)}–"
            f"{f.format(self.upper)})"
        )

    def flat(self, prefix: str = "") -> dict[str, float | None]:
        """One table row's worth: median, lower, upper, level, p_hr_below_1, ... (prefixed)."""
        out: dict[str, float | None] = {
            f"{prefix}median": self.median,
            f"{prefix}lower": self.lower,
            f"{prefix}upper": self.upper,
            f"{prefix}level": self.level,
        }
        out.update({f"{prefix}p_hr_below_{k}": v for k, v in self.p_hr_below.items()})
        out.update({f"{prefix}p_hr_above_{k}": v for k, v in self.p_hr_above.items()})
        if self.p_value is not None:
            out[f"{prefix}p_value"] = self.p_value
        return out

    def with_level(self, level: float) -> HRSummary:
        """The same normal estimate at another level (closed form and frequentist only)."""
        if self.n_draws is not None:
            raise ValueError("an HRSummary from draws cannot change its level without the draws")
        z = stats.norm.ppf((1 + level) / 2)
        return replace(
            self,
            level=level,
            lower=math.exp(self.log_mean - z * self.log_sd),
            upper=math.exp(self.log_mean + z * self.log_sd),
        )


def _seq(t) -> tuple[float, ...]:
    if t is None:
        return ()
    return (float(t),) if isinstance(t, int | float) else tuple(float(x) for x in t)


@dataclass(frozen=True)
class Quantity:
    """A summary of a non-HR posterior quantity (survival probability, RMST, their difference)."""

    median: float
    lower: float
    upper: float
    level: Level
    p_positive: Probability | None = None
    n_draws: int | None = None

    @classmethod
    def from_draws(cls, v, level: float = 0.95, with_p: bool = False) -> Quantity:
        """The summary of draws of the quantity (``with_p``: P(quantity > 0) too)."""
        v = np.asarray(v, float).ravel()
        lo, med, hi = equal_tailed(v, level)
        return cls(med, lo, hi, level, float((v > 0).mean()) if with_p else None, int(v.size))
