"""report.md and report.html of a design from assumptions (data kind ``assumptions``): what was
assumed, then the next-phase section every route shares (report/nextphase.py)."""

from __future__ import annotations

from pathlib import Path

from ..results.model import Results
from .html import Figures, banners, bullets, p, section, table
from .nextphase import html_blocks, report_section


def _flags(r: Results) -> list[str]:
    return [f"**{f.severity}**: {f.message}" for f in r.all_flags]


def render_assumptions_report(r: Results) -> str:
    """report.md: the assumptions, flags, the next-phase section, provenance."""
    L = [f"# {r.title}", "", f"Design from assumptions — {r.data_label}. No patient data.", ""]
    if r.all_flags:
        L += ["## Flags", "", *[f"- {x}" for x in _flags(r)], ""]
    L.append(report_section(r.sections["next_phase"], r.figures, r.time_unit))
    pv = r.provenance
    L += ["## Provenance", "", f"- config: {pv.get('config_path')}",
          f"- config hash: {pv.get('config_hash')}", f"- seed: {pv.get('seed')}",
          f"- results schema: {r.schema_version}", ""]  # fmt: skip
    return "\n".join(L)


def assumptions_view(r: Results, root: Path) -> dict:
    fig = Figures(root, r.figures, r.figure_captions)
    pv = r.provenance
    secs = []
    if r.all_flags:
        secs.append(section("flags", "Flags", [bullets(f.message for f in r.all_flags)]))
    secs.append(
        section(
            "next_phase",
            "Next-phase trial simulation",
            html_blocks(r.sections["next_phase"], fig, r.time_unit),
        )  # fmt: skip
    )
    rows = [["created", pv.get("created_at")], ["config", pv.get("config_path")],
            ["config hash", pv.get("config_hash")], ["seed", pv.get("seed")],
            ["results schema", r.schema_version]]  # fmt: skip
    rows += [[k, v] for k, v in pv.get("versions", {}).items()]
    secs.append(section("provenance", "Provenance", [table(["item", "value"], rows,
                                                           "Provenance")]))  # fmt: skip
    return {
        "title": r.title,
        "subtitle": f"Design from assumptions — {r.data_label}",
        "banners": banners(r),
        "sections": [section("summary", "Summary", [p(r.sign_convention + ".")]), *secs],
        "created_at": pv.get("created_at", ""),
    }
