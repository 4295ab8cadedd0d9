"""Reading a run's results.json back into the typed results (``trialbayes report OUTDIR``)."""

from __future__ import annotations

import dataclasses
import json
import types
import typing
from pathlib import Path

from .model import HRSummary, Results
from .time_varying import TimeVaryingModelResult


def from_dict(cls, data):
    """Rebuild a results object (e.g. :class:`Results`) from its ``to_dict()`` / results.json form,
    guided by the dataclass type hints. Used by ``trialbayes report OUTDIR``."""

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
    """Read a run's results.json back into :class:`Results` (schema 2.x only)."""
    d = json.loads(Path(path).read_text())
    if not str(d.get("schema_version", "")).startswith("2."):
        raise ValueError(
            f"{path}: schema_version {d.get('schema_version')!r}; this trialbayes reads 2.x"
        )
    r = from_dict(Results, d)
    r.sections = _revive_sections(r.sections)
    for name, m in d.get("models", {}).items():  # a time-varying model's own result type
        if m.get("hr_over_time") is not None:
            r.models[name] = from_dict(TimeVaryingModelResult, m)
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
