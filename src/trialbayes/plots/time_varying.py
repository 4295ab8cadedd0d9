"""HR(t): the treatment hazard ratio per baseline interval of a time-varying model, with its
credible band on a log axis, beside the constant (proportional-hazards) HR of the model with the
same terms. Takes ``ax=`` and returns the Figure; never sets the backend."""

from __future__ import annotations

import numpy as np

from ..core.text import level_text
from ..results.time_varying import HROverTime
from .style import BLUE, GREY, ORANGE, hr_axis, new_axes, stamp


def hr_over_time_plot(
    hot: HROverTime,
    t_max: float,
    ax=None,
    event_times=None,
    title: str | None = None,
    label: str | None = None,
):
    """Per interval: the posterior median HR (step line) and its credible band (shaded); the
    constant-effect model's HR (median dashed, band hatched) when ``hot.comparison`` holds it; a
    rug of the event times; HR = 1 dotted. ``t_max`` closes the open last interval."""
    fig, ax = new_axes(ax, (7.5, 5.0))
    ivs = hot.intervals
    edges = np.array([iv.start for iv in ivs] + [max(t_max, ivs[-1].start)])
    med = np.array([iv.hr.median for iv in ivs])
    lo, hi = np.array([iv.hr.lower for iv in ivs]), np.array([iv.hr.upper for iv in ivs])
    level_label = level_text(ivs[0].hr.level)
    step = dict(step="post")
    ax.fill_between(
        edges,
        np.append(lo, lo[-1]),
        np.append(hi, hi[-1]),
        color=BLUE,
        alpha=0.22,
        lw=0,
        label=f"time-varying HR: {level_label} credible band",
        **step,
    )
    ax.step(
        edges,
        np.append(med, med[-1]),
        where="post",
        color=BLUE,
        lw=2,
        label="time-varying HR: posterior median",
    )
    bounds = [float(lo.min()), float(hi.max())]
    c = hot.comparison
    if c is not None:
        ph = c.constant_hr
        ax.fill_between(
            [0, edges[-1]],
            ph.lower,
            ph.upper,
            facecolor="none",
            edgecolor=ORANGE,
            hatch="///",
            lw=0,
            alpha=0.7,
            label=f"constant HR (model {c.constant_model}): {level_label} credible band",
        )
        ax.plot(
            [0, edges[-1]],
            [ph.median] * 2,
            color=ORANGE,
            ls="--",
            lw=1.5,
            label=f"constant HR (model {c.constant_model}): posterior median",
        )
        bounds += [ph.lower, ph.upper]
    ax.axhline(1.0, color=GREY, ls=":", lw=1)
    for x in edges[1:-1]:
        ax.axvline(x, color=GREY, lw=0.4, alpha=0.5)
    if event_times is not None and len(event_times):
        ax.plot(
            event_times,
            np.zeros(len(event_times)),
            "|",
            color=GREY,
            alpha=0.5,
            ms=7,
            transform=ax.get_xaxis_transform(),
        )
    ax.set_yscale("log")
    hr_axis(ax.yaxis, min(bounds), max(bounds))
    ax.set_xlim(0, edges[-1])
    ticks = "; ticks: events" if event_times is not None and len(event_times) else ""
    ax.set_xlabel(f"time since randomisation ({hot.time_unit}){ticks}")
    ax.set_ylabel("HR, treatment vs control (log scale)")
    sub = _subtitle(hot)
    head = title or "Treatment hazard ratio over time"
    ax.set_title(head + (f"\n{sub}" if sub else ""), fontsize=10 if not sub else 9)
    ax.legend(fontsize=7.5, loc="upper center", bbox_to_anchor=(0.5, -0.16), ncol=2, frameon=False)
    fig.tight_layout()
    stamp(ax, label)
    return fig


def _subtitle(hot: HROverTime) -> str:
    """The PH checks in one or two short lines: Schoenfeld p and the PSIS-LOO preference."""
    parts = []
    t = hot.ph_test
    if t is not None and t.p_value is not None:
        parts.append(f"Schoenfeld-residual PH test p = {t.p_value:.3g}")
    c = hot.comparison
    if c is not None and c.elpd_diff is not None:
        pref = {"time_varying": "prefers time-varying", "constant": "prefers constant HR"}
        word = pref.get(c.preferred, "no clear preference")
        parts.append(f"PSIS-LOO {word} (Δelpd {c.elpd_diff:+.1f}, SE {c.se:.1f})")
    return "; ".join(parts)
