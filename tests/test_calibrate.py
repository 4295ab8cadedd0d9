"""Simulation-based calibration: the rank statistics and the uniformity checks."""

from __future__ import annotations

import numpy as np
import pytest

from trialbayes.calibration.sbc import fractional_ranks, rank_uniformity


def test_rank_of_a_calibrated_posterior_is_uniform():
    """Exact conjugate SBC: θ ~ N(0,1), y ~ N(θ,1) → posterior N(y/2, 1/2), L = 99 draws. 400
    replicates; the chi-square p-value is uniform, so p > 1e-4 fails with probability 1e-4."""
    rng = np.random.default_rng()
    theta = rng.normal(size=400)
    y = theta + rng.normal(size=400)
    post = y[:, None] / 2 + np.sqrt(0.5) * rng.normal(size=(400, 99))
    ranks = (post < theta[:, None]).sum(1)
    u = rank_uniformity(ranks, 99, 10)
    assert u["chi2_p"] > 1e-4


def test_rank_of_an_overconfident_posterior_is_detected():
    """Posterior SD 1/4 of the truth's: ranks pile up at 0 and L. With 400 replicates the expected
    chi-square is ≈ 1200 (df 9); p < 1e-6 fails only if the counts are near equal, probability
    far below 1e-6 (binomial tails: each end bin has mean ≈ 150 against 40 under uniformity)."""
    rng = np.random.default_rng()
    theta = rng.normal(size=400)
    y = theta + rng.normal(size=400)
    post = y[:, None] / 2 + 0.25 * np.sqrt(0.5) * rng.normal(size=(400, 99))
    ranks = (post < theta[:, None]).sum(1)
    u = rank_uniformity(ranks, 99, 10)
    assert u["chi2_p"] < 1e-6 and u["outside"]


def test_fractional_ranks_are_uniform_on_unit_interval():
    """Uniform ranks 0..L spread to (0,1): KS p > 1e-4 (false failure 1e-4)."""
    from scipy import stats

    rng = np.random.default_rng()
    u = fractional_ranks(rng.integers(0, 100, 5000), 99, rng)
    assert 0 < u.min() and u.max() < 1
    assert stats.kstest(u, "uniform").pvalue > 1e-4


def test_calibrate_cli_rejects_unknown_model_before_fitting(tmp_path):
    from helpers import run_cli

    cfg = tmp_path / "c.yaml"
    cfg.write_text("name: c\ndata: {kind: synthetic, n: 40}\nmodels: [{name: unadjusted}]\n")
    res = run_cli("calibrate", cfg, "--model", "nope", "--fits", "10", "--out", tmp_path / "out")
    assert res.exit_code == 2 and "unknown model 'nope'" in res.output
    assert not (tmp_path / "out" / "c_calibration").exists()


@pytest.mark.slow
def test_sbc_cells_refit_one_compiled_model_and_rank_the_prior_draw(tmp_path):
    """Three in-process SBC replicates of a tiny model (one compilation): ranks lie in 0..L for
    the tracked parameters, the run writes its report and figures."""
    from trialbayes.calibration.sbc import _MODELS
    from trialbayes.config.calibration import CalibrationSettings
    from trialbayes.config.schema import parse_config
    from trialbayes.routes.calibration import run_calibration

    cfg = parse_config({"name": "tiny", "data": {"kind": "synthetic", "n": 40, "seed": 2},
                        "models": [{"name": "unadjusted"}], "baseline": {"n_intervals": 2}})
    s = CalibrationSettings(model="unadjusted", fits=3, chains=2, draws=100, tune=100, thin=99)
    results, path = run_calibration(cfg, s, tmp_path, backend="inprocess")
    res = results.calibration
    assert results.kind == "calibration" and not res.failed_cells
    ranks = res.ranks["treatment"]
    assert len(ranks) == 3 and all(0 <= r <= 99 for r in ranks)
    key = [k for k in _MODELS if k[1] == "unadjusted"][0]
    assert _MODELS[key].sampler.compile_count == 1
    assert (path / "figures" / "sbc_ecdf.png").exists() and (path / "report.md").exists()
    assert set(res.ranks) == {"treatment", "log_baseline_hazard[0]", "baseline_rw_sigma",
                              "log_baseline_hazard[1]"}


