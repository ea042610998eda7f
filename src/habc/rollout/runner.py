"""Run one episode with an actor and record it as an ``Episode``."""

from __future__ import annotations

import numpy as np

from habc.envs.metaworld_env import MetaWorldTaskEnv
from habc.episodes.episode import Episode, EpisodeSource
from habc.rollout.actors import Actor


def run_episode(env: MetaWorldTaskEnv, actor: Actor, *, seed: int,
                source: EpisodeSource) -> Episode:
    """Reset ``env`` to ``seed``'s layout and let ``actor`` act until success or time-out.

    Every step records the observation the actor saw, the executed action, and its controller.
    """
    obs, _ = env.reset(seed=seed)
    actor.reset()
    states, actions, controllers, versions = [], [], [], []
    success = False
    while True:
        action, controller, version = actor.act(obs, env.raw_state)
        states.append(obs["state"])
        actions.append(action)
        controllers.append(int(controller))
        versions.append(version)
        obs, _, terminated, truncated, info = env.step(action)
        if terminated or truncated:
            success = bool(info["success"])
            break
    return Episode(
        state=np.stack(states).astype(np.float32),
        action=np.stack(actions).astype(np.float32),
        controller=np.asarray(controllers, dtype=np.int8),
        policy_version=np.asarray(versions, dtype=np.int32),
        success=success,
        source=source,
        task=env.task.name,
        prompt=env.task.prompt,
        seed=seed,
    )
