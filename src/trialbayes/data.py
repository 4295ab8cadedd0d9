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

from .config import ColumnMap, ModelSpec


class DataError(ValueError):
    """Input data that cannot be analysed. The message names the column and rows."""


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
    reconstruction: dict | None = (
        None  # quality report and inputs, for data rebuilt from a KM figure
    )
    arm_column: str = ""  # the source column of the arm, to show numeric arm codes with their name

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

    def describe(self) -> dict:
        f = self.frame
        by_arm = {
            lab: {
                "n": int((f["treat"] == t).sum()),
                "events": int(f.loc[f["treat"] == t, "event"].sum()),
            }
            for t, lab in ((1, self.arm_display(True)), (0, self.arm_display(False)))
        }
        return {
            "label": self.label,
            "synthetic": self.synthetic,
            "source": self.source,
            "n": self.n,
            "events": self.events,
            "by_arm": by_arm,
            "max_follow_up": float(f["time"].max()),
            "n_dropped_incomplete": self.n_dropped,
            "sha256": self.sha256(),
        }


def _rows(mask) -> str:
    idx = np.flatnonzero(np.asarray(mask)) + 1
    shown = ", ".join(str(i) for i in idx[:10])
    more = f" and {len(idx) - 10} more" if len(idx) > 10 else ""
    return f"row{'s' if len(idx) > 1 else ''} {shown}{more}"


def read_table(path: Path, fmt: str = "auto") -> pd.DataFrame:
    import io

    from .rawconfig import RawConfigError, read_text_file

    path = Path(path)
    if path.is_dir():
        raise DataError(f"data file {path} is a folder, not a file")
    if not path.is_file():
        raise DataError(f"data file not found: {path}")
    if fmt == "auto":
        fmt = "parquet" if path.suffix.lower() in (".parquet", ".pq") else "csv"
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
        raise DataError(f"column '{name}' ({what}): non-numeric values {vals} at {_rows(bad)}")
    out = num.to_numpy(dtype=float)
    inf = np.isinf(out)
    if inf.any():
        raise DataError(f"column '{name}' ({what}): infinite values at {_rows(inf)}")
    return out


DAYS_PER = {"days": 1.0, "weeks": 7.0, "months": 365.25 / 12, "years": 365.25}
#: a follow-up time beyond this many times the median (or beyond MAX_TIME in any unit) is a typo
#: or a unit mix-up; it would reach the sampler as an exposure the likelihood cannot hold
TIME_SPREAD, MAX_TIME = 1e6, 1e12


