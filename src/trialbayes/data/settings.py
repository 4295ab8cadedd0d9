"""Resolving the analysis settings that depend on the trial: nothing trial-specific is a default.

Every setting comes from the config or, where absent, from the data by a documented rule, and is
recorded as a :class:`~trialbayes.results.model.Setting` saying which (the report prints it):

* ``time_unit``: ``data.time_unit``; none given -> times are shown as "time units".
* ``units``: ``data.units`` (column -> unit); a column without a unit is shown bare.
* ``landmark``: ``estimands.landmark``; else the median of the observed follow-up times (all
  patients, events and censored), rounded down to 2 significant figures.
* ``biomarker`` (for subgroups and the HR-by-biomarker summaries): ``estimands.biomarker``; else
  the biomarker of the first model with an interaction; else the data's first biomarker; else none.
* ``subgroup_cutoffs``: ``estimands.subgroup_cutoffs``; else the biomarker's tertiles rounded to
  3 significant figures; with ties a tertile at the minimum moves up to the next observed value,
  and cut-offs at the maximum are dropped (subgroups: x < c1, c1 ≤ x ≤ c2, x > c2; with a single
  cut-off x < c and x ≥ c).

Input errors (raised as ``DataError`` before anything is fitted): a landmark beyond the longest
follow-up; a cut-off outside the biomarker's observed range.
"""

from __future__ import annotations

import difflib
import math

import numpy as np

from ..config.data_sources import PatientSource
from ..config.estimands import Estimands
from ..config.schema import ModelSpec
from ..core.errors import DataError
from ..results.model import Setting
from .synthetic import SYNTHETIC_TIME_UNIT, SYNTHETIC_UNITS
from .table import TrialData

LANDMARK_RULE = (
    "median observed time (to event or censoring, all patients), rounded down to 2 significant "
    "figures"
)
CUTOFF_RULE = "tertiles of {b}, rounded to 3 significant figures"


def round_sig(x: float, sig: int, down: bool = False) -> float:
    """``x`` rounded to ``sig`` significant figures (``down``: towards minus infinity)."""
    if x == 0 or not math.isfinite(x):
        return float(x)
    p = sig - 1 - math.floor(math.log10(abs(x)))
    f = 10.0**p
    return (math.floor(x * f) if down else round(x * f)) / f


def derived_landmark(times: np.ndarray) -> float:
    """The default landmark: the median observed time rounded down to 2 significant figures."""
    med = float(np.median(times))
    return round_sig(med, 2, down=True) or med


def derived_cutoffs(values: np.ndarray) -> list[float]:
    """Tertiles rounded to 3 significant figures; with ties (a discrete biomarker), a tertile at
    the minimum moves up to the next observed value, and cut-offs at the maximum are dropped."""
    v = np.unique(np.asarray(values, float))
    if len(v) < 2:
        return []
    cuts = set()
    for q in np.quantile(values, [1 / 3, 2 / 3]):
        c = round_sig(float(q), 3)
        cuts.add(float(v[1]) if c <= v[0] else c)
    return sorted(c for c in cuts if c < v[-1])


def pick_biomarker(estimands: Estimands, models: list[ModelSpec], data: TrialData) -> str | None:
    """The summaries' biomarker: ``estimands.biomarker``, else the first model's with one, else the
    data's first, else None."""
    if estimands.biomarker:
        return estimands.biomarker
    for m in models:
        if m.biomarker:
            return m.biomarker
    return data.biomarkers[0] if data.biomarkers else None


def _units(src: PatientSource) -> tuple[Setting, Setting]:
    tu, units = getattr(src, "time_unit", None), dict(getattr(src, "units", {}) or {})
    tu_s = (
        Setting(tu, "config") if tu else Setting(None, "none", "not given: shown as 'time units'")
    )
    un_s = Setting(units, "config") if units else Setting({}, "none", "not given")
    if src.kind == "synthetic":
        if not tu:
            tu_s = Setting(SYNTHETIC_TIME_UNIT, "default", "the synthetic generator's")
        un_s = Setting({**SYNTHETIC_UNITS, **units}, "default", "the synthetic generator's")
    return tu_s, un_s


def resolve(
    src: PatientSource, models: list[ModelSpec], e: Estimands, data: TrialData
) -> dict[str, Setting]:
    """All trial-dependent settings of a run on ``data`` (from ``src``), validated against the
    data. Raises DataError."""
    times = data.frame["time"].to_numpy(float)
    tmax = float(times.max())
    tu_s, un_s = _units(src)
    tu, units = tu_s.value, un_s.value
    if src.kind == "file":  # any column of the file may have a unit, used or not
        unknown = sorted(set(units) - set(data.source_columns))
        if unknown:
            close = difflib.get_close_matches(unknown[0], data.source_columns, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DataError(
                f"data.units: {unknown} are not columns of {src.shown_path}{hint}; its "
                f"columns are {', '.join(data.source_columns)}"
            )
    given = e.model_fields_set
    out = {
        "time_unit": tu_s,
        "units": un_s,
        "level": Setting(e.level, "config")
        if "level" in given
        else Setting(e.level, "default", "estimands.level default"),
    }
    if e.landmark is not None:
        if e.landmark > tmax:
            raise DataError(
                f"estimands.landmark: {e.landmark:g} is beyond the longest follow-up "
                f"{tmax:g}{' ' + tu if tu else ''}"
            )
        out["landmark"] = Setting(float(e.landmark), "config")
    else:
        out["landmark"] = Setting(derived_landmark(times), "derived", LANDMARK_RULE)
    b = pick_biomarker(e, models, data)
    src = "config" if e.biomarker else ("derived" if b else "none")
    out["biomarker"] = Setting(
        b, src, "" if e.biomarker or not b else "the model's / data's first biomarker"
    )
    out["subgroup_cutoffs"] = _cutoffs(e.subgroup_cutoffs, b, data, units)
    return out


def _cutoffs(given, b, data: TrialData, units: dict) -> Setting:
    if b is None:
        return Setting([], "none", "no biomarker")
    vals = data.frame[b].to_numpy(float)
    vals = vals[~np.isnan(vals)]  # data.missing: impute keeps rows without a value
    lo, hi = float(vals.min()), float(vals.max())
    if given is None:
        return Setting(derived_cutoffs(vals), "derived", CUTOFF_RULE.format(b=b))
    bad = [c for c in given if not lo <= c <= hi]
    if bad:
        u = f" {units[b]}" if b in units else ""
        raise DataError(
            f"estimands.subgroup_cutoffs: {bad} lie outside the observed range of '{b}' "
            f"({lo:g}–{hi:g}{u})"
        )
    return Setting(list(given), "config")


def describe_settings(settings: dict[str, Setting]) -> list[str]:
    """One line per resolved setting, for ``trialbayes check`` and the report."""
    tu = settings["time_unit"].value or "time units"
    units = settings["units"].value or {}
    lines = []
    for k, s in settings.items():
        v = s.value
        if k == "landmark":
            v = f"{v:g} {tu}"
        elif k == "subgroup_cutoffs":
            b = settings["biomarker"].value
            v = (
                (", ".join(f"{c:g}" for c in v) + (f" {units[b]}" if b in units else ""))
                if v
                else "none"
            )
        elif k == "units":
            v = ", ".join(f"{c}: {u}" for c, u in v.items()) or "none given"
        lines.append(f"{k}: {v} ({s.text()})")
    return lines
