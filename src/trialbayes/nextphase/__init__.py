"""Next-phase decisions by simulation: states of nature from the posterior, simulated trials
(accrual, dropout, enrichment), their analyses (log-rank, Cox, Bayesian) and the design grid."""

from .grid import NextPhaseResults, run_for_models
from .simulate import simulate_trials

__all__ = ["NextPhaseResults", "run_for_models", "simulate_trials"]
