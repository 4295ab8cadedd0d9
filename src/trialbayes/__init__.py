"""trialbayes: Bayesian reanalysis of time-to-event randomised trials.

    import trialbayes as tb
    cfg = tb.load_config("configs/mirocals.yaml")
    results = tb.run(cfg)  # -> tb.Results (nothing written unless out= is given)
    spec = tb.ModelSpec(name="adj", covariates="all")
    m = tb.PiecewiseExponentialModel(spec).fit(df, columns={...})

Names are imported on first use, so ``import trialbayes`` stays cheap.
"""

from __future__ import annotations

from pathlib import Path

from .core.version import package_version

__version__ = package_version()

#: public name -> the package that holds it (imported on first use)
_EXPORTS = {
    "load_config": "config",
    "parse_config": "config",
    "Config": "config",
    "ModelSpec": "config",
    "ColumnMap": "config",
    "SamplerSpec": "config",
    "Diagnostics": "config",
    "ConfigError": "core",
    "DataError": "core",
    "NotFittedError": "core",
    "Flag": "core",
    "TrialData": "data",
    "from_frame": "data",
    "PiecewiseExponentialModel": "models",
    "Results": "results",
    "HRSummary": "results",
    "load_results": "results",
}

__all__ = ["__version__", "run", *_EXPORTS]


def __getattr__(name: str):
    if name in _EXPORTS:
        from importlib import import_module

        return getattr(import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'trialbayes' has no attribute '{name}'")


def __dir__() -> list[str]:
    """The public names (lazy exports included), so tab completion shows them."""
    return sorted(__all__)


def run(config, out: str | Path | None = None):
    """Run an analysis end to end and return its typed :class:`Results`.

    ``config``: a path to a YAML config, a dict, or a :class:`Config`. ``out``: a root folder to
    write ``<out>/<name>/`` into (as the CLI does); None writes nothing."""
    from .config.schema import Config, load_config, parse_config

    if isinstance(config, (str, Path)):
        config = load_config(config)
    elif isinstance(config, dict):
        config = parse_config(config)
    elif not isinstance(config, Config):
        raise TypeError(f"config must be a path, a dict or a Config, not {type(config).__name__}")
    from .routes.dispatch import run_config

    return run_config(config, out or "outputs", write=out is not None).results
