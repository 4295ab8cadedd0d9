"""What every figure shares: the palette (one colour per arm, the frequentist colour), readable
ticks on a log hazard-ratio axis, the data label stamped on a figure (SYNTHETIC / RECONSTRUCTED
DATA), new axes, and saving as PNG. No function here changes the matplotlib backend."""

from __future__ import annotations

import matplotlib.pyplot as plt
import numpy as np
from matplotlib.text import Text
from matplotlib.ticker import FixedLocator, FuncFormatter, NullFormatter, NullLocator

BLUE, ORANGE, GREY = "#1f5fa8", "#d9731a", "#555555"
#: one colour per arm in every figure: 0 = control, 1 = treatment
ARM_COLOURS = {0: ORANGE, 1: BLUE}
#: frequentist / published estimates (Cox, published CIs) beside the Bayesian posteriors
FREQ = "#222222"


def new_axes(ax, size=(7, 4.5)):
    """(figure, axes): ``ax`` and its figure, or a new figure of ``size`` inches when ``ax`` is
    None."""
    if ax is None:
        fig, ax = plt.subplots(figsize=size)
    return ax.figure, ax


def hr_ticks(lo: float, hi: float) -> list[float]:
    """Round HR ticks for a log axis covering [lo, hi] (one tick at or beyond each end), spaced so
    that their labels cannot collide."""
    lo, hi = max(lo, 1e-6), max(hi, lo * 1.01)
    fine = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1, 1.5, 2, 3, 5, 7, 10, 20)
    coarse = (0.0001, 0.001, 0.01, 0.02, 0.05, 0.1, 0.2, 0.5, 1, 2, 5, 10, 20, 50, 100, 1000, 10000)
    decades = np.log10(hi / lo)
    if decades > 3.5:
        cands = (0.0001, 0.001, 0.01, 0.1, 1, 10, 100, 1000, 10000)
    else:
        cands = fine if decades <= 1.4 and 0.05 <= lo and hi <= 20 else coarse
    below = [t for t in cands if t <= lo * 1.03]
    above = [t for t in cands if t >= hi * 0.97]
    first = below[-1] if below else cands[0]
    last = above[0] if above else cands[-1]
    return [t for t in cands if first <= t <= last]


def hr_axis(axis, lo: float, hi: float):
    """Readable ticks on a log HR axis (0.1, 0.2, 0.5, 1, 2, ...) instead of powers of ten; the
    axis spans from the first to the last tick."""
    ticks = hr_ticks(lo, hi)
    axis.set_major_locator(FixedLocator(ticks))
    axis.set_major_formatter(FuncFormatter(lambda v, _: f"{v:g}"))
    axis.set_minor_locator(NullLocator())
    axis.set_minor_formatter(NullFormatter())
    lim = (min(ticks[0], lo) / 1.08, max(ticks[-1], hi) * 1.08)
    (axis.axes.set_xlim if axis.axis_name == "x" else axis.axes.set_ylim)(*lim)


def stamp_figure(fig, label: str | None):
    """The data label (e.g. SYNTHETIC DATA) in the bottom-right margin, outside the axes."""
    if label:
        fig.text(0.995, 0.004, label, ha="right", va="bottom", fontsize=7, color="#a00000")


def stamp(ax, label: str | None):
    """The data label of the figure that ``ax`` belongs to (:func:`stamp_figure`)."""
    stamp_figure(ax.figure, label)


def save(fig, path, dpi=110):
    """Write ``fig`` as a PNG (any backend) and close it. Every text is drawn as plain text: a
    ``$`` in a user's column name, unit or label is never parsed as mathtext (which can fail,
    after all the sampling, or restyle it)."""
    for t in fig.findobj(Text):
        t.set_parse_math(False)
    with plt.rc_context({"text.parse_math": False}):  # texts made while drawing (tick labels)
        fig.savefig(path, dpi=dpi, format="png")
    plt.close(fig)
