"""The actor that habc trains and deploys, whatever network it is, and its checkpoints.

Any network that predicts an action chunk from an observation and has a per-sample training
loss can be the actor: subclass ``ChunkPolicy`` and implement ``per_sample_loss`` and
``sample_chunk``. The built-in one is ``habc.policy.policy.FlowMatchingPolicy``. A large VLA
plugs in through an adapter class that wraps it (frozen parts set ``requires_grad_(False)``;
the learner's optimiser only moves parameters that get a gradient).

A checkpoint is a directory with ``model.safetensors`` (the ``state_dict``) and ``config.json``:
the backend class as ``"module:Class"``, the shared ``PolicyConfig``, the shapes, the backend's
own constructor arguments and free-form ``meta`` (task, training step). ``load_policy`` imports
the class named there, so the module must be importable where the checkpoint is loaded
(rollout workers included); loading never unpickles anything. Checkpoints written before the
backend key existed are ``FlowMatchingPolicy`` ones.
"""

from __future__ import annotations

import dataclasses
import importlib
import json
from abc import ABC, abstractmethod
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import Tensor, nn

from habc.errors import CheckpointError
from habc.networks import Normalizer
from habc.policy.config import PolicyConfig

CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"
BUILTIN_BACKEND = "habc.policy.policy:FlowMatchingPolicy"


@dataclasses.dataclass(frozen=True)
class Observation:
    """A batch of policy inputs (SPEC §1's observation dict).

    Attributes:
        state: (B, S) raw proprio/state.
        prompt: the task prompt of the whole batch, or one per sample (B,). A single-task
            policy ignores it; a multi-task one and language backends are conditioned on it.
        images: camera name -> (B, H, W, 3) uint8; exactly the policy's cameras.
    """

    state: Tensor
    prompt: str | tuple[str, ...] = ""
    images: dict[str, Tensor] = dataclasses.field(default_factory=dict)


class ChunkPolicy(nn.Module, ABC):
    """An action-chunk policy that habc can train with weighted per-sample losses and deploy.

    Attributes every backend sets in ``__init__``:
        config: habc reads ``chunk_horizon`` (H of the training windows), ``exec_horizon``,
            ``cameras``, ``image_size`` and ``image_shift`` from it; the other fields are the
            built-in network's and a backend may ignore them.
        state_dim, action_dim: S and A.
        meta: free-form JSON facts saved with the checkpoint (task, training step, ...).
        normalizer: the state statistics the critic shares, and the action bounds.

    ``prompts``: the task prompts of a multi-task policy, in the order of its task indices
    (the online critic is conditioned on the same tasks); empty for a single-task one.
    """

    config: PolicyConfig
    state_dim: int
    action_dim: int
    meta: dict[str, Any]
    normalizer: Normalizer
    prompts: tuple[str, ...] = ()

    @abstractmethod
    def per_sample_loss(self, obs: Observation, actions: Tensor, valid: Tensor,
                        generator: torch.Generator | None = None) -> Tensor:
        """Training loss of each sample; the learner applies the weights.

        Args:
            obs: batch of B observations.
            actions: (B, H, A) raw action chunks.
            valid: (B, H, A) bool, False on padded chunk steps and masked action dims.
            generator: optional generator for the loss's own randomness.

        Returns:
            (B,) per-sample losses ``l_i``.
        """

    @abstractmethod
    def sample_chunk(self, obs: Observation, generator: torch.Generator | None = None) -> Tensor:
        """Raw action chunks (B, H, A) for a batch of observations."""

    def check_prompt(self, prompt: str) -> None:
        """Raise ``CheckpointError`` if this policy cannot act on task ``prompt``.

        The default accepts every prompt: a single-task policy ignores it.
        """

    def backend_config(self) -> dict[str, Any]:
        """Constructor arguments beyond the shared ones, as JSON values.

        They are saved in ``config.json`` and passed back to ``__init__`` as keywords on load.
        """
        return {}

    def save(self, directory: Path, **extra_meta: Any) -> None:
        """Write ``model.safetensors`` + ``config.json`` into ``directory`` (atomically)."""
        directory = Path(directory)
        tmp = directory.with_name(f".{directory.name}.tmp")
        tmp.mkdir(parents=True, exist_ok=True)
        tensors = {k: v.detach().contiguous() for k, v in self.state_dict().items()}
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        cls = type(self)
        payload = {"backend": f"{cls.__module__}:{cls.__qualname__}",
                   "policy": dataclasses.asdict(self.config), "state_dim": self.state_dim,
                   "action_dim": self.action_dim, "backend_config": self.backend_config(),
                   "meta": self.meta | extra_meta}
        (tmp / CONFIG_FILE).write_text(json.dumps(payload, indent=2))
        if directory.exists():
            for f in directory.iterdir():
                f.unlink()
            directory.rmdir()
        tmp.rename(directory)


def task_meta(tasks: Sequence[str]) -> dict[str, Any]:
    """Checkpoint facts naming the task: ``task`` for one, ``tasks`` for several."""
    return {"task": tasks[0]} if len(tasks) == 1 else {"tasks": list(tasks)}


def checkpoint_tasks(policy: ChunkPolicy) -> list[str]:
    """The task names a checkpoint was trained on (``task_meta``'s inverse)."""
    if "tasks" in policy.meta:
        return [str(t) for t in policy.meta["tasks"]]
    return [str(policy.meta.get("task", ""))]


def backend_class(name: str) -> type[ChunkPolicy]:
    """The ``ChunkPolicy`` subclass named ``"module:Class"``.

    Raises:
        CheckpointError: if it cannot be imported or is not a ``ChunkPolicy``.
    """
    module_name, _, class_name = name.partition(":")
    try:
        cls = getattr(importlib.import_module(module_name), class_name)
    except (ImportError, AttributeError, ValueError) as e:
        raise CheckpointError(f"policy backend {name!r} cannot be imported ({e}); its module "
                              "must be importable, e.g. on PYTHONPATH") from e
    if not (isinstance(cls, type) and issubclass(cls, ChunkPolicy)):
        raise CheckpointError(f"policy backend {name!r} is not a habc ChunkPolicy")
    return cls


def load_policy(directory: Path) -> ChunkPolicy:
    """Load a checkpoint directory written by ``ChunkPolicy.save``, in eval mode.

    Raises:
        CheckpointError: naming the file, if it is missing or corrupt, or its backend cannot
            be imported.
    """
    directory = Path(directory)
    cfg_path, w_path = directory / CONFIG_FILE, directory / WEIGHTS_FILE
    for path in (cfg_path, w_path):
        if not path.exists():
            raise CheckpointError(f"not a habc checkpoint: {path} is missing")
    try:
        payload = json.loads(cfg_path.read_text())
        cls = backend_class(str(payload.get("backend", BUILTIN_BACKEND)))
        policy = cls(PolicyConfig(**payload["policy"]), int(payload["state_dim"]),
                     int(payload["action_dim"]), meta=payload.get("meta", {}),
                     **payload.get("backend_config", {}))
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
