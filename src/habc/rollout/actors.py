"""Actors produce the executed action of each step and say who produced it.

An actor sees the environment's observation and the raw simulator state (the scripted expert
reads privileged state; the policy reads only the observation).
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import numpy.typing as npt
import torch

from habc.envs.cameras import obs_images
from habc.envs.registry import TaskSpec, make_env
from habc.episodes.episode import Controller
from habc.errors import ConfigError
from habc.policy.backend import ChunkPolicy, Observation

if TYPE_CHECKING:
    from habc.envs.metaworld_env import MetaWorldTaskEnv


class Actor(Protocol):
    """Anything that acts in an episode."""

    def reset(self) -> None:
        """Forget per-episode state (queued actions)."""

    def act(self, obs: dict[str, npt.NDArray[Any]],
            raw_state: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], Controller, int]:
        """Return (action (A,), controller, policy_version; -1 for human steps)."""
        ...


class ExpertActor:
    """The scripted expert, with optional Gaussian action noise, acting as the human."""

    def __init__(self, expert: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float32]],
                 *, noise_std: float, rng: np.random.Generator) -> None:
        self.expert = expert
        self.noise_std = noise_std
        self.rng = rng

    def reset(self) -> None:
        """Stateless: nothing to forget."""

    def act(self, obs: dict[str, npt.NDArray[Any]],
            raw_state: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], Controller, int]:
        """Expert action plus noise, clipped to [-1, 1]."""
        action = np.asarray(self.expert(raw_state), dtype=np.float32)
        if self.noise_std > 0:
            noise = self.noise_std * self.rng.standard_normal(action.shape)
            action = (action + noise).astype(np.float32)
        return np.clip(action, -1.0, 1.0).astype(np.float32), Controller.HUMAN, -1


def make_policy_env(task: TaskSpec, policy: ChunkPolicy, *,
                    max_steps: int | None = None) -> MetaWorldTaskEnv:
    """``task``'s environment, rendering the cameras that ``policy`` sees."""
    return make_env(task, max_steps=max_steps, cameras=policy.config.cameras,
                    image_size=policy.config.image_size)


def resolve_exec_horizon(policy: ChunkPolicy, exec_horizon: int | None) -> int:
    """Actions to execute from each predicted chunk: ``exec_horizon``, or the policy's own.

    Raises:
        ConfigError: if it does not lie in [1, the policy's chunk length].
    """
    k = policy.config.exec_horizon if exec_horizon is None else exec_horizon
    if not 1 <= k <= policy.config.chunk_horizon:
        raise ConfigError(f"exec_horizon {k} must lie in [1, {policy.config.chunk_horizon}], "
                          "the checkpoint's chunk length")
    return k


class PolicyActor:
    """Runs a chunk policy with receding horizon: predict H actions, execute the first K."""

    def __init__(self, policy: ChunkPolicy, *, prompt: str, version: int,
                 generator: torch.Generator, exec_horizon: int | None = None) -> None:
        """``exec_horizon``: actions executed from each chunk; None: the policy's own K."""
        self.exec_horizon = resolve_exec_horizon(policy, exec_horizon)
        self.policy = policy
        self.prompt = prompt
        self.version = version
        self.generator = generator
        self.queue: deque[npt.NDArray[np.float32]] = deque()

    def reset(self) -> None:
        """Drop queued actions."""
        self.queue.clear()

    def act(self, obs: dict[str, npt.NDArray[Any]],
            raw_state: npt.NDArray[np.float64]) -> tuple[npt.NDArray[np.float32], Controller, int]:
        """Next queued action; predicts a new chunk when the queue is empty."""
        if not self.queue:
            state = torch.as_tensor(obs["state"], dtype=torch.float32)[None]
            images = {c: torch.from_numpy(f)[None] for c, f in obs_images(obs).items()}
            observation = Observation(state=state, prompt=self.prompt, images=images)
            chunk = self.policy.sample_chunk(observation, generator=self.generator)[0].numpy()
            self.queue.extend(chunk[: self.exec_horizon])
        return self.queue.popleft(), Controller.POLICY, self.version
