"""Run one episode with an actor and record it as an ``Episode``."""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from habc.envs.cameras import obs_images
from habc.envs.registry import TaskSpec
from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.rollout.actors import Actor


class TaskEnv(Protocol):
    """What the runner needs of an environment: Meta-World's here, a robot's driver elsewhere.

    ``step`` follows gymnasium: (observation, reward, terminated on success, truncated at the
    step limit, info); ``info`` carries ``success`` and ``progress`` (a task-progress signal
    in [0, 1] for the operator; a robot without one may report 0.0 to a human operator).
    Observations carry ``state`` and one ``image.<camera>`` per camera (``habc.envs.cameras``).
    """

    @property
    def task(self) -> TaskSpec:
        """The task (its name and prompt are stored with the episode)."""
        ...

    @property
    def raw_state(self) -> npt.NDArray[np.float64]:
        """The full state after the last reset or step (what a scripted expert reads)."""
        ...

    def reset(self, *, seed: int | None = None, options: dict[str, Any] | None = None
              ) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        """Start an episode with ``seed``'s layout."""
        ...

    def step(self, action: npt.NDArray[np.float32]
             ) -> tuple[dict[str, npt.NDArray[Any]], float, bool, bool, dict[str, Any]]:
        """Execute one action."""
        ...


class Operator(Protocol):
    """Who may take over during an episode: the simulated operator, or a person's teleop."""

    @property
    def in_control(self) -> bool:
        """Whether the operator produces the next action."""
        ...

    def reset(self) -> None:
        """Start a new episode."""

    def act(self, raw_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """The operator's action (A,) for the current step."""
        ...

    def observe(self, progress: float) -> None:
        """Take in the task-progress signal after a step; decide control for the next step."""

    def logged_controllers(self, controller: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """The (T,) controller labels as they are logged (the executed ones, or as mislabelled)."""
        ...


def run_episode(env: TaskEnv, actor: Actor, *, seed: int, source: EpisodeSource,
                operator: Operator | None = None) -> Episode:
    """Reset ``env`` to ``seed``'s layout and let ``actor`` act until success or time-out.

    With an ``operator``, the operator may take over (and hand back) at any step; the actor
    re-plans from scratch whenever control changes hands. Every step records the observation
    the controller saw, the executed action, and who produced it.
    """
    obs, _ = env.reset(seed=seed)
    actor.reset()
    if operator is not None:
        operator.reset()
    states, actions, controllers, versions = [], [], [], []
    frames: dict[str, list[npt.NDArray[np.uint8]]] = {c: [] for c in obs_images(obs)}
    human = False
    while True:
        if operator is not None and operator.in_control != human:
            human = operator.in_control
            actor.reset()
        if human and operator is not None:
            action, controller, version = operator.act(env.raw_state), Controller.HUMAN, -1
        else:
            action, controller, version = actor.act(obs, env.raw_state)
        states.append(obs["state"])
        for camera, frame in obs_images(obs).items():
            frames[camera].append(frame)
        actions.append(action)
        controllers.append(int(controller))
        versions.append(version)
        obs, _, terminated, truncated, info = env.step(action)
        if operator is not None:
            operator.observe(info["progress"])
        if terminated or truncated:
            break
    logged = np.asarray(controllers, dtype=np.int8)
    if operator is not None:
        logged = operator.logged_controllers(logged)
    return Episode(
        state=np.stack(states).astype(np.float32),
        action=np.stack(actions).astype(np.float32),
        controller=logged,
        policy_version=np.where(logged == Controller.HUMAN, -1, max(versions)).astype(np.int32),
        success=bool(info["success"]),
        source=source,
        task=env.task.name,
        prompt=env.task.prompt,
        seed=seed,
        images={camera: np.stack(f) for camera, f in frames.items()},
        unstable=bool(info.get("unstable", False)),
    )
