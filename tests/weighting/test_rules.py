"""Weighting rules: source rules, warm-up, IR switch, failed-rollout options, recap, dagger."""

import math

import pytest
import torch

from habc.credit.labels import FrameKind
from habc.weighting.rules import (
    RULES,
    HabcRule,
    HabcSignals,
    RecapRule,
    RejectionRule,
    WeightInputs,
)

K = FrameKind
t = torch.tensor
# One sample of each kind: demo, autonomous success, autonomous failure, pre-intervention,
# human (intervention window), suffix success.
KIND = t([K.DEMO, K.AUTONOMOUS, K.AUTONOMOUS, K.PRE_INTERVENTION, K.HUMAN, K.SUFFIX])
SUCCESS = t([True, True, False, True, True, True])
WINDOW = t([False, False, False, False, True, False])


def inputs(a_v, *, step=10_000, ir=False, a_e=None, v_t=None):
    a_v = t(a_v)
    signals = HabcSignals(a_v=a_v, a_e=torch.zeros(6) if a_e is None else t(a_e),
                          v_t=torch.zeros(6) if v_t is None else t(v_t), scale_v=1.0,
                          scale_e=1.0)
    return WeightInputs(kind=KIND, episode_success=SUCCESS, intervention_window=WINDOW,
                        learner_step=step, ir_enabled=ir, habc=signals)


LOG2 = math.log(2.0)


def test_habc_v_source_rules_hand_computed():
    # gate 0: A = A_v. w~: demo 1, success exp(log 2) = 2, failed 0, pre 0, human 1,
    # suffix exp(log 4) = 4. Valid: all but pre-intervention (5), mean = (1+2+0+1+4)/5 = 1.6.
    a_v = [9.0, LOG2, 3.0, 3.0, 3.0, 2 * LOG2]
    w, stats = HabcRule(gate="zero", warmup_steps=0)(inputs(a_v))
    assert torch.allclose(w, t([1.0, 2.0, 0.0, 0.0, 1.0, 4.0]) / 1.6)
    assert stats["n_valid"] == 5
    assert stats["w_tilde_success_autonomous"] == pytest.approx(3.0)  # (2 + 4) / 2
    assert stats["w_tilde_human_windows"] == pytest.approx(1.0)
    assert stats["zero_weight_fraction"] == pytest.approx(2 / 6)
    assert stats["w_ess_fraction"] == pytest.approx(8**2 / (5 * 22))  # (1+2+0+1+4)^2 / 5 (1+4+1+16)


def test_linear_gate_mixes_heads():
    # v_t = 0 -> g = 0.5: A = 0.5 * A_v + 0.5 * A_e
    w, _ = HabcRule(warmup_steps=0)(inputs([0.0, 2 * LOG2, 0, 0, 0, 0],
                                           a_e=[0.0, 0.0, 0, 0, 0, 2 * LOG2]))
    w_tilde = t([1.0, 2.0, 0.0, 0.0, 1.0, 2.0])
    assert torch.allclose(w, w_tilde / (6.0 / 5))


def test_warmup_replaces_habc_weights_by_one_but_keeps_source_rules():
    w, stats = HabcRule(gate="zero", warmup_steps=100)(inputs([5.0] * 6, step=99))
    assert stats["warmup"] == 1.0
    assert torch.allclose(w, t([1.0, 1.0, 0.0, 0.0, 1.0, 1.0]) / 0.8)
    _, stats = HabcRule(gate="zero", warmup_steps=100)(inputs([5.0] * 6, step=100))
    assert stats["warmup"] == 0.0


