"""Hand-computed cases for the flow-matching math (SPEC §5)."""

import torch

from habc.policy import flow_matching as fm


def test_interpolate_and_target_hand_computed():
    a = torch.tensor([[[1.0, -1.0]]])
    eps = torch.tensor([[[0.5, 0.5]]])
    tau = torch.tensor([0.25])
    # x_tau = tau * eps + (1 - tau) * a
    assert torch.allclose(fm.interpolate(a, eps, tau), torch.tensor([[[0.875, -0.625]]]))
    # u = eps - a
    assert torch.allclose(fm.target_velocity(a, eps), torch.tensor([[[-0.5, 1.5]]]))


def test_tau_one_is_noise_tau_zero_is_data():
    a, eps = torch.randn(3, 4, 2), torch.randn(3, 4, 2)
    assert torch.allclose(fm.interpolate(a, eps, torch.ones(3)), eps)
    assert torch.allclose(fm.interpolate(a, eps, torch.zeros(3)), a)


def test_per_sample_loss_masks_padding_and_action_dims():
    pred = torch.zeros(3, 2, 2)
    target = torch.tensor([[1.0, 2.0], [3.0, 4.0]]).expand(3, 2, 2)
    valid = torch.tensor([
        [[True, True], [True, True]],     # all valid: (1 + 4 + 9 + 16) / 4 = 7.5
        [[True, True], [False, False]],   # second chunk step padded: (1 + 4) / 2 = 2.5
        [[True, False], [True, False]],   # second action dim masked: (1 + 9) / 2 = 5
    ])
    assert torch.allclose(fm.per_sample_loss(pred, target, valid), torch.tensor([7.5, 2.5, 5.0]))


def test_per_sample_loss_with_no_valid_entry_is_zero():
    loss = fm.per_sample_loss(torch.ones(1, 2, 2), torch.zeros(1, 2, 2),
                              torch.zeros(1, 2, 2, dtype=torch.bool))
    assert loss.item() == 0.0


def test_weighted_loss_divides_by_valid_count():
    losses = torch.tensor([7.5, 2.5, 5.0])
    weights = torch.tensor([2.0, 0.0, 1.0])
    # samples 0 and 2 valid: (2 * 7.5 + 0 + 1 * 5) / 2 = 10
    assert fm.weighted_loss(losses, weights, n_valid=2).item() == 10.0


def test_euler_sample_constant_and_linear_velocity():
    x1 = torch.tensor([[[2.0, -4.0]]])
    # constant velocity c: x0 = x1 - c exactly
    out = fm.euler_sample(lambda x, tau: torch.full_like(x, 0.5), x1, num_steps=4)
    assert torch.allclose(out, x1 - 0.5)
    # v(x) = x with 2 steps of dt = 0.5: x0 = x1 * (1 - 0.5)^2
    out = fm.euler_sample(lambda x, tau: x, x1, num_steps=2)
    assert torch.allclose(out, 0.25 * x1)


def test_euler_sample_visits_times_from_one_down():
    seen = []

    def velocity(x, tau):
        seen.append(tau[0].item())
        return torch.zeros_like(x)

    fm.euler_sample(velocity, torch.zeros(1, 1, 1), num_steps=4)
    assert seen == [1.0, 0.75, 0.5, 0.25]


def test_flow_time_distribution_beta_1_5_1():
    g = torch.Generator().manual_seed(0)
    tau = fm.sample_flow_time(200_000, alpha=1.5, beta=1.0, generator=g)
    assert tau.min() > 0 and tau.max() < 1
    # Beta(1.5, 1) has mean 1.5 / 2.5 = 0.6 and P(tau < 0.5) = 0.5 ** 1.5
    assert abs(tau.mean().item() - 0.6) < 0.005
    assert abs((tau < 0.5).float().mean().item() - 0.5 ** 1.5) < 0.005
