"""results.json back into the typed results, and the JSON Schema of the results.

``load_results`` validates the file against the types (ranges included: probabilities in [0, 1],
booleans are booleans, levels in (0, 1)) and returns the same object ``Results.to_dict()`` wrote;
a 2.x file (the previous schema) is migrated first. A file that is not valid results raises
:class:`~trialbayes.core.errors.DataError` naming the key. ``results_schema()`` is the JSON Schema
generated from the types (kept in ``src/trialbayes/results/results.schema.json``; a test keeps it
current).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ..core.errors import DataError
from .migrate import from_2x
from .model import SCHEMA_VERSION, Results, results_adapter

SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


def results_from_dict(d: dict, source: str = "results") -> Results:
    """A results dictionary (results.json's content) as typed :class:`Results`; 2.x migrated."""
    if not isinstance(d, dict):
        raise DataError(f"{source}: not a JSON object")
    version = str(d.get("schema_version", ""))
    major = version.split(".")[0]
    if major == "2":
        d = from_2x(d)
    elif major != SCHEMA_VERSION.split(".")[0]:
        raise DataError(
            f"{source}: schema_version {version or 'missing'!r}; this trialbayes reads "
            f"{SCHEMA_VERSION} and 2.x"
        )
    try:  # strict: a boolean is true/false, a number a number (not "no", not "0.5")
        return results_adapter().validate_json(json.dumps(d), strict=True)
    except ValidationError as err:
        raise DataError(f"{source} is not valid results:\n{_errors(err)}") from None


def load_results(path: str | Path) -> Results:
    """Read a run's results.json back into :class:`Results`."""
    path = Path(path)
    try:
        d = json.loads(path.read_text(encoding="utf-8"))
    except UnicodeDecodeError:
        raise DataError(f"{path}: not UTF-8 text") from None
    except json.JSONDecodeError as exc:
        raise DataError(f"{path}: not JSON ({exc})") from None
    return results_from_dict(d, str(path))


def results_schema() -> dict:
    """The JSON Schema of results.json, generated from the types."""
    schema = results_adapter().json_schema(mode="serialization")
    schema["title"] = f"trialbayes results, schema_version {SCHEMA_VERSION}"
    return schema


def write_schema(path: str | Path = SCHEMA_FILE) -> Path:
    """Write :func:`results_schema` (after a change of the results types; a test compares)."""
    path = Path(path)
    path.write_text(json.dumps(results_schema(), indent=1, sort_keys=True) + "\n")
    return path


def _errors(err: ValidationError, limit: int = 8) -> str:
    lines = []
    for e in err.errors()[:limit]:
        loc = ".".join(str(p) for p in e["loc"])
        lines.append(f"  - {loc}: {e['msg']} (got {str(e.get('input'))[:60]!r})")
    more = len(err.errors()) - limit
    return "\n".join(lines + ([f"  - ... and {more} more"] if more > 0 else []))
