"""CSV tables of a patient-level :class:`~trialbayes.results.model.Results`: coefficients, subgroups,
diagnostics, and the forest plot's rows. Every number comes from the typed results."""

from __future__ import annotations

import pandas as pd

from ..results.model import Results


def coefficient_table(r: Results) -> pd.DataFrame:
    rows = []
    for name, m in r.models.items():
        for c in m.coefficients:
            cox = (
                {}
                if c.cox is None
                else {
                    "cox_hr": c.cox.hr,
                    "cox_hr_lower": c.cox.lower,
                    "cox_hr_upper": c.cox.upper,
                    "cox_level": c.cox.level,
                    "cox_log_hr": c.cox.log_hr,
                    "cox_se": c.cox.se,
                    "cox_p": c.cox.p,
                }
            )
            rows.append(
                {
                    "model": name,
                    "term": c.term,
                    "unit": c.unit,
                    **c.posterior.flat(),
                    "log_hr_mean": c.posterior.log_mean,
                    "log_hr_sd": c.posterior.log_sd,
                    "n_draws": c.posterior.n_draws,
                    **cox,
                }
            )
    return pd.DataFrame(rows)


def subgroup_table(r: Results) -> pd.DataFrame:
    rows = []
    for name, m in r.models.items():
        sg = m.subgroups
        for g in sg.groups if sg else []:
            for kind in ("conditional", "marginal"):
                s = getattr(g, kind)
                if s is not None:
                    rows.append(
                        {
                            "model": name,
                            "biomarker": sg.biomarker,
                            "unit": sg.unit,
                            "subgroup": g.label,
                            "n": g.n,
                            "events": g.events,
                            "type": kind,
                            **s.flat(),
                            "flag": "; ".join(f.code for f in g.flags),
                        }
                    )
    return pd.DataFrame(rows)


def diagnostics_table(r: Results) -> pd.DataFrame:
    return pd.DataFrame(
        [
            {
                "model": n,
                "reliable": m.reliable,
                **{
                    k: v
                    for k, v in m.diagnostics.items()
                    if k not in ("thresholds", "failures", "reliable")
                },
                "failures": "; ".join(m.diagnostics["failures"]),
            }
            for n, m in r.models.items()
        ]
    )


def interval_rows(hot, group: str) -> list[dict]:
    """The first and the last interval's HR of a time-varying model (forest rows)."""
    out = []
    for which, iv in (("first", hot.intervals[0]), ("last", hot.intervals[-1])):
        end = f"{iv.end:.4g}" if iv.end is not None else "end"
        h = iv.hr
        out.append(
            {
                "group": group,
                "label": f"treatment, {which} interval ({iv.start:.4g}–{end} {hot.time_unit})",
                "hr": h.median,
                "lower": h.lower,
                "upper": h.upper,
                "kind": "bayes",
                "p": h.p_benefit,
            }
        )
    return out


def forest_rows(r: Results) -> list[dict]:
    """Forest rows grouped by model: posterior and Cox treatment HR, then the biomarker subgroups;
    ``p`` = P(HR < 1) of each posterior."""
    rows = []
    for name, m in r.models.items():
        te, grp = m.treatment_effect, f"model {name}"
        hot = getattr(m, "hr_over_time", None)  # a time-varying model: its average, then HR(t)
        rows.append(
            {
                "group": grp,
                "label": "treatment, averaged over follow-up" if hot else "treatment (posterior)",
                "hr": te.median,
                "lower": te.lower,
                "upper": te.upper,
                "kind": "bayes",
                "p": te.p_benefit,
            }
        )
        rows += interval_rows(hot, grp) if hot else []
        c = m.coefficients[0].cox if m.coefficients else None
        if c is not None:
            rows.append(
                {
                    "group": grp,
                    "label": "treatment (Cox, proportional hazards)" if hot else "treatment (Cox)",
                    "hr": c.hr,
                    "lower": c.lower,
                    "upper": c.upper,
                    "kind": "cox",
                }
            )
        if m.spec.get("biomarker") and m.subgroups:
            unit = f" {m.subgroups.unit}" if m.subgroups.unit else ""
            for g in m.subgroups.groups:
                if g.conditional is not None:
                    s = g.conditional
                    label = f"{m.subgroups.biomarker} {g.label}{unit} (n={g.n}, events={g.events})"
                    rows.append(
                        {
                            "group": grp,
                            "label": label,
                            "hr": s.median,
                            "lower": s.lower,
                            "upper": s.upper,
                            "kind": "bayes",
                            "p": s.p_benefit,
                        }
                    )
    return rows
