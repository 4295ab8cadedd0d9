"""Trial data: reading and validating tables (naming column and rows), the config's data sources
(file, synthetic, reconstructed), the synthetic cohort, published evidence, the model design
(cut points, sufficient statistics, covariates, biomarker basis), resolved settings, the data
checks against a model, and Kaplan–Meier reconstruction (``data.reconstruct``)."""

from .design import Design, build_design
from .evidence import Evidence, evidence_of
from .settings import resolve
from .sources import load_data
from .table import TrialData, from_frame

__all__ = [
    "Design",
    "Evidence",
    "TrialData",
    "build_design",
    "evidence_of",
    "from_frame",
    "load_data",
    "resolve",
]
