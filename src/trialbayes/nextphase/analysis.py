"""The analysis of each simulated next trial: log-rank, Cox or the Bayesian model (config
``next_phase.analysis``), as one success flag per trial plus counts of analyses that failed.

Failed analyses never count as successes and are reported: a Cox fit without a finite estimate
(all deaths in one arm), a Bayesian fit that raised; Bayesian fits with divergent transitions are
counted too (and kept).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from ..config.next_phase import AnalysisSpec
from .bayes import bayes_many
from .cox_many import cox_many
from .logrank import logrank


@dataclass
class Decisions:
    """The analysis of T simulated trials: a success flag per trial, and counts of analyses that
    failed (never a success) or had divergent transitions, with the first errors."""

    success: np.ndarray  # (T,) bool
    failed: int = 0  # analyses without a result (never a success)
    divergent: int = 0  # Bayesian fits with at least one divergent transition
    errors: list[str] | None = None

    def counts(self) -> dict:
        return {
            "analysis_failed": self.failed,
            "analysis_divergent": self.divergent,
            "analysis_errors": list(self.errors or []),  # the first few, for the report
        }


def analyse(sim, spec: AnalysisSpec, args: dict, rng: np.random.Generator) -> Decisions:
    """Success of every trial of ``sim`` (SimulatedTrials). ``args``: the cell's ``alpha``,
    ``min_hr`` and, for the Bayesian analysis, ``n_model`` / ``events_hint`` (the analysis
    model's fixed patient dimension and the grid's largest event count)."""
    if spec.method == "logrank":
        lr = logrank(sim.time, sim.event, sim.treat)
        return Decisions(lr.success(args["alpha"], args["min_hr"]))
    if spec.method == "cox":
        cx = cox_many(sim.time, sim.event, sim.treat)
        ok = cx.success(args["alpha"], args["min_hr"]) & cx.converged
        return Decisions(ok, failed=int((~cx.converged).sum()), errors=cx.failure_notes())

    b = bayes_many(sim, spec, args["n_model"], args["events_hint"], rng)
    return Decisions(
        b.success(spec.gamma, args["min_hr"]),
        failed=int(b.failed.sum()),
        divergent=int((b.divergences > 0).sum()),
        errors=b.errors[:3],
    )
