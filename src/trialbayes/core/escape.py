"""Escaping user strings (column names, arm labels, titles, notes) for the files a run writes.

* CSV: a cell that starts with ``= + - @`` (or a tab / carriage return) is a formula to a
  spreadsheet (CSV injection); it is written with a leading apostrophe. Numbers, and text that
  reads as a plain number such as ``-0.5``, are left alone.
* Markdown: HTML (``<script>``), links and images (``[x](…)``), bare URLs (``http://``,
  ``www.``: a zero-width space keeps renderers from linking them), emphasis, table pipes, code
  spans and line breaks in user text are neutralised, so a label cannot add markup to a report.
  Every user string in report.md goes through :func:`md_text`, :func:`md_code` (model names
  shown as code) or :func:`md_figure` (a figure of the run).
* HTML: ``html.escape`` (for the HTML report).
"""

from __future__ import annotations

import html
import re

import pandas as pd

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_MD_BACKSLASH = str.maketrans({c: "\\" + c for c in "\\`*[]|~"})
_MD_UNDERSCORE = re.compile(r"(?<![A-Za-z0-9])_|_(?![A-Za-z0-9])")  # an intraword _ is plain
_ZWSP = "\u200b"


def _is_number(s: str) -> bool:
    try:
        float(s)
    except ValueError:
        return False
    return True


def csv_cell(v):
    """A CSV cell safe to open in a spreadsheet."""
    lead = v.lstrip(" \t\r\n") if isinstance(v, str) else ""  # " =1+1" is a formula too
    if lead.startswith(FORMULA_START) and not _is_number(v):
        return "'" + v
    return v


def csv_frame(df: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``df`` with escaped column names and text cells (numeric columns untouched)."""
    out = df.rename(columns={c: csv_cell(str(c)) for c in df.columns})
    for c in out.columns:
        if out[c].dtype == object or pd.api.types.is_string_dtype(out[c]):
            out[c] = out[c].map(csv_cell)
    return out


def md_text(s) -> str:
    """User text for Markdown: no HTML, links, images, table breaks, code spans or new lines."""
    t = " ".join(str(s).split())
    t = t.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    t = t.replace("://", f":{_ZWSP}//").replace("www.", f"www{_ZWSP}.")
    t = _MD_UNDERSCORE.sub(r"\\_", t.translate(_MD_BACKSLASH))
    # what would start a heading, a list or a rule at the start of a line (a number such as
    # "-0.1" or "5.0%" is left as it is: a list needs a space after its marker)
    if re.match(r"#{1,6}(\s|$)|[-+](\s|$)", t) or re.fullmatch(r"[-=_\s]{3,}", t):
        return "\\" + t
    return re.sub(r"^(\d{1,9})([.)])(?=\s|$)", r"\1\\\2", t)  # "1. " starts a numbered list


#: what a run's figure may be called: a PNG file directly in its figures/ folder (results.json's
#: ``figures`` is validated against it; report.md and report.html embed nothing else)
FIGURE_PATH = r"^figures/[A-Za-z0-9_][A-Za-z0-9_.-]{0,150}\.png$"


def md_code(s) -> str:
    """A name shown as inline code (`` `adjusted` ``): inside a code span nothing is markup, so
    only what would end the span (backticks, new lines) or a table row (pipes) is replaced."""
    t = " ".join(str(s).split()).replace("`", "'").replace("|", "¦")
    return f"`{t}`"


def md_spans(s) -> str:
    """Our own sentences for Markdown: the names they quote between backticks ("PSIS-LOO prefers
    `interaction`") as code spans (:func:`md_code`), everything else as :func:`md_text`; an
    unpaired backtick is text. What a user wrote stays inert either way."""
    parts = " ".join(str(s).split()).split("`")
    if len(parts) % 2 == 0:  # an odd number of backticks: the last one is text
        parts[-2:] = [parts[-2] + "`" + parts[-1]]
    out = []
    for i, part in enumerate(parts):
        if i % 2:
            out.append(md_code(part))
        elif part.strip():
            lead = " " if part[0] == " " else ""
            trail = " " if part[-1] == " " else ""
            out.append(lead + md_text(part) + trail)
        else:
            out.append(part)
    return "".join(out)


def md_figure(caption: str, path) -> str:
    """``![caption](figures/x.png)`` for a figure of the run; nothing for any other path."""
    if not isinstance(path, str) or not re.match(FIGURE_PATH, path):
        return ""
    return f"![{md_text(caption)}]({path})"


def html_text(s) -> str:
    """User text for HTML (element content and quoted attributes)."""
    return html.escape(str(s), quote=True)
