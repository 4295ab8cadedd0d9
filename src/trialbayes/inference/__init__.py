"""Fitting: the compile-once sampler (nutpie or PyMC NUTS), its diagnostics gate, and the
compile cache (one compilation per model structure)."""

from .sampler import Sampler, diagnose

__all__ = ["Sampler", "diagnose"]
