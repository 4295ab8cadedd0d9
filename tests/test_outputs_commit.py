"""The final swap of an output folder: a signal during it, and a failing rename."""

import os
import signal

import pytest

from trialbayes.core.errors import Interrupted
from trialbayes.core.interrupts import committed, handle_signals
from trialbayes.core.outputs import OutputDir


def _previous(tmp_path):
    final = tmp_path / "case"
    final.mkdir()
    (final / "results.json").write_text("old")
    return final


def test_signal_during_the_swap_reports_the_new_outputs_as_complete(tmp_path, monkeypatch):
    final = _previous(tmp_path)
    swap = OutputDir._swap

    def swap_with_signal(self, backup):
        os.kill(os.getpid(), signal.SIGTERM)  # held back until both renames are done
        swap(self, backup)

    monkeypatch.setattr(OutputDir, "_swap", swap_with_signal)
    with handle_signals(), pytest.raises(Interrupted):
        with OutputDir(tmp_path, "case") as out:
            out.write_text("results.json", "new")
            out.commit()
        assert False, "the held-back SIGTERM was not raised"
    assert committed() == [final]
    assert (final / "results.json").read_text() == "new"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]  # no backup, no staging


def test_failed_rename_puts_the_previous_results_back(tmp_path, monkeypatch):
    final = _previous(tmp_path)
    with OutputDir(tmp_path, "case") as out:
        out.write_text("results.json", "new")
        real = type(out.staging).rename

        def failing(self, target):
            if self == out.staging:
                raise OSError("no space left on device (simulated)")
            return real(self, target)

        monkeypatch.setattr(type(out.staging), "rename", failing)
        with pytest.raises(OSError):
            out.commit()
        monkeypatch.undo()
    assert (final / "results.json").read_text() == "old"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["case"]


def test_markdown_prose_escapes_user_names_and_units():
    """Column names and units reach report.md prose escaped, not as raw HTML."""
    from trialbayes.report.markdown import _names

    assert "<img" not in _names(["<img src=x onerror=alert(1)>", "age"])
    assert _names([]) == "none" and _names("all") == "all"
