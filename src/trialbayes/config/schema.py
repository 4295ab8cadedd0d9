"""Analysis configuration: a strict pydantic schema for the YAML files in configs/.

Unknown keys are rejected with a "did you mean" hint. A config is data only: it names data,
models, prior overrides, sampler, diagnostics, estimand and report settings; nothing in it is
imported or executed. Relative paths are resolved against the config file's folder.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import warnings
from pathlib import Path
from typing import Annotated, Any, Literal

import numpy as np
import yaml
from pydantic import (
    Field,
    PositiveFloat,
    PositiveInt,
    PrivateAttr,
    ValidationError,
    field_validator,
    model_validator,
)

from ..core.cache_trust import TRUST_ENV_VAR, trust_config_cache
from ..core.errors import ConfigError, RawConfigError
from ..core.yaml_reader import check_finite, load_yaml, read_text_file
from .calibration import CalibrationSpec
from .data_sources import DataSource, FileSource
from .estimands import Estimands
from .next_phase import NextPhase
from .priors import SCENARIOS, FlatPrior, NormalPrior, ScenarioSpec, _Strict, merge_priors
from .raw import format_errors


# ----------------------------------------------------------------------------- models
class ModelSpec(_Strict):
    """One patient-level model: its name, covariates and their pooling, centre frailty, the
    biomarker interaction form and the treatment effect's time course (constant or time-varying)."""

    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # used in file names and reports
    covariates: list[str] | Literal["all"] = []
    covariate_pooling: Literal["partial", "none"] = "partial"
    centre_frailty: bool = False
    interaction: Literal["none", "linear", "log_linear", "spline"] = "none"
    biomarker: str | None = None
    #: c in log(x + c) for log_linear / spline (a biomarker with zeros, e.g. a count)
    biomarker_offset: float = Field(0.0, ge=0, allow_inf_nan=False)
    spline_basis: int = Field(8, ge=4, le=20)
    #: ``time_varying``: a treatment log-HR per baseline interval under a random-walk prior
    #: (models/piecewise_exponential.md, "Time-varying treatment effect")
    treatment_effect: Literal["constant", "time_varying"] = "constant"

    @model_validator(mode="after")
    def _biomarker_needed(self):
        if self.interaction != "none" and not self.biomarker:
            raise ValueError(
                f"model '{self.name}': interaction '{self.interaction}' needs 'biomarker'"
            )
        if self.interaction == "none" and self.biomarker:
            raise ValueError(f"model '{self.name}': 'biomarker' given but interaction is 'none'")
        if self.biomarker_offset and not self.log_biomarker:
            raise ValueError(
                f"model '{self.name}': biomarker_offset applies to a log-scale biomarker "
                f"(interaction log_linear or spline), not '{self.interaction}'"
            )
        return self

    @property
    def log_biomarker(self) -> bool:
        return self.interaction in ("log_linear", "spline")

    @property
    def time_varying(self) -> bool:
        return self.treatment_effect == "time_varying"

    def same_terms(self, other: ModelSpec) -> bool:
        """Same linear predictor apart from the treatment effect's time course (the name aside)."""
        keys = ("covariates", "covariate_pooling", "centre_frailty", "interaction", "biomarker")
        same = all(getattr(self, k) == getattr(other, k) for k in keys)
        return same and (self.interaction != "spline" or self.spline_basis == other.spline_basis)


def partner_of(spec: ModelSpec, models: list[ModelSpec]) -> ModelSpec | None:
    """The first constant-effect model with the same terms as a time-varying ``spec``."""
    return next((m for m in models if not m.time_varying and m.same_terms(spec)), None)


