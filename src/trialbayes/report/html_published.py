"""The report.html view of a published-estimates run (typed
:class:`~trialbayes.results.model.Results`), in the order of a patient-level report; sections that
need patient data (survival, effect modification along a biomarker) are left out, and the contents
list names only the sections the report has."""

from __future__ import annotations

from pathlib import Path

from ..core.text import level_text
from ..results.model import Results
from ..results.sections import GateResult
from .html import Figures, banners, bullets, cell, h3, note, p, plain, pr, section, table
from .html_patient import provenance_table
from .markdown_published import events_needed_text, published_summary


def published_view(r: Results, root: Path) -> dict:
    """The report.html view of a published-estimate run: title, banners, sections in order."""
    fig = Figures(root, r.figures, r.figure_captions)
    pub = r.published
    secs = [
        section(
            "summary",
            "Summary in plain language",
            [bullets(plain(x) for x in published_summary(r)), p(r.sign_convention + ".")],
        ),
        section("data", "Data: the published estimates", data_blocks(r)),
        section("models", "Models and priors", model_blocks(r)),
        section("diagnostics", "Sampler diagnostics", diagnostics_blocks(r)),
        section("effects", "Treatment effects", effect_blocks(r, fig)),
    ]
    if pub.shrinkage is not None and pub.shrinkage.contrasts:
        secs.append(section("modification", "Effect modification", modification_blocks(r)))
    if pub.shrinkage is not None:
        secs.append(section("subgroups", "Subgroups", subgroup_blocks(r, fig)))
    secs.append(section("sensitivity", "Prior sensitivity", sensitivity_blocks(r, fig)))
    if pub.assurance is not None:
        secs.append(section("next_trial", "The next trial", next_trial_blocks(r, fig)))
    secs.append(section("provenance", "Provenance", provenance_blocks(r)))
    return {
        "title": r.title,
        "subtitle": f"Bayesian reanalysis of published estimates — {r.data_label}",
        "banners": banners(r),
        "sections": secs,
        "created_at": r.provenance.created_at if r.provenance else "",
    }


def data_blocks(r: Results) -> list:
    """The Data section: the evidence model and the published estimates analysed."""
    level_label = level_text(r.level)
    rows = [
        [
            n,
            e.estimate.text(),
            e.estimate.log_mean,
            e.estimate.log_sd,
            e.subgroup or "all patients",
            e.share,
        ]  # fmt: skip
        for n, e in r.estimates.items()
    ]
    head = ["estimate", f"published HR ({level_label} CI)", "log-HR", "SE of log-HR", "population"]
    return [
        p(f"Evidence model: {r.published.evidence_model}."),
        table([*head, "share of patients"], rows, "Published estimates analysed"),
    ]


def model_blocks(r: Results) -> list:
    """The Models section: how each estimate meets each prior, and the prior scenarios."""
    return [
        p(
            "Each published log-HR is combined with a prior on the log-HR under every named "
            "scenario: closed form for normal and flat priors, NUTS (checked against numerical "
            "quadrature) for Student-t and mixture priors."
        ),
        table(
            ["scenario", "kind", "prior on the log-HR"],
            [[s.name, s.kind, s.prior] for s in r.published.scenarios],
            "Prior scenarios",
        ),
    ]


def _verdict(d: GateResult) -> str:
    return "passed" if not d.failures else "FAILED: " + "; ".join(d.failures)


def diagnostics_blocks(r: Results) -> list:
    """The Sampler diagnostics section: the sampled posteriors (checked against quadrature), the
    shrinkage model's diagnostics and the number of NUTS compilations."""
    rows = [
        [
            name,
            sc,
            cell(s.diagnostics.rhat_max),
            cell(s.diagnostics.ess_bulk_min, 0),
            s.diagnostics.divergences,
            s.quadrature_check.max_abs_diff_p if s.quadrature_check else None,
            cell(_verdict(s.diagnostics), bad=bool(s.diagnostics.failures)),
        ]  # fmt: skip
        for name, ev in r.estimates.items()
        for sc, s in ev.scenarios.items()
        if s.diagnostics is not None
    ]
    head = ["estimate", "scenario", "max R-hat", "min bulk ESS", "divergences"]
    out = [
        table(
            [*head, "max |P − quadrature P|", "gate"],
            rows,
            "Sampled posteriors (the others are closed form)",
        )  # fmt: skip
        if rows
        else p("Every posterior is in closed form: nothing was sampled.")
    ]
    sg = r.published.shrinkage
    if sg is not None:
        d = sg.diagnostics
        rhat = "undefined" if d.rhat_max is None else f"{d.rhat_max:.3f}"
        out.append(
            p(
                f"Subgroup shrinkage model: max R-hat {rhat}, min bulk ESS {d.ess_bulk_min:.0f}, "
                f"{d.divergences} divergences — {_verdict(d)}."
            )
        )
    out.append(note(f"NUTS compilations in this run: {r.published.compilations}"))
    return out


