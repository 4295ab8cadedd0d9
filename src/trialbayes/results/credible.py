"""Typed results of the HR curve's range and its simultaneous inference: the grid the curve is
drawn on, spans of the biomarker with honest ends, the simultaneous credible band and the
credible subgroups (Schnell, Tang, Offen & Carlin 2016; the ``credsubs`` R package).

A :class:`Span` is a run of grid points; ``from_grid_start`` / ``to_grid_end`` say that it reaches
the first / last value shown, so the set may extend beyond the curve's range (nothing is claimed
there). Every span is in the biomarker's original units.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Annotated, Literal

from pydantic import Field

from ..core.text import level_text, num
from .summaries import Count, Level, Probability

#: a critical value of a band (posterior SDs): never negative
Critical = Annotated[float, Field(ge=0.0)]


@dataclass(frozen=True)
class Span:
    """A contiguous run of the HR curve's grid (both ends are grid values)."""

    lower: float
    upper: float
    from_grid_start: bool  # starts at the smallest value shown: the set may extend below it
    to_grid_end: bool  # ends at the largest value shown: the set may extend above it

    def __post_init__(self):
        """Ends in order (also checked when results.json is read back)."""
        if math.isfinite(self.lower) and math.isfinite(self.upper) and self.lower > self.upper:
            raise ValueError(f"span out of order: {self.lower:g} > {self.upper:g}")

    def text(self, unit: str = "") -> str:
        """ "from 1 to the largest value shown (14.1) prior arrests" — an end that is the grid's
        end is named as such, never as the end of the set."""
        lo = (
            f"the smallest value shown ({num(self.lower)})"
            if self.from_grid_start
            else num(self.lower)
        )
        hi = f"the largest value shown ({num(self.upper)})" if self.to_grid_end else num(self.upper)
        return f"from {lo} to {hi}" + (f" {unit}" if unit else "")


def spans_text(spans: list[Span], unit: str = "") -> str:
    """Spans joined with "and"; "nowhere on the range shown" when empty."""
    if not spans:
        return "nowhere on the range shown"
    return " and ".join(s.text(unit) for s in spans)


@dataclass(frozen=True)
class CurveGrid:
    """The biomarker values the HR curve is evaluated on: ``n_points`` values, evenly spaced
    (``spacing``: linear, or log for a log-scale basis) from the ``quantiles[0]`` to the
    ``quantiles[1]`` quantile of the observed values, ``lower`` to ``upper``; ``n_below`` /
    ``n_above`` patients lie outside it (the curve says nothing about them)."""

    lower: float
    upper: float
    quantiles: list[Probability]
    n_points: Annotated[int, Field(ge=1)]
    spacing: Literal["linear", "log"]
    n_below: Count
    n_above: Count
    n_patients: Count

    def text(self, unit: str = "") -> str:
        q0, q1 = (f"{100 * q:g}" for q in self.quantiles)
        u = f" {unit}" if unit else ""
        return (
            f"{num(self.lower)}–{num(self.upper)}{u} (the {q0}th–{q1}th percentiles of the "
            f"observed values; {self.n_below} patients below and {self.n_above} above the range "
            "shown)"
        )


@dataclass(frozen=True)
class SimultaneousBand:
    """A simultaneous credible band for log HR(x) over the grid: posterior mean ± c · posterior SD
    at every grid value, where c is the ``level`` quantile over draws of max over the grid of
    |draw − mean| / SD (max-|t|; the asymptotic method of credsubs). P(the whole curve lies in
    the band | data) = ``coverage_of_draws`` ≥ ``level`` (the share of draws entirely inside)."""

    level: Level
    critical_value: Critical  # c
    pointwise_critical_value: Critical  # the normal quantile of the pointwise band at ``level``
    coverage_of_draws: Probability
    n_draws: Annotated[int, Field(ge=2)]
    method: str = "max-|t| over the grid (posterior mean ± c·posterior SD of log HR)"

    def text(self) -> str:
        return (
            f"{level_text(self.level)} simultaneous band: posterior mean ± "
            f"{self.critical_value:.2f} posterior SD of log HR at every value shown "
            f"(pointwise: ± {self.pointwise_critical_value:.2f})"
        )


@dataclass(frozen=True)
class CredibleSubgroup:
    """The credible-subgroup pair for "HR < ``threshold``" at the simultaneous ``level``.

    ``exclusive`` (D): where the simultaneous band lies wholly below the threshold — with
    posterior probability ≥ ``level``, HR(x) < threshold at EVERY x in D at once.
    ``inclusive`` (S): where the band's lower bound is below the threshold — every x with
    HR(x) < threshold is in S, again jointly; outside S the HR is credibly ≥ the threshold.
    P(D ⊆ true set ⊆ S | data) ≥ ``level``. Shares are of all patients with a biomarker value
    (patients outside the grid are in neither)."""

    threshold: Annotated[float, Field(gt=0.0)]
    level: Level
    exclusive: list[Span] = field(default_factory=list)
    inclusive: list[Span] = field(default_factory=list)
    exclusive_share: Probability = 0.0
    inclusive_share: Probability = 0.0

    def text(self, biomarker: str, unit: str = "") -> str:
        """Plain words: where HR < t holds at every value at once, where it cannot be excluded,
        and (if anywhere) where HR ≥ t credibly — jointly with probability ≥ ``level``."""
        t, level_label = f"{self.threshold:g}", level_text(self.level)
        d = (
            f"HR < {t} at every {biomarker} {spans_text(self.exclusive, unit)} (the exclusive "
            f"credible subgroup, {self.exclusive_share:.0%} of patients)"
            if self.exclusive
            else f"at no {biomarker} value shown is HR < {t} credible (the exclusive credible "
            "subgroup is empty)"
        )
        whole = (
            len(self.inclusive) == 1
            and self.inclusive[0].from_grid_start
            and self.inclusive[0].to_grid_end
        )
        if whole:
            s = f"HR < {t} cannot be excluded anywhere on the range shown"
        elif self.inclusive:
            s = (
                f"HR < {t} cannot be excluded {spans_text(self.inclusive, unit)} (the inclusive "
                f"credible subgroup, {self.inclusive_share:.0%} of patients) and HR ≥ {t} "
                "credibly elsewhere on the range shown"
            )
        else:
            s = f"HR ≥ {t} credibly at every value shown (the inclusive subgroup is empty)"
        return f"jointly with probability ≥ {level_label}, {d}; {s}"
