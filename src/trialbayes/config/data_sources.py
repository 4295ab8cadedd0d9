"""The config's ``data:`` section: the column map and the data sources (synthetic, file,
reconstructed from a Kaplan–Meier figure, published estimates, design assumptions), strict like
the rest of the schema (``config/schema.py`` holds the whole config)."""

from __future__ import annotations

import difflib
import math
from pathlib import Path
from typing import Annotated, Literal

from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    field_validator,
    model_validator,
)

from .priors import _Strict


class ColumnMap(_Strict):
    """The columns of a patient file (id, time, event, arm, biomarkers, covariates, centre) and the
    values that code an event, censoring and the two arms."""

    id: str = "id"
    time: str = "time"
    event: str = "event"
    event_value: int | float | str | bool = 1
    censored_value: int | float | str | bool = 0
    arm: str = "arm"
    treatment_level: str | int | float | bool = 1
    control_level: str | int | float | bool | None = None
    biomarkers: list[str] = []
    covariates: list[str] = []
    centre: str | None = None


TimeUnit = Literal["days", "weeks", "months", "years"]


class SyntheticSource(_Strict):
    """``data.kind: synthetic``: a generated cohort of ``n`` patients from ``seed``."""

    kind: Literal["synthetic"]
    n: int = Field(220, ge=10, le=1_000_000)
    seed: int | None = Field(None, ge=0)  # default: the generator's (the shipped cohort)
    time_unit: TimeUnit | None = None  # default: the generator's (days)
    units: dict[str, str] = {}  # default: the generator's


class FileSource(_Strict):
    """``data.kind: file``: patient-level data from a CSV or Parquet file, its column map, missing
    value policy, time unit and units of the columns."""

    kind: Literal["file"]
    path: Path
    format: Literal["auto", "csv", "parquet"] = "auto"
    columns: ColumnMap = ColumnMap()
    #: a missing covariate / biomarker value: stop (error), drop the row (complete_case), or
    #: impute it inside the model (impute; models/missing_data.md)
    missing: Literal["error", "complete_case", "impute"] = "error"
    label: str | None = None
    time_unit: TimeUnit | None = None  # unit of columns.time; shown on every time value; a
    # duration-typed time column (Parquet timedelta) is converted to it (dates are refused)
    units: dict[str, str] = {}  # column -> unit, e.g. {crp: mg/L}; shown on every value
    #: the path as outputs show it: as written in the config (relative to it), or the file's
    #: name when the config gave an absolute path — never the analyst's absolute path
    _shown: str | None = PrivateAttr(None)

    @property
    def shown_path(self) -> str:
        return self._shown or self.path.name


class EventsPerArm(_Strict):
    """The events (deaths) in each arm, for an estimate's SE when no CI or SE is published."""

    treatment: PositiveInt
    control: PositiveInt


#: a published log hazard ratio beyond ±20 (HR 2e-9 to 5e8) or an SE above 10 is no estimate;
#: such values overflowed the posterior summaries (exp) instead of being refused
MAX_LOG_HR, MAX_SE = 20.0, 10.0


