"""Gripper-switch stages on hand-computed cases, and the vectorised count against a loop."""

import numpy as np
import pytest

from habc.errors import ConfigError
from habc.progress.primitives import (
    GripperStageConfig,
    approach_split,
    debounced_state,
    goal_offset,
    grasp_offset,
    gripper_switches,
    holding,
    midpoint_threshold,
    near_point,
    num_stages_from_demos,
    settled_openings,
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


def test_past_the_last_stage_the_stage_keeps_the_gripper_state_of_the_demos():
    # K = 2 (a pick): a drop (2 switches) is the approach again, the regrasp (3) the carry
    assert stages_from_switches(np.array([0, 1, 2, 3, 4]), 2).tolist() == [0, 1, 0, 1, 0]
    # K = 3 (grasp, release): 3 switches grasp again (stage 1), 4 release again (stage 2)
    assert stages_from_switches(np.array([2, 3, 4, 5]), 3).tolist() == [2, 1, 2, 1]
    # K = 1 (no switch in the demos): always stage 0; K per frame
    assert stages_from_switches(np.array([1, 2, 2, 0]), np.array([1, 1, 3, 3])).tolist() \
        == [0, 0, 2, 0]


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


def test_the_debounced_state_ignores_flickers_and_starts_in_the_first_held_state():
    # Episode 1 (0-7): a 1-frame closed flicker, open 2, closed 3, a 1-frame open flicker, closed.
    # Episode 2 (8-10): a 1-frame open flicker, then closed 2: it starts closed.
    # Episode 3 (11-12): flickers only: open throughout.
    closed = np.array([1, 0, 0, 1, 1, 1, 0, 1,
                       0, 1, 1,
                       1, 0], dtype=bool)
    state = debounced_state(closed, np.array([0, 8, 11]), min_run=2)
    assert state.astype(int).tolist() == [0, 0, 0, 1, 1, 1, 1, 1,
                                          1, 1, 1,
                                          0, 0]
    assert debounced_state(np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), 3).shape == (0,)
    assert gripper_switches(np.zeros(0, dtype=bool), np.zeros(0, dtype=np.int64), 3).shape == (0,)


def test_holding_needs_a_settled_close_on_something():
    # Episode 1: open 2, then closed 5 with the fingers stopping on an object at 0.45.
    # Episode 2: open 1, then closed 5 with the fingers closing on nothing (0.30).
    state = np.array([0, 0, 1, 1, 1, 1, 1,
                      0, 1, 1, 1, 1, 1], dtype=bool)
    opening = np.array([1.0, 1.0, 0.9, 0.6, 0.45, 0.45, 0.44,
                        1.0, 0.9, 0.6, 0.3, 0.3, 0.3])
    held = holding(state, opening, np.array([0, 7]), opening_above=0.35, settle=2)
    # closed frames at run positions 0, 1 are still closing; from position 2 the opening counts
    assert held.astype(int).tolist() == [0, 0, 0, 0, 1, 1, 1,
                                         0, 0, 0, 0, 0, 0]
    # settle 0 reads the opening at once: the closing fingers pass for holding
    assert holding(state, opening, np.array([0, 7]), 0.35, 0).astype(int).tolist() == \
        [0, 0, 1, 1, 1, 1, 1, 0, 1, 1, 0, 0, 0]


def test_settled_openings_are_read_where_the_fingers_have_closed_for_settle_frames():
    # the two episodes of the holding test: settled frames are run positions >= 2 of a closed
    # run, whatever the opening reads (episode 1: frames 4-6; episode 2: frames 10-12)
    state = np.array([0, 0, 1, 1, 1, 1, 1,
                      0, 1, 1, 1, 1, 1], dtype=bool)
    opening = np.array([1.0, 1.0, 0.9, 0.6, 0.45, 0.45, 0.44,
                        1.0, 0.9, 0.6, 0.3, 0.3, 0.3])
    assert settled_openings(state, opening, np.array([0, 7]), settle=2).tolist() == \
        [0.45, 0.45, 0.44, 0.3, 0.3, 0.3]
    # an episode boundary ends a run: episode 2's closed frames restart at position 0
    joined = np.array([0, 1, 1, 1, 1, 1, 1], dtype=bool)
    assert settled_openings(joined, np.arange(7.0), np.array([0, 4]), settle=2).tolist() == \
        [3.0, 6.0]


