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


def spatial_softmax(features: Tensor) -> Tensor:
    """Expected image coordinates of each channel's softmax over pixels.

    Args:
        features: (B, C, H, W) feature maps.

    Returns:
        (B, 2C): ``[x_1..x_C, y_1..y_C]``, each in [-1, 1] (left/top is -1, right/bottom 1).
    """
    b, c, h, w = features.shape
    p = torch.softmax(features.reshape(b, c, h * w), dim=-1).reshape(b, c, h, w)
    xs = torch.linspace(-1.0, 1.0, w, dtype=features.dtype)
    ys = torch.linspace(-1.0, 1.0, h, dtype=features.dtype)
    x = (p.sum(2) * xs).sum(-1)
    y = (p.sum(3) * ys).sum(-1)
    return torch.cat([x, y], dim=-1)


def random_shift(images: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """Shift each image by up to ``pad`` pixels each way, repeating edge pixels (DrQ).

    Args:
        images: (B, C, H, W) float.
        pad: largest shift; 0 returns ``images`` unchanged and draws no random number.
        generator: optional generator for the shifts.

    Returns:
        (B, C, H, W): image i is the crop ``[dy_i : dy_i + H, dx_i : dx_i + W]`` of the
        edge-padded image, with dy_i, dx_i uniform in [0, 2 * pad].
    """
    if pad == 0:
        return images
    b, _, h, w = images.shape
    padded = nn.functional.pad(images, (pad, pad, pad, pad), mode="replicate")
    shifts = torch.randint(0, 2 * pad + 1, (b, 2), generator=generator)
    rows = (shifts[:, 0, None] + torch.arange(h))[:, None, :, None]  # (B, 1, H, 1)
    cols = (shifts[:, 1, None] + torch.arange(w))[:, None, None, :]  # (B, 1, 1, W)
    batch = torch.arange(b)[:, None, None, None]
    channel = torch.arange(images.shape[1])[None, :, None, None]
    return padded[batch, channel, rows, cols]


class ImageEncoder(nn.Module):
    """Camera frame encoder: (B, H, W, 3) uint8 -> (B, D).

    Four 3x3 convolutions (two of stride 2) with GroupNorm, then a spatial softmax to 32
    keypoints (their x, y), then a linear layer (the robomimic / Diffusion Policy recipe,
    small enough to train on a CPU at 64x64).
    """

    def __init__(self, dim: int, *, channels: int = 32, keypoints: int = 32) -> None:
        super().__init__()

        def block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
            return [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1),
                    nn.GroupNorm(8, c_out), nn.GELU()]

        self.net = nn.Sequential(*block(3, channels, 2), *block(channels, channels, 1),
                                 *block(channels, 2 * channels, 2),
                                 *block(2 * channels, 2 * channels, 1),
                                 nn.Conv2d(2 * channels, keypoints, 1))
        self.out = nn.Linear(2 * keypoints, dim)

    def forward(self, images: Tensor) -> Tensor:
        """(B, C, H, W) float in [-0.5, 0.5] -> (B, D)."""
        return self.out(spatial_softmax(self.net(images)))


def image_to_float(frames: Tensor) -> Tensor:
    """(B, H, W, 3) uint8 -> (B, 3, H, W) float in [-0.5, 0.5]."""
    return frames.permute(0, 3, 1, 2).float() / 255.0 - 0.5
