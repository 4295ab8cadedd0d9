"""One column of a patient table at a time: where each row came from in the file, and the checks
that turn a raw column into numbers (times, event status, arms, biomarkers, covariates).

Every rejection raises :class:`DataError` naming the column, the file's rows (1-based data rows,
the header not counted; rows the analysis leaves out keep their numbers) and, once known, the
patients' ids.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..config.data_sources import ColumnMap
from ..core.errors import DataError

#: shown rows (and ids) before "and N more"
SHOWN = 10
DAYS_PER = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
#: a follow-up time beyond this many times the median (or beyond MAX_TIME in any unit) is a typo
#: or a unit mix-up; it would reach the sampler as an exposure the likelihood cannot hold
TIME_SPREAD, MAX_TIME = 1e6, 1e12
MAX_LEVELS = 20  # a covariate with more text levels than this is a data error, not a factor

#: the rule the outcome columns follow under every ``data.missing`` policy
OUTCOME_OBSERVED = (
    "the event time and status must be observed for every patient (data.missing handles "
    "covariates and biomarkers only): remove these rows from the file or supply the values"
)


def rows_text(mask, rows=None, ids=None) -> str:
    """ "rows 3, 5 and 12 more (ids P3, P5, …)" for a boolean mask over a table's rows;
    ``rows``: each row's number in the file (default: its position, 1-based); ``ids``: its id."""
    idx = np.flatnonzero(np.asarray(mask, bool))
    nums = np.asarray(rows)[idx] if rows is not None else idx + 1
    shown = ", ".join(str(i) for i in nums[:SHOWN])
    more = f" and {len(idx) - SHOWN} more" if len(idx) > SHOWN else ""
    text = f"row{'s' if len(idx) > 1 else ''} {shown}{more}"
    if ids is not None and len(idx):
        some = ", ".join(str(v) for v in np.asarray(ids)[idx][:SHOWN])
        text += f" (id{'s' if len(idx) > 1 else ''} {some}{' …' if len(idx) > SHOWN else ''})"
    return text


@dataclass(frozen=True)
class FileRows:
    """Each row's number in the file (1-based data row) and, once checked, its id."""

    row: np.ndarray
    id: np.ndarray | None = None

    def text(self, mask) -> str:
        return rows_text(mask, self.row, self.id)

    def keep(self, mask) -> FileRows:
        m = np.asarray(mask, bool)
        return FileRows(self.row[m], None if self.id is None else self.id[m])


def same_level(a, b) -> bool:
    """A declared level against a cell value, tolerating '1' vs 1 vs 1.0 from CSV."""
    if a == b:
        return True
    try:
        return float(a) == float(b)
    except (TypeError, ValueError):
        return str(a) == str(b)


def no_dates(col: pd.Series, name: str, what: str) -> None:
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


def numeric(col: pd.Series, name: str, what: str, rows: FileRows) -> np.ndarray:
    """A numeric column as floats (missing as NaN); text or infinite cells refused."""
    no_dates(col, name, what)
    num = pd.to_numeric(col, errors="coerce")
    bad = (num.isna() & col.notna()).to_numpy()
    if bad.any():
        vals = sorted({str(v) for v in col[bad]})[:5]
        raise DataError(f"column '{name}' ({what}): non-numeric values {vals} at {rows.text(bad)}")
    out = num.to_numpy(dtype=float)
    inf = np.isinf(out)
    if inf.any():
        raise DataError(f"column '{name}' ({what}): infinite values at {rows.text(inf)}")
    return out


# ----------------------------------------------------------------------------- arms
@dataclass(frozen=True)
class Arms:
    """The two arms analysed: 1 = treatment per kept row, their labels, what was left out."""

    treat: np.ndarray
    treatment_label: str
    control_label: str
    left_out: dict[str, int]  # other arms' levels -> rows left out


def select_arms(df: pd.DataFrame, cols: ColumnMap, rows: FileRows):
    """(the rows of the two arms analysed, their FileRows, :class:`Arms`). A file with more arms
    keeps the two named by treatment_level and control_level and leaves the others out."""
    arm = df[cols.arm]
    if arm.isna().any():
        raise DataError(f"column '{cols.arm}' (arm): missing arm at {rows.text(arm.isna())}")
    levels = list(pd.unique(arm))
    shown = [str(v) for v in levels][:SHOWN]
    treat_lv = [v for v in levels if same_level(v, cols.treatment_level)]
    if not treat_lv:
        raise DataError(
            f"column '{cols.arm}' (arm): treatment_level {cols.treatment_level!r} is not one of "
            f"the arms {shown}"
        )
    others = [v for v in levels if not same_level(v, cols.treatment_level)]
    if cols.control_level is not None:
        control_lv = [v for v in others if same_level(v, cols.control_level)]
        if not control_lv:
            raise DataError(
                f"column '{cols.arm}' (arm): control_level {cols.control_level!r} is not among "
                f"the arms {shown}"
            )
    elif len(others) != 1:
        raise DataError(
            f"column '{cols.arm}' (arm): need two arms, found {len(levels)}: {shown}; name the "
            "two to compare with columns.treatment_level and columns.control_level (the rows "
            "of the other arms are then left out, and counted in the report)"
        )
    else:
        control_lv = others
    keep = np.array([same_level(v, treat_lv[0]) or same_level(v, control_lv[0]) for v in arm])
    left = arm[~keep].astype(str).value_counts(sort=False)
    if not keep.all():
        df, rows = df.loc[keep].reset_index(drop=True), rows.keep(keep)
    treat = np.array([same_level(v, cols.treatment_level) for v in df[cols.arm]], dtype=int)
    arms = Arms(treat, str(treat_lv[0]), str(control_lv[0]), {k: int(n) for k, n in left.items()})
    return df, rows, arms


