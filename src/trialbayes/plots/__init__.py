"""Figures: each takes ``ax=`` (where it draws one panel) and returns the matplotlib Figure; none
sets the backend. ``style``: the palette, log-HR axis, data stamp and saving; ``general``: forest,
HR posterior, prior grid, assurance; ``journal``: Kaplan–Meier with numbers
at risk, HR along a biomarker with its data, prior vs posterior, reconstruction quality;
``time_varying``: HR(t) of a time-varying treatment effect beside the constant HR."""

from .general import (
    assurance_plot,
    forest_plot,
    hr_posterior_plot,
    prior_grid_panels,
)
from .journal import hr_curve_figure, km_figure, prior_posterior_figure, quality_plot
from .style import ARM_COLOURS, save
from .time_varying import hr_over_time_plot

__all__ = [
    "ARM_COLOURS",
    "assurance_plot",
    "forest_plot",
    "hr_curve_figure",
    "hr_over_time_plot",
    "hr_posterior_plot",
    "km_figure",
    "prior_grid_panels",
    "prior_posterior_figure",
    "quality_plot",
    "save",
]