def effect_blocks(r: Results, fig) -> list:
    """The Treatment effects section: each estimate's posterior HR and probabilities under every
    prior scenario, and the forest plot of the scenarios."""
    out = []
    for name, ev in r.estimates.items():
        h0 = next(iter(ev.scenarios.values())).hr
        below, above, level_label = list(h0.p_hr_below), list(h0.p_hr_above), level_text(h0.level)
        where = f" — {ev.subgroup}" if ev.subgroup else ""
        out.append(h3(f"{name}{where}: published HR {ev.estimate.sentence()}"))
        head = ["scenario", "prior", "method", f"posterior HR ({level_label} CrI)"]
        head += [f"P(HR < {k})" for k in below] + [f"P(HR > {k})" for k in above]
        rows = [
            [
                sc,
                s.prior,
                s.method,
                s.hr.text(),
                *[pr(s.hr.p_hr_below[k], s.hr) for k in below],
                *[pr(s.hr.p_hr_above[k], s.hr) for k in above],
            ]  # fmt: skip
            for sc, s in ev.scenarios.items()
        ]
        out.append(table(head, rows))
    return out + fig("forest_scenarios")


def modification_blocks(r: Results) -> list:
    """The Effect modification section: ratios of subgroup HRs, after shrinkage and as published."""
    level_label = level_text(r.level)
    rows = [
        [x.contrast, x.shrunk.text(), pr(x.shrunk.p_benefit, x.shrunk), x.unshrunk.text()]
        for x in r.published.shrinkage.contrasts
    ]
    head = ["contrast", f"ratio of HRs after shrinkage ({level_label} CrI)", "P(ratio < 1)"]
    return [
        p(
            "From published subgroup estimates only the ratio of subgroup HRs can be assessed "
            "(no HR along a continuous biomarker without patient data)."
        ),
        table(
            [*head, f"ratio as published ({level_label} CI)"],
            rows,
            "Ratio of subgroup hazard ratios",
        ),
    ]


def subgroup_blocks(r: Results, fig) -> list:
    """The Subgroups section: the hierarchical model's tau and overall HR, and each subgroup's HR
    before and after shrinkage."""
    sg = r.published.shrinkage
    t, mu, level_label = sg.tau, sg.overall_mu, level_text(r.level)
    rows = [
        [
            g.subgroup or g.name,
            g.share,
            g.unshrunk.text(),
            g.shrunk.text(),
            pr(g.shrunk.p_benefit, g.shrunk),
        ]  # fmt: skip
        for g in sg.groups
    ]
    head = [
        "subgroup",
        "share",
        f"as published ({level_label} CI)",
        f"shrunk HR ({level_label} CrI)",
    ]
    return [
        p(
            f"Hierarchical model: {sg.model}. Between-subgroup SD τ: median {t.median:.3f} "
            f"({level_label} CrI {t.lower:.3f} to {t.upper:.3f}). Overall μ: HR {mu.sentence()}."
        ),
        table([*head, "P(HR < 1), shrunk"], rows, "Subgroup estimates before and after shrinkage"),
        *fig("subgroup_shrinkage"),
    ]


def sensitivity_blocks(r: Results, fig) -> list:
    """The Prior sensitivity section: the tipping points and the prior-grid figure."""
    rows = [
        [name, t.level, t.p_flat, t.sd, t.note]
        for name, ev in r.estimates.items()
        for t in ev.tipping_points
    ]
    head = ["estimate", "level of P(HR < 1)", "P(HR < 1), flat prior", "tipping prior SD (log-HR)"]
    return [
        p(
            "Tipping point: the SD s of a centred sceptical prior N(0, s²) below which P(HR < 1) "
            "falls under each level."
        ),
        table([*head, "note"], rows, "Tipping points"),
        *fig("prior_grid"),
    ]


def next_trial_blocks(r: Results, fig) -> list:
    """The Next trial section: assurance by number of events for each design, and its figure."""
    a = r.published.assurance
    out = [
        h3(
            f"Probability of success of a next trial (one-sided α = {a.alpha:g}, "
            f"allocation {a.allocation:g})"
        )
    ]
    for lab, d in a.designs.items():
        out.append(
            p(
                f"{lab} — posterior: {d.posterior}. Events needed for assurance "
                f"{events_needed_text(d)} (limit {d.assurance_limit:.3f})."
            )
        )
        head = ["events", "assurance", f"P(HR estimate < {a.target_hr:g})"]
        rows = [
            [x.events, x.assurance, x.p_hr_estimate_below_target, x.power_at_posterior_mean]
            for x in d.by_events
        ]
        out.append(table([*head, "power at the posterior mean"], rows, lab))
    return out + fig("assurance")


def provenance_blocks(r: Results) -> list:
    """The Provenance section (the table every route's report shows)."""
    return [provenance_table(r)] if r.provenance is not None else [p("No provenance recorded.")]
