"""Patient data rebuilt from a digitised Kaplan–Meier figure (Guyot et al. 2012) and the checks
of the digitised input."""

from .guyot import load_reconstructed, quality, read_inputs, reconstruct

__all__ = ["load_reconstructed", "quality", "read_inputs", "reconstruct"]
