import os

import pytest

os.environ.setdefault("CI", "true")  # no progress bars in tests


@pytest.fixture
def fast_sampler():
    """Small, seeded sampler settings for smoke tests (diagnostics thresholds relaxed accordingly)."""
    return {"backend": "nutpie", "chains": 2, "draws": 300, "tune": 300, "seed": 11, "target_accept": 0.95}


@pytest.fixture
def relaxed_gate():
    return {"ess_bulk_min": 100, "ess_tail_min": 100, "max_divergences": 5, "allow_unreliable": False}
