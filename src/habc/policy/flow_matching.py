"""Flow-matching math as small stateless functions (SPEC §5).

Convention: flow time ``tau = 1`` is pure noise and ``tau = 0`` is data (as in pi0/openpi):

    x_tau = tau * eps + (1 - tau) * a,      u = d x_tau / d tau = eps - a.

Sampling integrates from ``tau = 1`` down to ``tau = 0`` with Euler steps
``x <- x - (1 / n) * v(x, tau)``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
from torch import Tensor


def sample_flow_time(batch: int, *, alpha: float = 1.5, beta: float = 1.0,
                     generator: torch.Generator | None = None) -> Tensor:
    """Draw flow times ``tau ~ Beta(alpha, beta)`` (pi0's default Beta(1.5, 1) leans to noise).

    Args:
        batch: number of samples B.
        alpha: first Beta shape parameter.
        beta: second Beta shape parameter.
        generator: optional torch generator for reproducibility.

    Returns:
        (B,) float32 times in (0, 1).
    """
    # Beta via two Gamma draws so that a generator can be passed.
    shape_a = torch.full((batch,), alpha)
    shape_b = torch.full((batch,), beta)
    ga = torch._standard_gamma(shape_a, generator=generator)
    gb = torch._standard_gamma(shape_b, generator=generator)
    return (ga / (ga + gb)).clamp(1e-4, 1.0 - 1e-4)


def interpolate(actions: Tensor, noise: Tensor, tau: Tensor) -> Tensor:
    """Point on the straight path from data to noise.

    Args:
        actions: (B, H, A) normalised action chunks ``a``.
        noise: (B, H, A) Gaussian noise ``eps``.
        tau: (B,) flow times.

    Returns:
        (B, H, A) ``x_tau = tau * eps + (1 - tau) * a``.
    """
    t = tau[:, None, None]
    return t * noise + (1.0 - t) * actions


def target_velocity(actions: Tensor, noise: Tensor) -> Tensor:
    """Velocity target ``u = eps - a`` (B, H, A) of the straight path."""
    return noise - actions


def per_sample_loss(pred: Tensor, target: Tensor, valid: Tensor) -> Tensor:
    """Mean squared velocity error over each sample's valid (chunk step, action dim) entries.

    Args:
        pred: (B, H, A) predicted velocity ``v_theta(x_tau, o, tau)``.
        target: (B, H, A) target velocity ``u``.
        valid: (B, H, A) bool; False for padded chunk steps and masked action dims.

    Returns:
        (B,) per-sample loss ``l_i``; 0 for a sample with no valid entry.
    """
    mask = valid.to(pred.dtype)
    sq = (pred - target).pow(2) * mask
    return sq.sum(dim=(1, 2)) / mask.sum(dim=(1, 2)).clamp_min(1.0)


def weighted_loss(losses: Tensor, weights: Tensor, n_valid: float) -> Tensor:
    """Batch loss ``L = sum_i w_i l_i / sum_i [valid_i]`` (SPEC §5).

    Args:
        losses: (B,) per-sample losses.
        weights: (B,) weights, unit-mean over the valid samples, 0 for invalid ones.
        n_valid: number of valid samples ``sum_i [valid_i]``.

    Returns:
        scalar loss.
    """
    return (weights * losses).sum() / max(n_valid, 1.0)


def euler_sample(velocity: Callable[[Tensor, Tensor], Tensor], noise: Tensor,
                 num_steps: int) -> Tensor:
    """Integrate the learned flow from noise (tau = 1) to data (tau = 0).

    Args:
        velocity: ``v(x, tau)`` with x (B, H, A) and tau (B,), returning (B, H, A).
        noise: (B, H, A) starting point ``x_1``.
        num_steps: number of Euler steps n.

    Returns:
        (B, H, A) sample ``x_0``.
    """
    x = noise
    dt = 1.0 / num_steps
    for i in range(num_steps):
        tau = torch.full((x.shape[0],), 1.0 - i * dt, dtype=x.dtype, device=x.device)
        x = x - dt * velocity(x, tau)
    return x
