"""Checks of digitised Kaplan–Meier input that the Guyot algorithm would otherwise absorb silently.

* a percent / proportion mix-up (``percent`` set on proportions: every patient "dies" at once);
* a curve that rises by more than digitiser noise (two arms' points mixed up, a misread axis):
  refused, naming the rows, instead of being flattened;
* numbers at risk the curve cannot explain: more at risk than the curve's drop leaves alive, or a
  first interval that would need most patients censored (a typo in the number randomised);
* agreement with the raw digitised points, not only with the cleaned curve.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ...core.errors import DataError
from ..columns import rows_text

#: a rise of the digitised curve larger than this is not digitiser noise
MAX_RISE = 0.05
#: at-risk counts may exceed what the curve allows by this share plus two patients (reading error)
RISK_SLACK = 0.03
#: implied censoring share in the first risk-table interval above which the counts are suspect
MAX_FIRST_CENSORING = 0.5


def check_percent(survival: pd.Series, percent: bool, what: str) -> None:
    """With ``percent`` set, values that all lie in [0, 1.05] are proportions, not percentages."""
    if percent and len(survival) and survival.max() <= 1.05:
        raise DataError(
            f"{what}: survival is declared in percent but every value lies in [0, "
            f"{survival.max():g}]: these are proportions; drop percent"
        )


def check_rises(arm: str, g: pd.DataFrame, what: str) -> None:
    """``g``: one arm's points sorted by time, original index kept, survival as proportions."""
    s = g["survival"].to_numpy()
    run_min = np.minimum.accumulate(s)
    rise = s - run_min
    bad = rise > MAX_RISE
    if bad.any():
        k = int(np.flatnonzero(bad)[np.argmax(rise[bad])])
        mask = np.zeros(int(g.index.max()) + 1, bool)
        mask[g.index[bad]] = True
        raise DataError(
            f"{what}, arm '{arm}': the curve rises from {run_min[k]:.3f} back to "
            f"{s[k]:.3f} (at time {g['time'].iloc[k]:g}) at {rows_text(mask)}; a survival "
            "curve cannot rise — are two arms' points mixed up? (rises up to "
            f"{MAX_RISE} are flattened as noise)"
        )


def surv_at(curve: pd.DataFrame, t: float) -> float:
    """Step-function value of a cleaned curve (time, survival) at ``t``."""
    i = np.searchsorted(curve["time"].to_numpy(), t, side="right") - 1
    return float(curve["survival"].iloc[max(i, 0)])


def risk_warnings(curves: dict, risks: dict) -> list[str]:
    """Numbers at risk that the digitised curve cannot explain (warnings, per arm)."""
    out = []
    for arm, r in risks.items():
        t, n = r["time"].to_numpy(float), r["n_at_risk"].to_numpy(float)
        s = np.array([surv_at(curves[arm], x) for x in t])
        for j in range(len(t) - 1):
            if s[j] <= 0 or n[j] == 0:
                continue
            alive = n[j] * s[j + 1] / s[j]  # at risk at t_j who survive to t_j+1 (no censoring)
            if n[j + 1] > alive * (1 + RISK_SLACK) + 2:
                out.append(
                    f"arm '{arm}': {int(n[j + 1])} at risk at time {t[j + 1]:g}, but the "
                    f"curve's drop from {s[j]:.3f} to {s[j + 1]:.3f} leaves at most "
                    f"{alive:.0f} of the {int(n[j])} at risk at time {t[j]:g} (check the "
                    "risk table and the curve)"
                )
            elif j == 0 and alive > 0 and 1 - n[1] / alive > MAX_FIRST_CENSORING:
                share = 100 * (1 - n[1] / alive)
                out.append(
                    f"arm '{arm}': the first interval would need {share:.0f}% of the "
                    f"{int(n[0])} randomised censored before time {t[1]:g} (is the number "
                    "randomised mistyped?)"
                )
    return out
