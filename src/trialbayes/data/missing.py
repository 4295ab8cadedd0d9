"""The imputation structure of one model's design (``data.missing: impute``; maths in
``models/missing_data.md``).

The model's columns are gathered in one matrix V on the design's scale: the standardised
covariate columns of X (factor dummies included), then, for an interaction model, the biomarker's
standardised (log-)value z. A column with a missing value among the patients is

* **continuous** (a numeric covariate with more than two observed values, or the biomarker): a
  *target* whose missing values become latent parameters with a normal model given the arm, the
  fully observed columns and the continuous targets before it (fewest missing first);
* **discrete** (a binary numeric covariate, or a text covariate's dummy columns together): a
  *group* marginalised over its levels, with a logistic / multinomial-logistic model given the
  arm, the fully observed columns, every continuous target and the groups before it. A patient
  with a missing discrete value is *expanded*: one copy per combination of the levels of their
  missing groups, whose likelihood terms are summed on the probability scale.

Discrete groups come after every continuous target, so a continuous target's model never
depends on a value that is marginalised. Placeholders: a missing cell of X and a missing z are 0
(the observed mean) in the design's arrays; the model replaces them.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field

import numpy as np

from ..core.errors import DataError

#: a patient whose missing discrete values have more level combinations than this is refused
MAX_COMBINATIONS = 64


@dataclass
class ContinuousTarget:
    """A continuous column with missing values, imputed as latent values with a normal model given
    the arm and its ``predictors`` (columns of V; see the module docstring)."""

    column: str  # covariate name, or the biomarker's
    vcol: int  # column of V (0..p-1: X; p: the biomarker's z)
    miss_rows: np.ndarray
    obs_rows: np.ndarray
    obs_values: np.ndarray  # V-scale values at obs_rows
    predictors: list[int]  # V columns (besides the intercept and the arm)
    scale: str  # "standardised" or "standardised log"


@dataclass
class DiscreteGroup:
    """A binary or text covariate with missing values, marginalised over its ``levels`` with a
    logistic model given the arm and its ``predictors`` (see the module docstring)."""

    column: str  # the source column
    kind: str  # "binary" or "factor"
    vcols: list[int]  # the V (= X) columns of its dummies in this model
    levels: list[str]
    values: np.ndarray  # levels × len(vcols): the V-scale values of each level
    level: np.ndarray  # per patient: level index, -1 if missing
    predictors: list[int]

    @property
    def n_missing(self) -> int:
        return int((self.level < 0).sum())


@dataclass
class MissingDesign:
    """Everything the model needs to impute one design's missing values (see the module doc)."""

    names: list[str]  # V column names
    continuous: list[ContinuousTarget]
    discrete: list[DiscreteGroup]
    plain_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))
    mix_rows: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))
    copy_row: np.ndarray = field(default_factory=lambda: np.zeros(0, "int64"))
    copy_level: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), "int64"))
    pad_idx: np.ndarray = field(default_factory=lambda: np.zeros((0, 0), "int64"))

    @property
    def n_v(self) -> int:
        return len(self.names)

    @property
    def n_cont_cells(self) -> int:
        return sum(len(t.miss_rows) for t in self.continuous)

    def cont_cells(self) -> tuple[np.ndarray, np.ndarray]:
        """(rows, V columns) of the continuous latent values, in the model's order."""
        rows = [t.miss_rows for t in self.continuous]
        cols = [np.full(len(t.miss_rows), t.vcol) for t in self.continuous]
        if not rows:
            return np.zeros(0, "int64"), np.zeros(0, "int64")
        return np.concatenate(rows).astype("int64"), np.concatenate(cols).astype("int64")

    def copy_values(self) -> np.ndarray:
        """copies × V: each copy's discrete values (V scale) in its groups' columns, NaN
        elsewhere."""
        out = np.full((len(self.copy_row), self.n_v), np.nan)
        for g, grp in enumerate(self.discrete):
            out[:, grp.vcols] = grp.values[self.copy_level[:, g]]
        return out

    def x_cells(self, p: int) -> tuple[np.ndarray, np.ndarray]:
        """(rows, X columns) of every imputed cell of X, in :func:`estimands.imputed` order:
        the continuous covariate cells, then per patient with a missing discrete value the
        columns of their missing groups."""
        rows, cols = self.cont_cells()
        keep = cols < p
        r, c = [rows[keep]], [cols[keep]]
        for row in self.mix_rows:
            vc = self.missing_discrete_cols(row)
            r.append(np.full(len(vc), row))
            c.append(np.asarray(vc, "int64"))
        return np.concatenate(r).astype("int64"), np.concatenate(c).astype("int64")

    def missing_discrete_cols(self, row: int) -> list[int]:
        return [vc for g in self.discrete if g.level[row] < 0 for vc in g.vcols]

    def rows_imputed(self) -> np.ndarray:
        rows = [t.miss_rows for t in self.continuous] + [self.mix_rows]
        return np.unique(np.concatenate(rows)) if rows else np.zeros(0, "int64")

    def describe(self, arm: str = "arm") -> list[tuple[str, str, int, str]]:
        """(column, kind, n imputed, method) per imputed column, for the results."""
        out = []
        for t in self.continuous:
            pred = ", ".join([arm] + [self.names[j] for j in t.predictors])
            out.append(
                (
                    t.column,
                    "continuous",
                    len(t.miss_rows),
                    f"latent normal on the {t.scale} scale given {pred}",
                )
            )
        for g in self.discrete:
            pred = ", ".join([arm] + [self.names[j] for j in g.predictors])
            link = "logistic" if len(g.levels) == 2 else "multinomial-logistic"
            out.append(
                (
                    g.column,
                    g.kind,
                    g.n_missing,
                    f"marginalised over its {len(g.levels)} levels ({link} model given {pred})",
                )
            )
        return out


