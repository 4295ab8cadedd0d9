"""Fitting: the compile-once sampler (nutpie or PyMC NUTS), its diagnostics gate, and the
compile cache (one compilation per model structure)."""

from .sampler import SamplerRunner, diagnose

__all__ = ["SamplerRunner", "diagnose"]
