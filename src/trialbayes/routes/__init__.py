"""The routes of a run: each resolves the config, validates before fitting, fits, computes the
typed results and hands them to the writer (patient-level and reconstructed, published
estimates, prior sensitivity, calibration)."""

from .calibration import run_calibration
from .dispatch import run_config
from .patient_level import run_patient_level
from .published import run_published
from .validate import preflight

__all__ = ["run_calibration", "run_config", "run_patient_level", "run_published", "preflight"]