class Baseline(_Strict):
    """The piecewise-constant baseline hazard: cut points (or ``n_intervals`` at event-time
    quantiles), the parametrisation and how the log-likelihood is computed."""

    cuts: list[float] | None = None
    n_intervals: int = Field(8, ge=1, le=60)
    parametrisation: Literal["auto", "centred", "non_centred"] = "auto"
    #: how the log-likelihood is computed (same quantity): PyTensor graph or one fused Op
    #: (fused.py), optionally with its per-patient arithmetic in single precision
    likelihood: Literal["graph", "fused", "fused_float32"] = "fused"  # measured: README Benchmarks

    @field_validator("cuts")
    @classmethod
    def _sorted(cls, v):
        if v is None:
            return v
        if any(c <= 0 for c in v):
            raise ValueError("cut points must be > 0 (0 is the implicit start)")
        if any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"cut points must be strictly increasing, got {v}")
        return v


class SamplerSpec(_Strict):
    """NUTS settings (backend, chains, draws, tuning, seed, target acceptance), the progress bar and
    the compile cache folder."""

    backend: Literal["nutpie", "pymc"] = "nutpie"
    chains: int = Field(4, ge=1, le=16)
    # 2000: at 1000, converged fits miss R-hat 1.01 by chance in ~2% of seeds (README, Tests)
    draws: int = Field(2000, ge=10, le=1_000_000)  # and bounded by memory (checks.check_memory)
    tune: int = Field(1000, ge=10, le=1_000_000)
    seed: int = Field(20250601, ge=0)
    target_accept: float | None = Field(None, gt=0.5, lt=1.0)  # None: chosen by the model
    progress: Literal["auto", "on", "off"] = "auto"
    #: compile cache folder, or "off"; unset: $TRIALBAYES_CACHE_DIR, else the user cache folder
    cache_dir: str | None = None


class Diagnostics(_Strict):
    """The convergence gate: R-hat, bulk and tail ESS, divergences and BFMI a fit must meet, or
    ``allow_unreliable`` to report a fit that fails it."""

    rhat_max: PositiveFloat = 1.01
    ess_bulk_min: PositiveFloat = 400
    ess_tail_min: PositiveFloat = 400
    max_divergences: int = Field(0, ge=0)
    bfmi_min: float = Field(0.3, ge=0)
    allow_unreliable: bool = False


class Sensitivity(_Strict):
    """Refit the patient-level models under named prior scenarios (treatment, interaction)."""

    enabled: bool = False
    models: list[str] | None = None
    design_hr: float = Field(0.5, gt=0, lt=1)
    scenarios: list[ScenarioSpec] | None = None
    psense: bool = True
    # the refits run on a process pool of `workers` (auto: when there are more refits than
    # workers and the compiled models load from the compile cache), else in this process
    executor: Literal["auto", "inprocess", "processes"] = "auto"
    workers: PositiveInt = 2


def _in_unit_interval(v: list[float], what: str) -> list[float]:
    bad = [x for x in v if not 0 < x < 1]
    if bad:
        raise ValueError(f"{what} must lie in (0, 1), got {bad}")
    return v


class GridSpec(_Strict):
    """An evenly spaced grid of ``n`` values from ``lo`` to ``hi`` (``values()``)."""

    lo: float
    hi: float
    n: int = Field(21, ge=2, le=400)

    @model_validator(mode="after")
    def _order(self):
        if not self.lo < self.hi:
            raise ValueError(f"grid lo ({self.lo}) must be < hi ({self.hi})")
        return self

    def values(self):
        return np.linspace(self.lo, self.hi, self.n)


class SubgroupShrinkage(_Strict):
    """Hierarchical shrinkage of the subgroup estimates: which estimates, the half-normal scale of
    the between-subgroup SD tau, and the prior of the overall mean log-HR."""

    estimates: list[str] | None = None  # default: every estimate with a subgroup label
    tau_sigma: float = Field(0.5, ge=1e-3, le=100.0)
    #: prior of the overall mean log-HR: normal (sigma in [0.001, 100]) or flat
    mu_prior: Annotated[NormalPrior | FlatPrior, Field(discriminator="family")] | None = None


