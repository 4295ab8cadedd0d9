"""Reconstruction of individual patient data from a digitised Kaplan–Meier figure (Guyot et al.,
BMC Med Res Methodol 2012, 12:9), implemented natively. See models/km_reconstruction.md.

Inputs per arm: digitised curve points (time, survival) and the published numbers at risk;
optionally total events. Censoring is spread uniformly within each risk-table interval, events are
read off the drops of the curve, and the number censored is adjusted iteratively until the
reconstructed numbers at risk match the published ones. Output: ``id, time, event, arm``.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from ...config.data_sources import ColumnMap
from ...core.errors import ReconstructionError
from ..columns import rows_text
from ..table import from_frame, read_table
from .checks import check_percent, check_rises

SURVIVAL_TOLERANCE = (
    0.02  # how far outside [0, 1] a digitised value may stray before it is an error
)


#: the most patients an arm of a digitised trial may have (larger than any published trial arm;
#: the reconstruction and its quality report stay within seconds)
MAX_AT_RISK = 100_000


# ----------------------------------------------------------------------------- input cleaning


def _require(df: pd.DataFrame, cols: list[str], what: str) -> None:
    if df is None or len(df) == 0:
        raise ReconstructionError(f"{what}: the table is empty")
    missing = [c for c in cols if c not in df.columns]
    if missing:
        raise ReconstructionError(
            f"{what}: missing column(s) {missing}; expected {cols}, found {list(df.columns)}"
        )
    for c in cols[1:]:
        num = pd.to_numeric(df[c], errors="coerce")
        bad = num.isna()
        if bad.any():
            raise ReconstructionError(
                f"{what}: column '{c}' has missing or non-numeric values at {rows_text(bad)}"
            )
        inf = ~np.isfinite(num.to_numpy(float))
        if inf.any():
            raise ReconstructionError(
                f"{what}: column '{c}' has infinite values at {rows_text(inf)}"
            )


def clean_curve(
    curve: pd.DataFrame, percent: bool = False, what: str = "curve"
) -> dict[str, pd.DataFrame]:
    """Per arm: sorted, monotone (non-increasing) curve starting at (0, 1). Returns {arm: frame}."""
    _require(curve, ["arm", "time", "survival"], what)
    curve = curve.reset_index(drop=True)
    check_percent(pd.to_numeric(curve["survival"]), percent, what)
    c = curve.assign(
        arm=curve["arm"].astype(str),
        time=pd.to_numeric(curve["time"]),
        survival=pd.to_numeric(curve["survival"]),
    )
    if percent:
        c["survival"] = c["survival"] / 100.0
    neg = c["time"] < 0
    if neg.any():
        raise ReconstructionError(f"{what}: negative times at {rows_text(neg)}")
    out_of = (c["survival"] < -SURVIVAL_TOLERANCE) | (c["survival"] > 1 + SURVIVAL_TOLERANCE)
    if out_of.any():
        hint = (
            " (values look like percentages: set percent)"
            if not percent and c["survival"].max() > 1.5
            else ""
        )
        raise ReconstructionError(
            f"{what}: survival outside [0, 1] beyond ±{SURVIVAL_TOLERANCE} at "
            f"{rows_text(out_of)}{hint}"
        )
    out = {}
    for arm, g in c.groupby("arm", sort=True):
        g = g.sort_values(["time", "survival"], ascending=[True, False])
        check_rises(arm, g, what)
        s = np.clip(g["survival"].to_numpy(), 0.0, 1.0)
        t = g["time"].to_numpy()
        s = np.minimum.accumulate(s)  # digitiser noise that steps up is flattened
        df = (
            pd.DataFrame({"time": t, "survival": s})
            .groupby("time", as_index=False)["survival"]
            .min()
        )
        if df["time"].iloc[0] > 0 or df["survival"].iloc[0] < 1.0:
            df = pd.concat(
                [pd.DataFrame({"time": [0.0], "survival": [1.0]}), df[df["time"] > 0]],
                ignore_index=True,
            )
        out[arm] = df.reset_index(drop=True)
    return out


def clean_risk(
    risk: pd.DataFrame, curves: dict[str, pd.DataFrame], what: str = "risk table"
) -> dict[str, pd.DataFrame]:
    """The risk table split by arm, each sorted by time from 0 and checked against its digitised
    curve (arms match, whole non-increasing numbers at risk, no time beyond the curve)."""
    _require(risk, ["arm", "time", "n_at_risk"], what)
    r = risk.assign(
        arm=risk["arm"].astype(str),
        time=pd.to_numeric(risk["time"]),
        n_at_risk=pd.to_numeric(risk["n_at_risk"]),
    )
    if (r["time"] < 0).any():
        raise ReconstructionError(f"{what}: negative times at {rows_text(r['time'] < 0)}")
    if (r["n_at_risk"] < 0).any() or (r["n_at_risk"] % 1 != 0).any():
        raise ReconstructionError(
            f"{what}: n_at_risk must be whole numbers ≥ 0, see "
            f"{rows_text((r['n_at_risk'] < 0) | (r['n_at_risk'] % 1 != 0))}"
        )
    if set(r["arm"]) != set(curves):
        raise ReconstructionError(
            f"arms do not match between the curve ({sorted(curves)}) and the risk table "
            f"({sorted(set(r['arm']))})"
        )
    out = {}
    for arm, g in r.groupby("arm", sort=True):
        g = g.sort_values("time").drop_duplicates("time")
        tmax = curves[arm]["time"].max()
        beyond = g["time"] > tmax
        if beyond.any():
            raise ReconstructionError(
                f"{what}, arm '{arm}': times {g.loc[beyond, 'time'].tolist()} lie beyond the "
                f"curve's last time {tmax:g}"
            )
        if g["time"].iloc[0] != 0:
            raise ReconstructionError(
                f"{what}, arm '{arm}': the first risk-table time must be 0 (the number randomised)"
            )
        n = g["n_at_risk"].to_numpy()
        row = g.index[0] + 1  # 1-based data row of the time-0 line
        if not 1 <= n[0] <= MAX_AT_RISK:
            why = "no patient randomised" if n[0] < 1 else f"more than {MAX_AT_RISK:,} patients"
            raise ReconstructionError(
                f"{what}, arm '{arm}': n at risk at time 0 is {n[0]:,.0f} (row {row}): {why}; "
                "give the number randomised in that arm"
            )
        up = np.flatnonzero(np.diff(n) > 0)
        if len(up):
            raise ReconstructionError(
                f"{what}, arm '{arm}': n at risk increases over time at times "
                f"{g['time'].iloc[up + 1].tolist()}"
            )
        out[arm] = g[["time", "n_at_risk"]].astype({"n_at_risk": int}).reset_index(drop=True)
    return out


# ----------------------------------------------------------------------------- Guyot algorithm


def _spread(n_cen: int, t0: float, t1: float, breaks: np.ndarray) -> np.ndarray:
    """Counts of n_cen censoring times spread uniformly over (t0, t1), binned at the curve
    points."""
    if n_cen <= 0:
        return np.zeros(len(breaks) - 1, int)
    ct = t0 + np.arange(1, n_cen + 1) * (t1 - t0) / (n_cen + 1)
    return np.histogram(ct, bins=breaks)[0]


def guyot_arm(
    t_s: np.ndarray,
    s: np.ndarray,
    t_risk: np.ndarray,
    n_risk: np.ndarray,
    total_events: int | None = None,
    max_iter: int = 10_000,
):
    """Guyot et al. (2012) for one arm. Returns (event_times, censor_times)."""
    # insert a point at every risk-table time (the step function's value there) so each interval has
    # one
    extra = [t for t in t_risk if not np.isclose(t_s, t).any()]
    if extra:
        vals = [s[np.searchsorted(t_s, t, side="right") - 1] for t in extra]
        t_s, s = np.append(t_s, extra), np.append(s, vals)
        order = np.argsort(t_s, kind="stable")
        t_s, s = t_s[order], s[order]
    n_t, nint = len(t_s), len(t_risk)
    nrisk = n_risk.astype(int).copy()
    lower = np.array([np.flatnonzero(t_s >= t - 1e-12)[0] for t in t_risk])
    upper = np.append(lower[1:] - 1, n_t - 1)
    n_censor = np.zeros(nint, int)
    n_hat = np.full(n_t + 1, nrisk[0] + 1)
    cen, d = np.zeros(n_t, int), np.zeros(n_t, int)
    km_hat = np.ones(n_t)
    last_i = np.zeros(nint, int)

    def events_in(i, last):
        for k in range(lower[i], upper[i] + 1):
            if k == 0:
                d[k], km_hat[k] = 0, 1.0
            else:
                d[k] = (
                    round(n_hat[k] * (1 - s[k] / km_hat[last]))
                    if km_hat[last] > 0 and n_hat[k] > 0
                    else 0
                )
                d[k] = max(0, min(d[k], n_hat[k]))
                km_hat[k] = km_hat[last] * (1 - d[k] / n_hat[k]) if n_hat[k] > 0 else km_hat[last]
            n_hat[k + 1] = n_hat[k] - d[k] - cen[k]
            if n_hat[k + 1] < 0:
                n_hat[k + 1], cen[k] = 0, n_hat[k] - d[k]
            if d[k] != 0:
                last = k
        return last

    last = 0
    for i in range(nint - 1):
        lo, nx = lower[i], lower[i + 1]
        s_lo = s[lo] if s[lo] > 0 else 1e-12
        n_censor[i] = round(nrisk[i] * s[nx] / s_lo - nrisk[i + 1])
        for _ in range(max_iter):
            n_censor[i] = max(n_censor[i], 0)
            cen[lo : upper[i] + 1] = _spread(n_censor[i], t_s[lo], t_s[nx], t_s[lo : nx + 1])
            n_hat[lo] = nrisk[i]
            last = events_in(i, last_i[i])
            diff = n_hat[nx] - nrisk[i + 1]
            if diff == 0 or (diff < 0 and n_censor[i] == 0):
                break
            n_censor[i] += diff
        if n_hat[nx] < nrisk[i + 1]:
            nrisk[i + 1] = n_hat[nx]
        last_i[i + 1] = last

    # last interval: censoring at the average rate of the earlier intervals
    i = nint - 1
    lo, up = lower[i], upper[i]
    if nint > 1 and t_s[upper[i - 1]] > t_s[lower[0]]:
        rate = (
            n_censor[: nint - 1].sum() * (t_s[up] - t_s[lo]) / (t_s[upper[i - 1]] - t_s[lower[0]])
        )
        n_censor[i] = min(round(rate), nrisk[i])

    def last_interval():
        cen[lo:up] = _spread(n_censor[i], t_s[lo], t_s[up], t_s[lo : up + 1]) if up > lo else 0
        cen[up] = 0
        n_hat[lo] = nrisk[i]
        return events_in(i, last_i[i])

    last_interval()
    if total_events is not None:
        before = d[:lo].sum()
        if before >= total_events:
            d[lo : up + 1] = 0
            cen[lo : up + 1] = 0
        else:
            for _ in range(max_iter):
                excess = d.sum() - total_events
                if excess == 0 or (excess < 0 and n_censor[i] == 0):
                    break
                n_censor[i] = int(np.clip(n_censor[i] + excess, 0, nrisk[i]))
                last_interval()
                if n_censor[i] in (0, nrisk[i]) and d.sum() != total_events:
                    break

    n0 = int(n_risk[0])
    ev_t = np.repeat(t_s, d)
    cen_mid = np.repeat((t_s[:-1] + t_s[1:]) / 2, cen[:-1])
    n_left = n0 - len(ev_t) - len(cen_mid)
    if (
        n_left < 0
    ):  # rounding left more events + censorings than patients: drop the latest censorings
        cen_mid = cen_mid[: max(0, len(cen_mid) + n_left)]
        n_left = max(0, n0 - len(ev_t) - len(cen_mid))
    cen_t = np.concatenate([cen_mid, np.full(n_left, t_s[-1])])
    return ev_t[:n0], cen_t


def reconstruct(
    curve: pd.DataFrame,
    risk: pd.DataFrame,
    events: pd.DataFrame | None = None,
    percent: bool = False,
) -> pd.DataFrame:
    """Reconstructed IPD ``id, time, event, arm`` from a digitised curve and a risk table."""
    curves = clean_curve(curve, percent)
    risks = clean_risk(risk, curves)
    totals = {}
    if events is not None:
        _require(events, ["arm", "events"], "events")
        ev = events.assign(arm=events["arm"].astype(str))
        if set(ev["arm"]) != set(curves):
            raise ReconstructionError(
                f"arms do not match between the curve ({sorted(curves)}) and the events file "
                f"({sorted(set(ev['arm']))})"
            )
        totals = {a: int(v) for a, v in zip(ev["arm"], pd.to_numeric(ev["events"]))}
        for a, v in totals.items():
            n0 = int(risks[a]["n_at_risk"].iloc[0])
            if not 0 <= v <= n0:
                raise ReconstructionError(
                    f"events file, arm '{a}': {v} events, outside 0..{n0} (the number randomised)"
                )
    parts = []
    for arm, c in curves.items():
        r = risks[arm]
        ev_t, cen_t = guyot_arm(
            c["time"].to_numpy(float),
            c["survival"].to_numpy(float),
            r["time"].to_numpy(float),
            r["n_at_risk"].to_numpy(),
            totals.get(arm),
        )
        parts.append(
            pd.DataFrame(
                {
                    "time": np.concatenate([ev_t, cen_t]),
                    "event": np.concatenate([np.ones(len(ev_t), int), np.zeros(len(cen_t), int)]),
                    "arm": arm,
                }
            )
        )
    ipd = pd.concat(parts, ignore_index=True)
    # a time of 0 cannot enter a survival model: events/censorings at the origin move to a tiny
    # positive time
    tiny = 1e-6 * max(1.0, float(ipd["time"].max()))
    ipd["time"] = ipd["time"].clip(lower=tiny)
    ipd.insert(0, "id", [f"R{i + 1:05d}" for i in range(len(ipd))])
    return ipd


def read_inputs(curve_path: Path, risk_path: Path, events_path: Path | None):
    """Read the digitised curve, the risk table and the optional events table (CSV or Parquet)."""
    curve = read_table(curve_path)
    risk = read_table(risk_path)
    events = read_table(events_path) if events_path else None
    return curve, risk, events


@dataclass
class Reconstruction:
    """Patient data rebuilt from a digitised figure, with what they were rebuilt from."""

    ipd: pd.DataFrame
    curve: pd.DataFrame
    risk: pd.DataFrame
    events: pd.DataFrame | None
    percent: bool
    treatment_arm: str


def load_reconstructed(src):
    """Data kind "reconstructed": digitised files → IPD → validated TrialData (its quality against
    the figure: ``estimands.reconstruction.quality``)."""
    curve, risk, events = read_inputs(src.curve, src.risk, src.events)
    ipd = reconstruct(curve, risk, events, src.percent)
    arms = sorted(ipd["arm"].unique())
    if str(src.treatment_level) not in arms:
        raise ReconstructionError(
            f"data.treatment_level '{src.treatment_level}' is not one of the digitised arms {arms}"
        )
    data = from_frame(
        ipd,
        ColumnMap(
            id="id", time="time", event="event", arm="arm", treatment_level=str(src.treatment_level)
        ),
        label=f"{src.label} — patient data RECONSTRUCTED from a digitised Kaplan–Meier figure "
        "(Guyot 2012)",
        source=f"reconstructed({src.curve.name}, {src.risk.name})",
    )
    data.reconstruction = Reconstruction(
        ipd, curve, risk, events, src.percent, str(src.treatment_level)
    )
    return data
