"""Every exception class of trialbayes, in one place so that any layer can raise them.

* :class:`ConfigError` / :class:`RawConfigError`: a config that cannot be used (exit 2);
* :class:`DataError` / :class:`ReconstructionError`: data that cannot be analysed (exit 2);
* :class:`NotFittedError`: a result asked of a model before ``fit``;
* :class:`SamplingIncomplete`: the sampler returned fewer or non-finite draws (never analysed);
* :class:`Interrupted`: SIGINT / SIGTERM (exit 128 + the signal number).
"""

from __future__ import annotations

import signal


class RawConfigError(ValueError):
    """Duplicate keys, non-finite numbers or an oversized document; the message says where."""


class ConfigError(ValueError):
    """A config that cannot be used. Its message names the key and what is wrong."""


class DataError(ValueError):
    """Input data that cannot be analysed. The message names the column and rows."""


class ReconstructionError(DataError):
    """Digitised input that cannot be right. The message names the file, arm and rows."""


class NotFittedError(RuntimeError):
    """A result was asked of a model that has not been fitted yet."""


class SamplingIncomplete(RuntimeError):
    """The sampler returned fewer draws than asked, or non-finite draws: never analysed."""


class Interrupted(BaseException):
    """The run was stopped by a signal. ``exit_code`` is 128 + the signal number."""

    def __init__(self, signum: int):
        self.signum = signum
        self.exit_code = 128 + signum
        super().__init__(f"interrupted by {signal.Signals(signum).name}")
