"""``data.missing`` in a run: the per-column summary, and under ``impute`` each imputing model's
complete-case refit (same model, priors, sampler and baseline cut points, on the patients with
every value of the model observed) for the comparison in results.json and the reports."""

from __future__ import annotations

import dataclasses

import numpy as np

from ..config.schema import Config
from ..core import progress
from ..core.errors import DataError
from ..data.design import Design, build_design
from ..data.table import TrialData
from ..estimands.draws import hr_summary, log_hr_at
from ..models.pem import PiecewiseExponentialModel
from ..results.missing import ImputedColumn, MissingData, ModelImputation

__all__ = [
    "check_imputation",
    "complete_case_data",
    "compare_with_complete_case",
    "missing_section",
    "plan_lines",
]


def complete_case_data(data: TrialData, pem: PiecewiseExponentialModel) -> TrialData:
    """The patients with every value of ``pem``'s model observed."""
    drop = pem.design.missing.rows_imputed()
    keep = np.setdiff1d(np.arange(data.n), drop)
    frame = data.frame.iloc[keep].reset_index(drop=True)
    note = (
        f"complete cases of model '{pem.spec.name}': {len(drop)} rows with a missing value left out"
    )
    return dataclasses.replace(data, frame=frame, missing=None, notes=[*data.notes, note])


def _cc_baseline(pem: PiecewiseExponentialModel, cc: TrialData):
    """The imputed fit's baseline cut points (those inside the complete cases' follow-up)."""
    tmax = float(cc.frame["time"].max())
    cuts = [float(c) for c in pem.design.cuts if c < tmax]
    if cuts:
        return pem.baseline.model_copy(update={"cuts": cuts, "n_intervals": len(cuts) + 1})
    return pem.baseline.model_copy(update={"cuts": None, "n_intervals": 1})


def compare_with_complete_case(
    pem: PiecewiseExponentialModel, data: TrialData, cfg: Config, seed: int
) -> tuple[ModelImputation, PiecewiseExponentialModel | None]:
    """The imputed fit's treatment HR beside its complete-case refit's (for an interaction
    model, both at the imputed fit's biomarker reference value)."""
    e = cfg.estimands
    md, b = pem.design.missing, pem.design.basis

    def hs(v):
        return hr_summary(v, tuple(e.hr_thresholds), e.harm_threshold, e.level)

    draws = pem.draws(e.max_draws)
    imputed = hs(draws["treatment"])
    at = "treatment HR" + (f" at {pem.spec.biomarker} = {b.reference:.4g}" if b else "")
    columns = [ImputedColumn(c, k, n, m) for c, k, n, m in md.describe()]
    base = ModelImputation(
        model=pem.spec.name,
        n_rows=pem.design.n,
        n_rows_imputed=len(md.rows_imputed()),
        columns=columns,
        imputed=imputed,
        compared_at=at,
    )
    cc = complete_case_data(data, pem)
    why = _cc_problem(cc)
    if why:
        return dataclasses.replace(base, note=f"no complete-case refit: {why}"), None
    ccm = PiecewiseExponentialModel(
        pem.spec, cfg.priors, _cc_baseline(pem, cc), cfg.sampler, cfg.diagnostics
    ).build(cc)
    name = f"{pem.spec.name} (complete cases)"
    ccm.sampler.label = name
    with progress.phase(f"compiling model {name}", record=False):
        ccm.sampler.compile()
    text = progress.sampling_text(name, cfg.sampler.chains, cfg.sampler.draws, cfg.sampler.tune)
    with progress.phase(text, record=False):
        ccm.fit(seed=seed, log_likelihood=False)
    d = ccm.draws(e.max_draws)
    log_hr = log_hr_at(d, ccm.design.basis, [b.reference])[:, 0] if b else d["treatment"]
    cc_hr = hs(log_hr)
    return (
        dataclasses.replace(
            base,
            complete_case=cc_hr,
            complete_case_n=cc.n,
            complete_case_events=cc.events,
            complete_case_reliable=ccm.reliable,
            log_hr_shift=imputed.log_mean - cc_hr.log_mean,
        ),
        ccm,
    )


def _cc_problem(cc: TrialData) -> str:
    if cc.n == 0:
        return "no patient has every value observed"
    if cc.events == 0 or cc.frame["treat"].nunique() < 2:
        return "the complete cases have no events or only one arm"
    return ""


def missing_section(data: TrialData, models: list[ModelImputation]) -> MissingData | None:
    """The run's ``missing_data`` section: None when the source has no missing-value policy or
    nothing was missing under ``error``."""
    m = data.missing
    if m is None or (m.policy == "error" and not m.n_values_missing):
        return None
    return dataclasses.replace(m, models=list(models))


def check_imputation(design: Design, model: str) -> None:
    """Before fitting (``check`` too): an imputing model needs observed values to model each
    imputed column (DataError naming the model and column)."""
    md = design.missing
    if md is None:
        return
    for t in md.continuous:
        if len(t.obs_rows) < 3:
            raise DataError(
                f"model '{model}': column '{t.column}' has {len(t.obs_rows)} observed "
                "values; data.missing: impute needs at least 3 to model it"
            )
    for g in md.discrete:
        seen = set(np.unique(g.level[g.level >= 0]).tolist())
        absent = [lv for i, lv in enumerate(g.levels) if i not in seen]
        if absent:
            raise DataError(
                f"model '{model}': column '{g.column}' has no observed value at levels "
                f"{absent}; data.missing: impute cannot model them"
            )


def plan_lines(cfg: Config, data: TrialData) -> list[str]:
    """What ``data.missing`` will do, for ``trialbayes check``: per column the values missing,
    and the rows dropped (complete_case) or, per model, the values imputed (impute)."""
    m = data.missing
    if m is None or not m.n_values_missing:
        return []
    if m.policy == "complete_case":
        return [
            f"data.missing: complete_case — {m.n_rows_dropped} of {m.n_rows_read} rows will be "
            f"dropped ({m.dropped_rows}); missing values per column: {m.column_text()}"
        ]
    out = [
        f"data.missing: impute — {m.n_rows_incomplete} of {m.n_rows_read} rows have a missing "
        f"value; per column: {m.column_text()}"
    ]
    for spec in cfg.models:
        md = build_design(data, spec, cfg.baseline).missing
        if md is None:
            out.append(f"  model '{spec.name}': nothing to impute (its columns are complete)")
            continue
        cols = ", ".join(f"{c} {n} ({k})" for c, k, n, _ in md.describe())
        out.append(
            f"  model '{spec.name}': will impute {cols}, in {len(md.rows_imputed())} rows; "
            "then refit on complete cases for comparison"
        )
    return out
