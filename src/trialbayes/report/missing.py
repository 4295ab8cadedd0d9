"""The missing-values section of report.md, report.html and the CLI, from the run's typed
``missing_data`` section (:class:`~trialbayes.results.missing.MissingData`)."""

from __future__ import annotations

import pandas as pd

from ..core.text import level_text, md_table
from ..results.missing import MissingData, ModelImputation
from ..results.model import Results
from .html import h3, p, table

MAR = (
    "assuming the values are missing at random given what the model sees (the arm, the other "
    "columns of the model and the outcome); an assumption the data cannot check"
)


def section_of(r: Results) -> MissingData | None:
    """The run's missing-values section (None when the source cannot miss values)."""
    return r.missing_data


def policy_sentence(m: MissingData) -> str:
    """The ``data.missing`` policy and what it did, in a sentence."""
    if m.policy == "complete_case":
        return (
            f"complete-case analysis: {m.n_rows_dropped} of {m.n_rows_read} rows had a missing "
            "covariate or biomarker value and were dropped (every estimate rests on the "
            f"{m.n_rows_read - m.n_rows_dropped} complete rows)"
        )
    if m.policy == "impute":
        return (
            f"imputed inside each model: {m.n_rows_incomplete} of {m.n_rows_read} rows had a "
            "missing covariate or biomarker value; no row was dropped. A continuous value "
            "(and the biomarker, on the scale the model uses) is a latent parameter; a binary or "
            "text covariate is summed over its levels in the likelihood; " + MAR
        )
    return "no missing values"


def _hr(h) -> str:
    return "–" if h is None else h.text()


def _cc(m: ModelImputation) -> str:
    if m.complete_case is None:
        return m.note or "–"
    rel = "" if m.complete_case_reliable else " [unreliable]"
    return (
        f"{m.complete_case.text()} (n = {m.complete_case_n}, {m.complete_case_events} events){rel}"
    )


def _shift(x: ModelImputation) -> str:
    if x.log_hr_shift is None:
        return "–"
    sd = x.imputed.log_sd
    return f"{x.log_hr_shift:+.3f}" + (f" ({x.log_hr_shift / sd:+.2f} SD)" if sd > 0 else "")


def _cc_hr(x: ModelImputation) -> str:
    if x.complete_case is None:
        return x.note or "–"
    return x.complete_case.text() + ("" if x.complete_case_reliable else " [unreliable]")


def _hr_rows(m: MissingData) -> list[list]:
    return [
        [
            x.model,
            x.compared_at,
            _hr(x.imputed),
            _cc_hr(x),
            "–" if x.complete_case_n is None else f"{x.complete_case_n} ({x.complete_case_events})",
            _shift(x),
        ]
        for x in m.models
    ]


HR_COLUMNS = [
    "model",
    "compared",
    "imputed fit: HR (CrI)",
    "complete cases: HR (CrI)",
    "complete cases: patients (events)",
    "log-HR shift",
]
IMPUTED_COLUMNS = ["model", "column", "kind", "imputed", "how"]


def _imputed_rows(m: MissingData) -> list[list]:
    return [[x.model, c.column, c.kind, c.n_imputed, c.method] for x in m.models for c in x.columns]


def markdown_lines(r: Results) -> list[str]:
    """The Missing values section of report.md ([] without one)."""
    m = section_of(r)
    if m is None:
        return []
    L = ["\n## Missing values", f"Policy `data.missing: {m.policy}` — {policy_sentence(m)}."]
    cols = pd.DataFrame(
        [[c.column, c.role, c.kind, c.n_missing, f"{100 * c.share:.1f}%"] for c in m.columns],
        columns=["column", "role", "kind", "missing", "share"],
    )
    L += ["", md_table(cols)]
    if m.models:
        level_label = level_text(m.models[0].imputed.level)
        L += [
            "",
            "Values imputed per model:",
            "",
            md_table(pd.DataFrame(_imputed_rows(m), columns=IMPUTED_COLUMNS)),
            "",
            f"Treatment HR of each imputing model beside its complete-case refit (same model, "
            f"priors and sampler; {level_label} CrI). Shift: posterior mean log-HR of the imputed "
            "fit minus the complete-case one (in posterior SDs of the imputed fit):",
            "",
            md_table(pd.DataFrame(_hr_rows(m), columns=HR_COLUMNS)),
        ]
    return L


def html_blocks(r: Results) -> list:
    """The Missing values blocks of report.html ([] without one)."""
    m = section_of(r)
    if m is None:
        return []
    out = [
        p(f"Policy data.missing: {m.policy} — {policy_sentence(m)}."),
        table(
            ["column", "role", "kind", "missing", "share"],
            [[c.column, c.role, c.kind, c.n_missing, f"{100 * c.share:.1f}%"] for c in m.columns],
            "Missing values per column (rows read from the file)",
        ),
    ]
    if m.models:
        out += [
            h3("Imputed fit beside the complete cases"),
            table(IMPUTED_COLUMNS, _imputed_rows(m), "Values imputed per model, and how"),
            table(HR_COLUMNS, _hr_rows(m), "Treatment HR: imputed fit and complete-case refit"),
            p(
                "The complete-case refit is the same model with the same priors, sampler and "
                "baseline cut points on the patients with every value of the model observed. "
                "Shift: posterior mean log-HR of the imputed fit minus the complete-case one, and "
                "in posterior SDs of the imputed fit."
            ),
        ]
    return out


def missing_lines(r: Results) -> list[str]:
    """The CLI's lines after the headline."""
    m = section_of(r)
    if m is None or not m.n_values_missing:
        return []
    if m.policy == "complete_case":
        return [f"  missing values: {m.n_rows_dropped} rows dropped ({m.column_text()})"]
    out = [f"  missing values imputed in the model: {m.column_text()}"]
    for x in m.models:
        out.append(
            f"  {x.model:<14} {x.compared_at}: imputed {_hr(x.imputed)} vs complete cases {_cc(x)}"
        )
    return out
