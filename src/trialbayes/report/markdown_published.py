"""report.md of a published-estimates run, and its plain-language summary (shared with
report.html), rendered from the typed :class:`~trialbayes.results.model.Results`."""

from __future__ import annotations

import pandas as pd

from ..core.escape import md_text
from ..core.text import level_text, md_table, prob
from ..results.model import Results


def published_summary(r: Results) -> list[str]:
    """Key findings in plain sentences."""
    out = []
    for name, ev in r.estimates.items():
        sc = ev.scenarios
        p = ", ".join(f"{k} {prob(v.hr.p_benefit, v.hr.n_draws)}" for k, v in sc.items())
        lo = min(sc.items(), key=lambda kv: kv[1].hr.p_benefit)
        out.append(
            f"{name} (published HR {ev.hr:.2f}): P(HR < 1) by scenario — {p}; lowest under {lo[0]}."
        )
    for c in r.sections.get("subgroup_shrinkage", {}).get("contrasts", []):
        out.append(
            f"Contrast {c['contrast']}: ratio of HRs {c['ratio_median']:.2f} "
            f"({c['ratio_lower']:.2f}–"
            f"{c['ratio_upper']:.2f}) after shrinkage, P(< 1) = {c['p_ratio_below_1']:.3f} "
            "(unshrunk "
            f"{c['unshrunk_ratio']:.2f}, P = {c['unshrunk_p_ratio_below_1']:.3f})."
        )
    for lab, d in r.sections.get("assurance", {}).get("designs", {}).items():
        need = d["events_needed"]
        txt = ", ".join(
            f"{float(k):.0%}: {v:.0f} events" if v else f"{float(k):.0%}: not reachable"
            for k, v in need.items()
        )
        out.append(f"Next trial, {lab}: assurance {txt} (limit {d['assurance_limit']:.3f}).")
    return out


def render_published_report(r: Results) -> str:
    lv = level_text(r.setting("level", 0.95))
    L = [
        f"# {md_text(r.title)}",
        f"\nSource: {md_text(r.data_label)}. {r.sign_convention}.",
        f"Evidence model: {r.sections['evidence_model']}.",
    ]
    for f in r.all_flags:
        where = f", {md_text(f.model)}" if f.model else ""
        L.append(f"\n> **{f.severity}** ({f.code}{where}): {md_text(f.message)}.")
    L.append("\n## Summary")
    L.extend(f"- {line}" for line in published_summary(r))
    L += ["\n## Prior scenarios (log-HR scale)", md_table(pd.DataFrame(r.sections["scenarios"]))]
    if not r.reliable:
        L.append(
            f"\n> **⚠ UNRELIABLE:** failed the diagnostics gate: {', '.join(r.unreliable_models)}."
        )
    L.append("\n## Posterior by estimate and scenario")
    for name, ev in r.estimates.items():
        L.append(
            f"\n### {name}"
            + (f" — {md_text(ev.subgroup)}" if ev.subgroup else "")
            + f"\nPublished HR {ev.hr:.2f}, log-HR {ev.log_hr:.3f}, SE {ev.se:.3f}.\n"
        )
        rows = [
            {
                "scenario": sc,
                "prior": s.prior,
                "method": s.method,
                f"median HR ({lv} CrI)": s.hr.text(3),
                **{f"P(HR<{k})": v for k, v in s.hr.p_hr_below.items()},
                **{f"P(HR>{k})": v for k, v in s.hr.p_hr_above.items()},
            }
            for sc, s in ev.scenarios.items()
        ]
        L.append(md_table(pd.DataFrame(rows)))
        L.append(
            "\nTipping point (centred sceptical prior N(0, s²)): "
            + "; ".join(
                f"P(HR<1) < {t['level']} once s < {t['sd']:.3f}"
                if t["sd"] is not None
                else f"below {t['level']} even with a flat prior"
                for t in ev.tipping_points
            )
            + "."
        )
    for key, cap in (
        ("forest_scenarios", "Posterior HR by scenario"),
        ("prior_grid", "P(HR < 1) over prior mean × SD"),
    ):
        if key in r.figures:
            L.append(f"\n![{cap}]({r.figures[key]})")
    L += _shrinkage_md(r, lv) + _assurance_md(r)
    p = r.provenance
    L.append(
        f"\n## Provenance\nConfig hash `{p['config_hash'][:16]}…`; seed {p['seed']}; "
        + ", ".join(f"{k} {v}" for k, v in p["versions"].items())
        + "."
    )
    return "\n".join(L) + "\n"


def _shrinkage_md(r: Results, lv: str) -> list[str]:
    sg = r.sections.get("subgroup_shrinkage")
    if not sg:
        return []
    t = sg["tau"]
    L = [
        "\n## Subgroup shrinkage",
        f"Model: {sg['model']}. Between-subgroup SD τ: median {t['median']:.3f} ({lv} CrI "
        f"{t['lower']:.3f}–"
        f"{t['upper']:.3f}). Overall μ: HR {sg['overall_mu'].text(3)}.\n",
        md_table(
            pd.DataFrame(
                [
                    {
                        "subgroup": g["name"],
                        "unshrunk HR": g["unshrunk"].text(3),
                        "P(HR<1) unshrunk": g["unshrunk"].p_benefit,
                        "shrunk HR": g["shrunk"].text(3),
                        "P(HR<1) shrunk": g["shrunk"].p_benefit,
                    }
                    for g in sg["groups"]
                ]
            )
        ),
        "\n" + md_table(pd.DataFrame(sg["contrasts"])),
    ]
    if "subgroup_shrinkage" in r.figures:
        L.append(f"\n![Subgroup shrinkage]({r.figures['subgroup_shrinkage']})")
    return L


def _assurance_md(r: Results) -> list[str]:
    a = r.sections.get("assurance")
    if not a:
        return []
    L = [
        f"\n## Probability of success of a next trial (one-sided α = {a['alpha_one_sided']}, "
        f"allocation {a['allocation']})"
    ]
    for lab, d in a["designs"].items():
        need = ", ".join(
            f"{k}: {v:.0f} events"
            if v
            else f"{k}: not reachable (limit {d['assurance_limit']:.3f})"
            for k, v in d["events_needed"].items()
        )
        L.append(
            f"\n**{lab}** — posterior: {d['posterior']} (log-HR {d['log_hr_mean']:.3f} ± "
            f"{d['log_hr_sd']:.3f}). Events needed for assurance {need}.\n"
        )
        L.append(md_table(pd.DataFrame(d["by_events"])))
    if "assurance" in r.figures:
        L.append(f"\n![Assurance]({r.figures['assurance']})")
    return L