def test_the_opening_settings_go_together():
    with pytest.raises(ConfigError, match="go together"):
        GripperStageConfig(opening_dim=3)
    with pytest.raises(ConfigError, match="go together"):
        GripperStageConfig(opening_above=0.35)
    with pytest.raises(ConfigError, match="settle"):
        GripperStageConfig(opening_dim=3, opening_above=0.35, settle=-1)


def test_the_approach_splits_where_the_hand_last_came_within_reach_of_its_first_grasp():
    # Episode 1 (frames 0-5): x = 0.10, 0.04, 0.09, 0.03, 0.01, 0.00; the gripper first switches
    # at frame 4 (hand at 0.01), again at 5. Distances to 0.01: 0.09 0.03 0.08 0.02 0 0.01; with
    # radius 0.025 the last frame outside is 2, so the split is at frame 3 (frame 1 came within
    # 0.03, not 0.025, and left again).
    # Episode 2 (frames 6-8): never switches -> 0. Episode 3 (frames 9-10): switches at its first
    # frame -> 1 throughout.
    x = np.array([0.10, 0.04, 0.09, 0.03, 0.01, 0.00, 0.5, 0.5, 0.5, 0.2, 0.9])
    position = np.stack([x, np.zeros_like(x)], axis=1)  # (N, 2): x, y
    switches = np.array([0, 0, 0, 0, 1, 2, 0, 0, 0, 1, 1])
    starts = np.array([0, 6, 9])
    assert approach_split(position, switches, starts, 0.025).tolist() == \
        [0, 0, 0, 1, 1, 1, 0, 0, 0, 1, 1]
    # radius 0.035 takes frame 1 in too, but frame 2 (0.08 away) is still the last outside
    assert approach_split(position, switches, starts, 0.035)[:6].tolist() == [0, 0, 0, 1, 1, 1]
    # y counts in the distance: frame 3 at y = 0.02 is 0.028 away
    position[3, 1] = 0.02
    assert approach_split(position, switches, starts, 0.025)[:6].tolist() == [0, 0, 0, 0, 1, 1]


def test_the_approach_split_settings_are_checked():
    with pytest.raises(ConfigError, match="approach_radius must be > 0"):
        GripperStageConfig(approach_radius=0.0)
    with pytest.raises(ConfigError, match="hand_dims needs"):
        GripperStageConfig(approach_radius=0.02, hand_dims=())
    assert GripperStageConfig(approach_radius=0.02, hand_dims=[0, 1]).hand_dims == (0, 1)


def test_the_grasp_offset_is_the_median_hand_to_object_offset_at_each_first_switch():
    # Episode 1 (frames 0-2) first switches at frame 1: hand - object = (0.3-0.1, 0.5-0.5) =
    # (0.2, 0.0). Episode 2 (frames 3-4) never switches: left out. Episode 3 (frames 5-7) first
    # switches at 6 (and again at 7): (0.0-0.1, 0.4-0.0) = (-0.1, 0.4). Episode 4 (frames 8-9)
    # at 8: (0.1-0.0, 0.2-0.0) = (0.1, 0.2). Medians: x of (0.2, -0.1, 0.1) = 0.1, y of
    # (0.0, 0.4, 0.2) = 0.2.
    hand = np.array([[9, 9], [0.3, 0.5], [9, 9], [9, 9], [9, 9],
                     [9, 9], [0.0, 0.4], [9, 9], [0.1, 0.2], [9, 9]])
    target = np.array([[0, 0], [0.1, 0.5], [0, 0], [0, 0], [0, 0],
                       [0, 0], [0.1, 0.0], [0, 0], [0.0, 0.0], [0, 0]])
    switches = np.array([0, 1, 1, 0, 0, 0, 1, 2, 1, 1])
    starts = np.array([0, 3, 5, 8])
    assert grasp_offset(hand, target, switches, starts) == pytest.approx([0.1, 0.2])
    with pytest.raises(ConfigError, match="no demo closes its gripper"):
        grasp_offset(hand, target, np.zeros(10, dtype=np.int64), starts)


