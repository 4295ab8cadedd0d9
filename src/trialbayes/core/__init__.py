"""The lowest layer: what every other package may use. Errors (every exception class), flags,
escaping and text formatting (numbers, probabilities, units, Markdown tables), atomic output
folders, signals and run phases, progress lines, seeds, the executor of many-cell jobs, what the
compile cache may trust, and the bounded YAML reader. The package itself exports only the light
names (errors, flags): ``import trialbayes.core.yaml_reader`` stays cheap for the CLI's first
check; import the other modules by name."""

from .errors import (
    ConfigError,
    DataError,
    Interrupted,
    NotFittedError,
    RawConfigError,
    ReconstructionError,
    SamplingIncomplete,
)
from .flags import Flag

__all__ = [
    "ConfigError",
    "DataError",
    "Flag",
    "Interrupted",
    "NotFittedError",
    "RawConfigError",
    "ReconstructionError",
    "SamplingIncomplete",
]
