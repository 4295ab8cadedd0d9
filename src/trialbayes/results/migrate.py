"""results.json of schema 2.x (trialbayes before the typed sections) as a 3.0 dictionary, and
of schema 3.0 as a 3.1 one (:func:`from_3_0`: the HR curve's ``benefit_region`` [lower, upper]
became ``benefit_range``, a list of spans that say whether they end at the curve's grid; a 3.0
region becomes one span whose ends are not known to be the grid's).

What moved: the free-form ``sections`` became typed top-level sections (``synthetic_truth``,
``reconstruction``, ``data_notes``, ``next_phase``, ``published``); Cox terms became HR summaries
(``method: cox``, ``p_value``); a published estimate became an HR summary (``method:
published``); prior-scenario refits became typed rows. Two things 2.x did not store are
approximated, and only these: the log-scale SD of a refit's HR (from its interval), and the level
of a published estimate's interval (the run's level).
"""

from __future__ import annotations

import copy
import math
from statistics import NormalDist

from pydantic import BaseModel

from ..config.next_phase import NextPhase


def from_2x(d: dict) -> dict:
    """A 2.x results dictionary in the 3.0 shape (see the module docstring); ``d`` is left as
    it was."""
    d = copy.deepcopy(d)
    level = _level(d)
    sections = d.pop("sections", None) or {}
    d["schema_version"] = "3.0"
    for m in (d.get("models") or {}).values():
        _model(m)
    if d.get("loo"):
        d["loo"] = _loo(d["loo"])
    if sections.get("synthetic_truth"):
        d["synthetic_truth"] = _truth(sections["synthetic_truth"])
    if sections.get("reconstruction"):
        d["reconstruction"] = _reconstruction(sections["reconstruction"])
    d["data_notes"] = list(sections.get("data_notes") or [])
    if sections.get("next_phase"):
        d["next_phase"] = _next_phase(sections["next_phase"])
    if d.get("sensitivity"):
        d["sensitivity"] = _sensitivity(d["sensitivity"], level)
    if not d.get("data"):
        d["data"] = None
    if d.get("kind") == "published":
        d["estimates"] = {k: _estimate(v, level) for k, v in (d.get("estimates") or {}).items()}
        d["published"] = _published(sections, level)
    if d.get("provenance"):
        d["provenance"] = _provenance(d["provenance"])
    else:
        d["provenance"] = None
    _hr_methods(d)
    return d


def from_3_0(d: dict) -> dict:
    """A 3.0 results dictionary in the 3.1 shape; ``d`` is left as it was. The HR curve's
    ``benefit_region`` [lo, hi] becomes one span of ``benefit_range`` (its ends flagged as not
    the grid's: a 3.0 file does not say); the grid, simultaneous band and credible subgroups
    were not computed and stay empty."""
    d = copy.deepcopy(d)
    d["schema_version"] = "3.1"
    for m in (d.get("models") or {}).values():
        hc = m.get("hr_curve") if isinstance(m, dict) else None
        if isinstance(hc, dict) and "benefit_region" in hc:
            reg = hc.pop("benefit_region")
            if "benefit_range" not in hc:
                ends = reg if isinstance(reg, list) and len(reg) == 2 else None
                span = {"from_grid_start": False, "to_grid_end": False}
                hc["benefit_range"] = [{"lower": ends[0], "upper": ends[1], **span}] if ends else []
    return d


def _level(d: dict) -> float:
    s = (d.get("settings") or {}).get("level") or {}
    return float(s.get("value") or 0.95)


def _hr(
    median, lower, upper, level, method, log_mean=None, log_sd=None, p_value=None, below=None
) -> dict:
    if log_mean is None:
        log_mean = math.log(median)
    if log_sd is None:
        z = NormalDist().inv_cdf((1 + level) / 2)
        log_sd = (math.log(upper) - math.log(lower)) / (2 * z)
    return {
        "median": median,
        "lower": lower,
        "upper": upper,
        "level": level,
        "log_mean": log_mean,
        "log_sd": log_sd,
        "p_hr_below": below or {},
        "p_hr_above": {},
        "n_draws": None,
        "method": method,
        "p_value": p_value,
    }


def _hr_methods(obj) -> None:
    """Every 2.x HRSummary (a dict with median, log_mean, n_draws) gets its method."""
    if isinstance(obj, dict):
        if {"median", "log_mean", "p_hr_below"} <= obj.keys() and "method" not in obj:
            obj["method"] = "draws" if obj.get("n_draws") else "normal"
        for v in obj.values():
            _hr_methods(v)
    elif isinstance(obj, list):
        for v in obj:
            _hr_methods(v)