def test_ir_switch_gives_human_samples_the_habc_weight():
    a_v = [0.0, 0.0, 0.0, 0.0, 2 * LOG2, 0.0]  # human sample has A = log 4
    rule = HabcRule(gate="zero", warmup_steps=0)
    w_off, _ = rule(inputs(a_v, ir=False))
    w_on, stats = rule(inputs(a_v, ir=True))
    # off: w~ = [1, 1, 0, 0, 1, 1]; on: human w~ = 4
    assert torch.allclose(w_off, t([1.0, 1.0, 0.0, 0.0, 1.0, 1.0]) / 0.8)
    assert torch.allclose(w_on, t([1.0, 1.0, 0.0, 0.0, 4.0, 1.0]) / (7 / 5))
    assert stats["w_tilde_human_windows"] == pytest.approx(4.0)


@pytest.mark.parametrize(("option", "expected_failed"), [
    ("zero", [0.0, 0.0]), ("habc", [2.0, 0.5]), ("habc_positive", [2.0, 0.0])])
def test_failed_rollout_weight_options(option, expected_failed):
    rule = HabcRule(gate="zero", warmup_steps=0, failed_rollout_weight=option)
    for a, want in zip([LOG2, -LOG2], expected_failed, strict=True):
        _, stats = rule(inputs([0, 0, a, 0, 0, 0]))
        # failed sample (index 2) w~ recovered from the pre-normalisation stats
        assert stats["zero_weight_fraction"] == pytest.approx((1 + (want == 0)) / 6)


def test_clipping_bounds_weights():
    w, _ = HabcRule(gate="zero", warmup_steps=0, w_max=3.0)(inputs([0, 50.0, 0, 0, 0, 0]))
    # w~ = [1, 3, 0, 0, 1, 1] -> mean over 5 valid = 1.2
    assert torch.allclose(w, t([1.0, 3.0, 0.0, 0.0, 1.0, 1.0]) / 1.2)


def test_dagger_and_sft_rules():
    base = inputs([0.0] * 6)
    w, _ = RULES["dagger"](base)
    assert torch.allclose(w, t([1.0, 0, 0, 0, 1.0, 0]))
    w, _ = RULES["sft"](base)
    assert torch.allclose(w, t([1.0, 0, 0, 0, 0, 0]))


def test_boundary_frames_are_neither_imitated_nor_counted():
    # the pre-intervention sample becomes a frame near a takeover boundary: weight 0, and out of
    # the unit-mean normalisation as pre-intervention frames are (w~ as in the hand-computed
    # HABC-V case: mean (1 + 2 + 0 + 1 + 4) / 5 = 1.6)
    kind = KIND.clone()
    kind[3] = K.BOUNDARY
    base = inputs([9.0, LOG2, 3.0, 3.0, 3.0, 2 * LOG2])
    near = WeightInputs(kind=kind, episode_success=SUCCESS, intervention_window=WINDOW,
                        learner_step=base.learner_step, ir_enabled=False, habc=base.habc)
    w, stats = HabcRule(gate="zero", warmup_steps=0)(near)
    assert torch.allclose(w, t([1.0, 2.0, 0.0, 0.0, 1.0, 4.0]) / 1.6)
    assert stats["n_valid"] == 5
    kind[4] = K.BOUNDARY  # a human frame near the boundary: dagger leaves it out too
    w, _ = RULES["dagger"](WeightInputs(kind=kind, episode_success=SUCCESS,
                                        intervention_window=WINDOW, learner_step=0,
                                        ir_enabled=False))
    assert torch.allclose(w, t([1.0, 0, 0, 0, 0, 0]))


def test_recap_passes_rollout_samples_above_threshold():
    base = inputs([0.0] * 6)
    ins = WeightInputs(kind=base.kind, episode_success=base.episode_success,
                       intervention_window=base.intervention_window, learner_step=0,
                       ir_enabled=False, td_residual=t([-9.0, 0.2, 0.05, 0.3, -0.1, 0.11]),
                       recap_threshold=0.1)
    w, stats = RecapRule()(ins)
    # demo passes always; rollout: 0.2, 0.3, 0.11 pass; 3 of 5 rollout samples pass
    assert stats["recap_pass_per_100"] == pytest.approx(60.0)
    assert torch.allclose(w, t([1.0, 1.0, 0.0, 1.0, 0.0, 1.0]) / (4 / 6))


