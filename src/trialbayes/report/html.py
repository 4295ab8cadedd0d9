"""The self-contained ``report.html``: a Jinja2 template (autoescaped, so user-supplied strings such
as titles, arm and column names are escaped) filled from a report *view* — a title, banners and
ordered sections of blocks (paragraphs, lists, tables, figures). Figures are embedded as base64
PNGs: the file opens from disk and loads nothing from the network.

Views are built from a run's results by ``report_views``; this module only renders them.
"""

from __future__ import annotations

import base64
import math
from pathlib import Path

from jinja2 import Environment, PackageLoader, StrictUndefined, select_autoescape

from ..core.flags import grouped, where
from ..core.outputs import read_nofollow
from ..core.text import prob
from ..core.version import package_version
from ..results.model import Results
from ..results.summaries import HRSummary, Quantity


def _env() -> Environment:
    return Environment(
        loader=PackageLoader("trialbayes.report", "templates"),
        undefined=StrictUndefined,
        autoescape=select_autoescape(["html", "j2"], default=True),
        trim_blocks=True,
        lstrip_blocks=True,
    )


PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
MAX_FIGURE_BYTES = 64 * 2**20


def figure_file(root: Path, rel) -> Path | None:
    """``rel`` as a file inside the run folder ``root``, or None: a relative path without ``..``
    that stays inside ``root`` once links are resolved (absolute paths, ``../``, a link out of the
    folder are refused)."""
    if not isinstance(rel, str) or not rel or "\0" in rel:
        return None
    p = Path(rel)
    if p.is_absolute() or ".." in p.parts:
        return None
    try:
        base = Path(root).resolve(strict=True)
        real = (base / p).resolve(strict=True)
    except (OSError, RuntimeError):
        return None
    return real if real.is_relative_to(base) and real != base else None


def data_uri(path: Path, root: Path | None = None) -> str | None:
    """A PNG as a data: URI, or None when it is missing, not a real PNG (by its signature), too
    large, or (with ``root``) not a file inside ``root``. Never read through a final link."""
    path = Path(path)
    if root is not None:
        path = figure_file(root, str(path))
        if path is None:
            return None
    try:
        data = read_nofollow(path, limit=MAX_FIGURE_BYTES)
    except OSError:
        return None
    if data is None or not data.startswith(PNG_SIGNATURE):
        return None
    return "data:image/png;base64," + base64.b64encode(data).decode("ascii")


# ----------------------------------------------------------------------------- blocks
def p(text: str) -> dict:
    """A paragraph block of a report view."""
    return {"type": "p", "text": text}


def h3(text: str) -> dict:
    """A sub-heading block of a report view."""
    return {"type": "h3", "text": text}


def note(text: str, kind: str = "info") -> dict:
    """A highlighted note block; ``kind`` is its banner style ("info", "synthetic", ...)."""
    return {"type": "note", "text": text, "kind": kind}


def bullets(items) -> dict:
    """A bulleted-list block of ``items``."""
    return {"type": "list", "items": list(items)}


def cell(v, digits: int = 3, bad: bool = False) -> dict:
    """A table cell: numbers right-aligned with ``digits`` decimals, None / NaN as an en dash."""
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return {"text": "–", "cls": "num"}
    if isinstance(v, bool):
        return {"text": "yes" if v else "no", "cls": "bad" if bad else ""}
    if isinstance(v, int):
        return {"text": f"{v:d}", "cls": "num bad" if bad else "num"}
    if isinstance(v, float):
        return {"text": f"{v:.{digits}f}", "cls": "num bad" if bad else "num"}
    if isinstance(v, (list, tuple)):
        v = ", ".join(map(str, v)) or "none"
    text = str(v)
    return {"text": text, "cls": ("bad " if bad else "") + ("nw" if len(text) <= 24 else "")}


def nobreak(text: str) -> str:
    """Keep 'P(HR < 1)' and the like on one line in a header."""
    return text.replace(" < ", "\u00a0<\u00a0").replace(" > ", "\u00a0>\u00a0")


def table(columns: list[str], rows: list[list], caption: str | None = None) -> dict:
    """``rows``: lists of raw values or of ready cells (dicts from :func:`cell`)."""
    return {
        "type": "table",
        "caption": caption,
        "columns": [nobreak(c) for c in columns],
        "rows": [[c if isinstance(c, dict) else cell(c) for c in r] for r in rows],
    }


class Figures:
    """Numbers the figures in order of appearance and embeds each PNG from the run's folder."""

    def __init__(self, root: Path, paths: dict, captions: dict):
        self.root, self.paths, self.captions, self.n = Path(root), paths, captions, 0

    def __call__(self, key: str, fallback_caption: str = "") -> list[dict]:
        if key not in self.paths:
            return []
        self.n += 1
        cap = self.captions.get(key) or fallback_caption
        return [
            {
                "type": "figure",
                "key": key,
                "number": self.n,
                "src": data_uri(self.paths[key], self.root),
                "alt": cap[:160],
                "caption": cap,
            }
        ]


def section(sid: str, title: str, blocks: list) -> dict:
    """A section of a report view: its anchor id, title and non-empty blocks."""
    return {"id": sid, "title": title, "blocks": [b for b in blocks if b]}


def render(view: dict) -> str:
    """The report.html page of a view (its footer names the trialbayes version)."""
    return _env().get_template("report.html.j2").render(view=view, version=package_version())


# ----------------------------------------------------------------------------- shared blocks
def plain(line: str) -> str:
    """``line`` without Markdown backticks, for the HTML page."""
    return line.replace("`", "")


def banners(r: Results) -> list[dict]:
    """The banners at the top of report.html: synthetic data, models that failed the diagnostics
    gate, and every flag (grouped, with the models it applies to)."""
    out = []
    if r.synthetic:
        out.append(
            {
                "kind": "synthetic",
                "text": f"SYNTHETIC DATA. {r.data_label}. Every number below "
                "describes the synthetic cohort, not a real trial.",
            }
        )
    if not r.reliable:
        out.append(
            {
                "kind": "unreliable",
                "text": "UNRELIABLE: "
                + ", ".join(r.unreliable_models)
                + " failed the sampler diagnostics gate. Their estimates are shown but must not "
                "be used.",
            }
        )
    for f, models in grouped(r.all_flags):
        at = f" ({where(models)})" if models else ""
        out.append(
            {
                "kind": "unreliable" if f.severity == "warning" else "synthetic",
                "text": f"{f.severity.upper()}{at}: {f.message}.",
            }
        )
    return out


def pr(v: float | None, s: HRSummary | Quantity) -> dict:
    """A probability cell that never shows a certainty the draws cannot give."""
    return {"text": prob(v, s.n_draws), "cls": "num"}
