"""The files of a published-estimates run besides results.json and the reports: CSV tables
(posteriors, prior grid, tipping points, shrinkage, assurance) and figures (forest by scenario,
prior grid, shrinkage, assurance)."""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import stats

from ..core.outputs import OutputDir
from ..plots.general import assurance_plot, forest_plot, prior_grid_panels
from ..plots.style import save
from ..results.model import Results
from .writer import OutputSettings


def write_published_outputs(
    out: OutputDir, s: OutputSettings, run, chosen, means, sds, shrunk
) -> None:
    r: Results = run.results
    dpi, lv = s.dpi, s.level
    out.write_csv("tables/posteriors.csv", run.tables["posteriors"])
    grid_rows = [
        {"estimate": n, "prior_mean": m, "prior_sd": s, "p_hr_below_1": g[i, j]}
        for n, g in run.tables["grids"].items()
        for i, s in enumerate(sds)
        for j, m in enumerate(means)
    ]
    out.write_csv("tables/prior_grid.csv", pd.DataFrame(grid_rows))
    out.write_csv(
        "tables/tipping_points.csv",
        pd.DataFrame(
            [{"estimate": n, **t} for n, ev in r.estimates.items() for t in ev.tipping_points]
        ),
    )
    if s.figures:
        z = stats.norm.ppf((1 + lv) / 2)
        rows = []
        for (
            ev
        ) in chosen:  # grouped by estimate: the published estimate, then each scenario's posterior
            rows.append(
                {
                    "group": ev.name,
                    "label": "published",
                    "hr": ev.hr,
                    "kind": "cox",
                    "lower": float(np.exp(ev.log_hr - z * ev.se)),
                    "upper": float(np.exp(ev.log_hr + z * ev.se)),
                }
            )
            for sc, post in r.estimates[ev.name].scenarios.items():
                h = post.hr
                rows.append(
                    {
                        "group": ev.name,
                        "label": sc,
                        "hr": h.median,
                        "lower": h.lower,
                        "upper": h.upper,
                        "kind": "bayes",
                        "p": h.p_benefit,
                    }
                )
        save(
            forest_plot(
                rows, title="Published estimates: posterior HR by prior scenario", level=lv
            ),
            out.path("figures/forest_scenarios.png"),
            dpi,
        )
        r.figures["forest_scenarios"] = "figures/forest_scenarios.png"
        r.figure_captions["forest_scenarios"] = (
            "Each published estimate (square, its confidence interval) and its posterior under every prior "
            "scenario (circle, median and credible interval), grouped by estimate; right: posterior P(HR < 1)."
        )
        tips = {n: ev.tipping_points for n, ev in r.estimates.items()}
        save(
            prior_grid_panels(run.tables["grids"], means, sds, tips),
            out.path("figures/prior_grid.png"),
            dpi,
        )
        r.figures["prior_grid"] = "figures/prior_grid.png"
        r.figure_captions["prior_grid"] = (
            "P(HR < 1) over a grid of normal priors on the log-HR (mean across, SD up), per estimate; contours "
            "at 0.5, 0.9 and 0.95; dots: tipping-point SDs of a centred prior."
        )
    if shrunk is not None:
        _write_shrinkage(out, s, r)
    if "assurance" in r.sections:
        a = r.sections["assurance"]
        out.write_csv(
            "tables/assurance.csv",
            pd.DataFrame(
                [
                    {"design": lab, **row}
                    for lab, d in a["designs"].items()
                    for row in d["by_events"]
                ]
            ),
        )
        if s.figures:
            save(assurance_plot(a), out.path("figures/assurance.png"), dpi)
            r.figures["assurance"] = "figures/assurance.png"
            r.figure_captions["assurance"] = (
                "Probability that a next trial is significant (assurance, solid) and its power at the posterior "
                "mean (dotted) against its number of events, per design."
            )


def _write_shrinkage(out: OutputDir, s: OutputSettings, r: Results) -> None:
    sg = r.sections["subgroup_shrinkage"]
    srows = [
        {
            "estimate": g["name"],
            "subgroup": g["subgroup"],
            "share": g["share"],
            **g["unshrunk"].flat("unshrunk_"),
            **g["shrunk"].flat("shrunk_"),
        }
        for g in sg["groups"]
    ]
    out.write_csv("tables/subgroup_shrinkage.csv", pd.DataFrame(srows))
    if not s.figures:
        return
    rows = []
    for g in sg["groups"]:
        grp = g["name"] + (f" ({g['subgroup']})" if g.get("subgroup") else "")
        for kind, lab in (("unshrunk", "as published"), ("shrunk", "shrunk")):
            h = g[kind]
            rows.append(
                {
                    "group": grp,
                    "label": lab,
                    "hr": h.median,
                    "lower": h.lower,
                    "upper": h.upper,
                    "kind": kind,
                    "p": h.p_benefit,
                }
            )
    o = sg["overall_mu"]
    rows.append(
        {
            "group": "overall",
            "label": "μ (mean of the subgroups)",
            "hr": o.median,
            "lower": o.lower,
            "upper": o.upper,
            "kind": "shrunk",
            "p": o.p_benefit,
        }
    )
    save(
        forest_plot(rows, title="Subgroup shrinkage (hierarchical model)", level=s.level),
        out.path("figures/subgroup_shrinkage.png"),
        s.dpi,
    )
    r.figures["subgroup_shrinkage"] = "figures/subgroup_shrinkage.png"
    r.figure_captions["subgroup_shrinkage"] = (
        "Subgroup hazard ratios as published (squares, confidence interval) and after hierarchical shrinkage "
        "(circles, credible interval), with the overall mean μ; right: P(HR < 1)."
    )
