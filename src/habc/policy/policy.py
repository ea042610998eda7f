"""The built-in actor: a flow-matching action-chunk policy.

Normalisation, velocity network and sampling; its checkpoints are ``ChunkPolicy`` ones
(``habc.policy.backend``).
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from habc.errors import CheckpointError
from habc.networks import (
    ImageEncoder,
    Normalizer,
    ResidualBlock,
    StateEncoder,
    image_to_float,
    random_shift,
    time_embedding,
)
from habc.policy import flow_matching as fm
from habc.policy.backend import ChunkPolicy, Observation
from habc.policy.config import PolicyConfig


class FlowMatchingPolicy(ChunkPolicy):
    """Predicts an action chunk (H, A) from an observation with conditional flow matching.

    With ``prompts`` (two or more task prompts) it is a multi-task policy: a learned embedding
    of each sample's prompt is added to its observation features, and any other prompt is
    refused. With none it is single-task and ignores the prompt.
    """

    def __init__(self, config: PolicyConfig, state_dim: int, action_dim: int,
                 meta: dict[str, Any] | None = None, prompts: Sequence[str] = ()) -> None:
        super().__init__()
        self.config = config
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.meta: dict[str, Any] = dict(meta or {})
        self.prompts = tuple(prompts)
        if len(set(self.prompts)) != len(self.prompts):
            raise CheckpointError(f"task prompts {list(self.prompts)} name one task twice")
        self.normalizer = Normalizer(state_dim, action_dim, std_floor=config.state_std_floor,
                                     clip=config.state_clip)
        d = config.hidden_dim
        self.encoder = StateEncoder(state_dim, d)
        self.image_encoders = nn.ModuleDict({c: ImageEncoder(d) for c in config.cameras})
        self.task_embedding = nn.Embedding(len(self.prompts), d) if self.prompts else None
        flat = config.chunk_horizon * action_dim
        self.input = nn.Linear(flat + d + config.time_embed_dim, d)
        self.blocks = nn.Sequential(*[ResidualBlock(d) for _ in range(config.num_blocks)])
        self.output = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, flat))

    def backend_config(self) -> dict[str, Any]:
        """The task prompts of a multi-task policy (none for a single-task one)."""
        return {"prompts": list(self.prompts)} if self.prompts else {}

    def check_prompt(self, prompt: str) -> None:
        """Refuse a prompt a multi-task policy was not trained on."""
        if self.prompts and prompt not in self.prompts:
            raise CheckpointError(f"this multi-task policy knows the tasks {list(self.prompts)};"
                                  f" it got {prompt!r}")

    def prompt_index(self, prompt: str | tuple[str, ...], batch: int) -> Tensor:
        """(B,) index of each sample's prompt in ``prompts``; one prompt is the whole batch's.

        Raises:
            CheckpointError: for a prompt the policy does not know, or a prompt count that is
                neither 1 nor B.
        """
        per_sample = (prompt,) * batch if isinstance(prompt, str) else prompt
        if len(per_sample) != batch:
            raise CheckpointError(f"{len(per_sample)} prompts for a batch of {batch}")
        lookup = {p: i for i, p in enumerate(self.prompts)}
        for p in set(per_sample):
            self.check_prompt(p)
        return torch.tensor([lookup[p] for p in per_sample], dtype=torch.long)

    def encode(self, obs: Observation, generator: torch.Generator | None = None) -> Tensor:
        """Observation -> (B, D) features: the state's plus each camera's.

        A multi-task policy adds the embedding of each sample's task prompt. In training mode
        the frames are randomly shifted by up to ``image_shift`` pixels.

        Raises:
            CheckpointError: if the cameras are not exactly the policy's, or a frame's size is
                not ``image_size``.
        """
        if sorted(obs.images) != sorted(self.config.cameras):
            raise CheckpointError(f"this policy sees cameras {sorted(self.config.cameras)}; it "
                                  f"got {sorted(obs.images)}")
        features = self.encoder(self.normalizer.state(obs.state))
        if self.task_embedding is not None:
            features = features + self.task_embedding(self.prompt_index(obs.prompt,
                                                                        features.shape[0]))
        size = self.config.image_size
        for camera, encoder in self.image_encoders.items():
            frames = obs.images[camera]
            if tuple(frames.shape[1:]) != (size, size, 3):
                raise CheckpointError(f"camera {camera} frames are {tuple(frames.shape[1:])}; "
                                      f"this policy takes ({size}, {size}, 3)")
            images = image_to_float(frames)
            if self.training:
                images = random_shift(images, self.config.image_shift, generator)
            features = features + encoder(images)
        return features

    def velocity(self, x: Tensor, tau: Tensor, features: Tensor) -> Tensor:
        """``v_theta(x_tau, o, tau)``: x (B, H, A), tau (B,), features (B, D) -> (B, H, A)."""
        h = torch.cat([x.flatten(1), features,
                       time_embedding(tau, self.config.time_embed_dim)], dim=-1)
        return self.output(self.blocks(self.input(h))).view_as(x)

    def per_sample_loss(self, obs: Observation, actions: Tensor, valid: Tensor,
                        generator: torch.Generator | None = None) -> Tensor:
        """Flow-matching loss per sample; shapes as in ``ChunkPolicy.per_sample_loss``."""
        a = self.normalizer.action(actions)
        noise = torch.randn(a.shape, generator=generator, dtype=a.dtype)
        tau = fm.sample_flow_time(a.shape[0], alpha=self.config.flow_time_alpha,
                                  beta=self.config.flow_time_beta, generator=generator)
        x_tau = fm.interpolate(a, noise, tau)
        pred = self.velocity(x_tau, tau, self.encode(obs, generator))
        return fm.per_sample_loss(pred, fm.target_velocity(a, noise), valid)

    @torch.no_grad()
    def sample_chunk(self, obs: Observation, generator: torch.Generator | None = None) -> Tensor:
        """Sample raw action chunks (B, H, A) by Euler integration from noise."""
        features = self.encode(obs)
        b = features.shape[0]
        noise = torch.randn((b, self.config.chunk_horizon, self.action_dim),
                            generator=generator)
        x0 = fm.euler_sample(lambda x, tau: self.velocity(x, tau, features), noise,
                             self.config.num_inference_steps)
        return self.normalizer.unaction(x0.clamp(-1.0, 1.0))
