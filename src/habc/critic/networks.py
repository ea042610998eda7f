"""Critic networks: the dual-head critic and the distributional value (their own encoders)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habc.critic.config import CriticConfig
from habc.networks import Normalizer, ResidualBlock


class CriticEncoder(nn.Module):
    """Shared encoder phi(o): normalised state (B, S) -> (B, D)."""

    def __init__(self, state_dim: int, config: CriticConfig) -> None:
        super().__init__()
        d = config.hidden_dim
        self.net = nn.Sequential(nn.Linear(state_dim, d),
                                 *[ResidualBlock(d) for _ in range(config.num_blocks)],
                                 nn.LayerNorm(d))

    def forward(self, state: Tensor) -> Tensor:
        """(B, S) -> (B, D)."""
        return self.net(state)


class DualHeadCritic(nn.Module):
    """Viability logit head v(o) and steps-to-success head e(o) >= 0 on a shared encoder."""

    def __init__(self, state_dim: int, config: CriticConfig, normalizer: Normalizer) -> None:
        super().__init__()
        self.config = config
        self.normalizer = normalizer
        self.encoder = CriticEncoder(state_dim, config)
        self.v_head = nn.Linear(config.hidden_dim, 1)
        self.e_head = nn.Linear(config.hidden_dim, 1)

    def forward(self, state: Tensor) -> tuple[Tensor, Tensor]:
        """Raw state (B, S) -> (viability logits (B,), steps-to-success (B,))."""
        h = self.encoder(self.normalizer.state(state))
        cap = self.config.v_max
        v = cap * torch.tanh(self.v_head(h).squeeze(-1) / cap)
        e = self.config.efficiency_scale * F.softplus(self.e_head(h).squeeze(-1))
        return v, e


class DistributionalValue(nn.Module):
    """Distributional value V(o) over uniform bins on [-1, 0] (SPEC §7)."""

    support: Tensor

    def __init__(self, state_dim: int, config: CriticConfig, normalizer: Normalizer) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.encoder = CriticEncoder(state_dim, config)
        self.head = nn.Linear(config.hidden_dim, config.value_bins)
        self.register_buffer("support", torch.linspace(-1.0, 0.0, config.value_bins))

    def forward(self, state: Tensor) -> Tensor:
        """Raw state (B, S) -> bin logits (B, K)."""
        return self.head(self.encoder(self.normalizer.state(state)))

    def value(self, state: Tensor) -> Tensor:
        """Expected value (B,) of the distribution."""
        return torch.softmax(self(state), dim=-1) @ self.support
