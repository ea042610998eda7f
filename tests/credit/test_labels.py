"""Hand-computed credit assignment for the six episode shapes of the issue."""

import numpy as np
import pytest

from habc.credit.labels import (
    NO_LABEL,
    FrameKind,
    assign_credit,
    boundary_band,
    failed_takeover_frames,
    intervention_min_steps,
    intervention_windows,
    segment_ids,
)

P, H = 0, 1
D, A, PRE, HU, S, B = (FrameKind.DEMO, FrameKind.AUTONOMOUS, FrameKind.PRE_INTERVENTION,
                       FrameKind.HUMAN, FrameKind.SUFFIX, FrameKind.BOUNDARY)
N = NO_LABEL


def credit(controller, success, source="rollout", **kw):
    c = np.array(controller)
    return assign_credit(c, np.array([0]), np.array([len(c)]), np.array([source]),
                         np.array([success]), **kw)


def test_a_autonomous_success():
    lab = credit([P, P, P, P], True)
    assert lab.kind.tolist() == [A] * 4
    assert lab.outcome_label.tolist() == [1, 1, 1, 1]
    assert lab.succ_target_valid.tolist() == [True] * 4
    assert lab.steps_to_end.tolist() == [3, 2, 1, 0]


def test_b_autonomous_failure():
    lab = credit([P, P, P], False)
    assert lab.kind.tolist() == [A] * 3
    assert lab.outcome_label.tolist() == [0, 0, 0]
    assert lab.succ_target_valid.tolist() == [False] * 3


def test_c_policy_human_policy_success():
    lab = credit([P, P, H, H, P, P], True)
    assert lab.kind.tolist() == [PRE, PRE, HU, HU, S, S]
    assert lab.outcome_label.tolist() == [N, N, N, N, 1, 1]
    assert lab.succ_target_valid.tolist() == [False, False, True, True, True, True]


def test_d_policy_human_policy_failure():
    lab = credit([P, H, H, P, P], False)
    assert lab.kind.tolist() == [PRE, HU, HU, S, S]
    assert lab.outcome_label.tolist() == [N, N, N, 0, 0]
    assert lab.succ_target_valid.tolist() == [False] * 5


def test_e_policy_then_human_finishes():
    lab = credit([P, P, P, H, H], True)
    assert lab.kind.tolist() == [PRE, PRE, PRE, HU, HU]
    assert lab.outcome_label.tolist() == [N] * 5  # empty suffix: nothing carries the outcome
    assert lab.succ_target_valid.tolist() == [False, False, False, True, True]


def test_f_two_interventions():
    lab = credit([P, H, P, P, H, H, P], True)
    assert lab.kind.tolist() == [PRE, HU, PRE, PRE, HU, HU, S]
    assert lab.outcome_label.tolist() == [N, N, N, N, N, N, 1]
    assert lab.succ_target_valid.tolist() == [False, True, False, False, True, True, True]


def test_demo_frames_and_critic_use_demos():
    lab = credit([H, H, H], True, source="demo")
    assert lab.kind.tolist() == [D] * 3
    assert lab.outcome_label.tolist() == [N] * 3
    assert lab.succ_target_valid.tolist() == [False] * 3
    lab = credit([H, H, H], True, source="demo", critic_use_demos=True)
    assert lab.succ_target_valid.tolist() == [True] * 3


def test_naive_credit_labels_every_rollout_step():
    lab = credit([P, H, H, P], False, naive=True)
    assert lab.outcome_label.tolist() == [0, 0, 0, 0]
    lab = credit([P, H, H, P], True, naive=True)
    assert lab.outcome_label.tolist() == [1, 1, 1, 1]
    assert lab.succ_target_valid.tolist() == [True] * 4


def test_boundary_band_marks_margin_steps_each_side_of_a_logged_change():
    # episode 0 [0, 10): human 3-5, so changes at 3 and 6; episode 1 [10, 14): human from its
    # first frame (not a change: a new episode) to 11, policy from 12, a change at 12.
    c = np.array([P, P, P, H, H, H, P, P, P, P, H, H, P, P])
    starts, ends = np.array([0, 10]), np.array([10, 14])
    # margin 1: b - 1 .. b for each change b
    assert np.flatnonzero(boundary_band(c, starts, ends, 1)).tolist() == [2, 3, 5, 6, 11, 12]
    # margin 2: 1-4 and 4-7 in episode 0; 10-13 in episode 1, clipped to the episode
    assert np.flatnonzero(boundary_band(c, starts, ends, 2)).tolist() == \
        [1, 2, 3, 4, 5, 6, 7, 10, 11, 12, 13]
    assert not boundary_band(c, starts, ends, 0).any()
    with pytest.raises(ValueError, match="margin"):
        boundary_band(c, starts, ends, -1)


