"""Patient-level data in: reading, column mapping and validation, before anything is fitted.

Every rejection raises :class:`DataError` whose message names the column and the offending rows
(1-based data rows, the header not counted). The result is a :class:`TrialData` with canonical
columns ``id, time, event (0/1), treat (0/1)``, the biomarker and covariate columns, and ``centre``.
"""

from __future__ import annotations

import difflib
import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..config.schema import ColumnMap
from ..core.errors import DataError
from ..results.missing import ColumnMissing, MissingData
from ..results.sections import ArmSummary, DataSummary


@dataclass
class TrialData:
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

    @property
    def n(self) -> int:
        return len(self.frame)

    @property
    def events(self) -> int:
        return int(self.frame["event"].sum())

    def arm_display(self, treated: bool) -> str:
        """The arm's label; a numeric code is shown with its column and role ("fin = 1 (treatment)")."""
        level, role = (
            (self.treatment_label, "treatment") if treated else (self.control_label, "control")
        )
        try:
            float(level)
        except ValueError:
            if level.strip().lower() not in ("yes", "no", "true", "false", "y", "n"):
                return level
        return f"{self.arm_column} = {level} ({role})" if self.arm_column else f"{role} ({level})"

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
            sha256=self.sha256(),
        )


def rows_text(mask) -> str:
    """ "rows 3, 5 and 12 more" for a boolean mask over the rows (1-based)."""
    idx = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in idx[:10])
    more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def _ids(ids: pd.Series, mask) -> str:
    shown = [str(v) for v in ids[np.asarray(mask)].tolist()[:10]]
    return ", ".join(shown) + (" …" if int(np.asarray(mask).sum()) > 10 else "")


#: the rule the outcome columns follow under every ``data.missing`` policy
OUTCOME_OBSERVED = (
    "the event time and status must be observed for every patient (data.missing handles "
    "covariates and biomarkers only): remove these rows from the file or supply the values"
)


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    path = Path(path)
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
    try:
        return pd.read_parquet(path) if fmt == "parquet" else pd.read_csv(path)
    except Exception as exc:  # noqa: BLE001 - any reader failure is a data error
        if isinstance(exc, pd.errors.EmptyDataError):
            raise DataError(f"{path}: the table is empty") from None
        raise DataError(f"{path}: cannot read as {fmt}: {exc}") from None


