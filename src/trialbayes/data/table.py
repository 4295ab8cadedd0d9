"""Patient-level data in: reading, column mapping and validation, before anything is fitted.

Every rejection raises :class:`DataError` whose message names the column and the offending rows
(1-based data rows, the header not counted). The result is a :class:`TrialData` with canonical
columns ``id, time, event (0/1), treat (0/1)``, the biomarker and covariate columns, and ``centre``.
"""

from __future__ import annotations

import difflib
import hashlib
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.data_sources import ColumnMap
from ..core.errors import DataError, RawConfigError
from ..core.yaml_reader import read_text_file
from ..results.missing import ColumnMissing, MissingData
from ..results.sections import ArmSummary, DataSummary
from .columns import (
    FileRows,
    arms_note,
    checked_ids,
    covariate,
    numeric,
    outcome_event,
    outcome_time,
    rows_text,
    select_arms,
)


@dataclass
class TrialData:
    """Validated patient-level data: the canonical frame (``id, time, event, treat``, biomarkers,
    covariates, ``centre``), the arm labels, the source, and what was dropped or missing."""

    frame: pd.DataFrame
    biomarkers: list[str]
    covariates: list[str]
    has_centre: bool
    treatment_label: str
    control_label: str
    label: str
    synthetic: bool = False
    truth: Any = None
    source: str = ""
    n_dropped: int = 0
    notes: list[str] = field(default_factory=list)
    reconstruction: Any = None  # quality report and inputs, for data rebuilt from a KM figure
    arm_column: str = ""  # the source column of the arm, to show numeric arm codes with their name
    source_columns: list[str] = field(default_factory=list)  # the columns of the file as read
    #: text covariate -> its levels (sorted; the first is the reference, the others have the
    #: dummy columns ``name[level]``)
    factors: dict[str, list[str]] = field(default_factory=dict)
    #: what was missing per column and what the policy did (None: the source cannot miss values)
    missing: MissingData | None = None
    #: each analysed row's number in the file and its id (None: not read from a file)
    file_rows: FileRows | None = None
    arms_left_out: dict[str, int] = field(default_factory=dict)  # other arms' rows left out

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def events(self) -> int:
        return int(self.frame["event"].sum())

    def arm_display(self, treated: bool) -> str:
        """The arm's label; a numeric code is shown with its column and role ("fin = 1
        (treatment)")."""
        level, role = (
            (self.treatment_label, "treatment") if treated else (self.control_label, "control")
        )
        try:
            float(level)
        except ValueError:
            if level.strip().lower() not in ("yes", "no", "true", "false", "y", "n"):
                return level
        return f"{self.arm_column} = {level} ({role})" if self.arm_column else f"{role} ({level})"

    def model_columns(self, names) -> list[str]:
        """The covariate columns of a model's ``covariates`` (``all``, or names): a text
        covariate named by its column stands for all its level columns (``tgrade`` ->
        ``tgrade[II]``, ``tgrade[III]``). A name that is neither is returned as it is (the checks
        name it)."""
        if names == "all":
            return list(self.covariates)
        out: list[str] = []
        for c in names:
            levels = self.factors.get(c)
            out += [f"{c}[{lv}]" for lv in levels[1:]] if levels else [c]
        return out

    def rows_text(self, mask) -> str:
        """The file's rows (and ids) of a mask over the analysed rows, for error messages."""
        return self.file_rows.text(mask) if self.file_rows is not None else rows_text(mask)

    def sha256(self) -> str:
        return hashlib.sha256(
            pd.util.hash_pandas_object(self.frame, index=False).values.tobytes()
        ).hexdigest()

    def describe(self) -> DataSummary:
        f = self.frame
        by_arm = {
            lab: ArmSummary(
                n=int((f["treat"] == t).sum()), events=int(f.loc[f["treat"] == t, "event"].sum())
            )
            for t, lab in ((1, self.arm_display(True)), (0, self.arm_display(False)))
        }
        return DataSummary(
            label=self.label,
            synthetic=self.synthetic,
            source=self.source,
            n=self.n,
            events=self.events,
            by_arm=by_arm,
            max_follow_up=float(f["time"].max()),
            n_dropped_incomplete=self.n_dropped,
            arms_left_out=dict(self.arms_left_out),
            sha256=self.sha256(),
        )


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    """A CSV (UTF-8 text, checked first) or Parquet file as a DataFrame; DataError otherwise."""
    path = Path(path)
    if path.is_dir():
        raise DataError(f"data file {path} is a folder, not a file")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    text = ""
    if fmt == "csv":
        try:
            text = read_text_file(path, "data file")
        except RawConfigError as exc:
            raise DataError(str(exc)) from None
    try:
        return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(io.StringIO(text))
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data error
        if isinstance(exc, pd.errors.EmptyDataError):
            raise DataError(f"{path}: the table is empty") from None
        raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None