def _time_scale(time: np.ndarray, name: str) -> None:
    med = float(np.median(time))
    big = (time > TIME_SPREAD * med) | (time > MAX_TIME)
    if big.any():
        raise DataError(
            f"column '{name}' (time): times out of scale at {_rows(big)} (largest "
            f"{time[big].max():.3g}; median {med:.3g}): more than {TIME_SPREAD:.0e} × the median "
            f"or above {MAX_TIME:.0e}; a typo, or times in another unit?"
        )
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
                f"column '{name}' (covariate): infinite values at {_rows(np.isinf(num))}"
            )
        return num.astype(float)
    if (~text & col.notna()).any():
        vals = sorted({str(v) for v in col[text]})[:5]
        raise DataError(
            f"column '{name}' (covariate): mostly numbers but text values {vals} at "
            f"{_rows(text)}; fix those cells (a categorical covariate must be text "
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
    missing: str = "error",
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
        raise DataError(f"column '{cols.id}' (id): missing ids at {_rows(ids.isna())}")
    dup = ids.duplicated(keep=False)
    if dup.any():
        raise DataError(
            f"column '{cols.id}' (id): duplicate ids {sorted(map(str, ids[dup].unique()))[:10]} at {_rows(dup)}"
        )

    t_raw = df[cols.time]
    if t_raw.isna().any():
        raise DataError(f"column '{cols.time}' (time): missing times at {_rows(t_raw.isna())}")
    t_raw, time_notes = _time_column(t_raw, cols.time, time_unit)
    time = _numeric(t_raw, cols.time, "time")
    if not np.isfinite(time).all():
        raise DataError(
            f"column '{cols.time}' (time): non-finite times at {_rows(~np.isfinite(time))}"
        )
    if (time < 0).any():
        raise DataError(f"column '{cols.time}' (time): negative times at {_rows(time < 0)}")
    if (time == 0).any():
        raise DataError(
            f"column '{cols.time}' (time): zero times at {_rows(time == 0)}; follow-up must be > 0"
        )
    _time_scale(time, cols.time)

    ev_raw = df[cols.event]
    is_ev = np.array([_same(v, cols.event_value) for v in ev_raw])
    is_cens = np.array([_same(v, cols.censored_value) for v in ev_raw])
    bad = ~(is_ev | is_cens)
    if bad.any():
        vals = sorted({str(v) for v in ev_raw[bad]})[:5]
        raise DataError(
            f"column '{cols.event}' (event): values {vals} at {_rows(bad)} are outside the declared pair "
            f"event_value={cols.event_value!r} / censored_value={cols.censored_value!r}"
        )
    if not is_ev.any():
        raise DataError(
            f"column '{cols.event}' (event): no events in the data; a survival model needs at least one"
        )

    arm = df[cols.arm]
    if arm.isna().any():
        raise DataError(f"column '{cols.arm}' (arm): missing arm at {_rows(arm.isna())}")
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
    for b in cols.biomarkers:
        out[b] = _numeric(df[b], b, "biomarker")
    covariates: list[str] = []
    for c in cols.covariates:
        col = df[c]
        num = _covariate(col, c)
        if num is None:  # categorical: dummy-code, first level is the reference
            cats = sorted(col.dropna().astype(str).unique())
            for lv in cats[1:]:
                name = f"{c}[{lv}]"
                out[name] = np.where(col.isna(), np.nan, (col.astype(str) == lv).astype(float))
                covariates.append(name)
        else:
            out[c] = num.to_numpy(dtype=float)
            covariates.append(c)
    if cols.centre:
        cen = df[cols.centre]
        if cen.isna().any():
            raise DataError(
                f"column '{cols.centre}' (centre): missing centre at {_rows(cen.isna())}"
            )
        out["centre"] = cen.astype(str).to_numpy()

    n_dropped = 0
    need = list(cols.biomarkers) + covariates
    if need:
        miss = out[need].isna().any(axis=1).to_numpy()
        if miss.any():
            if missing != "complete_case":
                first = next(c for c in need if out[c].isna().any())
                raise DataError(
                    f"column '{first}': missing values at {_rows(out[first].isna())} "
                    f"({int(miss.sum())} rows incomplete in all); set data.missing: complete_case to drop them"
                )
            n_dropped = int(miss.sum())
            out = out.loc[~miss].reset_index(drop=True)
            if len(out) == 0:
                raise DataError("no complete rows remain after dropping incomplete cases")
            if out["event"].sum() == 0 or out["treat"].nunique() < 2:
                raise DataError("after dropping incomplete cases, no events or only one arm remain")
    for c in covariates + list(cols.biomarkers):
        with np.errstate(over="ignore", invalid="ignore"):
            sd = float(np.std(out[c].to_numpy()))
        if sd == 0 and c in covariates:
            raise DataError(
                f"column '{c}' (covariate): constant across all patients, its effect cannot be estimated"
            )
        if not np.isfinite(sd):
            big = np.abs(out[c].to_numpy()) > 1e150
            raise DataError(
                f"column '{c}': values too large to standardise at {_rows(big)} "
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
        notes=time_notes
        + ([f"{n_dropped} incomplete rows dropped (complete-case analysis)"] if n_dropped else []),
        arm_column=str(cols.arm),
    )


def check_against_models(
    data: TrialData,
    models: list[ModelSpec],
    cuts: list[float] | None,
    estimand_biomarker: str | None = None,
) -> None:
    """Cross-checks between data and config, before any model is built."""
    for m in models:
        covs = data.covariates if m.covariates == "all" else m.covariates
        for c in covs:
            if c not in data.covariates:
                close = difflib.get_close_matches(c, data.covariates, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise DataError(
                    f"model '{m.name}': covariate '{c}' is not among the data's covariates {data.covariates}{hint}"
                )
        if m.centre_frailty and not data.has_centre:
            raise DataError(
                f"model '{m.name}': centre_frailty needs a centre column (columns.centre)"
            )
        if m.biomarker:
            if m.biomarker not in data.biomarkers:
                raise DataError(
                    f"model '{m.name}': biomarker '{m.biomarker}' is not among the data's biomarkers {data.biomarkers}"
                )
            if m.log_biomarker:
                bad = data.frame[m.biomarker].to_numpy() <= 0
                if bad.any():
                    raise DataError(
                        f"column '{m.biomarker}' (biomarker): values ≤ 0 at {_rows(bad)}, but model '{m.name}' "
                        f"({m.interaction}) log-transforms it"
                    )
    if estimand_biomarker and estimand_biomarker not in data.biomarkers:
        raise DataError(
            f"estimands.biomarker: '{estimand_biomarker}' is not among the data's biomarkers {data.biomarkers}"
        )
    if cuts:
        tmax = float(data.frame["time"].max())
        beyond = [c for c in cuts if c >= tmax]
        if beyond:
            raise DataError(
                f"baseline.cuts: cut points {beyond} are at or beyond the last follow-up time {tmax:g}"
            )
