"""The typed results model of every route (HRSummary, ModelResult, Results, ...) and reading
results.json back."""

from .io import load_results
from .missing import MissingData
from .model import HRSummary, ModelResult, Results, Setting

__all__ = ["HRSummary", "MissingData", "ModelResult", "Results", "Setting", "load_results"]
