"""Run one episode with an actor and record it as an ``Episode``."""

from __future__ import annotations

import numpy as np

from habc.envs.metaworld_env import MetaWorldTaskEnv
from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.rollout.actors import Actor
from habc.rollout.operator import SimulatedOperator


def run_episode(env: MetaWorldTaskEnv, actor: Actor, *, seed: int, source: EpisodeSource,
                operator: SimulatedOperator | None = None) -> Episode:
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
    )
