"""The statistical models: the piecewise-exponential PyMC graph and its fused likelihood, the
notebook-facing ``PiecewiseExponentialModel``, published-estimate posteriors and the hierarchical
shrinkage of published subgroups."""

from .graph import build_model
from .pem import PiecewiseExponentialModel

__all__ = ["PiecewiseExponentialModel", "build_model"]
