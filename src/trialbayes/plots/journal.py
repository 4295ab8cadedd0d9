"""The figures a journal expects of a survival reanalysis.

* :func:`km_figure` — Kaplan–Meier per arm with censoring ticks and a numbers-at-risk table,
  the model's standardised survival band per arm overlaid, the landmark labelled (a posterior
  predictive check for censored data; :func:`km_agreement` says where they disagree);
* :func:`hr_curve_figure` — HR along a biomarker on a log axis with its pointwise and
  simultaneous bands, labelled cut-offs, the credible subgroups, P(HR < t) along the biomarker
  and the observed biomarker distribution over the curve's range;
* :func:`prior_posterior_figure` — prior vs posterior of the treatment effect and interaction on the
  log-HR axis.

Every function takes ``ax=`` / ``axes=`` (new figure if None), returns the Figure and never changes
the matplotlib backend. One colour per arm everywhere: :data:`style.ARM_COLOURS`.
"""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
from scipy import stats

from ..core.text import level_text
from ..data.reconstruct.guyot import clean_curve
from ..estimands.frequentist import km_fit, step_at
from .style import ARM_COLOURS, BLUE, FREQ, GREY, hr_axis, new_axes, stamp_figure

P_COLOURS = ("#1f5fa8", "#2a9d5c", "#7a4f9a", "#b8860b")


# ----------------------------------------------------------------------------- KM + model
def at_risk(times, t) -> np.ndarray:
    """Numbers still at risk (time >= t) at each of ``t``."""
    times = np.sort(np.asarray(times, float))
    return len(times) - np.searchsorted(times, np.asarray(t, float), side="left")


def _spans(t: np.ndarray, mask: np.ndarray) -> list[tuple[float, float]]:
    """Contiguous runs of ``mask`` as (first time, last time)."""
    out, start = [], None
    for i, m in enumerate(mask):
        if m and start is None:
            start = i
        if start is not None and (not m or i == len(mask) - 1):
            end = i if m else i - 1
            out.append((float(t[start]), float(t[end])))
            start = None
    return out


def km_agreement(
    km: pd.DataFrame,
    curves: pd.DataFrame,
    landmark: float | None,
    arm_labels=("control", "treatment"),
) -> dict:
    """Where the Kaplan–Meier curves leave the model's survival band (its credible level).

    ``km``: arm, time, survival (step functions); ``curves``: arm, time, median, lower, upper on a
    grid. Per arm: the share of grid times (> 0) at which KM is outside the band, the largest
    |KM − posterior median| and its time, and, at the landmark, KM, the posterior median and band.
    The band is the posterior uncertainty of the model's curve, not a prediction interval for a
    KM estimate, so a KM curve just outside it is a flag to look at, not a test."""
    out = {}
    for arm in (0, 1):
        c = curves[curves["arm"] == arm].sort_values("time")
        c = c[c["time"] > 0]
        k = km[km["arm"] == arm].sort_values("time")
        kv = step_at(k, c["time"])
        outside = (kv < c["lower"].to_numpy()) | (kv > c["upper"].to_numpy())
        gap = kv - c["median"].to_numpy()
        j = int(np.argmax(np.abs(gap)))
        res = {
            "share_outside_band": float(outside.mean()),
            "max_abs_diff": float(abs(gap[j])),
            "max_abs_diff_time": float(c["time"].iloc[j]),
            "outside_spans": _spans(c["time"].to_numpy(), outside),
        }
        if landmark is not None and landmark <= float(k["time"].max()):
            t = np.array([landmark])
            lo, med, hi = (
                float(np.interp(landmark, c["time"], c[col]))
                for col in ("lower", "median", "upper")
            )
            kl = float(step_at(k, t)[0])
            res["landmark"] = {
                "km": kl,
                "median": med,
                "lower": lo,
                "upper": hi,
                "inside": lo <= kl <= hi,
            }
        out[arm_labels[arm]] = res
    return out


