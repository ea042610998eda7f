"""The simulated operator's triggers, delay, hand-back and boundary jitter."""

import numpy as np
import pytest

from habc.credit.labels import failed_takeover_frames
from habc.episodes.episode import Controller
from habc.errors import ConfigError
from habc.rollout.operator import (
    OperatorConfig,
    SimulatedOperator,
    TakeoverEndings,
    jitter_boundaries,
    takeover_endings,
)

BASE = {"help_prob": 1.0, "stall_steps": 5, "stall_min_gain": 0.1, "drop_threshold": 0.3,
        "smoothing": 1.0, "reaction_delay": 2, "finish_prob": 0.0, "subgoal_gain": 0.2,
        "min_takeover_steps": 1, "max_takeover_steps": 10, "max_interventions": 2,
        "retry_steps": 0}


def operator(**overrides) -> SimulatedOperator:
    config = OperatorConfig(**{**BASE, **overrides})
    return SimulatedOperator(config, lambda s: np.zeros(4, np.float32),
                             np.random.default_rng(0))


def control_trace(op: SimulatedOperator, progress: list[float]) -> list[int]:
    """Whether the operator is in control after observing each progress value."""
    trace = []
    for p in progress:
        op.observe(p)
        trace.append(int(op.in_control))
    return trace


def test_stall_triggers_after_k_steps_and_reaction_delay():
    op = operator(trigger="stall")
    # flat progress: stall fires on the 5th observation, takeover 2 steps later (7th)
    trace = control_trace(op, [0.0] * 8)
    assert trace == [0, 0, 0, 0, 0, 0, 1, 1]
    assert op.interventions == 1


def test_progress_postpones_the_stall():
    op = operator(trigger="stall")
    trace = control_trace(op, [0.0, 0.0, 0.0, 0.15, 0.15, 0.15, 0.15, 0.15])
    assert trace == [0] * 8  # gain at step 4 resets the 5-step stall counter


def test_drop_trigger():
    op = operator(trigger="drop", reaction_delay=0)
    trace = control_trace(op, [0.5, 0.6, 0.2])
    assert trace == [0, 0, 1]


def test_unwilling_operator_never_helps():
    op = operator(help_prob=0.0)
    assert control_trace(op, [0.0] * 30) == [0] * 30 and op.interventions == 0


def test_hand_back_after_subgoal_and_finish_mode():
    op = operator(trigger="drop", reaction_delay=0, finish_prob=0.0)
    control_trace(op, [0.5, 0.1])
    assert op.in_control
    trace = control_trace(op, [0.2, 0.35])  # 0.35 >= 0.1 + 0.2: hand back
    assert trace == [1, 0]
    op = operator(trigger="drop", reaction_delay=0, finish_prob=1.0)
    control_trace(op, [0.5, 0.1])
    assert control_trace(op, [0.9] * 20) == [1] * 20  # finishing: never hands back


def test_hand_back_after_max_takeover_steps_and_max_interventions():
    op = operator(trigger="stall", reaction_delay=0, max_takeover_steps=3, max_interventions=1)
    trace = control_trace(op, [0.0] * 20)
    assert trace[:8] == [0, 0, 0, 0, 1, 1, 1, 0]
    assert op.interventions == 1 and sum(trace) == 3  # never a second takeover


def test_stalled_takeover_backs_off_then_retries():
    expert = np.array([0.5, 0.0, 0.0, 1.0], np.float32)
    back = np.array([0.0, 0.0, 1.0, -1.0], np.float32)
    config = OperatorConfig(**{**BASE, "finish_prob": 1.0, "retry_steps": 3,
                               "backoff_steps": 2, "action_noise": 0.0})
    op = SimulatedOperator(config, lambda s: expert, np.random.default_rng(0),
                           backoff_action=back)
    control_trace(op, [0.0] * 7)  # stall after 5, takeover after 2 more
    assert op.in_control
    actions = []
    for p in [0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.5, 0.5, 0.5, 0.5]:
        actions.append("back" if np.array_equal(op.act(np.zeros(39)), back) else "expert")
        op.observe(p)
    # 3 flat steps of the expert's attempt, 2 back-off steps, then a fresh attempt that
    # progresses (0.5 >= 0 + 0.1) and is never interrupted.
    assert actions == ["expert"] * 3 + ["back"] * 2 + ["expert"] * 5
    no_action = SimulatedOperator(config, lambda s: expert, np.random.default_rng(0))
    control_trace(no_action, [0.0] * 20)
    assert not no_action.backing_off  # without a back-off action it never backs off


