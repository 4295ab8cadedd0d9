"""The schema of a run's YAML config (strict pydantic models, unknown keys refused with a hint), the
YAML reader (duplicate keys, non-finite numbers), priors by term and scenario, and the
``next_phase:`` and ``calibration:`` sections. A config is data: nothing in it is imported or
run."""

from .calibration import CalibrationSettings, CalibrationSpec
from .data_sources import ColumnMap
from .next_phase import NextPhase
from .priors import merge_priors
from .schema import Config, Diagnostics, ModelSpec, SamplerSpec, load_config, parse_config

__all__ = [
    "CalibrationSettings",
    "CalibrationSpec",
    "ColumnMap",
    "Config",
    "Diagnostics",
    "ModelSpec",
    "NextPhase",
    "SamplerSpec",
    "load_config",
    "merge_priors",
    "parse_config",
]