def _same(a, b) -> bool:
    """Compare a declared level with a cell value, tolerating '1' vs 1 vs 1.0 from CSV."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def _no_dates(col: pd.Series, name: str, what: str) -> None:
    """Dates and durations would be read as nanoseconds by ``pd.to_numeric``."""
    if pd.api.types.is_datetime64_any_dtype(col):
        raise DataError(
            f"column '{name}' ({what}): holds dates ({col.dtype}), which would be read "
            "as nanoseconds; give numbers (for time: follow-up from randomisation)"
        )
    if pd.api.types.is_timedelta64_dtype(col):
        hint = (
            " (for the time column, set data.time_unit to convert them)" if what == "time" else ""
        )
        raise DataError(
            f"column '{name}' ({what}): holds durations ({col.dtype}); give numbers{hint}"
        )


def _numeric(col: pd.Series, name: str, what: str) -> np.ndarray:
    _no_dates(col, name, what)
    num = pd.to_numeric(col, errors="coerce")
    bad = num.isna() & col.notna()
    if bad.any():
        vals = sorted({str(v) for v in col[bad]})[:5]
        raise DataError(f"column '{name}' ({what}): non-numeric values {vals} at {rows_text(bad)}")
    out = num.to_numpy(dtype=float)
    inf = np.isinf(out)
    if inf.any():
        raise DataError(f"column '{name}' ({what}): infinite values at {rows_text(inf)}")
    return out


DAYS_PER = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
MAX_LEVELS = 20  # a covariate with more text levels than this is a data error, not a factor


def _time_column(col: pd.Series, name: str, unit: str | None) -> tuple[pd.Series, list[str]]:
    """A duration-typed time column converted to ``data.time_unit`` (said in the notes)."""
    if pd.api.types.is_timedelta64_dtype(col) and unit:
        days = col.dt.total_seconds() / 86400.0
        return days / DAYS_PER[unit], [f"time column '{name}' held durations; converted to {unit}"]
    return col, []


def _covariate(col: pd.Series, name: str) -> pd.Series | None:
    """A numeric covariate as floats, or None for a text (categorical) one. Refuses a numeric
    column with a few text cells (a typo would otherwise make every value its own dummy)."""
    _no_dates(col, name, "covariate")
    if col.dtype == bool:
        col = col.astype(int)
    num = pd.to_numeric(col, errors="coerce")
    text = num.isna() & col.notna()
    if not text.any():
        if np.isinf(num).any():
            raise DataError(
                f"column '{name}' (covariate): infinite values at {rows_text(np.isinf(num))}"
            )
        return num.astype(float)
    if (~text & col.notna()).any():
        vals = sorted({str(v) for v in col[text]})[:5]
        raise DataError(
            f"column '{name}' (covariate): mostly numbers but text values {vals} at "
            f"{rows_text(text)}; fix those cells (a categorical covariate must be text "
            "throughout)"
        )
    n_lv = col.dropna().astype(str).nunique()
    if n_lv > MAX_LEVELS:
        raise DataError(
            f"column '{name}' (covariate): {n_lv} distinct text values, more than "
            f"{MAX_LEVELS} levels; is it an identifier or a mistyped numeric column?"
        )
    return None


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
    ``time_unit``: what a duration-typed time column is converted to (else it is refused)."""
    if df is None or len(df) == 0:
        raise DataError(f"{source}: the table is empty (no rows)")
    df = df.reset_index(drop=True)
    wanted = {"id": cols.id, "time": cols.time, "event": cols.event, "arm": cols.arm}
    for i, b in enumerate(cols.biomarkers):
        wanted[f"biomarkers[{i}]"] = b
    for i, c in enumerate(cols.covariates):
        wanted[f"covariates[{i}]"] = c
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

    ids = df[cols.id]
    if ids.isna().any():
        raise DataError(f"column '{cols.id}' (id): missing ids at {rows_text(ids.isna())}")
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"column '{cols.id}' (id): duplicate ids {sorted(map(str, ids[dup].unique()))[:10]} at {rows_text(dup)}"
        )

    t_raw = df[cols.time]
    if t_raw.isna().any():
        raise DataError(
            f"column '{cols.time}' (time): missing times at {rows_text(t_raw.isna())} "
            f"(ids {_ids(ids, t_raw.isna())}); {OUTCOME_OBSERVED}"
        )
    t_raw, time_notes = _time_column(t_raw, cols.time, time_unit)
    time = _numeric(t_raw, cols.time, "time")
    if not np.isfinite(time).all():
        raise DataError(
            f"column '{cols.time}' (time): non-finite times at {rows_text(~np.isfinite(time))}"
        )
    if (time < 0).any():
        raise DataError(f"column '{cols.time}' (time): negative times at {rows_text(time < 0)}")
    if (time == 0).any():
        raise DataError(
            f"column '{cols.time}' (time): zero times at {rows_text(time == 0)}; follow-up must be > 0"
        )

    ev_raw = df[cols.event]
    if ev_raw.isna().any():
        raise DataError(
            f"column '{cols.event}' (event): missing event status at {rows_text(ev_raw.isna())} "
            f"(ids {_ids(ids, ev_raw.isna())}); {OUTCOME_OBSERVED}"
        )
    is_ev = np.array([_same(v, cols.event_value) for v in ev_raw])
    is_cens = np.array([_same(v, cols.censored_value) for v in ev_raw])
    bad = ~(is_ev | is_cens)
    if bad.any():
        vals = sorted({str(v) for v in ev_raw[bad]})[:5]
        raise DataError(
            f"column '{cols.event}' (event): values {vals} at {rows_text(bad)} are outside the declared pair "
            f"event_value={cols.event_value!r} / censored_value={cols.censored_value!r}"
        )
    if not is_ev.any():
        raise DataError(
            f"column '{cols.event}' (event): no events in the data; a survival model needs at least one"
        )

    arm = df[cols.arm]
    if arm.isna().any():
        raise DataError(f"column '{cols.arm}' (arm): missing arm at {rows_text(arm.isna())}")
    levels = list(pd.unique(arm))
    if len(levels) != 2:
        raise DataError(
            f"column '{cols.arm}' (arm): need exactly two arms, found {len(levels)}: {[str(v) for v in levels][:10]}"
        )
    treat_lv = [v for v in levels if _same(v, cols.treatment_level)]
    if not treat_lv:
        raise DataError(
            f"column '{cols.arm}' (arm): treatment_level {cols.treatment_level!r} is not one of the arms {[str(v) for v in levels]}"
        )
    control_lv = [v for v in levels if v is not treat_lv[0] and not _same(v, cols.treatment_level)]
    if cols.control_level is not None and not _same(control_lv[0], cols.control_level):
        raise DataError(
            f"column '{cols.arm}' (arm): control_level {cols.control_level!r} is not among the arms {[str(v) for v in levels]}"
        )
    treat = np.array([1 if _same(v, cols.treatment_level) else 0 for v in arm])

    out = pd.DataFrame(
        {"id": ids.astype(str).to_numpy(), "time": time, "event": is_ev.astype(int), "treat": treat}
    )
    for name, what in [(b, "biomarker") for b in cols.biomarkers] + [
        (c, "covariate") for c in cols.covariates
    ]:
        if df[name].isna().all():
            raise DataError(
                f"column '{name}' ({what}): all {len(df)} values are missing; nothing can be "
                f"estimated or imputed from it — remove it from columns.{what}s"
            )
    kinds: dict[str, str] = {}
    for b in cols.biomarkers:
        out[b] = _numeric(df[b], b, "biomarker")
        kinds[b] = "continuous"
    covariates: list[str] = []
    factors: dict[str, list[str]] = {}
    for c in cols.covariates:
        col = df[c]
        num = _covariate(col, c)
        if num is None:  # categorical: dummy-code, first level is the reference
            cats = sorted(col.dropna().astype(str).unique())
            factors[c] = cats
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
                f"column '{cols.centre}' (centre): missing centre at {rows_text(cen.isna())}"
            )
        out["centre"] = cen.astype(str).to_numpy()

    summary = _missing_summary(df, cols, kinds, missing)
    n_dropped = 0
    need = list(cols.biomarkers) + covariates
    miss = out[need].isna().any(axis=1).to_numpy() if need else np.zeros(len(out), bool)
    if miss.any() and missing == "error":
        first = next(c for c in need if out[c].isna().any())
        raise DataError(
            f"column '{first}': missing values at {rows_text(out[first].isna())} "
            f"({int(miss.sum())} rows incomplete in all: {summary.column_text()}); set "
            "data.missing: complete_case to drop them, or impute to impute them in the model"
        )
    if miss.any() and missing == "complete_case":
        n_dropped = int(miss.sum())
        out = out.loc[~miss].reset_index(drop=True)
        if len(out) == 0:
            raise DataError(
                f"no complete rows remain after dropping incomplete cases ({summary.column_text()})"
            )
        if out["event"].sum() == 0 or out["treat"].nunique() < 2:
            raise DataError("after dropping incomplete cases, no events or only one arm remain")
    if miss.any() and missing == "impute":
        for c in need:
            if out[c].notna().sum() < 2:
                raise DataError(
                    f"column '{c}': only {int(out[c].notna().sum())} observed value; "
                    "data.missing: impute needs at least 2 to model it"
                )
    summary = MissingData(
        summary.policy, summary.n_rows_read, int(miss.sum()), n_dropped, summary.columns
    )
    for c in covariates + list(cols.biomarkers):
        with np.errstate(over="ignore", invalid="ignore"):
            sd = float(np.nanstd(out[c].to_numpy()))
        if sd == 0 and c in covariates:
            raise DataError(
                f"column '{c}' (covariate): constant across all patients, its effect cannot be estimated"
            )
        if not np.isfinite(sd):
            big = np.abs(np.nan_to_num(out[c].to_numpy())) > 1e150
            raise DataError(
                f"column '{c}': values too large to standardise at {rows_text(big)} "
                f"(largest {np.abs(out[c]).max():g}); check the units"
            )

    return TrialData(
        frame=out,
        biomarkers=list(cols.biomarkers),
        covariates=covariates,
        has_centre=bool(cols.centre),
        treatment_label=str(treat_lv[0]),
        control_label=str(control_lv[0]),
        label=label or source,
        synthetic=synthetic,
        truth=truth,
        source=source,
        n_dropped=n_dropped,
        notes=time_notes,  # rows dropped for missing values: TrialData.missing says it once
        arm_column=str(cols.arm),
        source_columns=[str(c) for c in df.columns],
        factors=factors,
        missing=summary,
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