def test_all_zero_batch_is_skipped():
    ins = WeightInputs(kind=t([K.AUTONOMOUS, K.PRE_INTERVENTION]),
                       episode_success=t([False, True]), intervention_window=t([False, False]),
                       learner_step=0, ir_enabled=False,
                       habc=HabcSignals(a_v=torch.zeros(2), a_e=torch.zeros(2),
                                        v_t=torch.zeros(2), scale_v=1.0, scale_e=1.0))
    w, stats = HabcRule(warmup_steps=0)(ins)
    assert stats["skipped_batch"] == 1.0 and w.sum() == 0


def test_hiors_accepts_successful_episodes_whole_and_rejects_failed_policy_steps():
    # w~: demo 1, autonomous success 1, autonomous failure 0, pre-intervention of a successful
    # episode 1 (accepted whole), human 1, suffix success 1. All 6 valid: mean 5/6.
    w, stats = RULES["hiors"](inputs([0.0] * 6))
    assert torch.allclose(w, t([1.0, 1.0, 0.0, 1.0, 1.0, 1.0]) / (5 / 6))
    assert stats["n_valid"] == 6


def test_hiors_keeps_the_operators_corrections_of_a_failed_episode():
    failed = WeightInputs(kind=t([K.PRE_INTERVENTION, K.HUMAN, K.SUFFIX]),
                          episode_success=t([False, False, False]),
                          intervention_window=t([False, True, False]), learner_step=0,
                          ir_enabled=False)
    w, _ = RULES["hiors"](failed)
    assert torch.allclose(w, t([0.0, 3.0, 0.0]))  # w~ = (0, 1, 0), mean over 3 valid = 1/3


def test_rabc_weights_every_sample_by_its_chunks_progress_clipped_to_0_1():
    # Chunk progress 0.2, 0, -0.1 (clipped to 0), 0.2, 0.6, 0: w~ mean over all 6 = 1 / 6.
    start = t([0.1, 0.2, 0.5, 0.0, 0.2, 0.9])
    end = t([0.3, 0.2, 0.4, 0.2, 0.8, 0.9])
    w, stats = RULES["rabc"](WeightInputs(
        kind=KIND, episode_success=SUCCESS, intervention_window=WINDOW, learner_step=0,
        ir_enabled=False, progress_start=start, progress_end=end))
    torch.testing.assert_close(w, t([0.2, 0.0, 0.0, 0.2, 0.6, 0.0]) * 6.0)
    assert stats["n_valid"] == 6  # the pre-intervention step is judged by progress too
    assert stats["progress/no_progress_fraction"] == pytest.approx(0.5)


def test_hiors_with_a_reward_model_weights_the_kept_samples_by_their_chunks_progress():
    # Kept: demo, autonomous success, pre-intervention (its episode succeeded), human, suffix;
    # the failed autonomous step is rejected whatever its progress. Progress 0.2, 0.4, 0.6,
    # 0.0, 0.3, 0.1 -> w~ 0.2, 0.4, 0, 0, 0.3, 0.1; mean over 6 = 1 / 6.
    start = t([0.0, 0.0, 0.0, 0.5, 0.0, 0.0])
    end = t([0.2, 0.4, 0.6, 0.4, 0.3, 0.1])
    rule = RejectionRule(reward="progress")
    assert rule.critic == "progress" and RULES["hiors"].critic == "none"
    w, stats = rule(WeightInputs(
        kind=KIND, episode_success=SUCCESS, intervention_window=WINDOW, learner_step=0,
        ir_enabled=False, progress_start=start, progress_end=end))
    torch.testing.assert_close(w, t([0.2, 0.4, 0.0, 0.0, 0.3, 0.1]) * 6.0)
    assert stats["progress/no_progress_fraction"] == pytest.approx(2 / 6)
