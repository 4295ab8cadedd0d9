"""The coefficient table of a fitted patient-level model: every term's posterior HR beside the
Cox estimate of the same term on the same coding — the one builder of coefficient rows, for
results.json, the CSV table, the reports and the notebook's ``summary()``."""

from __future__ import annotations

import numpy as np

from ..data.design import Design
from ..results.model import Coefficient
from ..results.summaries import HRSummary
from .frequentist import CoxFit


def _u(unit: str | None) -> str:
    return f" {unit}" if unit else ""


def _num(x: float, unit: str | None, sig: int = 4) -> str:
    return f"{x:.{sig}g}{_u(unit)}"


def coefficient_rows(
    design: Design, draws: dict, units: dict | None = None
) -> list[tuple[str, str, np.ndarray, str | None]]:
    """(term, unit, log-HR draws, the Cox term's name) for every term: treatment (at the
    biomarker reference), covariates per SD, the biomarker's main effect and the interaction
    per SD of the (log) biomarker and, for a linear or log-linear interaction, per a round number
    of original units (no Cox counterpart: the same coefficient rescaled)."""
    units = units or {}
    b, bm = design.basis, design.spec.biomarker
    ref = f" at {bm} = {_num(b.reference, units.get(bm))}" if b is not None else ""
    rows = [("treatment", "treated vs control" + ref, draws["treatment"], "treatment")]
    for j, c in enumerate(design.cov_names):
        per = f"per SD ({_num(design.cov_sd[j], units.get(c), 3)})"
        rows.append((c, per, draws["covariate_effects"][:, j], c))
    if b is not None:
        unit = "" if b.log else _u(units.get(bm))
        per = f"per SD of {'log ' if b.log else ''}{bm} ({b.scale:.3g}{unit})"
        rows.append((f"{bm} (main)", per, draws["biomarker_effect"], f"{bm}_z"))
        rows.append((f"treatment × {bm}", per, draws["interaction"], f"treatment × {bm}"))
        if b.kind != "spline":  # also per a round number of original units (or per log unit)
            step = 1.0 if b.log else float(10 ** np.floor(np.log10(b.scale)))
            per_unit = "per log unit" if b.log else f"per {step:g}{_u(units.get(bm)) or ' units'}"
            rows.append(
                (f"treatment × {bm}", f"{per_unit} of {bm}", draws["interaction"] * step / b.scale,
                 None)
            )  # fmt: skip
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
    for term, unit, v, cox_term in coefficient_rows(design, draws, units):
        c: HRSummary | None = cox.term(cox_term) if cox is not None and cox_term else None
        out.append(Coefficient(term, unit, summarise(v), c))
    return out
