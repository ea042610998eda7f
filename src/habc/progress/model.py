"""The stage-aware progress model (SPEC §8): a multi-gate mixture of experts.

Shared experts read the normalised state (and, with cameras, each camera's image features);
each task has its own softmax gate over the experts and its own tower, which gives that task's
``K`` stage logits and a within-stage progress in [0, 1]. The dense progress is
``(argmax stage + within) / K`` (``targets.dense_progress``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from habc.errors import CheckpointError, ConfigError
from habc.networks import ImageEncoder, Normalizer, image_to_float
from habc.progress.targets import dense_progress


@dataclass(frozen=True)
class ProgressConfig:
    """Progress model of ``rabc`` (SPEC §8)."""

    hidden_dim: int = 128
    """Width of each expert and tower."""
    num_experts: int = 4
    """Shared experts of the mixture."""
    lr: float = 3e-4
    """AdamW learning rate."""
    within_loss_weight: float = 1.0
    """Weight of the within-stage regression loss next to the stage cross-entropy."""
    pretrain_steps: int = 1000
    """Steps the model trains on a round's data before that round's first actor step, so that
    an untrained model never weights the actor (then one step per learner step, as the critic)."""

    def __post_init__(self) -> None:
        if self.hidden_dim < 1 or self.num_experts < 1 or self.pretrain_steps < 0:
            raise ConfigError("progress hidden_dim, num_experts >= 1 and pretrain_steps >= 0")
        if self.lr <= 0 or self.within_loss_weight < 0:
            raise ConfigError("progress lr > 0 and within_loss_weight >= 0")


class ProgressModel(nn.Module):
    """Stage classifier + within-stage regressor, one gate and tower per task."""

    stage_mask: Tensor

    def __init__(self, state_dim: int, num_stages: tuple[int, ...], config: ProgressConfig,
                 normalizer: Normalizer, cameras: tuple[str, ...] = ()) -> None:
        """``cameras``: cameras whose frames the experts and gates read besides the state."""
        super().__init__()
        if not num_stages or min(num_stages) < 1:
            raise ConfigError("every task needs at least one stage")
        self.num_stages = num_stages
        self.normalizer = normalizer
        d, k_max = config.hidden_dim, max(num_stages)
        width = state_dim + d * len(cameras)  # the state, then each camera's features
        self.experts = nn.ModuleList([
            nn.Sequential(nn.Linear(width, d), nn.GELU(), nn.Linear(d, d), nn.GELU())
            for _ in range(config.num_experts)])
        self.gates = nn.ModuleList([nn.Linear(width, config.num_experts)
                                    for _ in num_stages])
        self.towers = nn.ModuleList([nn.Sequential(nn.Linear(d, d), nn.GELU(),
                                                   nn.Linear(d, k_max + 1))
                                     for _ in num_stages])
        mask = torch.zeros(len(num_stages), k_max, dtype=torch.bool)
        for i, k in enumerate(num_stages):
            mask[i, k:] = True
        self.register_buffer("stage_mask", mask)
        self.image_encoders = nn.ModuleDict({c: ImageEncoder(d) for c in cameras})

    def forward(self, state: Tensor, task: Tensor,
                images: Mapping[str, Tensor] | None = None) -> tuple[Tensor, Tensor]:
        """Raw state (B, S), task index (B,), frames -> (stage logits (B, K_max), within (B,)).

        ``images``: camera -> (B, H, W, 3) uint8, for at least the model's cameras. Logits of
        stages past a task's own ``K`` are -inf.
        """
        x = self.normalizer.state(state)
        if self.image_encoders:
            missing = sorted(set(self.image_encoders) - set(images or {}))
            if images is None or missing:
                raise CheckpointError(f"the progress model sees cameras {missing}; their "
                                      "frames are missing")
            x = torch.cat([x, *(encoder(image_to_float(images[c]))
                                for c, encoder in self.image_encoders.items())], dim=-1)
        experts = torch.stack([e(x) for e in self.experts], dim=1)  # (B, E, D)
        out = torch.zeros(len(x), self.stage_mask.shape[1] + 1, dtype=x.dtype)
        for i, (gate, tower) in enumerate(zip(self.gates, self.towers, strict=True)):
            mine = task == i
            if mine.any():
                g = torch.softmax(gate(x[mine]), dim=-1)  # (b, E)
                out[mine] = tower(torch.einsum("be,bed->bd", g, experts[mine]))
        logits = out[:, :-1].masked_fill(self.stage_mask[task], float("-inf"))
        return logits, torch.sigmoid(out[:, -1])

    def per_sample_loss(self, state: Tensor, task: Tensor, stage: Tensor, within: Tensor,
                        within_weight: float,
                        images: Mapping[str, Tensor] | None = None) -> Tensor:
        """Cross-entropy on the stage + weighted squared error on within-stage progress (B,)."""
        logits, w_hat = self(state, task, images)
        return F.cross_entropy(logits, stage, reduction="none") \
            + within_weight * (w_hat - within) ** 2

    def progress(self, state: Tensor, task: Tensor,
                 images: Mapping[str, Tensor] | None = None) -> Tensor:
        """Dense progress estimate (B,) in [0, 1]."""
        logits, within = self(state, task, images)
        k = torch.as_tensor(self.num_stages)[task]
        return dense_progress(logits.argmax(-1), within, k)