def arms_note(cols: ColumnMap, arms: Arms) -> list[str]:
    """The data note of a file with more than two arms (empty otherwise)."""
    if not arms.left_out:
        return []
    n = sum(arms.left_out.values())
    which = ", ".join(f"'{k}' ({v} rows)" for k, v in arms.left_out.items())
    return [
        f"arm column '{cols.arm}': {n} rows of other arms left out ({which}); analysed "
        f"'{arms.treatment_label}' (treatment) against '{arms.control_label}' (control)"
    ]


# ----------------------------------------------------------------------------- id and outcome
def checked_ids(ids: pd.Series, name: str, rows: FileRows) -> np.ndarray:
    """The id column as text; DataError on missing or duplicate ids (with their file rows)."""
    if ids.isna().any():
        raise DataError(f"column '{name}' (id): missing ids at {rows.text(ids.isna())}")
    dup = ids.duplicated(keep=False)
    if dup.any():
        some = sorted(map(str, ids[dup].unique()))[:SHOWN]
        raise DataError(f"column '{name}' (id): duplicate ids {some} at {rows.text(dup)}")
    return ids.astype(str).to_numpy()


def outcome_time(
    col: pd.Series, name: str, unit: str | None, rows: FileRows
) -> tuple[np.ndarray, list[str]]:
    """Follow-up times (> 0), and the note of a duration column converted to ``unit``."""
    if col.isna().any():
        raise DataError(
            f"column '{name}' (time): missing times at {rows.text(col.isna())}; {OUTCOME_OBSERVED}"
        )
    notes = []
    if pd.api.types.is_timedelta64_dtype(col) and unit:
        col = col.dt.total_seconds() / 86400.0 / DAYS_PER[unit]
        notes.append(f"time column '{name}' held durations; converted to {unit}")
    time = numeric(col, name, "time", rows)
    for bad, what in ((time < 0, "negative times"), (time == 0, "zero times")):
        if bad.any():
            raise DataError(
                f"column '{name}' (time): {what} at {rows.text(bad)}; follow-up must be > 0"
            )
    med = float(np.median(time))
    big = (time > TIME_SPREAD * med) | (time > MAX_TIME)
    if big.any():
        raise DataError(
            f"column '{name}' (time): times out of scale at {rows.text(big)} (largest "
            f"{time[big].max():.3g}; median {med:.3g}): more than {TIME_SPREAD:.0e} × the median "
            f"or above {MAX_TIME:.0e}; a typo, or times in another unit?"
        )
    return time, notes


def outcome_event(col: pd.Series, cols: ColumnMap, rows: FileRows) -> np.ndarray:
    """Event status as 0/1 under the declared event_value / censored_value pair."""
    name = cols.event
    if col.isna().any():
        raise DataError(
            f"column '{name}' (event): missing event status at {rows.text(col.isna())}; "
            f"{OUTCOME_OBSERVED}"
        )
    is_ev = np.array([same_level(v, cols.event_value) for v in col])
    is_cens = np.array([same_level(v, cols.censored_value) for v in col])
    bad = ~(is_ev | is_cens)
    if bad.any():
        vals = sorted({str(v) for v in col[bad]})[:5]
        raise DataError(
            f"column '{name}' (event): values {vals} at {rows.text(bad)} are outside the "
            f"declared pair event_value={cols.event_value!r} / "
            f"censored_value={cols.censored_value!r}"
        )
    if not is_ev.any():
        raise DataError(
            f"column '{name}' (event): no events in the data; a survival model needs at least one"
        )
    return is_ev.astype(int)


# ----------------------------------------------------------------------------- covariates
def covariate(col: pd.Series, name: str, rows: FileRows) -> pd.Series | None:
    """A numeric covariate as floats, or None for a text (categorical) one. Refuses a numeric
    column with a few text cells (a typo would otherwise make every value its own dummy)."""
    no_dates(col, name, "covariate")
    if col.dtype == bool:
        col = col.astype(int)
    num = pd.to_numeric(col, errors="coerce")
    text = (num.isna() & col.notna()).to_numpy()
    if not text.any():
        if np.isinf(num).any():
            raise DataError(
                f"column '{name}' (covariate): infinite values at {rows.text(np.isinf(num))}"
            )
        return num.astype(float)
    if (~text & col.notna().to_numpy()).any():
        vals = sorted({str(v) for v in col[text]})[:5]
        raise DataError(
            f"column '{name}' (covariate): mostly numbers but text values {vals} at "
            f"{rows.text(text)}; fix those cells (a categorical covariate must be text "
            "throughout)"
        )
    n_lv = col.dropna().astype(str).nunique()
    if n_lv > MAX_LEVELS:
        raise DataError(
            f"column '{name}' (covariate): {n_lv} distinct text values, more than "
            f"{MAX_LEVELS} levels; is it an identifier or a mistyped numeric column?"
        )
    return None
