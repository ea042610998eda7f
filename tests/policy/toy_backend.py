"""A second actor backend for the tests, shaped like a VLA adapter (``habc.policy.backend``).

A frozen "backbone" embeds the state, standing in for a pretrained vision-language model, and
a small trainable action expert predicts the chunk with flow matching on that embedding.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from habc.networks import Normalizer
from habc.policy import flow_matching as fm
from habc.policy.backend import ChunkPolicy, Observation
from habc.policy.config import PolicyConfig


class FrozenBackbonePolicy(ChunkPolicy):
    """Flow-matching action expert on a frozen state embedding."""

    def __init__(self, config: PolicyConfig, state_dim: int, action_dim: int, *,
                 meta: dict[str, Any] | None = None, embed_dim: int = 16) -> None:
        super().__init__()
        self.config, self.state_dim, self.action_dim = config, state_dim, action_dim
        self.meta = dict(meta or {})
        self.embed_dim = embed_dim
        self.normalizer = Normalizer(state_dim, action_dim, std_floor=config.state_std_floor,
                                     clip=config.state_clip)
        self.backbone = nn.Sequential(nn.Linear(state_dim, embed_dim), nn.Tanh())
        self.backbone.requires_grad_(False)
        flat = config.chunk_horizon * action_dim
        self.expert = nn.Sequential(nn.Linear(flat + embed_dim + 1, 32), nn.GELU(),
                                    nn.Linear(32, flat))

    def backend_config(self) -> dict[str, Any]:
        return {"embed_dim": self.embed_dim}

    def _velocity(self, x: Tensor, tau: Tensor, features: Tensor) -> Tensor:
        return self.expert(torch.cat([x.flatten(1), features, tau[:, None]], -1)).view_as(x)

    def _features(self, obs: Observation) -> Tensor:
        return self.backbone(self.normalizer.state(obs.state))

    def per_sample_loss(self, obs: Observation, actions: Tensor, valid: Tensor,
                        generator: torch.Generator | None = None) -> Tensor:
        a = self.normalizer.action(actions)
        noise = torch.randn(a.shape, generator=generator, dtype=a.dtype)
        tau = fm.sample_flow_time(a.shape[0], alpha=1.0, beta=1.0, generator=generator)
        pred = self._velocity(fm.interpolate(a, noise, tau), tau, self._features(obs))
        return fm.per_sample_loss(pred, fm.target_velocity(a, noise), valid)

    @torch.no_grad()
    def sample_chunk(self, obs: Observation, generator: torch.Generator | None = None) -> Tensor:
        features = self._features(obs)
        noise = torch.randn((features.shape[0], self.config.chunk_horizon, self.action_dim),
                            generator=generator)
        x0 = fm.euler_sample(lambda x, tau: self._velocity(x, tau, features), noise, 2)
        return self.normalizer.unaction(x0.clamp(-1.0, 1.0))
