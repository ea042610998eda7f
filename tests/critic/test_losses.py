"""Hand-computed critic targets and losses (SPEC §3, §7)."""

import math

import torch

from habc.critic import losses as L

t = torch.tensor


def test_viability_bce():
    got = L.viability_loss(t([0.0, math.log(3.0)]), t([1, 0]))
    # -log(0.5), -log(1 - 0.75)
    assert torch.allclose(got, t([math.log(2.0), math.log(4.0)]))


def test_efficiency_td_targets_and_bounds():
    e_next = t([4.0, 4.0, 600.0, -3.0])
    terminal = t([False, True, False, False])
    got = L.efficiency_td_target(e_next, terminal, t_max=500)
    # 1 + 4; terminal -> 1; 601 clipped to T_max; 1 + (-3) clipped to 1
    assert got.tolist() == [5.0, 1.0, 500.0, 1.0]


def test_efficiency_mc_targets():
    # successful episode of 4 steps, T_succ = 3: targets T_succ - t + 1 = 4, 3, 2, 1
    assert L.efficiency_mc_target(t([3, 2, 1, 0])).tolist() == [4.0, 3.0, 2.0, 1.0]


def test_huber():
    got = L.efficiency_loss(t([0.0, 0.0]), t([0.5, 3.0]), delta=1.0)
    # 0.5 * 0.25; 1 * (3 - 0.5)
    assert torch.allclose(got, t([0.125, 2.5]))


def test_masked_mean():
    assert L.masked_mean(t([1.0, 5.0, 3.0]), t([True, False, True])).item() == 2.0
    assert L.masked_mean(t([1.0]), t([False])).item() == 0.0


def test_recap_reward_and_targets():
    # T_max = 10, C_fail = 10: normaliser 20. Failed last step: (-1 - 10) / 20.
    r = L.recap_reward(t([2, 0, 0]), t([False, False, True]), c_fail=10.0, t_max=10)
    assert torch.allclose(r, t([-0.05, -0.55, -0.05]))
    target = L.value_target(r, t([-0.3, -0.3, -0.3]), t([False, True, True]))
    assert torch.allclose(target, t([-0.35, -0.55, -0.05]))


def test_two_hot_projection():
    support = torch.linspace(-1.0, 0.0, 5)  # -1, -0.75, -0.5, -0.25, 0
    probs = L.two_hot(t([-0.6, 0.0, -2.0]), support)
    assert torch.allclose(probs[0], t([0.0, 0.4, 0.6, 0.0, 0.0]))
    assert torch.allclose(probs[1], t([0.0, 0.0, 0.0, 0.0, 1.0]))
    assert torch.allclose(probs[2], t([1.0, 0.0, 0.0, 0.0, 0.0]))
    assert torch.allclose(probs @ support, t([-0.6, 0.0, -1.0]))


def test_distributional_loss_is_cross_entropy():
    logits = torch.log(t([[0.25, 0.75]]))
    assert torch.allclose(L.distributional_loss(logits, t([[0.0, 1.0]])), t([-math.log(0.75)]))


def test_td_residual():
    got = L.td_residual(t([-0.05, -0.55]), t([-0.4, -0.6]), t([-0.3, -0.9]), t([False, True]))
    # -0.05 + (-0.3) - (-0.4) = 0.05; last step: -0.55 + 0 - (-0.6) = 0.05
    assert torch.allclose(got, t([0.05, 0.05]))
