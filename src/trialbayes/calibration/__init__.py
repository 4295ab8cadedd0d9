"""Simulation-based calibration of a patient-level model: one replicate (prior draw, simulated
trial, refit, ranks) and the rank-uniformity summary."""

from .sbc import CalibrationCase, sbc_cell, summarise

__all__ = ["CalibrationCase", "sbc_cell", "summarise"]