class PublishedEstimate(_Strict):
    """One published estimate: HR with CI, or log-HR with SE, or an HR/log-HR with events per
    arm."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    hr: float | None = None
    ci: tuple[float, float] | None = None
    ci_level: float = 0.95
    log_hr: float | None = None
    se: float | None = None
    events: EventsPerArm | None = None
    subgroup: str | None = None
    share: float | None = Field(None, gt=0, le=1)
    note: str | None = None

    @model_validator(mode="after")
    def _check(self):
        n = self.name
        if not 0 < self.ci_level < 1:
            raise ValueError(f"estimate '{n}': ci_level must lie in (0, 1), got {self.ci_level}")
        if self.hr is not None and self.hr <= 0:
            raise ValueError(f"estimate '{n}': HR must be > 0, got {self.hr}")
        if self.hr is not None and self.log_hr is not None:
            raise ValueError(f"estimate '{n}': give hr or log_hr, not both")
        if self.hr is None and self.log_hr is None:
            raise ValueError(
                f"estimate '{n}': needs hr (with ci or events) or log_hr (with se or events)"
            )
        spreads = [x is not None for x in (self.ci, self.se, self.events)]
        if sum(spreads) != 1:
            raise ValueError(
                f"estimate '{n}': give exactly one of ci, se or events for its uncertainty"
            )
        if self.se is not None and self.se <= 0:
            raise ValueError(f"estimate '{n}': SE must be > 0, got {self.se}")
        if self.se is not None and self.se > MAX_SE:
            raise ValueError(
                f"estimate '{n}': SE must be <= {MAX_SE:g} (log-HR scale), got {self.se}"
            )

        if self.ci is not None:
            lo, hi = self.ci
            if lo <= 0 or hi <= 0:
                raise ValueError(
                    f"estimate '{n}': CI bounds must be > 0 (HR scale), got {list(self.ci)}"
                )
            if lo >= hi:
                raise ValueError(f"estimate '{n}': CI lower {lo} must be < upper {hi}")
            est = self.hr if self.hr is not None else math.exp(self.log_hr)
            if not lo <= est <= hi:
                raise ValueError(
                    f"estimate '{n}': the CI [{lo}, {hi}] does not contain the estimate {est:g}"
                )
        logs = {
            "log_hr": [self.log_hr] if self.log_hr is not None else [],
            "hr": [math.log(self.hr)] if self.hr is not None else [],
            "ci": [math.log(x) for x in self.ci] if self.ci is not None else [],
        }
        for what, xs in logs.items():
            if any(abs(x) > MAX_LOG_HR for x in xs):
                raise ValueError(
                    f"estimate '{n}': {what} {getattr(self, what)} lies beyond HR "
                    f"e^±{MAX_LOG_HR:g} ({math.exp(-MAX_LOG_HR):.1e} to "
                    f"{math.exp(MAX_LOG_HR):.1e}): a typo?"
                )
        return self


class PublishedSource(_Strict):
    """``data.kind: published``: published estimates (uniquely named) instead of patient data."""

    kind: Literal["published"]
    label: str = "published estimates"
    estimates: list[PublishedEstimate] = Field(min_length=1)

    @field_validator("estimates")
    @classmethod
    def _unique(cls, v):
        names = [e.name for e in v]
        dup = sorted({x for x in names if names.count(x) > 1})
        if dup:
            raise ValueError(f"duplicate estimate names {dup}")
        return v


class ReconstructedSource(_Strict):
    """Patient data rebuilt from a digitised Kaplan–Meier figure (Guyot 2012) before the
    analysis."""

    kind: Literal["reconstructed"]
    curve: Path  # CSV arm,time,survival
    risk: Path  # CSV arm,time,n_at_risk
    events: Path | None = None  # CSV arm,events
    percent: bool = False  # survival given in percent
    treatment_level: str
    label: str = "digitised Kaplan-Meier figure"
    time_unit: TimeUnit | None = None
    units: dict[str, str] = {}


class ControlHazard(_Strict):
    """The control arm's hazard: exponential with a ``median`` survival, or piecewise constant
    ``rates`` on the intervals the ``cuts`` make (len(rates) = len(cuts) + 1), per time unit."""

    median: PositiveFloat | None = None
    cuts: list[PositiveFloat] | None = None
    rates: list[PositiveFloat] | None = None

    @model_validator(mode="after")
    def _check(self):
        if (self.median is None) == (self.rates is None):
            raise ValueError("control_hazard: give median, or cuts and rates")
        if self.rates is not None:
            cuts = self.cuts or []
            if len(self.rates) != len(cuts) + 1:
                raise ValueError(
                    f"control_hazard: {len(self.rates)} rates for {len(cuts)} cuts "
                    "(one rate per interval: len(cuts) + 1)"
                )
            if any(b <= a for a, b in zip(cuts, cuts[1:])):
                raise ValueError(f"control_hazard.cuts must increase strictly, got {cuts}")
        elif self.cuts is not None:
            raise ValueError("control_hazard: cuts go with rates, not with median")
        return self

    def starts_and_rates(self) -> tuple[list[float], list[float]]:
        if self.median is not None:
            return [0.0], [math.log(2) / self.median]
        return [0.0, *(self.cuts or [])], list(self.rates or [])

    def describe(self, unit: str = "time units") -> str:
        if self.median is not None:
            return f"exponential, median {self.median:g} {unit}"
        edges = [0.0, *(self.cuts or [])]
        parts = [f"{r:g} from {a:g}" for r, a in zip(self.rates or [], edges)]
        return f"piecewise constant, per {unit.removesuffix('s')}: " + ", ".join(parts)


class DesignPriorAssumption(_Strict):
    """The treatment HR of the next trial: ``point`` (``hr``), ``normal`` (``log_hr_mean``,
    ``log_hr_sd``) or ``from_published`` (the posterior of ``estimate`` — one of
    ``data.estimates`` — under the prior scenario ``scenario``, as the published route gives)."""

    kind: Literal["point", "normal", "from_published"]
    hr: PositiveFloat | None = None
    log_hr_mean: float | None = None
    log_hr_sd: PositiveFloat | None = None
    estimate: str | None = None
    scenario: Literal[
        "flat", "sceptical", "enthusiastic", "pessimistic", "heavy_tailed", "robust_mixture"
    ] = "flat"
    scenario_design_hr: float = Field(0.5, gt=0, lt=1)  # the scenarios' design HR

    @model_validator(mode="after")
    def _check(self):
        need = {"point": ("hr",), "normal": ("log_hr_mean", "log_hr_sd"),
                "from_published": ("estimate",)}[self.kind]  # fmt: skip
        missing = [k for k in need if getattr(self, k) is None]
        if missing:
            raise ValueError(f"design_prior kind '{self.kind}' needs {missing}")
        other = {"hr", "log_hr_mean", "log_hr_sd", "estimate", "scenario", "scenario_design_hr"}
        own = set(need) | ({"scenario", "scenario_design_hr"} if self.kind == "from_published"
                           else set())  # fmt: skip
        extra = sorted((self.model_fields_set & other) - own)
        if extra:
            raise ValueError(f"design_prior kind '{self.kind}' does not take {extra}")
        return self


class AssumptionsSource(_Strict):
    """A design from assumptions, without patient data: the control hazard and a design prior
    on the treatment HR; the trials of ``next_phase:`` are simulated from them."""

    kind: Literal["assumptions"]
    label: str = "design assumptions"
    time_unit: TimeUnit | None = None
    control_hazard: ControlHazard
    design_prior: DesignPriorAssumption
    estimates: list[PublishedEstimate] = []  # for design_prior kind from_published
    draws: int = Field(4000, ge=100, le=1_000_000)  # states of nature drawn from the design prior
    seed: int = Field(20250601, ge=0)

    @model_validator(mode="after")
    def _check(self):
        names = [e.name for e in self.estimates]
        dp = self.design_prior
        if dp.kind == "from_published" and dp.estimate not in names:
            close = difflib.get_close_matches(dp.estimate, names, n=1)
            hint = f" (did you mean '{close[0]}'?)" if close else ""
            raise ValueError(
                f"design_prior.estimate '{dp.estimate}' is not among data.estimates {names}{hint}"
            )
        return self


#: the data sources with patient-level data (every kind but ``published``)
PatientSource = SyntheticSource | FileSource | ReconstructedSource

DataSource = Annotated[
    SyntheticSource | FileSource | ReconstructedSource | PublishedSource | AssumptionsSource,
    Field(discriminator="kind"),
]