class AssuranceSpec(_Strict):
    """A phase 3 design: all-comers (from ``overall``) vs enriched (a shrunken subgroup)."""

    scenario: str = "sceptical"
    overall: str
    enriched: str | None = None
    events: list[PositiveInt] = [100, 150, 200, 300, 400, 600]
    allocation: float = Field(0.5, gt=0, lt=1)
    alpha: float = Field(0.025, gt=0, lt=0.5)
    target_hr: PositiveFloat = 0.8
    levels: list[float] = [0.8, 0.9]

    @field_validator("levels")
    @classmethod
    def _levels(cls, v):
        return _in_unit_interval(v, "levels")


class PublishedAnalysis(_Strict):
    """The ``published:`` section: prior scenarios, the prior mean × SD grids of the sensitivity
    maps, the P(HR < 1) levels of the tipping points, subgroup shrinkage, assurance, and the NUTS
    draws (all chains) of each posterior."""

    design_hr: float = Field(0.5, gt=0, lt=1)
    scenarios: list[ScenarioSpec] | None = None
    estimates: list[str] | None = None
    grid_mean: GridSpec = GridSpec(lo=-0.7, hi=0.7, n=29)
    grid_sd: GridSpec = GridSpec(lo=0.05, hi=1.0, n=39)
    tipping_levels: list[float] = [0.9, 0.95]
    subgroups: SubgroupShrinkage | None = SubgroupShrinkage()
    assurance: AssuranceSpec | None = None
    nuts_draws: int = Field(20000, ge=500, le=10_000_000)

    @field_validator("tipping_levels")
    @classmethod
    def _levels(cls, v):
        return _in_unit_interval(v, "tipping_levels")

    @field_validator("grid_sd")
    @classmethod
    def _sd_positive(cls, v):
        if v.lo <= 0:
            raise ValueError(f"grid_sd.lo must be > 0 (a prior SD), got {v.lo}")
        return v


class Report(_Strict):
    """Report settings: title, figure dpi, and whether figures and report.html are written."""

    title: str | None = None
    dpi: int = Field(110, ge=50, le=400)
    figures: bool = True
    html: bool = True  # write the self-contained report.html beside report.md


