"""The one seed scheme of the package: every random stream is derived from the config's seed
(``sampler.seed``) and the names of what it is for, so that adding a model, a scenario or a
cell never shifts another's stream.

``child_seed(root, "fit", "adjusted")`` = the first 32-bit word of
``numpy.random.SeedSequence([root mod 2**32, crc32("fit"), crc32("adjusted")])``; ``child_sequence``
is the SeedSequence itself (the executor gives one to each cell). Names in use: ``fit/<model>``
(each model's fit), ``scenario/<model>/<scenario>`` (prior-sensitivity refits),
``published/<estimate>/<scenario>`` (published-estimate posteriors), ``shrinkage``,
``prior_draws/<model>/<term>`` (prior draws stored beside the posterior), ``calibration`` (the
root of the calibration replicates), and the executor's cell keys under a job's root.
"""

from __future__ import annotations

import zlib

import numpy as np


def child_sequence(root: int, *names: str) -> np.random.SeedSequence:
    """The ``SeedSequence`` of the stream named ``names`` under ``root`` (see the module doc)."""
    return np.random.SeedSequence(
        [int(root) & 0xFFFFFFFF, *(zlib.crc32(str(n).encode()) for n in names)]
    )


def child_seed(root: int, *names: str) -> int:
    """A seed for the stream named ``names`` under ``root`` (see the module docstring)."""
    return int(child_sequence(root, *names).generate_state(1)[0])
