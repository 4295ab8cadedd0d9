"""Text files and the YAML text of a config, before the schema sees it (PyYAML only, so the CLI can
answer a bad file before importing the analysis stack): duplicate keys, non-finite numbers and
documents that expand beyond any config's size.

PyYAML's ``safe_load`` keeps the last of two equal keys (a ``priors:`` block silently replaced by
a later ``priors: {}``) and reads ``.nan`` / ``.inf`` as floats the schema's ``gt=0`` lets through.
Both are refused here, naming the key path and the line.

Anchors and aliases (``&a`` / ``*a``) are allowed, but bounded *before* anything is built from
the document: at most :data:`MAX_ALIASES` aliases, and the document, with every alias expanded,
at most :data:`MAX_NODES` values (a 342-byte "billion laughs" expands to 387 million). Nesting
deeper than :data:`MAX_DEPTH` is refused too.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

import yaml

from .errors import RawConfigError

#: bounds on a config document (a real config has a few hundred values and no aliases)
MAX_ALIASES, MAX_NODES, MAX_DEPTH = 100, 100_000, 60


class _UniqueKeyLoader(yaml.SafeLoader):
    """SafeLoader that refuses a mapping with the same key twice, and bounds aliases, expanded
    size and depth while composing (before any object is constructed)."""

    def __init__(self, stream):
        super().__init__(stream)
        self._aliases = 0
        self._depth = 0

    def compose_node(self, parent, index):
        if self.check_event(yaml.AliasEvent):
            self._aliases += 1
            if self._aliases > MAX_ALIASES:
                mark = self.peek_event().start_mark
                raise RawConfigError(
                    f"more than {MAX_ALIASES} YAML aliases (*name), the last at line "
                    f"{mark.line + 1}; a config needs none"
                )
            return super().compose_node(parent, index)
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                mark = self.peek_event().start_mark
                raise RawConfigError(
                    f"nested more than {MAX_DEPTH} levels deep (line {mark.line + 1})"
                )
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def get_single_node(self):
        node = super().get_single_node()
        if node is not None:
            n = expanded_size(node, MAX_NODES)
            if n > MAX_NODES:
                raise RawConfigError(
                    f"the document expands to more than {MAX_NODES:,} values once its "
                    f"{self._aliases} aliases are expanded (an alias bomb?); refused unread"
                )
        return node

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


# YAML 1.1 reads ``1e7`` (no dot, no exponent sign) as text; a config means the number
_UniqueKeyLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?[0-9][0-9_]*(?:\.[0-9_]*)?[eE][-+]?[0-9]+$"),
    list("-+0123456789"),
)


def expanded_size(root, limit: int) -> int:
    """How many nodes the composed document has with every alias expanded (aliases share node
    objects, so this counts a DAG as the tree it stands for), stopping once above ``limit``.
    Linear in the number of distinct nodes (memoised, iterative)."""
    size: dict[int, int] = {}
    stack = [(root, False)]
    while stack:
        node, done = stack.pop()
        if id(node) in size:
            continue
        kids = _children(node)
        if not done:
            stack.append((node, True))
            stack.extend((k, False) for k in kids if id(k) not in size)
            continue
        size[id(node)] = min(1 + sum(size[id(k)] for k in kids), limit + 1)
    return size[id(root)]


def _children(node) -> list:
    if isinstance(node, yaml.MappingNode):
        return [x for kv in node.value for x in kv]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def decode_text(raw: bytes, what: str) -> str:
    """Bytes of a text file (a config, a CSV) as text: UTF-8 (a UTF-8 byte-order mark is
    dropped). UTF-16, binary files and other encodings raise :class:`RawConfigError` saying which
    and how to fix it, instead of a decoder's traceback."""
    if raw.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(raw) > 1 and raw[1:2] == b"\x00"):
        raise RawConfigError(f"{what} is UTF-16 text; save it as UTF-8")
    if b"\x00" in raw[:8192]:
        raise RawConfigError(f"{what} is a binary file, not text")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise RawConfigError(
            f"{what} is not UTF-8 text (byte 0x{raw[exc.start]:02x} on line {line}); "
            "save it as UTF-8"
        ) from None


def read_text_file(path, what: str, limit: int = 2**30) -> str:
    """A text file's content, refusing a folder, a missing file, a huge one or non-UTF-8 text."""
    path = Path(path)
    if path.is_dir():
        raise RawConfigError(f"{what} {path} is a folder, not a file")
    if not path.is_file():
        raise RawConfigError(f"{what} not found: {path}")
    if path.stat().st_size > limit:
        raise RawConfigError(f"{what} {path} is larger than {limit / 2**20:.0f} MB")
    return decode_text(path.read_bytes(), f"{what} {path}")


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
    """Raise :class:`RawConfigError` naming every key path of ``raw`` that holds NaN or ±inf."""
    bad = non_finite(raw)
    if bad:
        raise RawConfigError("non-finite numbers are not allowed in a config: " + "; ".join(bad))


def precheck(path) -> str | None:
    """Why a config file cannot even be read as bounded YAML (a folder, not UTF-8, an alias bomb,
    duplicate keys, not a mapping), or None; needs nothing but PyYAML, so the CLI answers a bad
    file before importing the analysis stack."""
    try:
        raw = load_yaml(read_text_file(path, "config", limit=16 * 2**20))
    except RawConfigError as exc:
        return str(exc) if str(exc).startswith("config") else f"config {path}: {exc}"
    except (yaml.YAMLError, OSError) as exc:
        return f"config {path} is not valid YAML: {exc}"
    return None if isinstance(raw, dict) else f"config {path} must be a mapping at the top level"
