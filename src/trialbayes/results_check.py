"""A results.json read back by ``trialbayes report`` is checked before anything is rendered.

The file may have been edited, damaged or planted: every field of the typed results model
(:mod:`results`, :mod:`nextphase`) is checked against its type (a boolean is a boolean, a number
a finite number, text is text), then by range: probabilities in [0, 1], credible levels in
(0, 1), hazard ratios positive with lower <= median <= upper, counts non-negative integers, figure
paths ``figures/<name>.png``. The first problem raises :class:`ResultsError` naming the key
path, e.g. ``models.adjusted.treatment_effect.p_hr_below.1 = 7.5: not a probability in [0, 1]``.
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from typing import Any, Literal

#: what results.json's ``figures`` may name: a PNG file directly in the run's figures/ folder
FIGURE_PATH = re.compile(r"^figures/[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}\.png$")
FIGURE_KEY = re.compile(r"^[^\x00-\x1f\x7f]{1,200}$")
#: keys whose numbers are probabilities wherever they appear (free-form sections included)
PROB_KEYS = re.compile(
    r"^(?!p_loo$)(p_.*|assurance|false_go|false_stop|share|survival_(treatment|control))$"
)
LEVEL_KEYS = ("level", "ci_level", "ci_prob")
MAX_TEXT = 100_000


class ResultsError(ValueError):
    """A results.json that cannot be rendered; the message names the key path."""


def _fail(path: str, v, why: str):
    shown = repr(v) if not isinstance(v, str) else repr(v[:60])
    raise ResultsError(f"{path or '(top level)'} = {shown[:80]}: {why}")


def _number(path: str, v, allow_none: bool = False) -> float | None:
    if v is None and allow_none:
        return None
    if isinstance(v, bool) or not isinstance(v, int | float):
        _fail(path, v, "not a number")
    if not math.isfinite(v):
        _fail(path, v, "not a finite number")
    return float(v)


def check_typed(tp, v, path: str) -> None:
    """``v`` (JSON) against the type hint ``tp``: dataclasses field by field (unknown keys are
    refused, missing ones with defaults allowed), unions, lists, dicts, literals, scalars."""
    origin, args = typing.get_origin(tp), typing.get_args(tp)
    if tp is Any or tp is object:
        return
    if origin in (typing.Union, types.UnionType):
        if v is None and type(None) in args:
            return
        inner = [a for a in args if a is not type(None)]
        errors = []
        for a in inner:
            try:
                return check_typed(a, v, path)
            except ResultsError as exc:
                errors.append(str(exc))
        raise ResultsError(errors[0] if len(errors) == 1 else f"{path}: none of {inner} fits")
    if origin is Literal:
        if v not in args:
            _fail(path, v, f"not one of {list(args)}")
        return
    if origin is list or tp is list:
        if not isinstance(v, list):
            _fail(path, v, "not a list")
        for i, x in enumerate(v):
            check_typed(args[0] if args else Any, x, f"{path}[{i}]")
        return
    if origin is tuple:
        if not isinstance(v, list | tuple):
            _fail(path, v, "not a list")
        return
    if origin is dict or tp is dict:
        if not isinstance(v, dict):
            _fail(path, v, "not a mapping")
        for k, x in v.items():
            check_typed(args[1] if args else Any, x, f"{path}.{k}" if path else str(k))
        return
    if dataclasses.is_dataclass(tp):
        _check_dataclass(tp, v, path)
        return
    if tp is bool:
        if not isinstance(v, bool):
            _fail(path, v, "not true or false")
    elif tp is int:
        if isinstance(v, bool) or not isinstance(v, int):
            _fail(path, v, "not an integer")
    elif tp is float:
        _number(path, v, allow_none=True)  # results.json writes NaN as null (outputs.jsonable)
    elif tp is str:
        if not isinstance(v, str):
            _fail(path, v, "not text")
        if len(v) > MAX_TEXT:
            _fail(path, v, f"text longer than {MAX_TEXT} characters")


def _check_dataclass(tp, v, path: str) -> None:
    if not isinstance(v, dict):
        _fail(path, v, f"not a mapping ({tp.__name__})")
    hints = typing.get_type_hints(tp)
    fields = {f.name: f for f in dataclasses.fields(tp)}
    for k in v:
        if k not in fields:
            _fail(f"{path}.{k}" if path else k, v[k], f"not a field of {tp.__name__}")
    for name, f in fields.items():
        sub = f"{path}.{name}" if path else name
        if name not in v:
            no_default = f.default is dataclasses.MISSING
            if no_default and f.default_factory is dataclasses.MISSING:
                raise ResultsError(f"{sub}: missing")
            continue
        check_typed(hints[name], v[name], sub)
    rule = _RULES.get(tp.__name__)
    if rule:
        rule(v, path)


# ----------------------------------------------------------------------------- ranges


def _prob(path: str, v, allow_none: bool = True) -> None:
    x = _number(path, v, allow_none)
    if x is not None and not 0 <= x <= 1:
        _fail(path, v, "not a probability in [0, 1]")


def _level(path: str, v) -> None:
    x = _number(path, v, allow_none=True)
    if x is not None and not 0 < x < 1:
        _fail(path, v, "not a credible level in (0, 1)")


def _ordered(v: dict, path: str, keys=("lower", "median", "upper"), positive=False) -> None:
    xs = [_number(f"{path}.{k}", v[k], allow_none=True) for k in keys]
    if positive and any(x is not None and x <= 0 for x in xs):
        _fail(f"{path}.{keys[1]}", v[keys[1]], "a hazard ratio must be > 0")
    a, b, c = xs
    if None not in xs and not a <= b <= c:
        _fail(f"{path}.{'/'.join(keys)}", [a, b, c], "out of order")


def _hr_summary(v: dict, path: str) -> None:
    _ordered(v, path, positive=True)
    _level(f"{path}.level", v["level"])
    if v.get("log_sd") is not None and v["log_sd"] < 0:
        _fail(f"{path}.log_sd", v["log_sd"], "a standard deviation must be >= 0")
    for side in ("p_hr_below", "p_hr_above"):
        for k, x in v[side].items():
            try:
                ok = float(k) > 0
            except ValueError:
                ok = False
            if not ok:
                _fail(f"{path}.{side}", k, "thresholds are positive numbers")
            _prob(f"{path}.{side}.{k}", x, allow_none=False)
    if "1" not in v["p_hr_below"]:
        raise ResultsError(f"{path}.p_hr_below: P(HR < 1) (key '1') missing")
    n = v.get("n_draws")
    if n is not None and n < 1:
        _fail(f"{path}.n_draws", n, "must be >= 1 (or null: exact)")


def _quantity(v: dict, path: str) -> None:
    _ordered(v, path)
    _level(f"{path}.level", v["level"])


def _cox(v: dict, path: str) -> None:
    _ordered(v, path, ("lower", "hr", "upper"), positive=True)
    _level(f"{path}.level", v["level"])
    _prob(f"{path}.p", v["p"])


def _counts(*keys):
    def rule(v: dict, path: str) -> None:
        for k in keys:
            if k in v and v[k] is not None and v[k] < 0:
                _fail(f"{path}.{k}", v[k], "a count must be >= 0")

    return rule


def _results(v: dict, path: str) -> None:
    if not str(v["schema_version"]).startswith("2."):
        _fail("schema_version", v["schema_version"], "this trialbayes reads schema 2.x")
    for k, rel in v.get("figures", {}).items():
        if not FIGURE_KEY.match(k):
            _fail(f"figures.{k}", k, "not a figure name")
        if not isinstance(rel, str) or not FIGURE_PATH.match(rel):
            _fail(f"figures.{k}", rel, "not a figure of this run (figures/<name>.png)")
    for k in v.get("figure_captions", {}):
        if k not in v.get("figures", {}):
            _fail(f"figure_captions.{k}", k, "a caption without its figure")
    if v["reliable"] and v.get("unreliable_models"):
        _fail("reliable", True, f"but unreliable_models lists {v['unreliable_models']}")
    _walk(v, "")


_RULES = {
    "HRSummary": _hr_summary,
    "Quantity": _quantity,
    "CoxTerm": _cox,
    "SubgroupResult": _counts("n", "events"),
    "Results": _results,
    "DesignResult": _counts("events", "n_planned", "trials", "analysis_failed"),
    "OCPoint": _counts("events", "analysis_failed", "analysis_divergent"),
}


def _walk(v, path: str) -> None:
    """Name-based ranges in every section, typed or free-form: probabilities, levels, and finite
    numbers only (JSON has no NaN; a bare ``NaN`` / ``Infinity`` token is refused here)."""
    if isinstance(v, dict):
        for k, x in v.items():
            sub = f"{path}.{k}" if path else str(k)
            if isinstance(x, int | float) and not isinstance(x, bool):
                if not math.isfinite(x):
                    _fail(sub, x, "not a finite number")
                if PROB_KEYS.match(str(k)):
                    _prob(sub, x)
                elif k in LEVEL_KEYS:
                    _level(sub, x)
            else:
                _walk(x, sub)
    elif isinstance(v, list):
        for i, x in enumerate(v):
            if isinstance(x, float) and not math.isfinite(x):
                _fail(f"{path}[{i}]", x, "not a finite number")
            _walk(x, f"{path}[{i}]")


def check_results(d) -> None:
    """Raise :class:`ResultsError` naming the first key of ``d`` (results.json) that is wrong."""
    from .nextphase import NextPhaseResults
    from .results import Results

    check_typed(Results, d, "")
    np_ = d.get("sections", {}).get("next_phase")
    if np_ is not None:
        check_typed(NextPhaseResults, np_, "sections.next_phase")
    _free_form(d)


def _free_form(d: dict) -> None:
    """The parts of results.json the renderers read without a typed model."""
    data = d.get("data") or {}
    if d["kind"] != "published":
        for k in ("n", "events", "n_dropped_incomplete"):
            check_typed(int, data.get(k), f"data.{k}")
            if data[k] < 0:
                _fail(f"data.{k}", data[k], "a count must be >= 0")
        check_typed(dict[str, dict[str, int]], data.get("by_arm"), "data.by_arm")
        check_typed(float, data.get("max_follow_up"), "data.max_follow_up")
        for k in ("source", "sha256"):
            check_typed(str, data.get(k), f"data.{k}")
    for name, m in d.get("models", {}).items():
        dg, where = m["diagnostics"], f"models.{name}.diagnostics"
        for k in ("rhat_max", "ess_bulk_min", "ess_tail_min", "bfmi_min"):
            check_typed(float | None, dg.get(k), f"{where}.{k}")
        check_typed(int, dg.get("divergences"), f"{where}.divergences")
        check_typed(list[str], dg.get("failures"), f"{where}.failures")
        if dg["divergences"] < 0:
            _fail(f"{where}.divergences", dg["divergences"], "a count must be >= 0")
        if m["reliable"] and dg["failures"]:
            _fail(f"models.{name}.reliable", True, f"but the gate failed: {dg['failures']}")
    sg = d.get("sections", {}).get("subgroup_shrinkage")
    if sg:
        from .results import HRSummary

        for i, g in enumerate(sg.get("groups", [])):
            for k in ("unshrunk", "shrunk"):
                check_typed(HRSummary, g.get(k), f"sections.subgroup_shrinkage.groups[{i}].{k}")
        check_typed(HRSummary, sg.get("overall_mu"), "sections.subgroup_shrinkage.overall_mu")