def _calibration_cfg(tmp_path, section: dict | None):
    import yaml

    cfg = {"name": "c", "data": {"kind": "synthetic", "n": 40},
           "models": [{"name": "unadjusted"}, {"name": "adjusted", "covariates": "all"}]}
    if section is not None:
        cfg["calibration"] = section
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(cfg))
    return tmp_path / "c.yaml"


def test_calibrate_reads_the_config_section_and_cli_options_override(tmp_path, monkeypatch):
    """`trialbayes calibrate CONFIG`: settings from `calibration:`, an option given on the
    command line wins, defaults fill the rest (run_calibration replaced by a recorder)."""
    import types

    from helpers import run_cli

    import trialbayes.routes.calibration as cr

    seen = {}

    def fake(cfg, s, out, backend, workers, scheduler, progress, config_path=None):
        seen.update(s=s, backend=backend, workers=workers, progress=progress)
        calibration = types.SimpleNamespace(parameters=[], failed_cells=[])
        return types.SimpleNamespace(calibration=calibration), tmp_path / "x"

    monkeypatch.setattr(cr, "run_calibration", fake)
    section = {"model": "unadjusted", "replicates": 30, "draws": 200, "thin": 49,
               "executor": "inprocess", "workers": 1, "seed": 9}
    res = run_cli("calibrate", _calibration_cfg(tmp_path, section), "--draws", "300", "-q")
    assert res.exit_code == 0, res.output
    s = seen["s"]
    assert (s.model, s.fits, s.draws, s.tune, s.thin, s.seed) == ("unadjusted", 30, 300, 300, 49, 9)
    assert (seen["backend"], seen["workers"], seen["progress"]) == ("inprocess", 1, False)
    res = run_cli("calibrate", _calibration_cfg(tmp_path, None))  # no section: defaults
    s = seen["s"]
    assert (s.model, s.fits, s.draws, s.chains, s.thin) == ("adjusted", 100, 500, 2, 99)
    assert seen["backend"] == "auto" and seen["progress"] is True


def test_calibration_section_is_strict(tmp_path):
    from helpers import run_cli

    for section, msg in (
        ({"replicate": 20}, "replicate"),
        ({"model": "nope"}, "calibration.model: unknown model 'nope'"),
        ({"thin": 999, "draws": 100}, "exceeds the draws of a refit"),
        ({"executor": "processes", "scheduler": "local"}, "needs executor 'dask'"),
    ):
        res = run_cli("calibrate", _calibration_cfg(tmp_path, section), "--out", tmp_path / "o")
        assert res.exit_code == 2 and msg in res.output, (section, res.output)
        assert not (tmp_path / "o").exists()


def test_calibrate_cli_override_that_breaks_the_section_is_one_line(tmp_path):
    """A command-line option that makes the section invalid: exit 2, one line naming the key
    (no pydantic dump), nothing written. One chain is refused (R-hat needs two)."""
    from helpers import run_cli

    for section, opts, msg in (
        (None, ("--chains", "1"), "calibration.chains: 1 chain leaves R-hat undefined"),
        ({"thin": 150}, ("--draws", "50"), "calibration.thin (150) exceeds the draws"),
        (None, ("--workers", "1", "--chains", "9"), "calibration.chains: Input should be"),
    ):
        cfg = _calibration_cfg(tmp_path, section)
        res = run_cli("calibrate", cfg, *opts, "--out", tmp_path / "o")
        assert res.exit_code == 2 and msg in res.output, (opts, res.output)
        lines = [ln for ln in res.output.splitlines() if ln.strip()]
        assert len(lines) == 1 and "pydantic" not in res.output, res.output
        assert not (tmp_path / "o").exists()


def test_diagnose_with_one_chain_says_rhat_is_undefined_without_a_numpy_warning():
    """R-hat of a single chain is undefined: the gate fails with a sentence saying why, and no
    'All-NaN axis' RuntimeWarning is raised (warnings are errors here)."""
    import warnings

    from arviz_base import from_dict

    from trialbayes.config.schema import Diagnostics
    from trialbayes.inference.sampler import diagnose

    rng = np.random.default_rng()
    idata = from_dict({
        "posterior": {"a": rng.normal(size=(1, 400)), "b": rng.normal(size=(1, 400, 2))},
        "sample_stats": {"diverging": np.zeros((1, 400), bool),
                         "energy": rng.normal(size=(1, 400))},
    })
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        res = diagnose(idata, ["a", "b"], Diagnostics())
    assert res.rhat_max is None and not res.reliable
    assert res.failures[0] == "R-hat undefined with 1 chain (run 2 or more)"
