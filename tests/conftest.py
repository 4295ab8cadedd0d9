"""Session-wide fixtures: one small end-to-end run shared by every test that reads its outputs.

Tiers: ``pytest -m "not slow"`` (``make test-fast``) runs unit tests, tiny models and the shared
run; ``@pytest.mark.slow`` tests sample realistic models (``make test`` runs both).
"""

import os
from pathlib import Path

import pytest
import yaml

os.environ.setdefault("CI", "true")  # no progress bars in tests

ROOT = Path(__file__).resolve().parents[1]


def small_mirocals_config(tmp: Path, **over) -> Path:
    """configs/mirocals.yaml with a small sampler (2 x 300 draws). Its outputs are what the tests
    read; whether 2 x 300 draws pass the gate is chance (a divergence now and then), so the gate
    does not set the exit status here (the default config's gate is a slow test)."""
    cfg = yaml.safe_load((ROOT / "configs" / "mirocals.yaml").read_text())
    cfg["sampler"].update({"chains": 2, "draws": 300, "tune": 300})
    cfg["diagnostics"].update({"ess_bulk_min": 100, "ess_tail_min": 100, "rhat_max": 1.05,
                               "allow_unreliable": True})
    cfg.update(over)
    path = tmp / "mirocals_small.yaml"
    path.write_text(yaml.safe_dump(cfg))
    return path


@pytest.fixture(scope="session")
def small_run(tmp_path_factory):
    """(folder, config path, CLI result) of one run of the small default analysis (3 models)."""
    from helpers import run_cli

    tmp = tmp_path_factory.mktemp("run")
    cfg = small_mirocals_config(tmp)
    res = run_cli("run", cfg, "--out", tmp / "out")
    return tmp, cfg, res

