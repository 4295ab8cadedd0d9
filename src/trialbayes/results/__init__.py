"""The typed results model of every route (HRSummary, ModelResult, Results, ...) and reading
results.json back."""

from .io import load_results
from .model import HRSummary, ModelResult, Results, Setting
from .time_varying import HROverTime, TimeVaryingModelResult

__all__ = [
    "HROverTime",
    "HRSummary",
    "ModelResult",
    "Results",
    "Setting",
    "TimeVaryingModelResult",
    "load_results",
]
