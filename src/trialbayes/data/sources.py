"""From a config's data source to validated :class:`~trialbayes.data.table.TrialData`: synthetic,
file or reconstructed (a digitised KM figure). Kept apart from ``data`` (validation) and
``reconstruct`` (Guyot) so that neither imports the other's caller."""

from __future__ import annotations

from ..config.data_sources import ColumnMap, FileSource, PatientSource, SyntheticSource
from ..core.errors import DataError
from .reconstruct.guyot import load_reconstructed
from .synthetic import DEFAULT_SEED, SYNTHETIC_COLUMNS, SYNTHETIC_LABEL, generate
from .table import TrialData, from_frame, read_table


def load_data(src: PatientSource) -> TrialData:
    """Load a patient-level data source (the config's ``data:``) and validate it."""
    if isinstance(src, SyntheticSource):
        seed = DEFAULT_SEED if src.seed is None else src.seed
        df, truth = generate(n=src.n, seed=seed)
        return from_frame(
            df,
            ColumnMap(**SYNTHETIC_COLUMNS),
            label=SYNTHETIC_LABEL,
            source=f"synthetic(n={src.n}, seed={seed})",
            synthetic=True,
            truth=truth,
        )
    if isinstance(src, FileSource):
        df = read_table(src.path, src.format)
        return from_frame(
            df,
            src.columns,
            missing=src.missing,
            label=src.label or src.shown_path,
            source=src.shown_path,
            time_unit=src.time_unit,
        )
    if src.kind == "reconstructed":
        return load_reconstructed(src)
    raise DataError(f"data kind '{src.kind}' has no patient-level data")
