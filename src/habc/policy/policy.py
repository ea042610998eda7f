"""Flow-matching action-chunk policy: normalisation, velocity network, sampling, checkpoints.

Checkpoints are a directory with ``model.safetensors`` (network weights and normalisation
statistics) and ``config.json`` (architecture, shapes, task, training step). Loading never
unpickles anything.
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
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
from habc.policy.config import PolicyConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


@dataclass(frozen=True)
class Observation:
    """A batch of policy inputs (SPEC §1's observation dict).

    Attributes:
        state: (B, S) raw proprio/state.
        prompt: task prompt; single-task state policies ignore it, language backends use it.
        images: camera name -> (B, H, W, 3) uint8; exactly the policy's cameras.
    """

    state: Tensor
    prompt: str = ""
    images: dict[str, Tensor] = dataclasses.field(default_factory=dict)


class FlowMatchingPolicy(nn.Module):
    """Predicts an action chunk (H, A) from an observation with conditional flow matching."""

    def __init__(self, config: PolicyConfig, state_dim: int, action_dim: int,
                 meta: dict[str, Any] | None = None) -> None:
        super().__init__()
        self.config = config
        self.state_dim = state_dim
        self.action_dim = action_dim
        self.meta: dict[str, Any] = dict(meta or {})
        self.normalizer = Normalizer(state_dim, action_dim, std_floor=config.state_std_floor,
                                     clip=config.state_clip)
        d = config.hidden_dim
        self.encoder = StateEncoder(state_dim, d)
        self.image_encoders = nn.ModuleDict({c: ImageEncoder(d) for c in config.cameras})
        flat = config.chunk_horizon * action_dim
        self.input = nn.Linear(flat + d + config.time_embed_dim, d)
        self.blocks = nn.Sequential(*[ResidualBlock(d) for _ in range(config.num_blocks)])
        self.output = nn.Sequential(nn.LayerNorm(d), nn.Linear(d, flat))

    def encode(self, obs: Observation, generator: torch.Generator | None = None) -> Tensor:
        """Observation -> (B, D) features: the state's plus each camera's.

        In training mode the frames are randomly shifted by up to ``image_shift`` pixels.

        Raises:
            CheckpointError: if the cameras are not exactly the policy's, or a frame's size is
                not ``image_size``.
        """
        if sorted(obs.images) != sorted(self.config.cameras):
            raise CheckpointError(f"this policy sees cameras {sorted(self.config.cameras)}; it "
                                  f"got {sorted(obs.images)}")
        features = self.encoder(self.normalizer.state(obs.state))
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
        """Flow-matching loss per sample.

        Args:
            obs: batch of B observations.
            actions: (B, H, A) raw action chunks.
            valid: (B, H, A) bool, False on padded chunk steps and masked action dims.
            generator: optional generator for the noise and flow times.

        Returns:
            (B,) per-sample losses ``l_i``.
        """
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

    # --------------------------------------------------------------------------- checkpoints
    def save(self, directory: Path, **extra_meta: Any) -> None:
        """Write ``model.safetensors`` + ``config.json`` into ``directory`` (atomically)."""
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        payload = {"policy": dataclasses.asdict(self.config), "state_dim": self.state_dim,
                   "action_dim": self.action_dim, "meta": self.meta | extra_meta}
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
        if directory.exists():
            for f in directory.iterdir():
                f.unlink()
            directory.rmdir()
        tmp.rename(directory)


def load_policy(directory: Path) -> FlowMatchingPolicy:
    """Load a checkpoint directory written by ``FlowMatchingPolicy.save``.

    Raises:
        CheckpointError: naming the file, if it is missing or corrupt.
    """
    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (cfg_path, w_path):
        if not path.exists():
            raise CheckpointError(f"not a habc checkpoint: {path} is missing")
    try:
        payload = json.loads(cfg_path.read_text())
        config = PolicyConfig(**payload["policy"])
        policy = FlowMatchingPolicy(config, int(payload["state_dim"]), int(payload["action_dim"]),
                                    meta=payload.get("meta", {}))
    except (json.JSONDecodeError, KeyError, TypeError) as e:
        raise CheckpointError(f"corrupt checkpoint config {cfg_path}: {e}") from e
    try:
        tensors = load_file(str(w_path))
    except (SafetensorError, OSError) as e:
        raise CheckpointError(f"corrupt checkpoint weights {w_path}: {e}") from e
    try:
        policy.load_state_dict(tensors)
    except RuntimeError as e:
        raise CheckpointError(f"weights in {w_path} do not fit {cfg_path}: {e}") from e
    policy.eval()
    return policy
