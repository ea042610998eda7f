"""Hand-computed cases for SPEC §4."""

import math

import pytest
import torch

from habc.weighting import advantages as adv

t = torch.tensor


def test_viability_and_efficiency_advantages():
    assert torch.allclose(adv.viability_advantage(t([0.5, -1.0]), t([1.5, -2.0])), t([1.0, -1.0]))
    # A_e = e_t - k - e_next: 10 - 1 - 8 = 1 (faster than expected); 10 - 1 - 9.5 = -0.5
    assert torch.allclose(adv.efficiency_advantage(t([10.0, 10.0]), t([8.0, 9.5]), 1),
                          t([1.0, -0.5]))
    assert torch.allclose(adv.efficiency_advantage(t([10.0]), t([6.0]), 3), t([1.0]))


def test_k_step_efficiency_advantage_charges_only_the_steps_left():
    # k = 8 in an episode of T = 20 steps: t = 5 has 15 steps left, t = 17 has 3, t = 19 has 1
    steps = adv.advantage_steps(t([15, 3, 1]), 8)
    assert torch.equal(steps, t([8, 3, 1]))
    # success at the end: e(o_{t+k}) := 0; e(o_17) = 3 expected 3 steps, and took them: A_e = 0
    # (charging k = 8 would give 3 - 8 - 0 = -5); e(o_5) = 16, e(o_13) = 7: 16 - 8 - 7 = 1
    a_e = adv.efficiency_advantage(t([16.0, 3.0, 1.0]), t([7.0, 0.0, 0.0]), steps)
    assert torch.allclose(a_e, t([1.0, 0.0, 0.0]))
    assert torch.equal(adv.advantage_steps(t([1, 4]), 1), t([1, 1]))  # k = 1: always 1


def test_episode_end_values():
    v_next, e_next = t([0.3, 0.3, 0.3]), t([4.0, 4.0, 4.0])
    exists = t([True, False, False])
    success = t([False, True, False])
    e_last = t([9.0, 9.0, 7.0])
    v, e = adv.next_values_at_episode_end(v_next, e_next, next_exists=exists,
                                          episode_success=success, e_last=e_last, v_max=6.0)
    assert torch.allclose(v, t([0.3, 6.0, -6.0]))
    assert torch.allclose(e, t([4.0, 0.0, 7.0]))


def test_gates():
    v = t([0.0, math.log(3.0)])  # p = 0.5, 0.75
    assert torch.allclose(adv.gate_linear(v), t([0.5, 0.75]))
    # sigmoid((p - 0.7) / 0.1): p = 0.5 -> sigmoid(-2), p = 0.75 -> sigmoid(0.5)
    g = adv.gate_sigmoid(v, threshold=0.7, temperature=0.1)
    assert torch.allclose(g, torch.sigmoid(t([-2.0, 0.5])))
    assert not adv.gate_linear(v.requires_grad_()).requires_grad


def test_merged_advantage():
    # (1 - 0.25) * 2 / 2 + 0.25 * 3 / 0.5 = 0.75 + 1.5
    got = adv.merged_advantage(t([2.0]), t([3.0]), t([0.25]), scale_v=2.0, scale_e=0.5)
    assert torch.allclose(got, t([2.25]))
    # HABC-V: g = 0 -> A_v / s_v only
    got = adv.merged_advantage(t([2.0]), t([100.0]), t([0.0]), scale_v=4.0, scale_e=1.0)
    assert torch.allclose(got, t([0.5]))


def test_bounded_weight_clipping():
    a = t([0.0, math.log(2.0), 10.0, -50.0])
    w = adv.bounded_weight(a, beta=1.0, w_min=0.0, w_max=5.0)
    assert torch.allclose(w, t([1.0, 2.0, 5.0, math.exp(-50.0)]))
    w = adv.bounded_weight(t([math.log(4.0)]), beta=2.0, w_min=0.5, w_max=5.0)
    assert torch.allclose(w, t([2.0]))
    low = adv.bounded_weight(t([-50.0]), beta=1.0, w_min=0.1, w_max=5.0)
    assert low.item() == pytest.approx(0.1)


def test_unit_mean_normalisation_with_invalid_samples():
    w_tilde = t([1.0, 3.0, 100.0, 0.0])
    valid = t([True, True, False, True])
    w, skipped = adv.unit_mean_normalise(w_tilde, valid)
    # mean over valid = (1 + 3 + 0) / 3 = 4/3
    assert not skipped
    assert torch.allclose(w, t([0.75, 2.25, 0.0, 0.0]))
    assert torch.isclose(w[valid].mean(), t(1.0))


def test_all_zero_batch_is_skipped():
    w, skipped = adv.unit_mean_normalise(t([0.0, 0.0, 5.0]), t([True, True, False]))
    assert skipped and w.tolist() == [0.0, 0.0, 0.0]


def test_effective_sample_fraction():
    valid = t([True, True, False])
    # (1 + 3)^2 / (2 * (1 + 9)) = 16 / 20; the invalid sample's weight is ignored
    assert abs(adv.effective_sample_fraction(t([1.0, 3.0, 7.0]), valid) - 0.8) < 1e-6
    assert adv.effective_sample_fraction(t([2.0, 2.0, 0.0]), valid) == 1.0  # plain BC
    assert adv.effective_sample_fraction(t([0.0, 0.0, 1.0]), valid) == 0.0


def test_running_scale():
    s = adv.RunningScale(momentum=0.5)
    assert s.scale == 1.0
    s.update(t([1.0, -1.0]))  # first batch sets var = 1
    assert s.scale == 1.0
    s.update(t([3.0, -3.0]))  # var <- 1 + 0.5 * (9 - 1) = 5
    assert abs(s.scale - 5 ** 0.5) < 1e-6


def test_robust_scale_ignores_the_tail():
    # median 2; |x - 2| = [2, 1, 0, 1, 98], median 1 -> 1.4826 (the std would be ~39)
    assert abs(adv.robust_scale(t([0.0, 1.0, 2.0, 3.0, 100.0])) - 1.4826) < 1e-6


def test_running_scale_robust_tracks_the_squared_robust_scale():
    s = adv.RunningScale(momentum=0.5, estimator="robust")
    s.update(t([0.0, 1.0, 2.0, 3.0, 100.0]))  # first batch: var = 1.4826^2
    assert abs(s.scale - 1.4826) < 1e-6
    s.update(t([-2.0, -1.0, 0.0, 1.0, 2.0]))  # MAD 1: the same var, so no change
    assert abs(s.scale - 1.4826) < 1e-6
    s.update(t([-6.0, -3.0, 0.0, 3.0, 6.0]))  # MAD 3: var <- c^2 + 0.5 (9 c^2 - c^2)
    assert abs(s.scale ** 2 - 1.4826 ** 2 * (1 + 0.5 * (9 - 1))) < 1e-4