def km_caption(agree: dict, landmark: float | None, unit: str, level: float = 0.95) -> str:
    """One sentence per arm on where KM and the model disagree (for the figure's caption)."""
    parts = []
    for arm, a in agree.items():
        share = a["share_outside_band"]
        s = f"{arm}: KM outside the model's {level_text(level)} band at {share:.0%} of times"
        if a["outside_spans"]:
            spans = ", ".join(
                f"{lo:.3g}–{hi:.3g}" if hi > lo else f"{lo:.3g}"
                for lo, hi in a["outside_spans"][:4]
            )
            s += f" ({spans} {unit}{', …' if len(a['outside_spans']) > 4 else ''})"
        s += f", largest gap {a['max_abs_diff']:.3f} at {a['max_abs_diff_time']:.3g} {unit}"
        lm = a.get("landmark")
        if lm:
            where = "inside" if lm["inside"] else "OUTSIDE"
            s += (
                f"; at the landmark ({landmark:g} {unit}) KM {lm['km']:.3f} vs model "
                f"{lm['median']:.3f} "
                f"({lm['lower']:.3f}–{lm['upper']:.3f}), {where} the band"
            )
        parts.append(s)
    return "; ".join(parts) + "."


def _risk_table(ax, times_by_arm: dict, ticks, arm_labels, unit: str):
    ax.set_ylim(-0.5, len(times_by_arm) - 0.5)
    for row, arm in enumerate(sorted(times_by_arm, reverse=True)):
        n = at_risk(times_by_arm[arm], ticks)
        for t, v in zip(ticks, n):
            ax.text(
                t, row, str(int(v)), ha="center", va="center", fontsize=8, color=ARM_COLOURS[arm]
            )
    ax.set_yticks(
        range(len(times_by_arm)),
        [arm_labels[a] for a in sorted(times_by_arm, reverse=True)],
        fontsize=8,
    )
    for tick, arm in zip(ax.get_yticklabels(), sorted(times_by_arm, reverse=True)):
        tick.set_color(ARM_COLOURS[arm])
    ax.tick_params(axis="both", length=0)
    ax.tick_params(axis="y", pad=16)
    for s in ax.spines.values():
        s.set_visible(False)
    ax.set_xlabel(f"time since randomisation ({unit})")
    ax.set_title("numbers at risk", fontsize=8, loc="left", pad=2)


def km_figure(
    times,
    events,
    treat,
    curves: pd.DataFrame | None = None,
    axes=None,
    arm_labels=("control", "treatment"),
    landmark: float | None = None,
    unit: str = "time units",
    title: str = "Kaplan–Meier and model survival",
    label: str | None = None,
    level: float = 0.95,
):
    """KM per arm (solid steps, censoring ticks), the model's standardised survival per arm
    (dashed median, credible band at ``level``), the landmark labelled, and a numbers-at-risk
    table below. ``axes``: (survival axis, table axis); a new figure when None."""
    if axes is None:
        fig, axes = plt.subplots(
            2,
            1,
            figsize=(7.5, 5.6),
            sharex=True,
            layout="constrained",
            gridspec_kw={"height_ratios": [4.2, 1.0]},
        )
    ax, tab = axes
    fig = ax.figure
    times, events, treat = np.asarray(times, float), np.asarray(events, int), np.asarray(treat, int)
    by_arm = {arm: times[treat == arm] for arm in (0, 1)}
    for arm in (0, 1):
        col, m = ARM_COLOURS[arm], treat == arm
        k = km_fit(times[m], events[m])
        ax.step(
            k["time"],
            k["survival"],
            where="post",
            color=col,
            lw=1.6,
            label=f"{arm_labels[arm]}: Kaplan–Meier",
        )
        cens = times[m & (events == 0)]
        ax.plot(cens, step_at(k, cens), "|", color=col, ms=7, mew=1.0)
        if curves is not None:
            c = curves[curves["arm"] == arm]
            ax.fill_between(c["time"], c["lower"], c["upper"], color=col, alpha=0.15, lw=0)
            ax.plot(
                c["time"],
                c["median"],
                color=col,
                ls="--",
                lw=1.2,
                label=f"{arm_labels[arm]}: model, median and {level_text(level)} band",
            )
    ax.set_xlim(0, float(times.max()) * 1.02)
    ax.set_ylim(0, 1.05)
    if landmark is not None and landmark <= times.max():
        ax.axvline(landmark, color=GREY, ls=":", lw=1)
        right = landmark > 0.6 * times.max()  # label on the side with room, inside the axes
        ax.text(
            landmark,
            1.03,
            f"landmark {landmark:g} {unit} " if right else f" landmark {landmark:g} {unit}",
            fontsize=8,
            color=GREY,
            va="top",
            ha="right" if right else "left",
        )
    ax.set_ylabel("survival probability")
    ax.set_title(title, fontsize=10)
    ax.plot([], [], "|", color=GREY, label="censored (tick)")
    ax.legend(fontsize=7.5, loc="lower left", frameon=True, framealpha=0.9)
    ticks = [t for t in ax.get_xticks() if 0 <= t <= times.max()]
    _risk_table(tab, by_arm, ticks, arm_labels, unit)
    tab.set_xticks(ticks)
    stamp_figure(fig, label)
    return fig