def test_near_point_measures_from_the_target_plus_the_offset():
    # grasp points: (0.1, 0.0) + (0.02, 0) = (0.12, 0); (0.5, 0.5) + (0.02, 0) = (0.52, 0.5).
    # Distances: 0.02, 0 (the hand on the point), 0.05 (0.03 in x, 0.04 in y), 0.12.
    hand = np.array([[0.10, 0.0], [0.52, 0.5], [0.55, 0.54], [0.0, 0.0]])
    target = np.array([[0.1, 0.0], [0.5, 0.5], [0.5, 0.5], [0.1, 0.0]])
    offset = np.array([0.02, 0.0])
    assert near_point(hand, target, offset, 0.03).tolist() == [True, True, False, False]
    assert near_point(hand, target, offset, 0.06).tolist() == [True, True, True, False]
    # a per-frame offset (N, D): the last frame's point moves onto the hand
    per_frame = np.array([[0.02, 0.0], [0.02, 0.0], [0.02, 0.0], [-0.1, 0.0]])
    assert near_point(hand, target, per_frame, 0.03).tolist() == [True, True, False, True]


def test_the_goal_offset_is_the_median_object_to_goal_offset_at_each_last_frame():
    # three episodes ending at frames 2, 5, 9: object - goal there is (0.1, 0), (0.3, 0.02) and
    # (0.2, -0.01), whose medians are 0.2 and 0
    carried = np.zeros((10, 2))
    goal = np.zeros((10, 2))
    carried[[2, 5, 9]] = [[0.6, 0.5], [0.9, 0.52], [0.3, 0.49]]
    goal[[2, 5, 9]] = [[0.5, 0.5], [0.6, 0.5], [0.1, 0.5]]
    carried[3] = [5.0, 5.0]  # not a last frame: ignored
    assert goal_offset(carried, goal, np.array([3, 6, 10])) == pytest.approx([0.2, 0.0])


def test_the_goal_dims_are_checked():
    with pytest.raises(ConfigError, match="goal_radius must be > 0"):
        GripperStageConfig(goal_radius=0.0, carried_dims=(5,), goal_dims=(37,))
    with pytest.raises(ConfigError, match="one goal dimension per carried dimension"):
        GripperStageConfig(goal_radius=0.03, carried_dims=(5, 6), goal_dims=(37,))
    with pytest.raises(ConfigError, match="one goal dimension per carried dimension"):
        GripperStageConfig(goal_radius=0.03)
    with pytest.raises(ConfigError, match="need goal_radius"):
        GripperStageConfig(carried_dims=(5, 6), goal_dims=(37, 38))
    config = GripperStageConfig(goal_radius=0.03, carried_dims=[5, 6], goal_dims=[37, 38])
    assert (config.carried_dims, config.goal_dims) == ((5, 6), (37, 38))


def test_the_object_dims_are_checked():
    with pytest.raises(ConfigError, match="one dimension per hand dimension"):
        GripperStageConfig(approach_radius=0.02, hand_dims=(0, 1), object_dims=(4,))
    with pytest.raises(ConfigError, match="object_dims needs approach_radius"):
        GripperStageConfig(object_dims=(4, 5))
    assert GripperStageConfig(approach_radius=0.02, object_dims=[4, 5]).object_dims == (4, 5)
