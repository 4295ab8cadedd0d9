"""The typed results model of every route (HRSummary, ModelResult, Results and the typed
sections), reading results.json back (2.x files migrated), and its JSON Schema."""

from .io import load_results, results_from_dict, results_schema
from .missing import MissingData
from .model import SCHEMA_VERSION, ModelResult, Results, Setting
from .summaries import HRSummary, Quantity
from .time_varying import HROverTime

__all__ = [
    "HROverTime",
    "HRSummary",
    "MissingData",
    "ModelResult",
    "Quantity",
    "Results",
    "SCHEMA_VERSION",
    "Setting",
    "load_results",
    "results_from_dict",
    "results_schema",
]
