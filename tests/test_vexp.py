"""models/vexp.py (the fused likelihood's exp, a loop the compiler vectorises) against NumPy's exp:
within 1 ulp on the range it computes, exactly NumPy's value outside it and for special values.
Deterministic: fixed inputs, the tolerance is floating-point rounding."""

import numpy as np

from trialbayes.models.vexp import HIGH, LOW, vexp


def ulps(a: np.ndarray, ref: np.ndarray) -> np.ndarray:
    return np.abs(a - ref) / np.spacing(np.abs(ref))


def test_within_one_ulp_of_numpy_over_the_range():
    rng = np.random.default_rng(0)
    for x in (
        rng.uniform(LOW, HIGH, 1_000_000),
        rng.normal(0.0, 3.0, 1_000_000),  # linear predictors' usual scale
        rng.uniform(-1e-6, 1e-6, 100_000),  # around 0, where r carries the whole value
        np.linspace(-0.35, 0.35, 100_001),  # the reduced range's edges (± ln 2 / 2)
    ):
        assert ulps(vexp(x), np.exp(x)).max() <= 1.0


def test_exactly_numpy_outside_the_range_and_for_special_values():
    x = np.array([0.0, -0.0, 1e-300, -1e-300, 5e-324, LOW, HIGH, 709.7, 709.79, 710.0, 1e5,
                  -708.1, -745.0, -745.2, -800.0, -1e5, np.inf, -np.inf, np.nan])  # fmt: skip
    with np.errstate(over="ignore"):
        ref = np.exp(x)
    got = vexp(x)
    inside = (x >= LOW) & (x <= HIGH)
    assert ulps(got[inside], ref[inside]).max() <= 1.0
    np.testing.assert_array_equal(got[~inside], ref[~inside])  # NaN == NaN here
    assert got[0] == 1.0 and got[1] == 1.0


def test_any_layout_and_length():
    rng = np.random.default_rng(1)
    x = rng.normal(0, 2, (400, 3))[:, 1]  # a strided column
    assert ulps(vexp(x), np.exp(x)).max() <= 1.0
    assert vexp(np.array([])).shape == (0,)
    assert ulps(vexp(np.array([2.5])), np.exp([2.5])).max() <= 1.0
