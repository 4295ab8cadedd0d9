"""The config's ``estimands:`` section: thresholds, the credible level, the biomarker and its
subgroups, the landmark, the HR curve's grid and range, the simultaneous band and credible
subgroups, and the draws every estimate comes from."""

from __future__ import annotations

from pydantic import AliasChoices, Field, PositiveFloat, field_validator

from .priors import _Strict

__all__ = ["CredibleSubgroupsSpec", "Estimands"]


class CredibleSubgroupsSpec(_Strict):
    """Simultaneous credible band of the HR curve and the credible subgroups for HR < t
    (models/piecewise_exponential.md, "Simultaneous band and credible subgroups")."""

    thresholds: list[PositiveFloat] | None = None  # None: estimands.hr_thresholds (1 always)
    level: float | None = Field(None, gt=0.5, lt=1.0)  # None: estimands.level

    @field_validator("thresholds")
    @classmethod
    def _with_one(cls, v):
        return None if v is None else [1.0] + [t for t in v if t != 1.0]


class Estimands(_Strict):
    """What the reports compute: HR thresholds (P(HR < 1) always), the harm threshold, biomarker
    subgroups, the landmark time, the credible ``level``, the HR curve's points and range, the
    credible subgroups and the draws used."""

    hr_thresholds: list[PositiveFloat] = [1.0, 0.8]
    harm_threshold: PositiveFloat = 1.1
    biomarker: str | None = None
    subgroup_cutoffs: list[float] | None = None  # None: biomarker tertiles (settings.py)
    landmark: PositiveFloat | None = None  # None: the median observed time (data/settings.py)
    #: the credible (and confidence) level of every interval; ``ci_prob`` is its former name
    level: float = Field(0.95, gt=0.5, lt=1.0, validation_alias=AliasChoices("level", "ci_prob"))
    curve_points: int = Field(60, ge=10, le=400)
    #: the HR curve's range: these quantiles of the observed biomarker (5th–95th percentiles)
    hr_curve_quantiles: list[float] = [0.05, 0.95]
    credible_subgroups: CredibleSubgroupsSpec = CredibleSubgroupsSpec()
    max_draws: int = Field(4000, ge=100)  # one set of draws (thinned evenly) for every estimate

    @field_validator("hr_thresholds")
    @classmethod
    def _with_one(cls, v):
        """P(HR < 1), the probability of benefit, is always reported; other thresholds add to it."""
        return [1.0] + [t for t in v if t != 1.0]

    @field_validator("hr_curve_quantiles")
    @classmethod
    def _quantiles(cls, v):
        if len(v) != 2 or not 0 <= v[0] < v[1] <= 1:
            raise ValueError(
                f"hr_curve_quantiles must be two increasing quantiles in [0, 1], got {v}"
            )
        return v

    @field_validator("subgroup_cutoffs")
    @classmethod
    def _inc(cls, v):
        if v is not None and any(b <= a for a, b in zip(v, v[1:])):
            raise ValueError(f"subgroup_cutoffs must be strictly increasing, got {v}")
        return v