def from_frame(
    df: pd.DataFrame,
    cols: ColumnMap,
    *,
    missing: str = "error",  # "error", "complete_case" or "impute" (data.missing)
    label: str = "",
    source: str = "<frame>",
    synthetic: bool = False,
    truth: Any = None,
    time_unit: str | None = None,
) -> TrialData:
    """Validate a raw table under a column mapping and return canonical :class:`TrialData`.
    ``time_unit``: what a duration-typed time column is converted to (else it is refused).
    Error messages name the file's rows (and ids) whatever was left out before."""
    if df is None or len(df) == 0:
        raise DataError(f"{source}: the table is empty (no rows)")
    df = df.reset_index(drop=True)
    _require_columns(df, cols, source)
    source_columns = [str(c) for c in df.columns]
    raw_ids = df[cols.id].astype(str).to_numpy()  # named in messages before they are checked
    df, rows, arms = select_arms(df, cols, FileRows(np.arange(1, len(df) + 1), raw_ids))
    ids = checked_ids(df[cols.id], cols.id, FileRows(rows.row))
    rows = FileRows(rows.row, ids)
    time, notes = outcome_time(df[cols.time], cols.time, time_unit, rows)
    event = outcome_event(df[cols.event], cols, rows)
    out = pd.DataFrame({"id": ids, "time": time, "event": event, "treat": arms.treat})
    covariates, factors, kinds = _add_columns(out, df, cols, rows)
    out, rows, summary = _missing_policy(out, df, cols, covariates, kinds, missing, rows)
    _check_scales(out, covariates, list(cols.biomarkers), rows)
    return TrialData(
        frame=out,
        biomarkers=list(cols.biomarkers),
        covariates=covariates,
        has_centre=bool(cols.centre),
        treatment_label=arms.treatment_label,
        control_label=arms.control_label,
        label=label or source,
        synthetic=synthetic,
        truth=truth,
        source=source,
        n_dropped=summary.n_rows_dropped,
        notes=notes + arms_note(cols, arms),  # dropped rows: TrialData.missing says it once
        arm_column=str(cols.arm),
        source_columns=source_columns,
        factors=factors,
        missing=summary,
        file_rows=rows,
        arms_left_out=arms.left_out,
    )


