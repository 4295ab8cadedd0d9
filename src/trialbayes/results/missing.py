"""Typed results of the missing-value handling (``data.missing``): what was missing per column,
what a complete-case analysis dropped, and, under ``impute``, per model the values imputed and
the treatment effect of the imputed fit beside the complete-case refit (same priors).

Kept in ``Results.missing_data`` (results.json ``missing_data``). The maths is in
``models/missing_data.md``."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from .summaries import HRSummary

Policy = Literal["error", "complete_case", "impute"]


@dataclass(frozen=True)
class ColumnMissing:
    """Missing values of one source column of the data (a text covariate counts once, not per
    dummy column). ``kind``: continuous, binary (two observed values) or factor (text levels)."""

    column: str
    role: Literal["covariate", "biomarker"]
    kind: Literal["continuous", "binary", "factor"]
    n_missing: int
    share: float  # of the rows read


@dataclass(frozen=True)
class ImputedColumn:
    """One column imputed in one model: how many values, and how (the scale and the model)."""

    column: str
    kind: Literal["continuous", "binary", "factor"]
    n_imputed: int
    method: str  # e.g. "latent normal on the log scale, given arm, age, ecog"


@dataclass(frozen=True)
class ModelImputation:
    """One model fitted with imputed values, and its complete-case refit for comparison.

    ``imputed`` and ``complete_case`` are the treatment HR (for an interaction model: at the same
    biomarker value, ``compared_at``) of the two fits; ``log_hr_shift`` is the difference of their
    posterior mean log-HRs (imputed − complete case)."""

    model: str
    n_rows: int
    n_rows_imputed: int
    columns: list[ImputedColumn]
    imputed: HRSummary
    compared_at: str
    complete_case: HRSummary | None = None
    complete_case_n: int | None = None
    complete_case_events: int | None = None
    complete_case_reliable: bool | None = None
    log_hr_shift: float | None = None
    note: str = ""


@dataclass(frozen=True)
class MissingData:
    """The run's missing-value summary. ``n_rows_read``: rows in the file; ``n_rows_incomplete``:
    rows with a missing value in a declared covariate or biomarker; ``n_rows_dropped``: rows a
    complete-case analysis removed (0 under ``impute``)."""

    policy: Policy
    n_rows_read: int
    n_rows_incomplete: int
    n_rows_dropped: int
    columns: list[ColumnMissing]
    models: list[ModelImputation] = field(default_factory=list)
    #: complete_case: the file's rows (and ids) dropped, e.g. "rows 3, 7 (ids P3, P7)"
    dropped_rows: str = ""

    @property
    def n_values_missing(self) -> int:
        return sum(c.n_missing for c in self.columns)

    def column_text(self) -> str:
        """ "age 12 (5.5%), crp 8 (3.6%)" (columns with a missing value only)."""
        return ", ".join(
            f"{c.column} {c.n_missing} ({100 * c.share:.1f}%)" for c in self.columns if c.n_missing
        )
