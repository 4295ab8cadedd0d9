"""A pydantic validation error of a config, as one line per problem naming its key path. (The
YAML text itself is read by :mod:`trialbayes.core.yaml_reader`.)"""

from __future__ import annotations

from pydantic import ValidationError


def format_errors(err: ValidationError, source: str) -> str:
    """A pydantic ValidationError as one line per problem, each naming its key path."""
    lines = [f"invalid config {source}:"]
    for e in err.errors():
        loc = ".".join(str(p) for p in e["loc"] if not str(p).startswith("function-"))
        msg = e["msg"].removeprefix("Value error, ")
        lines.append(f"  - {loc or '(top level)'}: {msg}")
    return "\n".join(lines)
