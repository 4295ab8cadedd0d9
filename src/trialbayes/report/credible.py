"""Plain sentences of the HR curve's range and simultaneous inference (the grid, the pointwise
benefit range with honest ends, the simultaneous band, the credible subgroups) and the rows of
the synthetic cohort's check against the published estimates — shared by report.md, report.html
and the CLI summary. User names are as they are (report.md escapes, report.html's template
escapes)."""

from __future__ import annotations

from ..core.text import level_text
from ..results.credible import spans_text
from ..results.model import BENEFIT_PROB, HRCurve, ModelResult


def benefit_words(hc: HRCurve) -> str:
    """ "P(HR < 1) > 0.9 (pointwise) for x from 1 to the largest value shown (14.1) u"."""
    if hc.benefit_range:
        return (
            f"P(HR < 1) > {BENEFIT_PROB:g} (pointwise) for {hc.biomarker} "
            f"{spans_text(hc.benefit_range, hc.unit)}"
        )
    return f"P(HR < 1) exceeds {BENEFIT_PROB:g} nowhere on the {hc.biomarker} range shown"


def credible_line(name: str, m: ModelResult, threshold: float = 1.0) -> str | None:
    """The credible subgroups for HR < ``threshold`` in one plain sentence (None if not
    computed: a results file from before schema 3.1)."""
    hc = m.hr_curve
    if hc is None or hc.grid is None:
        return None
    cs = next((c for c in hc.credible_subgroups if c.threshold == threshold), None)
    if cs is None:
        return None
    return (
        f"{name}, simultaneously over {hc.biomarker} {hc.grid.text(hc.unit)}: "
        f"{cs.text(hc.biomarker, hc.unit)}."
    )


def curve_detail(hc: HRCurve) -> list[str]:
    """The HR curve's range, pointwise benefit range, simultaneous band and every credible
    subgroup, one plain sentence each; the subgroups as items starting with "- "."""
    bm, u = hc.biomarker, hc.unit
    out = []
    if hc.grid is not None:
        out.append(f"The curve is drawn over {bm} {hc.grid.text(u)}.")
    out.append(
        f"Pointwise, P(HR < 1) > {BENEFIT_PROB:g} for {bm} {spans_text(hc.benefit_range, u)}."
        if hc.benefit_range
        else f"Pointwise, P(HR < 1) exceeds {BENEFIT_PROB:g} nowhere on the {bm} range shown."
    )
    if hc.simultaneous is not None:
        out.append(f"Simultaneously over the range shown ({hc.simultaneous.text()}):")
        out += [f"- {c.text(bm, u)}." for c in hc.credible_subgroups]
    return out


def truth_rows(checks) -> list[dict]:
    """One row per published target: the synthetic cohort's own Cox HR beside the published."""
    return [
        {
            "patients": c.target.label,
            "n": c.n,
            "deaths": c.events,
            f"cohort Cox HR ({level_text(c.cox.level)} CI)" if c.cox else "cohort Cox HR": (
                c.cox.text() if c.cox else "not estimable"
            ),
            "published HR (95% CI)": c.target.published_text(),
            "target band": c.target.target_text(),
            "inside": "yes" if c.inside else "NO",
        }
        for c in checks
    ]


TRUTH_TABLE_CAPTION = (
    "The synthetic cohort's own Cox HRs (treatment only) beside the published estimates it is "
    "calibrated to"
)
