"""The YAML text of a config, before the schema sees it: duplicate keys and non-finite numbers.

PyYAML's ``safe_load`` keeps the last of two equal keys (a ``priors:`` block silently replaced by
a later ``priors: {}``) and reads ``.nan`` / ``.inf`` as floats the schema's ``gt=0`` lets through.
Both are refused here, naming the key path and the line.
"""

from __future__ import annotations

import math

import yaml
from pydantic import ValidationError

from ..core.errors import RawConfigError


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice."""

    def construct_mapping(self, node, deep=False):
        seen: dict = {}
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                continue  # the base loader reports unhashable keys itself
            if key in seen:
                raise RawConfigError(
                    f"duplicate key '{key}' at line {key_node.start_mark.line + 1} "
                    f"(first at line {seen[key]}); YAML would silently keep only the last one"
                )
            seen[key] = key_node.start_mark.line + 1
        return super().construct_mapping(node, deep=deep)


def load_yaml(text: str):
    """Parse YAML text like ``yaml.safe_load``, refusing duplicate keys."""
    return yaml.load(text, Loader=_UniqueKeyLoader)  # noqa: S506 - a SafeLoader subclass


def non_finite(obj, path: str = "") -> list[str]:
    """Key paths (``published.grid_sd.lo``, ``data.estimates[2].se``) holding NaN or ±inf."""
    if isinstance(obj, dict):
        return [p for k, v in obj.items() for p in non_finite(v, f"{path}.{k}" if path else str(k))]
    if isinstance(obj, (list, tuple)):
        return [p for i, v in enumerate(obj) for p in non_finite(v, f"{path}[{i}]")]
    if isinstance(obj, float) and not math.isfinite(obj):
        return [f"{path} = {obj}"]
    return []


def check_finite(raw: dict) -> None:
    bad = non_finite(raw)
    if bad:
        raise RawConfigError("non-finite numbers are not allowed in a config: " + "; ".join(bad))


def format_errors(err: ValidationError, source: str) -> str:
    """A pydantic ValidationError as one line per problem, each naming its key path."""
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc or '(top level)'}: {msg}")
    return "\n".join(lines)