def _model(m: dict) -> None:
    for c in m.get("coefficients") or []:
        x = c.get("cox")
        if x:
            c["cox"] = _hr(
                x["hr"], x["lower"], x["upper"], x["level"], "cox", x["log_hr"], x["se"], x["p"]
            )
    diag = m.get("diagnostics") or {}
    diag.setdefault("failures", [])
    if m.get("cox_status") is None:
        m["cox_status"] = "ok"


def _loo(loo: dict) -> dict:
    rows = [
        {
            "model": x["model"],
            "rank": int(x["rank"]),
            "elpd": x["elpd"],
            "se": x["se"],
            "p_loo": x["p"],
            "elpd_diff": x["elpd_diff"],
            "dse": x["dse"],
            "weight": x["weight"],
            "p_worse": x.get("p_worse"),
            "diagnostics": "",
        }  # fmt: skip
        for x in loo.get("table") or []
    ]
    pk = {
        k: {"max_pareto_k": v["max_pareto_k"], "n_k_above_0_7": v.get("n_k_above_0.7", 0)}
        for k, v in (loo.get("pareto_k") or {}).items()
    }
    return {**loo, "table": rows or None, "pareto_k": pk}


def _truth(t: dict) -> dict:
    params = {}
    for k, v in t.items():
        if isinstance(v, bool) or k == "label":
            continue
        if isinstance(v, int | float):
            params[k] = float(v)
        elif isinstance(v, dict):
            params.update(
                {f"{k}.{c}": float(x) for c, x in v.items() if isinstance(x, int | float)}
            )
    lines = []
    # only the built-in synthetic cohort (data/synthetic.py, biomarker pnfh in pg/mL) wrote these
    # keys in 2.x: the sentence describes that generator, not any trial
    if "log_hr_intercept" in t and "log_hr_slope_per_pgml" in t:
        lines.append(
            f"log HR(x) = {t['log_hr_intercept']:.3f} + {t['log_hr_slope_per_pgml']:g}·x "
            "(x = pnfh, pg/mL)"
        )
    return {"label": t.get("label", "synthetic cohort"), "description": lines, "parameters": params}


def _reconstruction(q: dict) -> dict:
    out = {k: v for k, v in q.items() if k not in ("data", "cox")}
    cox = q.get("cox")
    if cox:
        out["cox"] = _hr(
            cox["hr"],
            cox["hr_lower"],
            cox["hr_upper"],
            cox.get("level", 0.95),
            "cox",
            cox["log_hr"],
            cox["se"],
        )
        out["treatment_arm"] = cox["treatment_arm"]
    return out


def _next_phase(n: dict) -> dict:
    n = dict(n)
    n["settings"] = _non_default(NextPhase, n.get("settings") or {})
    ex = n.get("executor") or {}
    n["executor"] = {k: {**v, "failed": list(v.get("failed") or [])} for k, v in ex.items()}
    return n


def _non_default(model: type[BaseModel], d: dict) -> dict:
    """The keys of a 2.x config dump that differ from the section's defaults (3.0 stores only
    those: some defaults are refused together, e.g. Bayesian settings under a log-rank test)."""
    out = {}
    for k, v in d.items():
        f = model.model_fields.get(k)
        if f is None:
            continue
        default = f.get_default(call_default_factory=True)
        if isinstance(default, BaseModel):
            default = default.model_dump(mode="json")
        if v == default:
            continue
        sub = f.annotation
        if isinstance(sub, type) and issubclass(sub, BaseModel) and isinstance(v, dict):
            out[k] = _non_default(sub, v)
        else:
            out[k] = v
    return out


def _sensitivity(s: dict, level: float) -> dict:
    refits = []
    for row in s.get("table") or []:
        below = {
            k.removeprefix("p_hr_below_"): v
            for k, v in row.items()
            if k.startswith("p_hr_below_") and "_at_" not in k
        }
        treatment = _hr(
            row["hr_median"], row["hr_lower"], row["hr_upper"], row.get("level", level),
            "draws", below=below,
        )  # fmt: skip
        at = {}
        for k, v in row.items():
            if k.startswith("hr_at_") and v is not None:  # None: a model without the biomarker
                x = k.removeprefix("hr_at_")
                p = row.get(f"p_hr_below_1_at_{x}")
                at[x] = _hr(v, v, v, row.get("level", level), "draws", log_sd=0.0,
                            below={"1": p} if p is not None else {})  # fmt: skip
        refits.append(
            {
                "model": row["model"],
                "scenario": row["scenario"],
                "treatment_prior": row.get("treatment_prior", ""),
                "interaction_prior": row.get("interaction_prior", "") or "",
                "reliable": bool(row.get("reliable", True)),
                "divergences": int(row.get("divergences", 0)),
                "rhat_max": row.get("rhat_max"),
                "treatment": treatment,
                "at": at,
            }
        )
    psense = [
        {
            "model": r["model"],
            "parameter": r["parameter"],
            "prior": r.get("prior"),
            "likelihood": r.get("likelihood"),
            "diagnosis": r.get("diagnosis", ""),
        }
        for r in s.get("psense") or []
    ]
    scenarios = [
        {"name": x["name"], "kind": x["kind"], "prior": x.get("treatment_prior", "")}
        for x in s.get("scenarios") or []
    ]
    return {
        "scenarios": scenarios,
        "refits": refits,
        "psense": psense,
        "compilations": s.get("compile_counts") or {},
    }


