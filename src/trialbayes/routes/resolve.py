"""A config resolved into the narrow inputs of the layers below the routes (the config stops
here): what writing a run needs (:class:`~trialbayes.report.writer.OutputSettings`)."""

from __future__ import annotations

from ..config.schema import Config
from ..report.plan import OutputSettings


def output_settings(cfg: Config) -> OutputSettings:
    """Figures, report.html, the credible level, and the provenance of posterior files."""
    return OutputSettings(
        dpi=cfg.report.dpi,
        figures=cfg.report.figures,
        html=cfg.report.html,
        level=cfg.estimands.level,
        seed=cfg.sampler.seed,
        config_hash=cfg.hash(),
    )