# ----------------------------------------------------------------------------- HR along a biomarker
def _bins(v: np.ndarray, log_x: bool):
    """Histogram bins: one per value for a count-like biomarker, 30 (log-spaced on a log axis)."""
    if np.all(v == np.round(v)) and np.ptp(v) <= 60:
        return np.arange(v.min() - 0.5, v.max() + 1.5)
    if log_x and (v > 0).all():
        return np.geomspace(v.min(), v.max(), 30)
    return 30


def hr_curve_figure(
    curve: pd.DataFrame,
    biomarker: str,
    unit: str | None = None,
    values=None,
    cutoffs=(),
    cox: pd.DataFrame | None = None,
    log_x: bool = False,
    axes=None,
    title: str | None = None,
    label: str | None = None,
    cox_label: str = "Cox estimate",
    level: float = 0.95,
    subgroups=None,
):
    """The one HR-along-a-biomarker figure, panels sharing the biomarker axis, which spans the
    curve's grid: HR (log scale) with its pointwise credible band (``curve``: biomarker, median,
    lower, upper, as made by ``estimands.draws.hr_curve``), the simultaneous band when ``curve``
    has ``lower_simultaneous`` / ``upper_simultaneous`` (dashed), optional Cox curve (biomarker,
    median) and labelled cut-offs; the credible subgroups when ``subgroups`` (a list of
    ``results.credible.CredibleSubgroup``) is given, one row per threshold; P(HR < t) for every
    threshold column ``p_hr_below_t`` of ``curve`` (one colour per threshold across panels); a
    histogram of the observed ``values`` in the range, with the count of patients outside it.
    ``axes``: three axes (four with ``subgroups``: HR, subgroups, probability, histogram), or
    None for a new figure."""
    with_sub = bool(subgroups)
    if axes is None:
        fig, axes = plt.subplots(
            4 if with_sub else 3,
            1,
            figsize=(7.5, 8.2 if with_sub else 7.2),
            sharex=True,
            layout="constrained",
            gridspec_kw={
                "height_ratios": [3.2, 0.25 + 0.35 * len(subgroups), 1.6, 0.9]
                if with_sub
                else [3.2, 1.7, 0.9]
            },
        )
    ax, sax, pax, hax = axes if with_sub else (axes[0], None, axes[1], axes[2])
    fig = ax.figure
    x = curve["biomarker"].to_numpy(float)
    xl = f"{biomarker} ({unit})" if unit else biomarker
    ax.fill_between(
        x,
        curve["lower"],
        curve["upper"],
        color=BLUE,
        alpha=0.2,
        lw=0,
        label=f"{level_text(level)} pointwise credible band",
    )
    lows, highs = [curve["lower"].min()], [curve["upper"].max()]
    if "lower_simultaneous" in curve:
        band_level = subgroups[0].level if with_sub else level
        for col, lab in (
            ("lower_simultaneous", f"{level_text(band_level)} simultaneous band"),
            ("upper_simultaneous", None),
        ):
            ax.plot(x, curve[col], color=BLUE, ls=(0, (4, 2)), lw=1.0, label=lab)
        lows.append(curve["lower_simultaneous"].min())
        highs.append(curve["upper_simultaneous"].max())
    ax.plot(x, curve["median"], color=BLUE, label="posterior median")
    if cox is not None:
        ax.plot(cox["biomarker"], cox["median"], color=FREQ, ls="--", label=cox_label)
    ax.axhline(1.0, color=GREY, ls="--", lw=1)
    ax.set_yscale("log")
    hr_axis(ax.yaxis, float(min(lows)), float(max(highs)))
    ax.set_ylabel("HR, treatment vs control\n(log scale)")
    ax.set_title(title or f"Treatment hazard ratio by {xl}", fontsize=10, pad=14)
    ax.legend(fontsize=8, loc="best", framealpha=0.9)
    pcols = [c for c in curve.columns if c.startswith("p_hr_below_")]
    colours = threshold_colours(
        [float(c.removeprefix("p_hr_below_")) for c in pcols]
        + [cs.threshold for cs in subgroups or []]
    )
    if with_sub:
        _subgroup_rows(sax, subgroups, x, colours)
    for c in pcols:
        col = colours[float(c.removeprefix("p_hr_below_"))]
        pax.plot(x, curve[c], color=col, label=f"P(HR < {c.removeprefix('p_hr_below_')})")
    for y in (0.5, 0.9):
        pax.axhline(y, color=GREY, lw=0.6, ls=":")
    pax.set_ylim(-0.02, 1.02)
    pax.set_yticks([0, 0.5, 0.9, 1])
    pax.set_ylabel("pointwise\nprobability")
    pax.legend(fontsize=7.5, loc="best", framealpha=0.9, ncol=len(pcols))
    if values is not None:
        _histogram(hax, values, x, log_x)
    for c in cutoffs:
        for a in (ax, sax, pax, hax):
            if a is not None:
                a.axvline(c, color=GREY, ls=":", lw=1)
        ax.text(
            c,
            1.0,
            f"{c:g}",
            transform=ax.get_xaxis_transform(),
            ha="center",
            va="bottom",
            fontsize=7.5,
            color=GREY,
        )
    if log_x:
        hax.set_xscale("log")
    if len(x) > 1:
        hax.set_xlim(x[0], x[-1])
    hax.set_xlabel(
        xl
        + ("; log scale" if log_x else "")
        + (f"; cut-offs at {', '.join(f'{c:g}' for c in cutoffs)}" if len(cutoffs) else "")
    )
    stamp_figure(fig, label)
    return fig


