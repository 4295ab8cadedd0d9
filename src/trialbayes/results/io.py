"""results.json back into the typed results, and the JSON Schema of the results.

``load_results`` validates the file against the types (ranges included: probabilities in [0, 1],
booleans are booleans, levels in (0, 1)) and returns the same object ``Results.to_dict()`` wrote;
a 2.x or 3.0 file (earlier schemas) is migrated first. A file that is not valid results raises
:class:`~trialbayes.core.errors.DataError` naming the key. ``results_schema()`` is the JSON Schema
generated from the types (kept in ``src/trialbayes/results/results.schema.json``; a test keeps it
current).
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import ValidationError

from ..core.errors import DataError
from ..core.outputs import read_nofollow
from .migrate import from_2x, from_3_0
from .model import SCHEMA_VERSION, Results, results_adapter

SCHEMA_FILE = Path(__file__).with_name("results.schema.json")


def results_from_dict(d: dict, source: str = "results") -> Results:
    """A results dictionary (results.json's content) as typed :class:`Results`; 2.x and 3.0
    migrated."""
    if not isinstance(d, dict):
        raise DataError(f"{source}: not a JSON object")
    version = str(d.get("schema_version", ""))
    major = version.split(".")[0]
    if major == "2":
        d = from_2x(d)
    elif major != SCHEMA_VERSION.split(".")[0]:
        raise DataError(
            f"{source}: schema_version {version or 'missing'!r}; this trialbayes reads "
            f"{SCHEMA_VERSION}, 3.0 and 2.x"
        )
    if str(d.get("schema_version")) == "3.0":  # also a 2.x file, migrated above
        d = from_3_0(d)
    try:  # strict: a boolean is true/false, a number a number (not "no", not "0.5")
        return results_adapter().validate_json(json.dumps(d), strict=True)
    except ValidationError as err:
        raise DataError(f"{source} is not valid results:\n{_errors(err)}") from None


#: the largest results.json read back (a real one is a few MB)
MAX_RESULTS_BYTES = 512 * 2**20


def load_results(path: str | Path) -> Results:
    """Read a run's results.json back into :class:`Results`: never through a link, UTF-8 JSON
    without NaN/Infinity constants, then validated strictly (types and ranges; DataError names
    the key)."""
    path = Path(path)
    try:
        raw = read_nofollow(path, limit=MAX_RESULTS_BYTES)
    except OSError as exc:
        raise DataError(f"{path}: cannot be read safely ({exc})") from None
    if raw is None:
        raise DataError(f"{path} not found")

    def no_constant(name):
        raise DataError(f"{path}: {name} is not a JSON number")

    try:
        d = json.loads(raw.decode("utf-8"), parse_constant=no_constant)
    except UnicodeDecodeError as exc:
        raise DataError(f"{path}: not UTF-8 text ({exc.reason} at byte {exc.start})") from None
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
