"""report.md of a published-estimates run, and its plain-language summary (shared with
report.html), rendered from the typed :class:`~trialbayes.results.model.Results`."""

from __future__ import annotations

from dataclasses import asdict

import pandas as pd

from ..core.escape import md_spans, md_text
from ..core.flags import grouped
from ..core.text import level_text, md_table, prob
from ..results.model import Results
from ..results.published import AssuranceDesign


def events_needed_text(d: AssuranceDesign) -> str:
    """ "80%: 312 events, 90%: not reachable"."""
    return ", ".join(
        f"{float(k):.0%}: {v} events" if v else f"{float(k):.0%}: not reachable"
        for k, v in d.events_needed.items()
    )


def published_summary(r: Results) -> list[str]:
    """Key findings in plain sentences (user text escaped by the caller for its format)."""
    out = []
    for name, ev in r.estimates.items():
        sc = ev.scenarios
        ps = ", ".join(f"{k} {prob(v.hr.p_benefit, v.hr.n_draws)}" for k, v in sc.items())
        lo = min(sc.items(), key=lambda kv: kv[1].hr.p_benefit)
        out.append(
            f"{name} (published HR {ev.estimate.sentence()}): P(HR < 1) by scenario — {ps}; "
            f"lowest under {lo[0]}."
        )
    sg = r.published.shrinkage if r.published else None
    for c in sg.contrasts if sg else []:
        out.append(
            f"Contrast {c.contrast}: ratio of HRs {c.shrunk.sentence()} after shrinkage, "
            f"P(< 1) {prob(c.shrunk.p_benefit, c.shrunk.n_draws)} (as published "
            f"{c.unshrunk.sentence()})."
        )
    a = r.published.assurance if r.published else None
    for lab, d in a.designs.items() if a else []:
        out.append(
            f"Next trial, {lab}: assurance {events_needed_text(d)} (limit {d.assurance_limit:.3f})."
        )
    return out


def render_published_report(r: Results) -> str:
    """report.md of a published-estimate run."""
    level_label = level_text(r.level)
    pub = r.published
    L = [
        f"# {md_text(r.title)}",
        f"\nSource: {md_text(r.data_label)}. {r.sign_convention}.",
        f"Evidence model: {pub.evidence_model}.",
    ]
    for f, names in grouped(r.all_flags):
        at = f", {md_text(', '.join(names))}" if names else ""
        L.append(f"\n> **{f.severity}** ({f.code}{at}): {md_spans(f.message)}.")
    L.append("\n## Summary")
    L.extend(f"- {md_text(line)}" for line in published_summary(r))
    scen = pd.DataFrame([asdict(s) for s in pub.scenarios])
    L += ["\n## Prior scenarios (log-HR scale)", md_table(scen)]
    if not r.reliable:
        L.append(
            f"\n> **⚠ UNRELIABLE:** failed the diagnostics gate: {', '.join(r.unreliable_models)}."
        )
    L.append("\n## Posterior by estimate and scenario")
    for name, ev in r.estimates.items():
        L += _estimate_md(name, ev, level_label)
    for key, cap in (
        ("forest_scenarios", "Posterior HR by scenario"),
        ("prior_grid", "P(HR < 1) over prior mean × SD"),
    ):
        if key in r.figures:
            L.append(f"\n![{cap}]({r.figures[key]})")
    L += _shrinkage_md(r, level_label) + _assurance_md(r)
    p = r.provenance
    if p is not None:
        L.append(
            f"\n## Provenance\nConfig hash `{p.config_hash[:16]}…`; seeds {p.seeds}; "
            + ", ".join(f"{k} {v}" for k, v in p.versions.items())
            + f". NUTS compilations: {pub.compilations}."
        )
    return "\n".join(L) + "\n"


def _estimate_md(name: str, ev, level_label: str) -> list[str]:
    e = ev.estimate
    L = [
        f"\n### {md_text(name)}"
        + (f" — {md_text(ev.subgroup)}" if ev.subgroup else "")
        + f"\nPublished HR {e.sentence()}, log-HR {e.log_mean:.3f}, SE {e.log_sd:.3f}.\n"
    ]
    rows = [
        {
            "scenario": sc,
            "prior": s.prior,
            "method": s.method,
            f"median HR ({level_label} CrI)": s.hr.text(3),
            **{f"P(HR<{k})": prob(v, s.hr.n_draws) for k, v in s.hr.p_hr_below.items()},
            **{f"P(HR>{k})": prob(v, s.hr.n_draws) for k, v in s.hr.p_hr_above.items()},
        }
        for sc, s in ev.scenarios.items()
    ]
    L.append(md_table(pd.DataFrame(rows)))
    tips = "; ".join(
        f"P(HR<1) < {t.level} once s < {t.sd:.3f}"
        if t.sd is not None
        else f"below {t.level} even with a flat prior"
        for t in ev.tipping_points
    )
    L.append(f"\nTipping point (centred sceptical prior N(0, s²)): {tips}.")
    return L


def _shrinkage_md(r: Results, level_label: str) -> list[str]:
    sg = r.published.shrinkage
    if sg is None:
        return []
    t = sg.tau
    groups = pd.DataFrame(
        [
            {
                "subgroup": g.name,
                f"as published ({level_label} CI)": g.unshrunk.text(3),
                f"shrunk HR ({level_label} CrI)": g.shrunk.text(3),
                "P(HR<1) shrunk": prob(g.shrunk.p_benefit, g.shrunk.n_draws),
            }
            for g in sg.groups
        ]
    )
    contrasts = pd.DataFrame(
        [
            {
                "contrast": c.contrast,
                f"ratio of HRs, shrunk ({level_label} CrI)": c.shrunk.text(3),
                "P(ratio<1)": prob(c.shrunk.p_benefit, c.shrunk.n_draws),
                f"ratio as published ({level_label} CI)": c.unshrunk.text(3),
            }
            for c in sg.contrasts
        ]
    )
    L = [
        "\n## Subgroup shrinkage",
        f"Model: {sg.model}. Between-subgroup SD τ: median {t.median:.3f} ({level_label} CrI "
        f"{t.lower:.3f}–{t.upper:.3f}). Overall μ: HR {sg.overall_mu.sentence(3)}.\n",
        md_table(groups),
        "\n" + md_table(contrasts),
    ]
    if "subgroup_shrinkage" in r.figures:
        L.append(f"\n![Subgroup shrinkage]({r.figures['subgroup_shrinkage']})")
    return L


def _assurance_md(r: Results) -> list[str]:
    a = r.published.assurance
    if a is None:
        return []
    L = [
        f"\n## Probability of success of a next trial (one-sided α = {a.alpha:g}, "
        f"allocation {a.allocation:g})"
    ]
    for lab, d in a.designs.items():
        L.append(
            f"\n**{md_text(lab)}** — posterior: {md_text(d.posterior)} (log-HR "
            f"{d.log_hr_mean:.3f} ± {d.log_hr_sd:.3f}). Events needed for assurance "
            f"{events_needed_text(d)} (limit {d.assurance_limit:.3f}).\n"
        )
        L.append(md_table(pd.DataFrame([asdict(x) for x in d.by_events])))
    if "assurance" in r.figures:
        L.append(f"\n![Assurance]({r.figures['assurance']})")
    return L
