"""Figures drawn by the sidecar process (core/sidecar.py, report.plan.FigurePlan): the same PNG
bytes as drawn in this process; a figure that cannot be pickled, or that fails there, is drawn
here; without a sidecar everything is drawn here."""

import threading
import time

import numpy as np
import pytest

from trialbayes.core import sidecar
from trialbayes.core.outputs import OutputDir
from trialbayes.plots.general import hr_posterior_plot
from trialbayes.report.plan import FigurePlan


def _plan():
    rng = np.random.default_rng(1)
    plan = FigurePlan()
    for i in range(4):
        draws = rng.normal(-0.2, 0.2, 2000)
        plan.add(f"hr_{i}", "a caption", lambda d=draws, i=i: hr_posterior_plot(d, title=f"{i}"))
    lock = threading.Lock()  # cannot be pickled: drawn in this process
    plan.add("local", "c", lambda: (lock, hr_posterior_plot(np.linspace(-0.5, 0.3, 50)))[1])
    return plan


def _render(plan, root, name, wait_for_sidecar=False):
    with OutputDir(root, name) as out:
        pending = plan.start(out, 70)
        if wait_for_sidecar:  # let the sidecar take the first figure before this process helps
            t0 = time.time()
            while (
                not pending[0][1].running() and not pending[0][1].done() and time.time() - t0 < 60
            ):
                time.sleep(0.05)
        plan.finish(pending, out, 70)
        files = {p.name: p.read_bytes() for p in (out.staging / "figures").glob("*.png")}
    return pending, files


def test_no_sidecar_draws_here(tmp_path):
    sidecar.stop()
    pending, files = _render(_plan(), tmp_path, "a")
    assert pending == [] and len(files) == 5


@pytest.mark.slow
def test_sidecar_figures_equal_local_ones(tmp_path, monkeypatch):
    local = _render(_plan(), tmp_path, "local")[1]
    monkeypatch.setenv(sidecar.ENV_VAR, "on")
    assert sidecar.start(("matplotlib", "trialbayes.plots.general"), {"MPLBACKEND": "Agg"})
    try:
        pending, files = _render(_plan(), tmp_path, "side", wait_for_sidecar=True)
    finally:
        sidecar.stop()
    assert {j.key for j, _ in pending} == {f"hr_{i}" for i in range(4)}  # not the lock's
    assert any(not f.cancelled() for _, f in pending)  # the sidecar drew some
    assert files == local
    assert not sidecar.running() and sidecar.submit(int) is None


@pytest.mark.parametrize(
    ("n_cpus", "load", "idle", "auto_on"),
    [(2, 0.0, 1, True), (2, 0.4, 1, True), (2, 0.6, 0, False), (2, 1.7, 0, False),
     (4, 1.2, 2, True), (4, 3.6, 0, False), (1, 0.0, 0, False)],
)  # fmt: skip
def test_idle_cpu_rule(monkeypatch, n_cpus, load, idle, auto_on):
    """The ``auto`` rule of the sidecar and the background compile: the 1-minute load rounded to
    whole CPUs; a 2-core machine at a light load has one idle (truncation said so only at load
    exactly 0), a busy one none; ``on``/``off`` override it, one CPU is never enough."""
    monkeypatch.setattr(sidecar, "cpus", lambda: n_cpus)
    monkeypatch.setattr(sidecar.os, "getloadavg", lambda: (load, load, load))
    assert sidecar.idle_cpus() == idle
    for mode, expected in (("auto", auto_on), ("on", n_cpus >= 2), ("off", False)):
        monkeypatch.setenv(sidecar.ENV_VAR, mode)
        assert sidecar.wanted(sidecar.ENV_VAR) is expected
