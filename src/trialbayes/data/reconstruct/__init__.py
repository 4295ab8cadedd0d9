"""Patient data rebuilt from a digitised Kaplan–Meier figure (Guyot et al. 2012) and the checks
of the digitised input."""

from .guyot import Reconstruction, load_reconstructed, read_inputs, reconstruct

__all__ = ["load_reconstructed", "Reconstruction", "read_inputs", "reconstruct"]
