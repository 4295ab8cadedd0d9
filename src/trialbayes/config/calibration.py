"""Schema of the ``calibration:`` config section, read by ``trialbayes calibrate CONFIG``
(strict, like the rest of config.py; a CLI option given on the command line overrides its key).

calibration:
  model: interaction      # default: the config's last model
  replicates: 200         # SBC replicates (refits)
  draws: 500              # posterior draws per chain per refit (tune: the same unless given)
  executor: processes     # auto | inprocess | processes | dask (scheduler: address or "local")
  chains: 2               # at least 2 (R-hat, the refits' convergence gate, needs two chains)
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import Field, PositiveInt, ValidationError, model_validator

from .priors import _Strict
from .raw import format_errors


@dataclass
class CalibrationSettings:
    """The resolved settings of one calibration run (model and seed defaults filled in)."""

    model: str
    fits: int = 100
    thin: int = 99  # L: posterior draws kept per fit (ranks 0..L)
    dropout_rate: float = 0.0
    chains: int = 2
    draws: int = 500
    tune: int = 500
    seed: int = 20250603
    bins: int = 10


class CalibrationSpec(_Strict):
    """The ``calibration:`` section as written: model, replicates and their refits' sampler
    settings, rank bins, dropout of the simulated trials, seed and executor."""

    model: str | None = None  # None: the last model of the config
    replicates: int = Field(100, ge=10, le=100_000)
    draws: int = Field(500, ge=50, le=100_000)
    tune: int | None = Field(None, ge=50, le=100_000)  # None: as many as draws
    chains: int = Field(2, ge=1, le=8)  # >= 2: R-hat (the refits' convergence gate) needs 2
    thin: int = Field(99, ge=9, le=10_000)  # L: posterior draws kept per refit (ranks 0..L)
    bins: int = Field(10, ge=2, le=100)  # rank-histogram bins of the chi-square test
    dropout_rate: float = Field(0.0, ge=0)  # exponential dropout of the simulated trials
    seed: int | None = Field(None, ge=0)  # None: sampler.seed + 3
    executor: Literal["auto", "inprocess", "processes", "dask"] = "auto"
    scheduler: str | None = None  # Dask scheduler address, or "local" for a LocalCluster
    workers: PositiveInt = 2

    @model_validator(mode="after")
    def _check(self):
        if self.chains < 2:
            raise ValueError(
                f"calibration.chains: {self.chains} chain leaves R-hat undefined, so every refit "
                "would fail the convergence gate; use 2 or more"
            )
        if self.scheduler is not None and self.executor not in ("auto", "dask"):
            raise ValueError("calibration.scheduler needs executor 'dask' (or 'auto')")
        if self.thin > self.chains * self.draws:
            raise ValueError(
                f"calibration.thin ({self.thin}) exceeds the draws of a refit "
                f"({self.chains} chains × {self.draws})"
            )
        return self

    def check_models(self, models) -> None:
        names = [m.name for m in models]
        if self.model is not None and self.model not in names:
            raise ValueError(f"calibration.model: unknown model '{self.model}'; models are {names}")
        spec = next((m for m in models if m.name == self.model), None)
        if spec is not None and spec.time_varying:
            raise ValueError(time_varying_refusal(spec.name, "calibration.model"))

    def settings(self, cfg):
        """The :class:`CalibrationSettings` for ``cfg`` (model and seed defaults resolved)."""
        return CalibrationSettings(
            model=self.model or cfg.models[-1].name,
            fits=self.replicates,
            thin=self.thin,
            dropout_rate=self.dropout_rate,
            chains=self.chains,
            draws=self.draws,
            tune=self.tune if self.tune is not None else self.draws,
            seed=self.seed if self.seed is not None else cfg.sampler.seed + 3,
            bins=self.bins,
        )

    def backend(self) -> str:
        return "dask" if self.scheduler else self.executor


def time_varying_refusal(model: str, key: str) -> str:
    """Why a time-varying ``model`` cannot be calibrated, naming the ``key`` that chose it."""
    return (
        f"{key}: model '{model}' has a time-varying treatment effect, which simulation-based "
        "calibration does not simulate (one HR per replicate); choose a model with "
        "treatment_effect 'constant'"
    )


def with_cli_options(spec: CalibrationSpec | None, **options) -> CalibrationSpec:
    """The config's section (or the defaults) with the CLI options that were given (not None).
    An invalid result raises ValueError with one line per problem, each naming its key."""
    base = spec.model_dump(exclude_unset=True) if spec is not None else {}
    given = {k: v for k, v in options.items() if v is not None}
    if given.get("scheduler"):
        given.setdefault("executor", "dask")
    try:
        return CalibrationSpec.model_validate({**base, **given})
    except ValidationError as err:
        raise ValueError(_one_line(err)) from None


def _one_line(err: ValidationError) -> str:
    """config.py's error formatting, on one line, with keys under ``calibration.`` (a model-level
    check's message already names its key)."""
    items = [ln.removeprefix("  - ") for ln in format_errors(err, "").splitlines()[1:]]
    items = [i.removeprefix("(top level): ") for i in items]
    return "; ".join(i if i.startswith("calibration.") else f"calibration.{i}" for i in items)