def _estimate(e: dict, level: float) -> dict:
    z = NormalDist().inv_cdf((1 + level) / 2)
    est = _hr(
        math.exp(e["log_hr"]),
        math.exp(e["log_hr"] - z * e["se"]),
        math.exp(e["log_hr"] + z * e["se"]),
        level, "published", e["log_hr"], e["se"],
    )  # fmt: skip
    return {
        "name": e["name"],
        "estimate": est,
        "subgroup": e.get("subgroup"),
        "share": e.get("share"),
        "scenarios": e.get("scenarios") or {},
        "tipping_points": e.get("tipping_points") or [],
    }


def _published(sections: dict, level: float) -> dict:
    sg = sections.get("subgroup_shrinkage")
    shrinkage = None
    if sg:
        t = sg["tau"]
        shrinkage = {
            "model": sg["model"],
            "tau_prior_sigma": sg["tau_prior_sigma"],
            "groups": sg["groups"],
            "overall_mu": sg["overall_mu"],
            "contrasts": [_contrast(c, level) for c in sg.get("contrasts") or []],
            "tau": {
                "median": t["median"],
                "lower": t["lower"],
                "upper": t["upper"],
                "level": level,
                "p_positive": None,
            },  # fmt: skip
            "p_tau_above_0_2": t.get("p_above_0.2", 0.0),
            "diagnostics": sg["diagnostics"],
        }
    a = sections.get("assurance")
    assurance = None
    if a:
        designs = {
            k: {
                **v,
                "events_needed": {
                    q: None if n is None else math.ceil(n) for q, n in v["events_needed"].items()
                },
            }  # fmt: skip
            for k, v in a["designs"].items()
        }
        assurance = {
            "alpha": a["alpha_one_sided"],
            "allocation": a["allocation"],
            "target_hr": a["target_hr"],
            "designs": designs,
        }
    return {
        "evidence_model": sections.get("evidence_model", ""),
        "scenarios": sections.get("scenarios") or [],
        "prior_grid": sections.get("prior_grid") or {"means": [], "sds": [], "threshold": 1.0},
        "compilations": int(sections.get("nuts_compilations") or 0),
        "shrinkage": shrinkage,
        "assurance": assurance,
    }


def _contrast(c: dict, level: float) -> dict:
    shrunk = _hr(c["ratio_median"], c["ratio_lower"], c["ratio_upper"], level, "draws",
                 below={"1": c["p_ratio_below_1"]})  # fmt: skip
    u = c["unshrunk_ratio"]
    p = c["unshrunk_p_ratio_below_1"]
    # the published ratio's SE from its one-sided probability: P(ratio < 1) = Φ(−log u / se)
    z = NormalDist().inv_cdf(min(max(p, 1e-12), 1 - 1e-12))
    se = abs(math.log(u) / z) if z and u != 1 else float("nan")
    zl = NormalDist().inv_cdf((1 + level) / 2)
    unshrunk = _hr(u, math.exp(math.log(u) - zl * se), math.exp(math.log(u) + zl * se), level,
                   "published", math.log(u), se)  # fmt: skip
    return {"contrast": c["contrast"], "shrunk": shrunk, "unshrunk": unshrunk}


def _provenance(p: dict) -> dict:
    keep = ("created_at", "config_path", "config_hash", "data_label", "data_sha256", "seeds",
            "sampler", "versions", "timings")  # fmt: skip
    out = {k: p[k] for k in keep if k in p}
    if "seed" in p and "seeds" not in out:
        out["seeds"] = {"run": p["seed"]}
    out.setdefault("created_at", "")
    out.setdefault("config_path", None)
    out.setdefault("config_hash", "")
    return out
