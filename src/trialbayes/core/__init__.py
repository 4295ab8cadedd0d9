"""The lowest layer: what every other package may use. Errors (every exception class), flags,
escaping and text formatting (numbers, probabilities, units, Markdown tables), atomic output
folders, signals and run phases, progress lines, and the executor of many-cell jobs."""

from .errors import (
    ConfigError,
    DataError,
    Interrupted,
    NotFittedError,
    RawConfigError,
    ReconstructionError,
    SamplingIncomplete,
)
from .executor import Cell, Executor
from .flags import Flag
from .outputs import OutputDir
from .text import level_text, md_table, prob

__all__ = [
    "Cell",
    "ConfigError",
    "DataError",
    "Executor",
    "Flag",
    "Interrupted",
    "NotFittedError",
    "OutputDir",
    "RawConfigError",
    "ReconstructionError",
    "SamplingIncomplete",
    "level_text",
    "md_table",
    "prob",
]