class Config(_Strict):
    """A whole analysis config (one YAML file): data, models, baseline, priors, sampler,
    diagnostics, estimands and the optional sections, cross-checked on validation."""

    #: data paths as written in the config when relative (outputs show these, not absolute ones)
    _shown_paths: dict[str, str] = PrivateAttr(default_factory=dict)
    name: str = Field(pattern=r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")
    title: str | None = None
    data: DataSource
    models: list[ModelSpec] = []
    baseline: Baseline = Baseline()
    priors: dict[str, dict[str, Any]] = {}
    sampler: SamplerSpec = SamplerSpec()
    diagnostics: Diagnostics = Diagnostics()
    estimands: Estimands = Estimands()
    sensitivity: Sensitivity = Sensitivity()
    published: PublishedAnalysis | None = None
    report: Report = Report()
    next_phase: NextPhase | None = None  # next-trial simulation (nextphase.py)
    calibration: CalibrationSpec | None = None  # `trialbayes calibrate` settings (calibrate.py)

    @model_validator(mode="before")
    @classmethod
    def _missing_for_files(cls, raw):
        d = raw.get("data") if isinstance(raw, dict) else None
        if (
            isinstance(d, dict)
            and "missing" in d
            and d.get("kind") in ("synthetic", "published", "reconstructed")
        ):
            raise ValueError(
                f"data.missing: only for data kind 'file' (a {d.get('kind')} source has no "
                "missing values to drop or impute); remove the key"
            )
        return raw

    @model_validator(mode="after")
    def _check(self):
        names = [m.name for m in self.models]
        dup = {n for n in names if names.count(n) > 1}
        if dup:
            raise ValueError(f"models: duplicate model names {sorted(dup)}")
        merge_priors(self.priors)  # raises on unknown terms / families
        self._check_time_varying()
        for where, scen in (
            ("sensitivity.scenarios", self.sensitivity.scenarios),
            ("published.scenarios", self.published.scenarios if self.published else None),
        ):
            sc_names = [sc.name for sc in scen or []]
            if len(set(sc_names)) != len(sc_names):
                raise ValueError(f"{where}: scenario names must be unique, got {sc_names}")
        if self.sensitivity.models:
            unknown = set(self.sensitivity.models) - set(names)
            if unknown:
                raise ValueError(
                    f"sensitivity.models: unknown model(s) {sorted(unknown)}; models are {names}"
                )
        if self.next_phase is not None:
            self.next_phase.check_models(self.models, self.data.kind)
            if getattr(self.data, "missing", None) == "impute":
                raise ValueError(
                    "next_phase: not available with data.missing: impute (the next-trial "
                    "simulation draws patients with every value observed); use complete_case"
                )
        if self.calibration is not None:
            self.calibration.check_models(self.models)
        if self.data.kind == "assumptions":
            if self.models:
                raise ValueError("models: data kind 'assumptions' has no patients to fit")
            if self.next_phase is None:
                raise ValueError("data kind 'assumptions' needs a next_phase: section")
            if self.published is not None or self.sensitivity.enabled:
                raise ValueError("published / sensitivity: not for data kind 'assumptions'")
            if self.calibration is not None:
                raise ValueError("calibration: not for data kind 'assumptions'")
        elif self.data.kind == "published":
            if self.models:
                raise ValueError(
                    "models: patient-level models do not apply to data kind 'published'"
                )
            if self.published is None:
                self.published = PublishedAnalysis()
            self._check_published()
        else:
            if not self.models:
                raise ValueError("models: at least one model is needed for patient-level data")
            if self.published is not None:
                raise ValueError("published: only for data kind 'published'")
        return self

    def _check_time_varying(self):
        """A time-varying model needs two baseline intervals and its constant-effect partner (the
        same terms, ``treatment_effect: constant``): the PH comparison (PSIS-LOO, the figure)."""
        for m in self.models:
            if not m.time_varying:
                continue
            if getattr(self.data, "missing", None) == "impute":
                raise ValueError(
                    f"models: model '{m.name}' has treatment_effect 'time_varying', which "
                    "data.missing: impute does not support yet (the imputation's likelihood "
                    "terms assume one treatment HR); use complete_case, or a constant effect"
                )
            if not self.baseline.cuts and self.baseline.n_intervals < 2:
                raise ValueError(
                    f"models: model '{m.name}' has treatment_effect 'time_varying', which "
                    "estimates one treatment log-HR per baseline interval, but the baseline has "
                    "1 interval: set baseline.n_intervals >= 2 (or baseline.cuts)"
                )
            if partner_of(m, self.models) is None:
                terms = m.model_dump(exclude_defaults=True, exclude={"name", "treatment_effect"})
                shown = "".join(f", {k}: {json.dumps(v)}" for k, v in terms.items())
                raise ValueError(
                    f"models: model '{m.name}' (treatment_effect 'time_varying') needs a "
                    "constant-effect model with the same terms, to compare proportional hazards "
                    f"with (PSIS-LOO, the HR(t) figure): add {{name: {m.name}_ph{shown}}}"
                )

    def _check_published(self):
        names = [e.name for e in self.data.estimates]
        p = self.published
        refs = list(p.estimates or [])
        if p.subgroups and p.subgroups.estimates:
            refs += p.subgroups.estimates
        if p.assurance:
            refs += [p.assurance.overall] + ([p.assurance.enriched] if p.assurance.enriched else [])
        for r in refs:
            if r not in names:
                close = difflib.get_close_matches(r, names, n=1)
                hint = f" (did you mean '{close[0]}'?)" if close else ""
                raise ValueError(
                    f"published: estimate '{r}' is not among the data's estimates {names}{hint}"
                )
        analysed = p.estimates or names
        if p.assurance:
            for r in [p.assurance.overall] + (
                [p.assurance.enriched] if p.assurance.enriched else []
            ):
                if r not in analysed:
                    raise ValueError(
                        f"published.assurance: estimate '{r}' is not among the analysed "
                        f"estimates {analysed}"
                    )
        scen = [s.name for s in (p.scenarios or [])] or list(SCENARIOS)
        if p.assurance and p.assurance.scenario not in scen:
            raise ValueError(
                f"published.assurance.scenario '{p.assurance.scenario}' is not among the "
                f"scenarios {scen}"
            )
        if p.assurance and p.assurance.enriched and not p.subgroups:
            raise ValueError(
                "published.assurance.enriched needs published.subgroups (the shrunken subgroup "
                "posterior)"
            )

    def resolved_priors(self) -> dict:
        return merge_priors(self.priors)

    def shown_dump(self) -> dict:
        """The config as outputs show it (provenance.json): data files by the path written in
        the config (relative to it) or their name, never the analyst's absolute path."""
        d = self.model_dump(mode="json")
        for attr in ("path", "curve", "risk", "events"):
            v = getattr(self.data, attr, None)
            if isinstance(v, Path):
                d["data"][attr] = self._shown_paths.get(attr, v.name)
        return d

    def hash(self) -> str:
        """sha256 of the resolved config (paths as given), for provenance and save/load."""
        blob = json.dumps(self.model_dump(mode="json"), sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def load_config(path: str | Path) -> Config:
    """Read, validate and resolve a YAML config. Raises ConfigError with a readable message."""
    path = Path(path)
    try:
        text = read_text_file(path, "config", limit=16 * 2**20)
    except (RawConfigError, OSError) as exc:
        raise ConfigError(str(exc)) from None
    try:
        raw = load_yaml(text)
    except yaml.YAMLError as exc:
        raise ConfigError(f"config {path} is not valid YAML: {exc}") from None
    except RawConfigError as exc:
        raise ConfigError(f"config {path}: {exc}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"config {path} must be a mapping at the top level")
    raw.setdefault("name", path.stem)
    return parse_config(raw, base_dir=path.parent, source=str(path))


def _resolve_cache_dir(cfg: Config, base: Path, source: str) -> None:
    """A relative ``sampler.cache_dir`` names a folder beside the config, which may have come
    with it: used only when the user opts in (core.cache_trust.TRUST_ENV_VAR); otherwise the user
    cache folder is used, with one warning. The cache's own checks apply either way."""
    cache = cfg.sampler.cache_dir
    if not cache or cache.strip().lower() in ("", "0", "off", "none", "false"):
        return
    path = Path(cache).expanduser()
    if path.is_absolute():
        return
    resolved = (base / path).resolve()
    if trust_config_cache():
        cfg.sampler.cache_dir = str(resolved)
        return
    cfg.sampler.cache_dir = None
    warnings.warn(
        f"{source}: sampler.cache_dir '{cache}' is relative to the config, a folder that may "
        f"have come with it, so it is not used (the user cache is); to use {resolved}, set "
        f"{TRUST_ENV_VAR}=1 or pass --trust-config-cache",
        UntrustedCacheWarning,
        stacklevel=3,
    )


class UntrustedCacheWarning(RuntimeWarning):
    """A config's relative ``sampler.cache_dir`` that is not used without the user's opt-in."""


def parse_config(raw: dict, base_dir: Path | None = None, source: str = "<dict>") -> Config:
    """Validate a config already read into a dict and resolve its relative paths against
    ``base_dir`` (default: the working folder); raises ConfigError naming ``source``."""
    try:
        check_finite(raw)
    except RawConfigError as exc:
        raise ConfigError(f"invalid config {source}: {exc}") from None
    try:
        cfg = Config.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(format_errors(err, source)) from None
    base = Path(base_dir) if base_dir else Path.cwd()
    _resolve_cache_dir(cfg, base, source)
    for attr in ("path", "curve", "risk", "events"):
        p = getattr(cfg.data, attr, None)
        if isinstance(p, Path) and not p.is_absolute():
            setattr(cfg.data, attr, (base / p).resolve())
            cfg._shown_paths[attr] = p.as_posix()
            if isinstance(cfg.data, FileSource) and attr == "path":
                cfg.data._shown = p.as_posix()
    return cfg
