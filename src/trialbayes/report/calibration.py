"""The outputs of a simulation-based calibration run (Results of kind ``calibration``): rank
tables, the figures' plan, report.md and the report.html view."""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from ..core.escape import md_text
from ..core.outputs import OutputDir
from ..core.text import md_table
from ..plots.calibration import ecdf_difference, rank_histograms
from ..results.calibration import CalibrationSummary, Quantiles
from ..results.model import Results
from .html import Figures, banners, bullets, p, section, table
from .plan import FigurePlan

INTRO = (
    "{n} replicates (prior draw → simulated trial of the fitted cohort with censoring → refit "
    "with {chains} × {draws} draws); ranks among {thin} thinned posterior draws. Calibrated "
    "inference gives uniform ranks (Talts et al. 2018)."
)
TESTS = (
    "Chi-square on {bins} rank bins; ECDF outside the 95% band: the ECDF of the fractional ranks "
    "leaves the simultaneous 95% band (Säilynoja et al. 2022) — each is a 5%-level test per "
    "parameter."
)


def write_calibration_tables(out: OutputDir, c: CalibrationSummary) -> None:
    """Write the calibration summary and the ranks per parameter as CSV under ``tables/``."""
    out.write_csv("tables/sbc_summary.csv", c.table())
    out.write_csv("tables/sbc_ranks.csv", pd.DataFrame(c.ranks))


def calibration_figures(plan: FigurePlan, c: CalibrationSummary) -> None:
    """Add the rank histograms and the rank-ECDF figure to ``plan`` (nothing without ranks)."""
    if not (c.ranks and next(iter(c.ranks.values()))):
        return
    thin, bins = c.settings.thin, c.settings.bins
    plan.add(
        "sbc_ranks",
        f"Rank of the true parameter among {thin} thinned posterior draws, per parameter, in "
        f"{bins} bins; grey: the 99% band of a uniform count.",
        lambda: rank_histograms(c.ranks, thin, bins),
    )
    plan.add(
        "sbc_ecdf",
        "ECDF of the fractional ranks minus the uniform CDF, with simultaneous 95% bands "
        "(Säilynoja, Bürkner & Vehtari 2022).",
        lambda: ecdf_difference(c.ranks, thin),
    )


def _q(q: Quantiles | None) -> str:
    return "–" if q is None else f"{q.q05:.3g}, {q.median:.3g}, {q.q95:.3g}"


def _lines(c: CalibrationSummary) -> tuple[str, list[str], str]:
    s, pp = c.settings, c.prior_predictive
    n = len(next(iter(c.ranks.values()), []))
    intro = INTRO.format(n=n, chains=s.chains, draws=s.draws, thin=s.thin)
    extreme = "–" if pp.share_extreme_survival is None else f"{pp.share_extreme_survival:.2f}"
    prior = [
        f"share of patients with an event by the cut: {_q(pp.event_share)}",
        f"control-arm survival at the median follow-up: "
        f"{_q(pp.control_survival_at_median_follow_up)}; share of replicates with survival "
        f"< 1% or > 99%: {extreme}",
        f"treatment HR at the reference: {_q(pp.treatment_hr)}",
    ]
    counts = (
        f"Fits with divergent transitions: {c.divergent_fits}. Failed replicates: "
        f"{len(c.failed_cells)}."
    )
    return intro, prior, counts


def render_calibration_report(r: Results) -> str:
    """report.md of a calibration run."""
    c = r.calibration
    intro, prior, counts = _lines(c)
    L = [f"# {md_text(r.title)}", "", f"Data: {md_text(r.data_label)}.", "", intro, ""]
    if not r.reliable:
        L += ["> **Not calibrated or incomplete**: see the table (a failed test or replicate).", ""]
    L += [md_table(c.table()), "", TESTS.format(bins=c.settings.bins), counts, ""]
    L += ["## Prior predictive summary (5%, 50%, 95% over replicates)", ""]
    L += [f"- {x}" for x in prior]
    for key, cap in (("sbc_ranks", "rank histograms"), ("sbc_ecdf", "ECDF difference")):
        if key in r.figures:
            L += ["", f"![{cap}]({r.figures[key]})"]
    return "\n".join(L) + "\n"


def calibration_view(r: Results, root: Path) -> dict:
    """report.html of a calibration run."""
    c = r.calibration
    intro, prior, counts = _lines(c)
    fig = Figures(root, r.figures, r.figure_captions)
    t = c.table()
    rows = [[x if not isinstance(x, float) else f"{x:.3f}" for x in row] for row in t.values]
    secs = [
        section("summary", "Rank uniformity", [p(intro), table(list(t.columns), rows),
                                               p(TESTS.format(bins=c.settings.bins)), p(counts)]),
        section("prior", "Prior predictive summary", [bullets(prior)]),
        section("figures", "Figures", fig("sbc_ranks", "Rank histograms")
                + fig("sbc_ecdf", "ECDF difference")),
        section("provenance", "Provenance", [p(f"Config hash {r.provenance.config_hash[:16]}…; "
                                              f"seed {c.settings.seed}.")]),
    ]  # fmt: skip
    return {
        "title": r.title,
        "subtitle": f"Simulation-based calibration — {r.data_label}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r.provenance.created_at if r.provenance else "",
    }
