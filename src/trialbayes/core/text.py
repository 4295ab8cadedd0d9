"""Text formatting for every report, table and CLI line: numbers, units, probabilities, the
credible level, Markdown tables. One place, so a probability or a level reads the same in text,
tables and figures."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd

from .escape import md_text


def md_table(df: pd.DataFrame, floatfmt: str = "{:.3f}") -> str:
    """A data frame as a Markdown table: text escaped, floats by ``floatfmt``, missing as "–"."""

    def cell(v):
        if v is None or (isinstance(v, float) and not np.isfinite(v)):
            return "–"
        if isinstance(v, (float, np.floating)):
            return floatfmt.format(v)
        return md_text(v)

    head = "| " + " | ".join(md_text(c) for c in df.columns) + " |"
    sep = "|" + "|".join("---" for _ in df.columns) + "|"
    rows = ["| " + " | ".join(cell(v) for v in r) + " |" for r in df.itertuples(index=False)]
    return "\n".join([head, sep, *rows])


def num(x: float) -> str:
    """3 significant figures without exponent notation: 2594.3 -> "2594", 23.71 -> "23.7"."""
    return f"{x:.0f}" if abs(x) >= 1000 else f"{x:.3g}"


def with_unit(x: float, unit: str | None, fmt=None) -> str:
    """``x`` (by :func:`num`, or ``fmt``) followed by its unit when there is one: "23.7 months"."""
    return (num(x) if fmt is None else fmt.format(x)) + (f" {unit}" if unit else "")


def prob(v: float | None, n_draws: int | None, digits: int = 3) -> str:
    """A posterior probability; from draws, 0 or 1 is shown as "< 1/n" or "> 1 − 1/n" (what the
    draws can tell) instead of a certainty; an exact value that rounds to 0 or 1 as "< 0.001" or
    "> 0.999"."""
    if v is None or v != v:  # not computed, or NaN
        return "–"
    f = 10.0**digits
    if n_draws and v <= 0:
        return f"< {math.ceil(f / n_draws) / f:.{digits}f}"
    if n_draws and v >= 1:
        return f"> {math.floor(f * (1 - 1 / n_draws)) / f:.{digits}f}"
    s = f"{v:.{digits}f}"
    if 0 < v < 1 and float(s) in (0.0, 1.0):  # 0.99998 is not "1.000"
        return f"< {1 / f:.{digits}f}" if float(s) == 0 else f"> {1 - 1 / f:.{digits}f}"
    return s


#: a posterior probability column of a table: ``p_hr_below_1``, ``cox_p_hr_above_1.1``,
#: ``at_3_p_hr_below_1`` (not ``p_loo``, an effective number of parameters)
_PROB_COLUMN = re.compile(r"(^|_)p_(?!loo$)")


def prob_columns(df: pd.DataFrame, n_draws=None, cols=None) -> pd.DataFrame:
    """A copy of a table with its probability columns written as the reports write them
    (:func:`prob`: "> 0.999" where every draw agreed, never "1"); the exact shares stay in
    results.json. ``n_draws``: a number, a column of ``df`` (per row), or None (exact values);
    ``cols``: the columns (default: every ``p_…`` column). Cox and p-value columns are exact."""
    out = df.copy()
    per_row = isinstance(n_draws, str) and n_draws in out
    for c in cols if cols is not None else [c for c in out if _PROB_COLUMN.search(str(c))]:
        exact = str(c).startswith("cox_") or str(c).endswith("p_value")
        ns = out[n_draws] if per_row else [None if isinstance(n_draws, str) else n_draws] * len(out)
        out[c] = [prob(v, None if exact or n != n else n) for v, n in zip(out[c], ns)]
    return out


def eq_text(txt: str) -> str:
    """ "= 0.952", or "> 0.999" as it is (a bound already reads as a relation)."""
    return txt if txt[0] in "<>" else f"= {txt}"


def plural(n: int, word: str) -> str:
    """``word`` as it goes with the count ``n`` ("1 event", "2 events")."""
    return word if n == 1 else word + "s"


def level_text(level: float) -> str:
    """0.95 -> "95%", 0.9 -> "90%", 0.975 -> "97.5%"."""
    return f"{100 * level:g}%"


def shown_path(path: str | Path | None) -> str | None:
    """A path as outputs show it: as given when relative, else only the file's name (outputs
    never carry the analyst's absolute paths)."""
    if path is None:
        return None
    p = Path(path)
    return p.name if p.is_absolute() else p.as_posix()
