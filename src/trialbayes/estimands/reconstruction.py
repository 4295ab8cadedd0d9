"""How well patient data rebuilt from a digitised Kaplan–Meier figure (``data.reconstruct``)
agree with the figure: the KM of the rebuilt data against the digitised curve and its raw points,
numbers at risk and events against the published ones, and the rebuilt data's Cox HR; and the
reverse, from real patient data what a reader would digitise (for validation studies)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..core.errors import ReconstructionError
from ..data.reconstruct.checks import risk_warnings
from ..data.reconstruct.guyot import Reconstruction, clean_curve, clean_risk
from ..results.sections import ReconstructionArm, ReconstructionQuality, RiskRow
from .frequentist import cox, km_fit, step_at

#: level of the Wald interval of the reconstructed data's Cox HR
COX_LEVEL = 0.95


@dataclass
class QualityThresholds:
    """Limits beyond which a reconstruction is flagged: largest absolute KM difference (survival
    scale), and relative differences in the numbers at risk and in the events."""

    max_abs_km: float = 0.05
    n_risk_rel: float = 0.05
    events_rel: float = 0.05


def quality(
    ipd: pd.DataFrame,
    curve: pd.DataFrame,
    risk: pd.DataFrame,
    events: pd.DataFrame | None = None,
    percent: bool = False,
    treatment_arm: str | None = None,
    thresholds: QualityThresholds | None = None,
) -> ReconstructionQuality:
    """Agreement of the reconstruction with what was digitised and published, plus its Cox HR."""
    th = thresholds or QualityThresholds()
    curves = clean_curve(curve, percent)
    risks = clean_risk(risk, curves)
    arms, warnings = {}, []
    raw = raw_agreement(ipd, curve, percent)
    for arm, c in curves.items():
        g = ipd[ipd["arm"] == arm]
        diff = step_at(km_fit(g["time"], g["event"]), c["time"]) - c["survival"].to_numpy()
        r = risks[arm]
        n_rec = np.array([(g["time"] >= t).sum() for t in r["time"]])
        rel = np.abs(n_rec - r["n_at_risk"].to_numpy()) / np.maximum(r["n_at_risk"].to_numpy(), 1)
        arms[arm] = ReconstructionArm(
            n=int(len(g)),
            events=int(g["event"].sum()),
            km_max_abs_diff=float(np.abs(diff).max()),
            km_rms_diff=float(np.sqrt((diff**2).mean())),
            risk_table=[
                RiskRow(float(t), int(p), int(q))
                for t, p, q in zip(r["time"], r["n_at_risk"], n_rec)
            ],
            n_at_risk_max_rel_diff=float(rel.max()),
            km_max_abs_diff_raw=raw[arm],
        )
        warnings += _arm_warnings(arm, arms[arm], th)
    warnings += risk_warnings(curves, risks)
    if events is not None:
        for a, v in zip(events["arm"].astype(str), pd.to_numeric(events["events"])):
            arms[a].published_events = int(v)
            if abs(arms[a].events - v) > th.events_rel * max(v, 1):
                warnings.append(
                    f"arm '{a}': {arms[a].events} events reconstructed vs {int(v)} published"
                )
    out = ReconstructionQuality("Guyot et al. 2012", arms, warnings, bool(warnings))
    names = sorted(arms)
    if treatment_arm is not None and treatment_arm not in names:
        raise ReconstructionError(
            f"treatment arm '{treatment_arm}' is not one of the digitised arms {names}"
        )
    if len(names) == 2:
        trt = treatment_arm if treatment_arm is not None else names[1]
        df = pd.DataFrame(
            {
                "time": ipd["time"],
                "event": ipd["event"],
                "treatment": (ipd["arm"] == trt).astype(int),
            }
        )
        fit = cox(df, COX_LEVEL)
        if fit.status == "failed":  # a quality statistic, never fatal
            warnings.append(f"the Cox fit of the reconstructed data failed ({fit.error})")
            out.poor_agreement = True
        else:
            out.cox, out.treatment_arm = fit.terms["treatment"], trt
    return out


def _arm_warnings(arm: str, a: ReconstructionArm, th: QualityThresholds) -> list[str]:
    out = []
    if a.km_max_abs_diff > th.max_abs_km:
        out.append(
            f"arm '{arm}': reconstructed KM differs from the digitised curve by up to "
            f"{a.km_max_abs_diff:.3f}"
        )
    if a.km_max_abs_diff_raw is not None and a.km_max_abs_diff_raw > th.max_abs_km:
        out.append(
            f"arm '{arm}': reconstructed KM differs from the raw digitised points by "
            f"up to {a.km_max_abs_diff_raw:.3f}"
        )
    if a.n_at_risk_max_rel_diff > th.n_risk_rel:
        out.append(
            f"arm '{arm}': numbers at risk differ from the published ones by up to "
            f"{100 * a.n_at_risk_max_rel_diff:.0f}%"
        )
    return out


def reconstruction_quality(rec: Reconstruction) -> ReconstructionQuality:
    """The quality of a reconstructed data set (``data.reconstruction``)."""
    return quality(rec.ipd, rec.curve, rec.risk, rec.events, rec.percent, rec.treatment_arm)


def raw_agreement(ipd: pd.DataFrame, curve: pd.DataFrame, percent: bool) -> dict[str, float]:
    """Max |reconstructed KM − raw digitised point| per arm (the raw points, before cleaning)."""
    c = curve.assign(
        arm=curve["arm"].astype(str),
        time=pd.to_numeric(curve["time"]),
        survival=pd.to_numeric(curve["survival"]) / (100.0 if percent else 1.0),
    )
    out = {}
    for arm, g in c.groupby("arm"):
        sub = ipd[ipd["arm"] == arm]
        rec = step_at(km_fit(sub["time"], sub["event"]), g["time"])
        out[str(arm)] = float(np.abs(rec - g["survival"].to_numpy()).max())
    return out


def simulate_digitisation(
    times,
    events,
    arms,
    n_points: int = 40,
    risk_times=None,
    time_noise: float = 0.0,
    surv_noise: float = 0.0,
    seed: int = 0,
    mode: str = "trace",
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """From real patient data, what a reader would digitise from its KM figure, per arm:

    * ``mode="trace"``: ``n_points`` points read along the curve at evenly spaced times (as an
      automatic line trace exports them), plus the curve's end;
    * ``mode="corners"``: the top and bottom of up to ``n_points`` of the curve's drops, as a reader
      clicks them;

    with Gaussian noise on time and survival; numbers at risk at ``risk_times``; events per arm."""
    rng = np.random.default_rng(seed)
    times, events, arms = (
        np.asarray(times, float),
        np.asarray(events, int),
        np.asarray(arms).astype(str),
    )
    curve_rows, risk_rows, ev_rows = [], [], []
    for arm in sorted(set(arms)):
        m = arms == arm
        km = km_fit(times[m], events[m])
        t, s = km["time"].to_numpy(), km["survival"].to_numpy()
        if mode == "trace":
            grid = np.linspace(0, times[m].max(), n_points + 1)[1:]
            pts = [(g, s[np.searchsorted(t, g, side="right") - 1]) for g in grid]
        elif mode == "corners":
            drops = np.flatnonzero(np.diff(s) < 0) + 1
            pick = (
                drops
                if len(drops) <= n_points
                else drops[np.linspace(0, len(drops) - 1, n_points).round().astype(int)]
            )
            pts = [p for k in pick for p in ((t[k], s[k - 1]), (t[k], s[k]))]
        else:
            raise ValueError(f"mode must be 'trace' or 'corners', not {mode!r}")
        pts.append((float(times[m].max()), float(s[-1])))
        for tt, ss in pts:
            curve_rows.append(
                {
                    "arm": arm,
                    "time": max(0.0, tt + rng.normal(0, time_noise)),
                    "survival": ss + rng.normal(0, surv_noise),
                }
            )
        for rt in risk_times if risk_times is not None else np.linspace(0, times.max(), 6)[:-1]:
            risk_rows.append(
                {"arm": arm, "time": float(rt), "n_at_risk": int((times[m] >= rt).sum())}
            )
        ev_rows.append({"arm": arm, "events": int(events[m].sum())})
    return pd.DataFrame(curve_rows), pd.DataFrame(risk_rows), pd.DataFrame(ev_rows)


# ----------------------------------------------------------------------------- config data source