def threshold_colours(thresholds) -> dict[float, str]:
    """One colour per HR threshold, in order of first appearance (the same threshold has the same
    colour in the probability and the credible-subgroup panels)."""
    out: dict[float, str] = {}
    for t in thresholds:
        if t not in out:
            out[t] = P_COLOURS[len(out) % len(P_COLOURS)]
    return out


def _subgroup_rows(ax, subgroups, x: np.ndarray, colours: dict) -> None:
    """One row per threshold: the inclusive credible subgroup light, the exclusive one dark."""
    for row, cs in enumerate(subgroups):
        col = colours[cs.threshold]
        y = len(subgroups) - 1 - row
        for spans, alpha in ((cs.inclusive, 0.25), (cs.exclusive, 0.9)):
            for sp in spans:
                lo, hi = _span_edges(sp, x)
                ax.add_patch(
                    plt.Rectangle((lo, y - 0.3), hi - lo, 0.6, color=col, alpha=alpha, lw=0)
                )
    ax.set_ylim(-0.6, len(subgroups) - 0.4)
    ax.set_yticks(
        range(len(subgroups)),
        [f"HR < {cs.threshold:g}" for cs in reversed(subgroups)],
        fontsize=7.5,
    )
    ax.tick_params(axis="y", length=0)
    ax.set_title(
        f"credible subgroups, {level_text(subgroups[0].level)} jointly: dark = exclusive "
        "(HR < t at every value), light = inclusive (HR < t not excluded)",
        fontsize=7.5,
        loc="left",
        pad=2,
    )


def _span_edges(sp, x: np.ndarray) -> tuple[float, float]:
    """A span drawn to the midpoints with its neighbouring grid values (a single grid value is
    still visible); the grid's own ends stay where they are."""
    i, j = int(np.searchsorted(x, sp.lower)), int(np.searchsorted(x, sp.upper))
    lo = sp.lower if i == 0 else (x[i - 1] + x[i]) / 2
    hi = sp.upper if j >= len(x) - 1 else (x[j] + x[j + 1]) / 2
    return lo, hi


def _histogram(hax, values, x: np.ndarray, log_x: bool) -> None:
    """The observed values inside the curve's range; the patients outside it counted."""
    v = np.asarray(values, float)
    v = v[np.isfinite(v)]
    inside = v[(v >= x[0]) & (v <= x[-1])]
    if inside.size:
        hax.hist(inside, bins=_bins(inside, log_x), color=GREY, alpha=0.6)
    hax.set_ylabel("patients", fontsize=8)
    below, above = int((v < x[0]).sum()), int((v > x[-1]).sum())
    if below or above:
        hax.text(
            0.99,
            0.95,
            f"outside the range shown: {below} below, {above} above",
            transform=hax.transAxes,
            ha="right",
            va="top",
            fontsize=7,
            color=GREY,
        )


