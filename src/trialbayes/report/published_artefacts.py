"""The files of a published-estimates run besides results.json and the reports: CSV tables
(posteriors, prior grid, tipping points, shrinkage, assurance) and the figures' plan (forest by
scenario, prior grid, shrinkage, assurance)."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..core.outputs import OutputDir
from ..core.text import level_text, prob_columns
from ..plots.general import assurance_plot, forest_plot, forest_row, prior_grid_panels
from ..results.model import Results
from .plan import FigurePlan


def write_published_tables(out: OutputDir, r: Results, grids: dict) -> None:
    """tables/: posteriors, prior grid, tipping points, shrinkage and assurance."""
    rows = [
        {
            "estimate": n,
            "scenario": sc,
            "prior": p.prior,
            "method": p.method,
            "n_draws": p.hr.n_draws,
            **p.hr.flat(),
        }  # fmt: skip
        for n, ev in r.estimates.items()
        for sc, p in ev.scenarios.items()
    ]
    out.write_csv("tables/posteriors.csv", prob_columns(pd.DataFrame(rows), "n_draws"))
    g = r.published.prior_grid
    grid_rows = [
        {"estimate": n, "prior_mean": m, "prior_sd": s, "p_hr_below_1": grid[i, j]}
        for n, grid in grids.items()
        for i, s in enumerate(g.sds)
        for j, m in enumerate(g.means)
    ]
    out.write_csv("tables/prior_grid.csv", prob_columns(pd.DataFrame(grid_rows)))
    tips = [
        {"estimate": n, **asdict(t)} for n, ev in r.estimates.items() for t in ev.tipping_points
    ]
    out.write_csv("tables/tipping_points.csv", pd.DataFrame(tips))
    sg = r.published.shrinkage
    if sg is not None:
        srows = [
            {
                "estimate": g.name,
                "subgroup": g.subgroup,
                "share": g.share,
                **g.unshrunk.flat("unshrunk_"),
                **g.shrunk.flat("shrunk_"),
            }  # fmt: skip
            for g in sg.groups
        ]
        t = pd.DataFrame(srows)
        n = sg.groups[0].shrunk.n_draws if sg.groups else None
        t = prob_columns(t, n, [c for c in t if c.startswith("shrunk_p_")])
        t = prob_columns(t, None, [c for c in t if c.startswith("unshrunk_p_")])
        out.write_csv("tables/subgroup_shrinkage.csv", t)
    a = r.published.assurance
    if a is not None:
        arows = [{"design": lab, **asdict(x)} for lab, d in a.designs.items() for x in d.by_events]
        out.write_csv("tables/assurance.csv", pd.DataFrame(arows))


def published_figures(plan: FigurePlan, r: Results, grids: dict, level: float) -> None:
    """The figures of a published-estimates run, with their captions."""
    rows = []
    for name, ev in r.estimates.items():  # the published estimate, then each scenario's posterior
        rows.append(forest_row(name, "published", ev.estimate))
        rows += [forest_row(name, sc, p.hr) for sc, p in ev.scenarios.items()]
    level_label = level_text(level)
    plan.add(
        "forest_scenarios",
        f"Each published estimate (square, its {level_label} confidence interval) and its "
        f"posterior under every prior scenario (circle, median and {level_label} credible "
        "interval), grouped by estimate; right: posterior P(HR < 1).",
        lambda: forest_plot(
            rows, title="Published estimates: posterior HR by prior scenario", level=level
        ),
    )
    g = r.published.prior_grid
    tips = {n: ev.tipping_points for n, ev in r.estimates.items()}
    plan.add(
        "prior_grid",
        "P(HR < 1) over a grid of normal priors on the log-HR (mean across, SD up), per "
        "estimate; contours at 0.5, 0.9 and 0.95; dots: tipping-point SDs of a centred prior.",
        lambda: prior_grid_panels(grids, g.means, g.sds, tips),
    )
    if r.published.shrinkage is not None:
        _shrinkage_figure(plan, r, level)
    a = r.published.assurance
    if a is not None:
        plan.add(
            "assurance",
            "Probability that a next trial is significant (assurance, solid) and its power at "
            "the posterior mean (dotted) against its number of events, per design.",
            lambda: assurance_plot(a),
        )


def _shrinkage_figure(plan: FigurePlan, r: Results, level: float) -> None:
    sg = r.published.shrinkage
    rows = []
    for g in sg.groups:
        grp = g.name + (f" ({g.subgroup})" if g.subgroup else "")
        rows += [forest_row(grp, "as published", g.unshrunk), forest_row(grp, "shrunk", g.shrunk)]
    rows.append(forest_row("overall", "μ (mean of the subgroups)", sg.overall_mu))
    level_label = level_text(level)
    plan.add(
        "subgroup_shrinkage",
        f"Subgroup hazard ratios as published (squares, {level_label} confidence interval) and "
        f"after hierarchical shrinkage (circles, {level_label} credible interval), with the "
        "overall mean μ; right: P(HR < 1).",
        lambda: forest_plot(rows, title="Subgroup shrinkage (hierarchical model)", level=level),
    )
