"""Warnings that travel with a result: why an answer may be prior-driven or less than it seems.

A :class:`Flag` is machine-readable (``code``), says what a reader should know (``message``) and
where it applies (``model`` or ``None`` for the whole run). Issues that produce flags (sparse
events, a Cox fit that did not converge, a reconstructed data set, ...) return lists of them; the
results model carries them and every report shows them at the top.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Literal

Severity = Literal["caution", "warning"]


@dataclass(frozen=True)
class Flag:
    """A warning that travels with a result: a stable code, a message for the reader, its severity
    and the model it applies to (``None``: the whole run)."""

    code: str  # stable, machine-readable, e.g. "zero_events_in_arm", "cox_not_converged"
    message: str  # one sentence a reader can act on, with numbers
    severity: Severity = "warning"
    model: str | None = None  # None: applies to the whole run
    detail: dict = field(default_factory=dict)  # numbers behind the message

    def to_dict(self) -> dict:
        return asdict(self)


def grouped(flags: list[Flag]) -> list[tuple[Flag, list[str]]]:
    """Each kind of flag once: flags with the same code, severity and message (they differ only
    in the model they apply to) as one, with the models listed (empty: the whole run)."""
    out: dict[tuple, tuple[Flag, list[str]]] = {}
    for f in flags:
        key = (f.code, f.severity, f.message)
        first, models = out.setdefault(key, (f, []))
        if f.model and f.model not in models:
            models.append(f.model)
    return list(out.values())


def where(models: list[str]) -> str:
    """ "model a" / "models a, b" / "" (the whole run)."""
    if not models:
        return ""
    return ("model " if len(models) == 1 else "models ") + ", ".join(models)
