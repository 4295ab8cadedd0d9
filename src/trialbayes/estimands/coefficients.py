"""The coefficient table of a fitted patient-level model: every term's posterior HR beside the
Cox estimate of the same term on the same coding — the one builder of coefficient rows, for
results.json, the CSV table, the reports and the notebook's ``summary()``."""

from __future__ import annotations

import re
from dataclasses import dataclass

import numpy as np

from ..data.design import Design
from ..results.model import Coefficient
from ..results.summaries import HRSummary
from .frequentist import CoxFit


def _u(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _num(x: float, unit: str | None, sig: int = 4) -> str:
    return f"{x:.{sig}g}{_u(unit)}"


def covariate_kind(design: Design, j: int) -> str:
    """``binary`` (0/1), ``level`` (a factor's dummy column ``name[level]``) or ``continuous``."""
    raw = design.X[:, j] * design.cov_sd[j] + design.cov_mean[j]
    if _LEVEL.fullmatch(design.cov_names[j]):
        return "level"
    values = np.unique(np.round(raw, 9))
    return "binary" if set(values.tolist()) <= {0.0, 1.0} else "continuous"


_LEVEL = re.compile(r"(.+)\[(.+)\]")


def _covariate_rows(design: Design, draws: dict, units: dict) -> list[Row]:
    """Per covariate: a binary one as yes vs no, a factor level vs the reference level (the
    natural contrast: the standardised coefficient ÷ its SD), a continuous one per SD and per
    unit."""
    rows = []
    for j, c in enumerate(design.cov_names):
        v, sd, kind = (
            draws["covariate_effects"][:, j],
            float(design.cov_sd[j]),
            covariate_kind(design, j),
        )
        if kind == "binary":
            rows.append(Row(c, "yes (1) vs no (0)", v / sd, c, 1 / sd))
        elif kind == "level":
            name, level = _LEVEL.fullmatch(c).groups()
            ref = (design.factors.get(name) or ["the reference level"])[0]
            rows.append(Row(c, f"{level} vs {ref}", v / sd, c, 1 / sd))
        else:
            u = units.get(c)
            rows.append(Row(c, f"per SD ({_num(sd, u, 3)})", v, c, 1.0))
            rows.append(Row(c, _per_one(u), v / sd, c, 1 / sd))
    return rows


def _per_one(unit: str | None) -> str:
    """ "per year" (for unit "years"), "per 1 mg/L", or "per unit"."""
    if not unit:
        return "per unit"
    if unit.isalpha() and unit.endswith("s") and len(unit) > 3:
        return f"per {unit[:-1]}"
    return f"per 1 {unit}"


@dataclass(frozen=True)
class Row:
    """One coefficient: its log-HR draws on the row's scale, and the Cox term (standardised
    coding) with the factor that puts it on the same scale."""

    term: str
    unit: str
    draws: np.ndarray
    cox_term: str | None
    cox_scale: float = 1.0


def coefficient_rows(design: Design, draws: dict, units: dict | None = None) -> list[Row]:
    """Every term: treatment (at the biomarker reference), each covariate as its natural
    contrast (:func:`_covariate_rows`), the biomarker's main effect and the interaction per SD of
    the (log) biomarker and, for a linear or log-linear interaction, per a round number of
    original units."""
    units = units or {}
    b, bm = design.basis, design.spec.biomarker
    ref = f" at {bm} = {_num(b.reference, units.get(bm))}" if b is not None else ""
    avg = ", averaged over follow-up" if design.time_varying else ""
    rows = [Row("treatment", "treated vs control" + ref + avg, draws["treatment"], "treatment")]
    rows += _covariate_rows(design, draws, units)
    if b is not None:
        unit = "" if b.log else _u(units.get(bm))
        per = f"per SD of {b.scale_label(bm)} ({b.scale:.3g}{unit})"
        rows.append(Row(f"{bm} (main)", per, draws["biomarker_effect"], f"{bm}_z"))
        rows.append(Row(f"treatment × {bm}", per, draws["interaction"], f"treatment × {bm}"))
        if b.kind != "spline":  # also per a round number of original units (or per log unit)
            step = 1.0 if b.log else float(10 ** np.floor(np.log10(b.scale)))
            per_unit = (
                f"per unit of {b.scale_label(bm)}"
                if b.log
                else f"per {step:g}{_u(units.get(bm)) or ' units'} of {bm}"
            )
            k = step / b.scale
            rows.append(Row(f"{bm} (main)", per_unit, draws["biomarker_effect"] * k, f"{bm}_z", k))
            rows.append(
                Row(f"treatment × {bm}", per_unit, draws["interaction"] * k, f"treatment × {bm}", k)
            )
    return rows


def coefficients(
    design: Design,
    draws: dict,
    summarise,
    cox: CoxFit | None = None,
    units: dict | None = None,
) -> list[Coefficient]:
    """Posterior beside Cox for every term (:func:`coefficient_rows`); ``summarise(log_draws)``
    makes the posterior :class:`HRSummary` (the run's thresholds and level). A Cox fit that failed
    or ran off gives no Cox estimates (its flag says why)."""
    out = []
    for r in coefficient_rows(design, draws, units):
        c: HRSummary | None = cox.term(r.cox_term) if cox is not None and r.cox_term else None
        out.append(Coefficient(r.term, r.unit, summarise(r.draws), _rescaled(c, r.cox_scale)))
    return out


def _rescaled(h: HRSummary | None, k: float) -> HRSummary | None:
    """A Cox estimate on another scale of its covariate (log HR and SE times ``k``)."""
    if h is None or k == 1.0:
        return h
    return HRSummary.from_normal(
        h.log_mean * k, h.log_sd * abs(k), level=h.level, method=h.method, p_value=h.p_value
    )
