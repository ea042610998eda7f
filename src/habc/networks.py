"""Network building blocks shared by the actor and the critics."""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """State: ``clip((s - mean) / max(std, floor))``. Action: bounds ``[low, high] -> [-1, 1]``."""

    state_mean: Tensor
    state_scale: Tensor
    action_low: Tensor
    action_high: Tensor

    def __init__(self, state_dim: int, action_dim: int, *, std_floor: float, clip: float) -> None:
        super().__init__()
        self.std_floor = std_floor
        self.clip = clip
        self.register_buffer("state_mean", torch.zeros(state_dim))
        self.register_buffer("state_scale", torch.ones(state_dim))
        self.register_buffer("action_low", -torch.ones(action_dim))
        self.register_buffer("action_high", torch.ones(action_dim))

    def fit(self, states: npt.NDArray[np.float32], action_low: npt.NDArray[np.float32],
            action_high: npt.NDArray[np.float32]) -> None:
        """Set statistics from training states (N, S) and the action space bounds (A,)."""
        mean = states.mean(0)
        std = np.maximum(states.std(0), self.std_floor)
        self.state_mean.copy_(torch.as_tensor(mean, dtype=torch.float32))
        self.state_scale.copy_(torch.as_tensor(std, dtype=torch.float32))
        self.action_low.copy_(torch.as_tensor(action_low, dtype=torch.float32))
        self.action_high.copy_(torch.as_tensor(action_high, dtype=torch.float32))

    def state(self, s: Tensor) -> Tensor:
        """(..., S) raw -> normalised, clipped."""
        return ((s - self.state_mean) / self.state_scale).clamp(-self.clip, self.clip)

    def action(self, a: Tensor) -> Tensor:
        """(..., A) raw -> [-1, 1]."""
        return 2.0 * (a - self.action_low) / (self.action_high - self.action_low) - 1.0

    def unaction(self, a: Tensor) -> Tensor:
        """(..., A) [-1, 1] -> raw."""
        return (a + 1.0) * 0.5 * (self.action_high - self.action_low) + self.action_low


def time_embedding(tau: Tensor, dim: int) -> Tensor:
    """Sinusoidal embedding (B, dim) of flow times tau (B,)."""
    half = dim // 2
    freqs = torch.exp(-math.log(1000.0) * torch.arange(half, dtype=tau.dtype) / max(half - 1, 1))
    angles = tau[:, None] * freqs[None, :] * 2.0 * math.pi
    return torch.cat([angles.sin(), angles.cos()], dim=-1)


class ResidualBlock(nn.Module):
    """Pre-norm residual MLP block."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.LayerNorm(dim), nn.Linear(dim, dim), nn.GELU(),
                                 nn.Linear(dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        """(B, D) -> (B, D)."""
        return x + self.net(x)


class StateEncoder(nn.Module):
    """Observation encoder for state inputs: normalised state (B, S) -> (B, D)."""

    def __init__(self, state_dim: int, dim: int) -> None:
        super().__init__()
        self.net = nn.Sequential(nn.Linear(state_dim, dim), nn.GELU(), nn.Linear(dim, dim))

    def forward(self, state: Tensor) -> Tensor:
        """(B, S) -> (B, D)."""
        return self.net(state)
