"""report.md and report.html of a design from assumptions (data kind ``assumptions``): what was
assumed, then the next-phase section every route shares (report/nextphase.py)."""

from __future__ import annotations

from pathlib import Path

from ..core.escape import md_spans, md_text
from ..results.model import Results
from .html import Figures, banners, bullets, p, section
from .html_published import provenance_blocks
from .nextphase import html_blocks, report_section


def render_assumptions_report(r: Results) -> str:
    """report.md: the assumptions, flags, the next-phase section, provenance."""
    assert r.next_phase is not None
    L = [f"# {md_text(r.title)}", "",
         f"Design from assumptions — {md_text(r.data_label)}. No patient data.", ""]  # fmt: skip
    if r.all_flags:
        L += ["## Flags", "", *[f"- **{f.severity}**: {md_spans(f.message)}" for f in r.all_flags]]
        L.append("")
    L.append(report_section(r.next_phase, r.figures, r.time_unit))
    pv = r.provenance
    if pv is not None:
        seeds = ", ".join(f"{k} {v}" for k, v in pv.seeds.items())
        L += ["## Provenance", "", f"- config: {md_text(str(pv.config_path))}",
              f"- config hash: `{pv.config_hash[:16]}…`", f"- seeds: {seeds}",
              f"- results schema: {r.schema_version}", ""]  # fmt: skip
    return "\n".join(L)


def assumptions_view(r: Results, root: Path) -> dict:
    """report.html: flags, the next-phase section, provenance."""
    assert r.next_phase is not None
    fig = Figures(root, r.figures, r.figure_captions)
    secs = []
    if r.all_flags:
        secs.append(section("flags", "Flags", [bullets(f.message for f in r.all_flags)]))
    blocks = html_blocks(r.next_phase, fig, r.time_unit)
    secs.append(section("next_phase", "Next-phase trial simulation", blocks))
    secs.append(section("provenance", "Provenance", provenance_blocks(r)))
    return {
        "title": r.title,
        "subtitle": f"Design from assumptions — {r.data_label}",
        "banners": banners(r),
        "sections": [section("summary", "Summary", [p(r.sign_convention + ".")]), *secs],
        "created_at": r.provenance.created_at if r.provenance else "",
    }