def _require_columns(df: pd.DataFrame, cols: ColumnMap, source: str) -> None:
    wanted = {"id": cols.id, "time": cols.time, "event": cols.event, "arm": cols.arm}
    wanted |= {f"biomarkers[{i}]": b for i, b in enumerate(cols.biomarkers)}
    wanted |= {f"covariates[{i}]": c for i, c in enumerate(cols.covariates)}
    if cols.centre:
        wanted["centre"] = cols.centre
    for role, name in wanted.items():
        if name not in df.columns:
            close = difflib.get_close_matches(str(name), [str(c) for c in df.columns], n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise DataError(
                f"columns.{role}: column '{name}' is not in {source}{hint}; "
                f"columns are {', '.join(map(str, df.columns))}"
            )


def _add_columns(out: pd.DataFrame, df: pd.DataFrame, cols: ColumnMap, rows: FileRows):
    """Biomarkers, covariates (a text one dummy-coded, its first level the reference) and the
    centre into ``out``; returns (covariate columns, factor levels, kind per source column)."""
    declared = [(b, "biomarker") for b in cols.biomarkers]
    declared += [(c, "covariate") for c in cols.covariates]
    for name, what in declared:
        if df[name].isna().all():
            raise DataError(
                f"column '{name}' ({what}): all {len(df)} values are missing; nothing can be "
                f"estimated or imputed from it — remove it from columns.{what}s"
            )
    kinds: dict[str, str] = {}
    for b in cols.biomarkers:
        out[b], kinds[b] = numeric(df[b], b, "biomarker", rows), "continuous"
    covariates: list[str] = []
    factors: dict[str, list[str]] = {}
    for c in cols.covariates:
        col = df[c]
        num = covariate(col, c, rows)
        if num is None:
            factors[c] = cats = sorted(col.dropna().astype(str).unique())
            for lv in cats[1:]:
                name = f"{c}[{lv}]"
                out[name] = np.where(col.isna(), np.nan, (col.astype(str) == lv).astype(float))
                covariates.append(name)
            kinds[c] = "factor"
        else:
            out[c] = num.to_numpy(dtype=float)
            covariates.append(c)
            kinds[c] = "binary" if num.dropna().nunique() == 2 else "continuous"
    if cols.centre:
        cen = df[cols.centre]
        if cen.isna().any():
            raise DataError(
                f"column '{cols.centre}' (centre): missing centre at {rows.text(cen.isna())}"
            )
        out["centre"] = cen.astype(str).to_numpy()
    return covariates, factors, kinds


def _missing_policy(out, df, cols: ColumnMap, covariates, kinds, policy: str, rows: FileRows):
    """``data.missing`` applied: (the rows analysed, their FileRows, the MissingData summary)."""
    summary = _missing_summary(df, cols, kinds, policy)
    rows_before = rows
    need = list(cols.biomarkers) + covariates
    miss = out[need].isna().any(axis=1).to_numpy() if need else np.zeros(len(out), bool)
    n_dropped = 0
    if miss.any() and policy == "error":
        first = next(c for c in need if out[c].isna().any())
        raise DataError(
            f"column '{first}': missing values at {rows.text(out[first].isna())} "
            f"({int(miss.sum())} rows incomplete in all: {summary.column_text()}); set "
            "data.missing: complete_case to drop them, or impute to impute them in the model"
        )
    if miss.any() and policy == "complete_case":
        n_dropped = int(miss.sum())
        out, rows = out.loc[~miss].reset_index(drop=True), rows.keep(~miss)
        if len(out) == 0:
            raise DataError(
                f"no complete rows remain after dropping incomplete cases ({summary.column_text()})"
            )
        if out["event"].sum() == 0 or out["treat"].nunique() < 2:
            raise DataError("after dropping incomplete cases, no events or only one arm remain")
    if miss.any() and policy == "impute":
        for c in need:
            if out[c].notna().sum() < 2:
                raise DataError(
                    f"column '{c}': only {int(out[c].notna().sum())} observed value; "
                    "data.missing: impute needs at least 2 to model it"
                )
    n_read, incomplete = summary.n_rows_read, int(miss.sum())
    where = rows_before.text(miss) if n_dropped else ""
    md = MissingData(policy, n_read, incomplete, n_dropped, summary.columns, dropped_rows=where)
    return out, rows, md


def _check_scales(out: pd.DataFrame, covariates: list[str], biomarkers: list[str], rows) -> None:
    """Every covariate varies; no column too large to standardise."""
    for c in covariates + biomarkers:
        with np.errstate(over="ignore", invalid="ignore"):
            sd = float(np.nanstd(out[c].to_numpy()))
        if sd == 0 and c in covariates:
            raise DataError(
                f"column '{c}' (covariate): constant across all patients, its effect cannot be "
                "estimated"
            )
        if not np.isfinite(sd):
            big = np.abs(np.nan_to_num(out[c].to_numpy())) > 1e150
            raise DataError(
                f"column '{c}': values too large to standardise at {rows.text(big)} "
                f"(largest {np.abs(out[c]).max():g}); check the units"
            )


def _missing_summary(df: pd.DataFrame, cols: ColumnMap, kinds: dict, policy: str) -> MissingData:
    """Missing values per declared source column (before any row is dropped)."""
    n = len(df)
    per = [
        ColumnMissing(c, role, kinds[c], int(df[c].isna().sum()), float(df[c].isna().mean()))
        for c, role in [(b, "biomarker") for b in cols.biomarkers]
        + [(c, "covariate") for c in cols.covariates]
    ]
    return MissingData(policy, n, 0, 0, per)