def _discrete_groups(
    cov_names: list[str], raw: np.ndarray, mean, sd, factors: dict[str, list[str]]
) -> tuple[list[tuple[str, str, list[int], list[str], np.ndarray, np.ndarray]], set[int]]:
    """(column, kind, X columns, levels, level values, per-patient level) of every discrete
    covariate of the model, and the set of X columns they cover."""
    out, covered = [], set()
    for c, levels in factors.items():
        used = [lv for lv in levels[1:] if f"{c}[{lv}]" in cov_names]
        if not used:
            continue
        cols = [cov_names.index(f"{c}[{lv}]") for lv in used]
        # levels as the model sees them: the reference (with any level whose dummy the model
        # leaves out, when it uses a subset) and one per dummy column used
        first = levels[0] if len(used) == len(levels) - 1 else f"{levels[0]} or other"
        lv_names = [first] + used
        onehot = np.vstack([np.zeros(len(cols)), np.eye(len(cols))])
        vals = (onehot - mean[cols]) / sd[cols]
        sub = raw[:, cols]
        seen = ~np.isnan(sub).any(axis=1)
        lev = np.full(raw.shape[0], -1)
        lev[seen] = np.where(sub[seen].max(axis=1) > 0.5, sub[seen].argmax(axis=1) + 1, 0)
        out.append((c, "factor", cols, lv_names, vals, lev))
        covered.update(cols)
    for j, c in enumerate(cov_names):
        if j in covered:
            continue
        obs = np.unique(raw[~np.isnan(raw[:, j]), j])
        if len(obs) == 2:
            vals = ((obs - mean[j]) / sd[j])[:, None]
            lev = np.full(raw.shape[0], -1)
            for li, v in enumerate(obs):
                lev[raw[:, j] == v] = li
            out.append((c, "binary", [j], [f"{v:g}" for v in obs], vals, lev))
            covered.add(j)
    return out, covered


def build_missing(
    cov_names: list[str],
    raw: np.ndarray,
    mean: np.ndarray,
    sd: np.ndarray,
    factors: dict[str, list[str]],
    bm_name: str | None = None,
    bm_z: np.ndarray | None = None,
    bm_log: bool = False,
) -> MissingDesign | None:
    """The imputation structure of a design whose covariates (``raw``, original scale, NaN where
    missing) or biomarker z (NaN where missing) have a missing value; None if nothing is missing."""
    n = raw.shape[0]
    p = len(cov_names)
    V = (raw - mean) / sd if p else np.zeros((n, 0))
    names = list(cov_names)
    if bm_name is not None:
        V = np.column_stack([V, bm_z])
        names.append(f"log {bm_name}" if bm_log else bm_name)
    miss = np.isnan(V)
    if not miss.any():
        return None
    groups, covered = _discrete_groups(cov_names, raw, mean, sd, factors)
    full = [j for j in range(V.shape[1]) if not miss[:, j].any()]
    cont = [j for j in range(V.shape[1]) if miss[:, j].any() and j not in covered]
    cont.sort(key=lambda j: (int(miss[:, j].sum()), j))
    targets = []
    for i, j in enumerate(cont):
        m = miss[:, j]
        is_bm = bm_name is not None and j == p
        targets.append(
            ContinuousTarget(
                column=bm_name if is_bm else cov_names[j],
                vcol=j,
                miss_rows=np.flatnonzero(m).astype("int64"),
                obs_rows=np.flatnonzero(~m).astype("int64"),
                obs_values=V[~m, j],
                predictors=full + cont[:i],
                scale="standardised log" if (is_bm and bm_log) else "standardised",
            )
        )
    part = [g for g in groups if (g[5] < 0).any()]
    part.sort(key=lambda g: (int((g[5] < 0).sum()), g[2][0]))
    discrete, before = [], []
    for c, kind, cols, levels, vals, lev in part:
        discrete.append(DiscreteGroup(c, kind, cols, levels, vals, lev, full + cont + before))
        before = before + cols
    md = MissingDesign(names, targets, discrete)
    _expand(md, n)
    return md


def _expand(md: MissingDesign, n: int) -> None:
    """The copies of each patient with a missing discrete value (one per level combination)."""
    if not md.discrete:
        md.plain_rows = np.arange(n, dtype="int64")
        return
    lev = np.column_stack([g.level for g in md.discrete])
    mixed = (lev < 0).any(axis=1)
    md.plain_rows = np.flatnonzero(~mixed).astype("int64")
    md.mix_rows = np.flatnonzero(mixed).astype("int64")
    rows, levels, segs = [], [], []
    for s, r in enumerate(md.mix_rows):
        options = [
            range(len(g.levels)) if lev[r, k] < 0 else [lev[r, k]]
            for k, g in enumerate(md.discrete)
        ]
        combos = list(itertools.product(*options))
        if len(combos) > MAX_COMBINATIONS:
            missing = [g.column for k, g in enumerate(md.discrete) if lev[r, k] < 0]
            raise DataError(
                f"row {r + 1}: its missing values of {missing} have {len(combos)} level "
                f"combinations (more than {MAX_COMBINATIONS}); data.missing: impute cannot "
                "marginalise over them — merge levels or use complete_case"
            )
        rows += [r] * len(combos)
        levels += combos
        segs.append(len(combos))
    md.copy_row = np.asarray(rows, "int64")
    md.copy_level = np.asarray(levels, "int64").reshape(len(rows), len(md.discrete))
    width = max(segs)
    pad = np.full((len(segs), width), len(rows), "int64")  # index len(rows): the padding
    start = 0
    for s, k in enumerate(segs):
        pad[s, :k] = np.arange(start, start + k)
        start += k
    md.pad_idx = pad
