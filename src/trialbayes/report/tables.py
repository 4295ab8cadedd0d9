"""CSV tables of a patient-level :class:`~trialbayes.results.model.Results`: coefficients,
subgroups, diagnostics, and the forest plot's rows. Every number comes from the typed results;
column names follow the results vocabulary (:mod:`trialbayes.results.model`)."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..plots.general import forest_row
from ..results.model import Results


def coefficient_table(r: Results) -> pd.DataFrame:
    """tables/coefficients.csv: one row per model term (:meth:`Coefficient.flat`)."""
    return pd.DataFrame(
        [{"model": name, **c.flat()} for name, m in r.models.items() for c in m.coefficients]
    )


def subgroup_table(r: Results) -> pd.DataFrame:
    """The subgroups CSV: per model, subgroup and kind (conditional / marginal), the HR summary."""
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
                            "n_draws": s.n_draws,
                            **s.flat(),
                            "flag": "; ".join(f.code for f in g.flags),
                        }
                    )
    return pd.DataFrame(rows)


def diagnostics_table(r: Results) -> pd.DataFrame:
    """The diagnostics CSV: one row per model (thresholds left out), with its failures."""
    rows = []
    for n, m in r.models.items():
        d = asdict(m.diagnostics)
        d.pop("thresholds")
        rows.append({"model": n, **d, "failures": "; ".join(m.diagnostics.failures)})
    return pd.DataFrame(rows)


def interval_rows(hot, group: str) -> list[dict]:
    """The first and the last interval's HR of a time-varying model (forest rows)."""
    out = []
    for which, iv in (("first", hot.intervals[0]), ("last", hot.intervals[-1])):
        end = f"{iv.end:.4g}" if iv.end is not None else "end"
        label = f"treatment, {which} interval ({iv.start:.4g}–{end} {hot.time_unit})"
        out.append(forest_row(group, label, iv.hr))
    return out


def forest_rows(r: Results) -> list[dict]:
    """Forest rows grouped by model: posterior and Cox treatment HR, then the biomarker subgroups
    (conditional HRs) of a model with the interaction."""
    rows = []
    for name, m in r.models.items():
        grp, hot = f"model {name}", m.hr_over_time  # a time-varying model: average, then HR(t)
        first = "treatment, averaged over follow-up" if hot else "treatment (posterior)"
        rows.append(forest_row(grp, first, m.treatment_effect))
        rows += interval_rows(hot, grp) if hot else []
        c = m.coefficients[0].cox if m.coefficients else None
        if c is not None:
            cox = "treatment (Cox, proportional hazards)" if hot else "treatment (Cox)"
            rows.append(forest_row(grp, cox, c))
        if m.spec.get("biomarker") and m.subgroups:
            sg = m.subgroups
            unit = f" {sg.unit}" if sg.unit else ""
            for g in sg.groups:
                if g.conditional is not None:
                    label = f"{sg.biomarker} {g.label}{unit} (n={g.n}, events={g.events})"
                    rows.append(forest_row(grp, label, g.conditional))
    return rows
