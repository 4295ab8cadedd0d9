"""Posterior draws straight from nutpie's Arrow trace, for jobs that refit one compiled model many
times (simulated trials, calibration replicates) and read a few variables of each fit.

nutpie returns every variable (deterministics included) and every sampler statistic of every
draw, warm-up included; turning that into an ArviZ DataTree (thousands of xarray objects) costs
more than sampling a small model. :class:`RawDraws` keeps only the post-warm-up draws of the
variables asked for and the statistics asked for, as NumPy arrays ``(chain, draw, ...)``; the
same numbers the DataTree would hold. :meth:`RawDraws.datatree` makes the small DataTree that
``inference.sampler.diagnose`` reads (posterior of the given variables, ``diverging`` and
``energy``), so the diagnostics are the same functions on the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pyarrow
import xarray as xr

from ..core.errors import SamplingIncomplete
from ..core.interrupts import raise_if_interrupted

#: the statistics a refit keeps by default: divergences (counted by every many-fit job) and the
#: energy (E-BFMI in the diagnostics gate)
DEFAULT_STATS = ("diverging", "energy")


@dataclass
class RawDraws:
    """Post-warm-up draws ``(chain, draw, *shape)`` of some variables and sampler statistics."""

    draws: dict[str, np.ndarray]
    stats: dict[str, np.ndarray]

    @property
    def divergences(self) -> int:
        return int(np.asarray(self.stats["diverging"]).sum())

    def flat(self, name: str) -> np.ndarray:
        """A variable's draws with the chains stacked (draws first), as ``flatten_draws``."""
        a = self.draws[name]
        return a.reshape((-1,) + a.shape[2:])

    def datatree(self) -> xr.DataTree:
        """posterior (the variables) and sample_stats (the statistics) as a DataTree."""

        def ds(arrays: dict) -> xr.Dataset:
            out = {}
            for k, a in arrays.items():
                dims = ("chain", "draw") + tuple(f"{k}_dim_{i}" for i in range(a.ndim - 2))
                out[k] = (dims, a)
            c, d = next(iter(arrays.values())).shape[:2]
            return xr.Dataset(out, coords={"chain": np.arange(c), "draw": np.arange(d)})

        return xr.DataTree.from_dict({"posterior": ds(self.draws), "sample_stats": ds(self.stats)})


def _column(batch, name: str) -> np.ndarray:
    col = batch.column(name)
    meta = col.field.metadata or {}
    shape = [int(s) for s in meta.get(b"shape", b"").decode().split(",") if s]
    arr = pyarrow.array(col)
    if hasattr(arr, "flatten") and shape:
        arr = arr.flatten()
    values = arr.to_numpy(zero_copy_only=False)
    return values.reshape((batch.num_rows, *shape))


def arrow_draws(trace, names, stats, chains: int, draws: int) -> RawDraws:
    """RawDraws of nutpie's raw trace (``return_raw_trace=True``): the rows after warm-up of
    ``names`` and ``stats``; a trace shorter than ``chains`` × ``draws`` is refused, like
    ``core.interrupts.check_complete``."""
    raise_if_interrupted()
    draw_batches, stat_batches = trace.get_arrow_trace()
    if len(draw_batches) != chains:
        raise SamplingIncomplete(
            f"the sampler returned {len(draw_batches)} chains, not {chains}; the run was cut short"
        )
    have = set(draw_batches[0].column_names)
    out: dict[str, list] = {n: [] for n in names if n in have}
    st: dict[str, list] = {n: [] for n in stats}
    for db, sb in zip(draw_batches, stat_batches):
        keep = ~_column(sb, "tuning").astype(bool)
        if int(keep.sum()) != draws:
            raise SamplingIncomplete(
                f"the sampler returned {int(keep.sum())} draws in a chain, not {draws}; "
                "the run was cut short"
            )
        for n in out:
            out[n].append(_column(db, n)[keep])
        for n in stats:
            st[n].append(_column(sb, n)[keep])
    result = RawDraws(
        {n: np.stack(v) for n, v in out.items()}, {n: np.stack(v) for n, v in st.items()}
    )
    for n, a in result.draws.items():
        if not np.isfinite(a).all():
            raise SamplingIncomplete(
                f"non-finite posterior draws of '{n}': the sampler did not finish"
            )
    return result
