"""Estimands as pure functions: of posterior draws (HR summaries, HR along a biomarker with its
simultaneous band and credible subgroups, subgroups, standardised survival, RMST), their
frequentist counterparts (Cox, Kaplan–Meier), the probability of success of a next trial, and
the caution flags for prior-driven answers."""

from .credible import credible_subgroups, simultaneous_band
from .draws import hr_curve, hr_summary, subgroup_effects, survival_estimands
from .frequentist import cox_fit, km_curves

__all__ = [
    "cox_fit",
    "credible_subgroups",
    "hr_curve",
    "hr_summary",
    "km_curves",
    "simultaneous_band",
    "subgroup_effects",
    "survival_estimands",
]
