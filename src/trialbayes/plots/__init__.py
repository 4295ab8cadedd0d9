"""Figures: each takes ``ax=`` (where it draws one panel) and returns the matplotlib Figure;
none sets the backend. General figures (forest, HR posterior, prior grid, assurance) and journal
figures (Kaplan–Meier with numbers at risk, HR along a biomarker, prior vs posterior)."""

from .general import forest_plot, save
from .journal import hr_curve_figure, km_figure

__all__ = ["forest_plot", "hr_curve_figure", "km_figure", "save"]
