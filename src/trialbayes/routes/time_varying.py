"""The time-varying treatment effect in a patient-level run (``treatment_effect: time_varying``).

Per such model: HR(t) per baseline interval from its draws, the Schoenfeld-residual test of
proportional hazards (lifelines) as the frequentist cross-check, and — once every model is fitted
— the PSIS-LOO comparison with its constant-effect partner (``config.schema.partner_of``: the
model with the same terms and ``treatment_effect: constant``, which the config must hold).
"""

from __future__ import annotations

import warnings
from dataclasses import replace

import arviz_stats as azs
import numpy as np
import pandas as pd

from ..config.schema import ModelSpec, partner_of
from ..core.flags import Flag
from ..data.design import Design
from ..estimands.frequentist import ph_test
from ..estimands.time_varying import hr_over_time, hr_over_time_table
from ..results.model import ModelResult
from ..results.time_varying import PHComparison

#: a difference in elpd beyond this many SEs is a preference (as ``patient_level.loo_verdict``)
LOO_SE_RULE = 2.0
#: below this median of events per interval an interval's log-HR has an SE above ≈ 2/√20 = 0.45
#: (a factor 1.6 in HR) from its own events: HR(t) is then mostly the walk's smoothing
MIN_EVENTS_PER_INTERVAL = 20


def average_role(role: str) -> str:
    """The estimand of a time-varying model's ``treatment_effect`` (never a plain PH HR)."""
    return f"{role}, averaged over follow-up (time-varying effect; event-weighted mean log-HR)"


def with_hr_over_time(
    res: ModelResult,
    design: Design,
    draws: dict,
    times,
    centre,
    level: float,
    thresholds,
    harm,
    time_unit: str,
) -> tuple[ModelResult, pd.DataFrame]:
    """The model's result with ``hr_over_time`` (intervals, change, PH test), and its CSV table."""
    b = design.basis
    at = (
        f" at {design.spec.biomarker} = {b.reference:.4g} (the median; the interaction is constant"
        " over time)"
        if b is not None
        else ""
    )
    hot = hr_over_time(
        draws,
        design,
        f"treatment HR in each baseline interval{at}",
        thresholds,
        harm,
        level,
        time_unit,
    )
    hot = replace(hot, ph_test=ph_test(design, times, centre))
    out = replace(res, hr_over_time=hot)
    out.flags += sparse_interval_flags(design.spec.name, [iv.events for iv in hot.intervals])
    return out, pd.DataFrame(hr_over_time_table(hot))


def sparse_interval_flags(model: str, events: list[int]) -> list[Flag]:
    """A caution flag when the median events per baseline interval is below
    ``MIN_EVENTS_PER_INTERVAL`` (HR(t) then leans on the random-walk prior)."""
    med = float(np.median(events))
    if med >= MIN_EVENTS_PER_INTERVAL:
        return []
    return [
        Flag(
            "sparse_intervals",
            f"HR(t) rests on few events per baseline interval (median {med:g}, fewer than "
            f"{MIN_EVENTS_PER_INTERVAL}): the random walk pulls the interval HRs toward their "
            "average, so a flat HR(t) here is weak evidence of proportional hazards",
            "caution",
            model,
            {"events_per_interval": events},
        )
    ]


def attach_ph_comparisons(per_model: dict[str, ModelResult], specs: list[ModelSpec], loos) -> None:
    """For every time-varying model: PSIS-LOO against its constant-effect partner (``loos``: model
    name -> ELPDData; a model without pointwise log-likelihood is not compared, and said so)."""
    for spec in specs:
        res = per_model.get(spec.name)
        if not spec.time_varying or res is None or res.hr_over_time is None:
            continue
        partner = partner_of(spec, specs)
        if partner is None or partner.name not in per_model:
            continue
        comp = ph_comparison(spec.name, partner.name, per_model[partner.name], loos)
        res.hr_over_time = replace(res.hr_over_time, comparison=comp)
        if comp.preferred == "time_varying":
            res.flags.append(
                Flag(
                    "non_proportional_hazards",
                    f"PSIS-LOO prefers the time-varying treatment effect to the constant one of "
                    f"`{partner.name}` ({comp.verdict.removeprefix('PSIS-LOO: ')}): a single "
                    "hazard ratio summarises the effect poorly; read HR(t)",
                    "caution",
                    spec.name,
                )
            )


def ph_comparison(tv: str, ph: str, ph_result: ModelResult, loos) -> PHComparison:
    """PSIS-LOO comparison of the time-varying model ``tv`` with its constant-effect partner ``ph``:
    the elpd difference, its SE and the preferred one (None within ``LOO_SE_RULE`` SEs)."""
    if tv not in loos or ph not in loos:
        return PHComparison(
            ph,
            ph_result.treatment_effect,
            None,
            None,
            None,
            "PSIS-LOO: not compared (no pointwise log-likelihood kept for "
            f"{'`' + tv + '`' if tv not in loos else '`' + ph + '`'}).",
        )
    with warnings.catch_warnings():  # Pareto-k warnings: said once by analyse.psis_loos
        warnings.simplefilter("ignore", UserWarning)
        df = azs.compare({tv: loos[tv], ph: loos[ph]}, round_to="none")
    diff = float(df.loc[tv, "elpd"] - df.loc[ph, "elpd"])
    se = float(df["dse"].max())
    preferred = None
    if abs(diff) > LOO_SE_RULE * se:
        preferred = "time_varying" if diff > 0 else "constant"
    nums = f"elpd(time-varying) − elpd(constant) = {diff:+.1f}, SE {se:.1f}"
    verdict = {
        "time_varying": f"PSIS-LOO prefers the time-varying effect `{tv}` ({nums}).",
        "constant": f"PSIS-LOO prefers proportional hazards, `{ph}` ({nums}).",
        None: "PSIS-LOO: no clear preference between proportional hazards "
        f"(`{ph}`) and the time-varying effect (`{tv}`) ({nums}; |difference| ≤ "
        f"{LOO_SE_RULE:g} SE).",
    }[preferred]
    return PHComparison(ph, ph_result.treatment_effect, diff, se, preferred, verdict)
