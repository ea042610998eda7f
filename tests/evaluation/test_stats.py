import numpy as np
import pytest

from habc.evaluation.stats import (
    difference_interval,
    failures_by_stage,
    mean_success_length,
    wilson_interval,
)


def test_wilson_hand_computed():
    # p = 0.5, n = 10, z = 1.96: centre 0.5, half-width 1.96 * sqrt(0.025 + 0.009604) / 1.38416
    low, high = wilson_interval(5, 10)
    assert low == pytest.approx(0.236593, abs=1e-5)
    assert high == pytest.approx(0.763407, abs=1e-5)
    # k = 0: (0, z^2 / n / (1 + z^2 / n)) = (0, 0.384146 / 1.384146)
    low, high = wilson_interval(0, 10)
    assert low == 0.0
    assert high == pytest.approx(0.277533, abs=1e-5)
    low, high = wilson_interval(10, 10)
    assert high == 1.0 and low == pytest.approx(1 - 0.277533, abs=1e-5)


def test_wilson_rejects_bad_counts():
    with pytest.raises(ValueError):
        wilson_interval(3, 2)
    with pytest.raises(ValueError):
        wilson_interval(0, 0)


def test_mean_success_length_over_successes_only():
    success = np.array([True, False, True])
    length = np.array([10, 500, 20])
    assert mean_success_length(success, length) == 15.0
    assert mean_success_length(np.zeros(2, bool), np.array([1, 2])) is None


def test_difference_interval_matches_newcombes_worked_examples():
    # Newcombe (1998), Statistics in Medicine 17:873-890, Table II, method 10.
    for (k1, n1, k2, n2), (low, high) in {(56, 70, 48, 80): (0.0524, 0.3339),
                                          (9, 10, 3, 10): (0.1705, 0.8090),
                                          (6, 7, 2, 7): (0.0582, 0.8062),
                                          (5, 56, 0, 29): (-0.0381, 0.1926)}.items():
        assert difference_interval(k1, n1, k2, n2) == pytest.approx((low, high), abs=1e-4)
    # by hand: 5/10 - 5/10 = 0, each side sqrt(2) * (0.5 - 0.236593) = 0.372514
    assert difference_interval(5, 10, 5, 10) == pytest.approx((-0.372514, 0.372514), abs=1e-5)


def test_failures_by_stage_counts_only_failed_trials():
    success = np.array([False, True, False, False, True])
    stage = np.array([3, 3, 0, 3, 1])
    assert failures_by_stage(success, stage, 4) == [1, 0, 0, 2]
    assert failures_by_stage(np.ones(2, bool), np.array([0, 1]), 2) == [0, 0]


def test_failures_by_stage_rejects_bad_stages():
    with pytest.raises(ValueError, match="lie in"):
        failures_by_stage(np.array([False]), np.array([4]), 4)
    with pytest.raises(ValueError, match="outcomes"):
        failures_by_stage(np.array([False, True]), np.array([0]), 4)
