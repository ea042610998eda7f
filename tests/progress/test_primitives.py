"""Gripper-switch stages on hand-computed cases, and the vectorised count against a loop."""

import numpy as np
import pytest

from habc.errors import ConfigError
from habc.progress.primitives import (
    GripperStageConfig,
    gripper_switches,
    midpoint_threshold,
    num_stages_from_demos,
    stages_from_switches,
)


def test_a_switch_counts_once_the_new_state_holds_for_min_run_frames():
    # Episode 1 (frames 0-14): open 3, a 1-frame flicker, open 3, closed 4, open 4.
    # Episode 2 (frames 15-19): a 2-frame closed flicker, then open: its start state is open.
    closed = np.array([0, 0, 0, 1, 0, 0, 0, 1, 1, 1, 1, 0, 0, 0, 0,
                       1, 1, 0, 0, 0], dtype=bool)
    switches = gripper_switches(closed, np.array([0, 15]), min_run=3)
    expected = [0] * 7 + [1] * 4 + [2] * 4 + [0] * 5
    assert switches.tolist() == expected


def test_with_min_run_1_every_change_is_a_switch():
    closed = np.array([0, 1, 0, 0, 1], dtype=bool)
    assert gripper_switches(closed, np.array([0]), min_run=1).tolist() == [0, 1, 2, 2, 3]


def test_an_episode_that_never_holds_a_state_has_no_switch():
    closed = np.array([0, 1, 0, 1, 1, 1], dtype=bool)  # episode 1 flickers; episode 2 holds
    assert gripper_switches(closed, np.array([0, 3]), min_run=2).tolist() == [0] * 6


def _switches_by_loop(closed: np.ndarray, starts: np.ndarray, min_run: int) -> np.ndarray:
    """The definition, frame by frame: runs, then states, then switches."""
    out = np.zeros(len(closed), dtype=np.int64)
    for start, end in zip(starts, [*starts[1:], len(closed)], strict=True):
        state, count, t = None, 0, start
        while t < end:
            run_end = t
            while run_end < end and closed[run_end] == closed[t]:
                run_end += 1
            if run_end - t >= min_run:
                if state is not None and closed[t] != state:
                    count += 1
                state = closed[t]
            out[t:run_end] = count
            t = run_end
    return out


@pytest.mark.parametrize("min_run", [1, 2, 4])
def test_the_vectorised_count_agrees_with_a_loop(min_run):
    rng = np.random.default_rng(min_run)
    lengths = rng.integers(1, 40, size=30)
    starts = np.concatenate([[0], np.cumsum(lengths)[:-1]])
    # sticky random gripper: long holds with flickers
    closed = np.cumsum(rng.random(lengths.sum()) < 0.2) % 2 == 1
    np.testing.assert_array_equal(gripper_switches(closed, starts, min_run),
                                  _switches_by_loop(closed, starts, min_run))


def test_stages_cap_switches_at_the_last_stage():
    assert stages_from_switches(np.array([0, 1, 2, 3]), 2).tolist() == [0, 1, 1, 1]
    assert stages_from_switches(np.array([2, 2, 0]), np.array([1, 3, 3])).tolist() == [0, 2, 0]


def test_k_is_one_more_than_the_demos_most_common_switch_count():
    assert num_stages_from_demos(np.array([1, 1, 2, 0])) == 2
    assert num_stages_from_demos(np.array([0, 2, 2, 1, 1])) == 2  # tie 1 vs 2: the smaller
    with pytest.raises(ConfigError, match="successful demo"):
        num_stages_from_demos(np.array([], dtype=np.int64))


def test_the_default_threshold_is_the_midpoint_of_the_1st_and_99th_percentiles():
    assert midpoint_threshold(np.arange(101.0)) == pytest.approx(50.0)  # (1 + 99) / 2
    command = np.concatenate([np.zeros(99), [0.8] * 99, [100.0, -100.0]])  # two outliers
    # 200 values: the 1st percentile sits at rank 1.99 (0.0), the 99th at rank 197.01 (0.8)
    assert midpoint_threshold(command) == pytest.approx(0.4)


def test_min_run_must_be_positive():
    with pytest.raises(ConfigError, match="min_run"):
        GripperStageConfig(min_run=0)