def test_hand_back_waits_for_the_back_off_to_end():
    config = OperatorConfig(**{**BASE, "trigger": "stall", "reaction_delay": 0,
                               "max_takeover_steps": 7, "retry_steps": 2, "backoff_steps": 3})
    op = SimulatedOperator(config, lambda s: np.zeros(4, np.float32), np.random.default_rng(0),
                           backoff_action=np.ones(4, np.float32))
    trace = control_trace(op, [0.0] * 16)
    # takeover on the 5th observation; 2 flat steps start a 3-step back-off, a fresh attempt
    # stalls for 2 more steps and starts a second back-off at takeover step 7: the 7-step limit
    # passes mid back-off, so control returns only once it ends (the 15th observation).
    assert trace[:15] == [0] * 4 + [1] * 10 + [0]


def test_a_hand_back_takeover_has_time_to_retry():
    with pytest.raises(ConfigError, match="retry"):
        OperatorConfig(max_takeover_steps=80, retry_steps=100)
    assert OperatorConfig(max_takeover_steps=80, retry_steps=0).retry_steps == 0  # never retries
    defaults = OperatorConfig()
    assert defaults.retry_steps + defaults.backoff_steps < defaults.max_takeover_steps


def test_reset_starts_a_new_episode():
    op = operator(trigger="stall", reaction_delay=0)
    control_trace(op, [0.0] * 6)
    assert op.in_control
    op.reset()
    assert not op.in_control and op.interventions == 0


def test_jitter_zero_is_identity_and_jitter_keeps_segments():
    c = np.array([0, 0, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1, 0], dtype=np.int8)
    rng = np.random.default_rng(0)
    np.testing.assert_array_equal(jitter_boundaries(c, 0, rng), c)
    for _ in range(50):
        out = jitter_boundaries(c, 2, rng)
        assert out.shape == c.shape and (out == Controller.HUMAN).any()
        starts = np.flatnonzero(np.diff(np.concatenate([[0], c])) == 1)
        moved = np.flatnonzero(np.diff(np.concatenate([[0], out])) == 1)
        assert len(moved) <= len(starts)
        assert all(abs(m - s) <= 2 for m, s in zip(moved, starts, strict=False))


@pytest.mark.parametrize("bad", [{"help_prob": 1.5}, {"min_takeover_steps": 250},
                                 {"retry_steps": -1}, {"backoff_steps": 0},
                                 {"retry_steps": 195, "backoff_steps": 5},
                                 {"drop_threshold": 0.0}])
def test_bad_operator_config_is_refused(bad):
    with pytest.raises(ConfigError):
        OperatorConfig(**bad)


def test_takeover_endings_on_a_hand_computed_case():
    # episode 0 (frames 0-9, failed): human 2-4 (3 steps, handed back), human 7-9 (to the end)
    # episode 1 (frames 10-15, success): human 10-14 (5 steps, handed back: hits a 5-step limit)
    # episode 2 (frames 16-19, success): human 18-19 (to the end)
    c = np.array([0, 0, 1, 1, 1, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 0, 0, 0, 1, 1], dtype=np.int8)
    out = takeover_endings(c, np.array([0, 10, 16]), np.array([10, 16, 20]),
                           np.array([False, True, True]), limit=5)
    assert out == TakeoverEndings(reached=1, hit_limit=1, to_end_success=1, to_end_failure=1,
                                  human_frames=3 + 3 + 5 + 2, to_end_failure_frames=3)
    # the per-frame flag the learner uses agrees with the segment count
    failed = failed_takeover_frames(c, np.array([0, 10, 16]), np.array([10, 16, 20]),
                                    np.array([False, True, True]))
    assert failed.sum() == out.to_end_failure_frames
