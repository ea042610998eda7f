"""Critic networks: the dual-head critic and the distributional value (their own encoders)."""

from __future__ import annotations

from collections.abc import Mapping

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habc.critic.config import CriticConfig
from habc.errors import CheckpointError
from habc.networks import ImageEncoder, Normalizer, ResidualBlock, image_to_float, random_shift


class CriticEncoder(nn.Module):
    """Shared encoder phi(o): normalised state (B, S), camera frames and task -> (B, D).

    Each camera's features (``habc.networks.ImageEncoder``) and, in a multi-task critic
    (``num_tasks`` >= 2), a learned embedding of the task are added to the state's first layer,
    ahead of the residual blocks.
    """

    def __init__(self, state_dim: int, config: CriticConfig, cameras: tuple[str, ...] = (),
                 image_shift: int = 0, num_tasks: int = 0) -> None:
        """``image_shift``: pixels by which training frames are shifted each way (DrQ)."""
        super().__init__()
        self.image_shift = image_shift
        d = config.hidden_dim
        self.net = nn.Sequential(nn.Linear(state_dim, d),
                                 *[ResidualBlock(d) for _ in range(config.num_blocks)],
                                 nn.LayerNorm(d))
        self.image_encoders = nn.ModuleDict({c: ImageEncoder(d) for c in cameras})
        self.task_embedding = nn.Embedding(num_tasks, d) if num_tasks >= 2 else None

    def forward(self, state: Tensor, images: Mapping[str, Tensor] | None = None,
                generator: torch.Generator | None = None, task: Tensor | None = None) -> Tensor:
        """(B, S), camera -> (B, H, W, 3) uint8, (B,) -> (B, D).

        Args:
            state: normalised states.
            images: frames of at least the encoder's cameras (others are ignored).
            generator: given, the frames are shifted by up to ``image_shift`` pixels (training
                augmentation).
            task: (B,) int64 task index of each sample; needed by a multi-task critic, ignored
                by a single-task one.
        """
        h = self.net[0](state)
        for camera, encoder in self.image_encoders.items():
            if images is None or camera not in images:
                raise CheckpointError(f"the critic sees camera {camera!r}; its frames are "
                                      "missing")
            frames = image_to_float(images[camera])
            if generator is not None:
                frames = random_shift(frames, self.image_shift, generator)
            h = h + encoder(frames)
        if self.task_embedding is not None:
            if task is None:
                raise CheckpointError("the critic is multi-task; each sample needs its task")
            h = h + self.task_embedding(task)
        return self.net[1:](h)


class DualHeadCritic(nn.Module):
    """Viability logit head v(o) and steps-to-success head e(o) >= 0 on a shared encoder."""

    def __init__(self, state_dim: int, config: CriticConfig, normalizer: Normalizer,
                 cameras: tuple[str, ...] = (), image_shift: int = 0, num_tasks: int = 0) -> None:
        super().__init__()
        self.config = config
        self.normalizer = normalizer
        self.encoder = CriticEncoder(state_dim, config, cameras, image_shift, num_tasks)
        self.v_head = nn.Linear(config.hidden_dim, 1)
        self.e_head = nn.Linear(config.hidden_dim, 1)

    def forward(self, state: Tensor, images: Mapping[str, Tensor] | None = None,
                generator: torch.Generator | None = None, task: Tensor | None = None
                ) -> tuple[Tensor, Tensor]:
        """Raw state (B, S), frames and task -> (viability logits (B,), steps-to-success (B,)).

        ``generator``: shift the frames (training only); ``task``: (B,) task indices of a
        multi-task critic. See ``CriticEncoder``.
        """
        h = self.encoder(self.normalizer.state(state), images, generator, task)
        cap = self.config.v_max
        v = cap * torch.tanh(self.v_head(h).squeeze(-1) / cap)
        e = self.config.efficiency_scale * F.softplus(self.e_head(h).squeeze(-1))
        return v, e


class DistributionalValue(nn.Module):
    """Distributional value V(o) over uniform bins on [-1, 0] (SPEC §7)."""

    support: Tensor

    def __init__(self, state_dim: int, config: CriticConfig, normalizer: Normalizer,
                 cameras: tuple[str, ...] = (), image_shift: int = 0, num_tasks: int = 0) -> None:
        super().__init__()
        self.normalizer = normalizer
        self.encoder = CriticEncoder(state_dim, config, cameras, image_shift, num_tasks)
        self.head = nn.Linear(config.hidden_dim, config.value_bins)
        self.register_buffer("support", torch.linspace(-1.0, 0.0, config.value_bins))

    def forward(self, state: Tensor, images: Mapping[str, Tensor] | None = None,
                generator: torch.Generator | None = None, task: Tensor | None = None) -> Tensor:
        """Raw state (B, S), frames and task (B,) -> bin logits (B, K)."""
        return self.head(self.encoder(self.normalizer.state(state), images, generator, task))

    def value(self, state: Tensor, images: Mapping[str, Tensor] | None = None,
              task: Tensor | None = None) -> Tensor:
        """Expected value (B,) of the distribution."""
        return torch.softmax(self(state, images, task=task), dim=-1) @ self.support