# ----------------------------------------------------------------------------- prior vs posterior
def _density(ax, v, col, lab, ls="-", fill=False, mass=1.0):
    """Kernel density of ``v`` over the axis range, scaled to total ``mass`` (the share of the
    full sample that ``v`` keeps when it was cut to a window)."""
    v = np.asarray(v, float)
    grid = np.linspace(*ax.get_xlim(), 400)
    d = mass * stats.gaussian_kde(v)(grid)
    ax.plot(grid, d, color=col, ls=ls, label=lab)
    if fill:
        ax.fill_between(grid, d, color=col, alpha=0.2, lw=0)


def prior_posterior_figure(
    pairs: dict,
    axes=None,
    title: str = "Prior and posterior (log-HR scale)",
    label: str | None = None,
    xlim: tuple = (-2.5, 2.5),
):
    """One panel per term: ``pairs`` maps a panel title to (prior draws, posterior draws) on the
    log-HR scale. The x axis is the log-HR with the HR on a secondary axis on top."""
    n = len(pairs)
    if axes is None:
        fig, axes = plt.subplots(1, n, figsize=(4.6 * n, 3.8), squeeze=False)
        axes = axes[0]
    fig = axes[0].figure
    for ax, (name, (prior, post)) in zip(axes, pairs.items()):
        prior = np.asarray(prior, float)
        lo, hi = np.quantile(np.concatenate([prior, post]), [0.01, 0.99])
        ax.set_xlim(max(lo, xlim[0]), min(hi, xlim[1]))
        # the KDE of the draws in a window (a wide prior's KDE is too smooth) has area 1 over the
        # window: scale it by the share kept so that it is the density of the full prior
        keep = (prior > xlim[0] - 1) & (prior < xlim[1] + 1)
        _density(ax, prior[keep], GREY, "prior", ls="--", mass=keep.mean())
        _density(ax, post, BLUE, "posterior", fill=True)
        ax.axvline(0, color=GREY, lw=0.8)
        ax.set_xlabel("log hazard ratio")
        ax.set_ylabel("density")
        ax.set_title(name, fontsize=9, pad=22)
        top = ax.secondary_xaxis("top", functions=(np.exp, np.log))
        top.set_xticks(
            [
                t
                for t in (0.1, 0.25, 0.5, 1, 2, 4, 10)
                if ax.get_xlim()[0] <= np.log(t) <= ax.get_xlim()[1]
            ]
        )
        top.set_xticklabels([f"{t:g}" for t in top.get_xticks()], fontsize=7)
        top.set_xlabel("hazard ratio", fontsize=7, labelpad=3)
        ax.legend(fontsize=7.5, loc="upper right", framealpha=0.9)
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    stamp_figure(fig, label)
    return fig


# ----------------------------------------------------------------------------- reconstruction
def quality_plot(
    ipd: pd.DataFrame,
    curve: pd.DataFrame,
    percent: bool = False,
    ax=None,
    colours: dict | None = None,
    time_unit: str = "time units",
):
    """Digitised points vs the reconstructed Kaplan–Meier curve, per arm; ``colours`` maps an arm to
    its colour (the same as in every other figure of the run)."""
    fig, ax = new_axes(ax)
    curves = clean_curve(curve, percent)
    spare = iter(("#555555", "#2a9d5c", "#7a4f9a", "#b8860b"))
    for arm, c in curves.items():
        col = (colours or {}).get(arm) or next(spare)
        g = ipd[ipd["arm"] == arm]
        km = km_fit(g["time"], g["event"])
        ax.step(
            km["time"], km["survival"], where="post", color=col, label=f"{arm}: reconstructed KM"
        )
        ax.plot(
            c["time"], c["survival"], "o", ms=3, color=col, alpha=0.6, label=f"{arm}: digitised"
        )
    ax.set_ylim(0, 1.02)
    ax.set_xlabel(f"time ({time_unit})")
    ax.set_ylabel("survival")
    ax.set_title("RECONSTRUCTED data — quality: digitised points vs reconstructed KM", fontsize=10)
    ax.legend(fontsize=8)
    fig.tight_layout()
    return fig
