"""The time-varying treatment effect in report.md and report.html: HR per interval, the change
over follow-up, the PSIS-LOO verdict against proportional hazards and the Schoenfeld-residual test
beside it — rendered from a model's typed ``hr_over_time``
(:class:`~trialbayes.results.time_varying.HROverTime`)."""

from __future__ import annotations

import pandas as pd

from ..core.escape import md_spans, md_text
from ..core.text import level_text, md_table, prob
from ..results.model import ModelResult, Results
from ..results.time_varying import HROverTime, IntervalHR
from .html import h3, p, plain, pr, table


def over_time(m: ModelResult) -> HROverTime | None:
    """A model's HR over time, or None (a constant effect, or results without it)."""
    return getattr(m, "hr_over_time", None)


def interval_text(iv: IntervalHR, unit: str) -> str:
    """A baseline interval as text: "(0, 12] months", the last "(36, ∞) months"."""
    end = f"{iv.end:.4g}]" if iv.end is not None else "∞)"
    return f"({iv.start:.4g}, {end} {unit}"


def summary_line(name: str, m: ModelResult) -> str | None:
    """One plain sentence: first and last interval HR, their ratio, the PH verdicts."""
    hot = over_time(m)
    if hot is None:
        return None
    first, last, ch = hot.intervals[0], hot.intervals[-1], hot.change
    u = hot.time_unit
    line = (
        f"`{name}` HR over time: {first.hr.text()} in {interval_text(first, u)}, "
        f"{last.hr.text()} in {interval_text(last, u)}; last / first {ch.sentence()}, "
        f"P(HR lower in the last interval than in the first) {prob(ch.p_benefit, ch.n_draws)}."
    )
    return line + " " + ph_checks_text(hot)


def ph_checks_text(hot: HROverTime) -> str:
    """The PSIS-LOO verdict, then the frequentist test beside it."""
    out = []
    if hot.comparison is not None:
        out.append(hot.comparison.verdict)
    t = hot.ph_test
    if t is not None and t.p_value is not None:
        out.append(
            f"Schoenfeld-residual test of proportional hazards for treatment (Cox, "
            f"{t.time_transform} time): chi-square {t.test_statistic:.2f}, 1 df, "
            f"p = {t.p_value:.3g}."
        )
    elif t is not None:
        out.append(f"Schoenfeld-residual test failed ({t.error}).")
    return " ".join(out)


def _rows(hot: HROverTime) -> list[list]:
    ks = list(hot.intervals[0].hr.p_hr_below)
    return [
        [interval_text(iv, hot.time_unit), iv.events, iv.hr.text()]
        + [(iv.hr.p_hr_below[k], iv.hr) for k in ks]
        for iv in hot.intervals
    ]


def _explanation(m: ModelResult, hot: HROverTime) -> str:
    return (
        f"HR(t), the {hot.estimand}: one treatment log-HR per baseline interval under a "
        "random-walk prior (models/piecewise_exponential.md, 'Time-varying treatment "
        f"effect'). The model's treatment effect, {m.treatment_effect.sentence()}, is "
        f"the {hot.average_definition} — not a proportional-hazards HR. Walk scale (SD of the "
        f"first-to-last change in log-HR): posterior median {hot.rw_sigma.median:.2f} "
        f"({hot.rw_sigma.lower:.2f}–{hot.rw_sigma.upper:.2f})."
    )


def _change_text(hot: HROverTime) -> str:
    ch = hot.change
    return (
        f"HR in the last interval / HR in the first: {ch.sentence()}; P(ratio < 1) "
        f"{prob(ch.p_benefit, ch.n_draws)}."
    )


def markdown_section(r: Results, name: str, m: ModelResult) -> list[str]:
    """The HR-over-time part of a model's section in report.md ([] for a constant effect)."""
    hot = over_time(m)
    if hot is None:
        return []
    level_label = level_text(hot.intervals[0].hr.level)
    ks = list(hot.intervals[0].hr.p_hr_below)
    df = pd.DataFrame(
        [row[:3] + [prob(v, s.n_draws) for v, s in row[3:]] for row in _rows(hot)],
        columns=["interval", "events", f"HR ({level_label} CrI)", *[f"P(HR<{k})" for k in ks]],
    )
    L = [
        "\nHR over time (time-varying treatment effect):\n",
        md_text(_explanation(m, hot)) + "\n",
        md_table(df),
        "\n" + md_text(_change_text(hot)),
        "\n" + md_spans(ph_checks_text(hot)),
    ]
    key = f"hr_over_time_{name}"
    if key in r.figures:
        L.append(f"\n![HR over time]({r.figures[key]})")
    return L


def html_blocks(r: Results, fig) -> list:
    """The HR-over-time blocks of report.html, one part per time-varying model."""
    out = []
    for name, m in r.models.items():
        hot = over_time(m)
        if hot is None:
            continue
        level_label = level_text(hot.intervals[0].hr.level)
        ks = list(hot.intervals[0].hr.p_hr_below)
        out += [
            h3(f"Model {name}: treatment HR over time"),
            p(plain(_explanation(m, hot))),
            table(
                ["interval", "events", f"HR ({level_label} CrI)", *[f"P(HR < {k})" for k in ks]],
                [row[:3] + [pr(v, s) for v, s in row[3:]] for row in _rows(hot)],
            ),
            p(plain(_change_text(hot))),
            p(plain(ph_checks_text(hot))),
        ]
        out += fig(f"hr_over_time_{name}")
    return out