def test_boundary_margin_takes_credit_from_frames_near_a_takeover_boundary():
    # policy 0-2, human 3-5, policy 6-9, success; changes at 3 and 6, margin 1: 2, 3, 5, 6
    lab = credit([P, P, P, H, H, H, P, P, P, P], True, boundary_margin=1)
    assert lab.kind.tolist() == [PRE, PRE, B, B, HU, B, B, S, S, S]
    assert lab.outcome_label.tolist() == [N, N, N, N, N, N, N, 1, 1, 1]
    assert lab.succ_target_valid.tolist() == [False] * 4 + [True] + [False] * 2 + [True] * 3
    # naive credit ignores the controller, and so the margin; demos have no takeover
    naive = credit([P, H, H, P], True, naive=True, boundary_margin=1)
    assert naive.outcome_label.tolist() == [1, 1, 1, 1]
    assert credit([P, H, P], True, source="demo", boundary_margin=5).kind.tolist() == [D] * 3


def test_segments_restart_at_episode_boundaries():
    c = np.array([P, P, H, H, P, P])  # episodes [0, 3) and [3, 6)
    assert segment_ids(c, np.array([0, 3])).tolist() == [0, 0, 1, 2, 3, 3]


def test_failed_takeover_frames():
    # episode 0 [0, 10), failed: human 2-4 handed back (kept), human 7-9 to the end (failed)
    # episode 1 [10, 16), success: human 10-14 then policy; episode 2 [16, 20), success: human
    # 18-19 to the end of a success (kept); episode 3 [20, 23), failed, no human frame
    c = np.array([P, P, H, H, H, P, P, H, H, H, H, H, H, H, H, P, P, P, H, H, P, P, P])
    got = failed_takeover_frames(c, np.array([0, 10, 16, 20]), np.array([10, 16, 20, 23]),
                                 np.array([False, True, True, False]))
    assert np.flatnonzero(got).tolist() == [7, 8, 9]


def test_intervention_windows_need_ceil_h_over_5_human_steps():
    assert intervention_min_steps(50) == 10 and intervention_min_steps(16) == 4
    c = np.array([P, P, H, H, H, H, P, P])
    ends, frame_ep = np.array([8]), np.zeros(8, dtype=np.int64)
    # H = 6 -> m = 2. Anchor 0: chunk 0..5 holds 4 human steps; anchor 4: 4..7 (+2 pad) holds 2;
    # anchor 5: 5..7 holds 1.
    got = intervention_windows(np.array([0, 4, 5]), c, ends, frame_ep, horizon=6)
    assert got.tolist() == [True, True, False]


@pytest.mark.parametrize("margin", [0, 2])
def test_vectorised_credit_agrees_with_loop(rng, margin):
    """Random multi-episode arrays against a plain per-episode loop of the SPEC table."""
    lengths = rng.integers(1, 12, size=40)
    ends = np.cumsum(lengths)
    starts = ends - lengths
    controller = rng.integers(0, 2, size=ends[-1]) * (rng.random(ends[-1]) < 0.4)
    sources = rng.choice(["demo", "rollout"], size=len(lengths), p=[0.2, 0.8])
    success = rng.random(len(lengths)) < 0.5
    success[sources == "demo"] = True
    lab = assign_credit(controller, starts, ends, sources, success, boundary_margin=margin)
    for e, (s, t) in enumerate(zip(starts, ends, strict=True)):
        c = controller[s:t]
        humans = np.flatnonzero(c == H)
        changes = [j for j in range(1, t - s) if c[j] != c[j - 1]]
        for i in range(t - s):
            if sources[e] == "demo":
                want = (D, N, False)
            elif any(j - margin <= i < j + margin for j in changes):
                want = (B, N, False)
            elif len(humans) == 0:
                want = (A, int(success[e]), bool(success[e]))
            elif c[i] == H:
                want = (HU, N, bool(success[e]))
            elif i > humans[-1]:
                want = (S, int(success[e]), bool(success[e]))
            else:
                want = (PRE, N, False)
            got = (lab.kind[s + i], lab.outcome_label[s + i], bool(lab.succ_target_valid[s + i]))
            assert got == want, (e, i)
