"""Throughput benchmark: simulator steps/s alone vs with the policy in the loop."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from habc.envs.registry import eval_seeds, get_task
from habc.episodes.episode import EpisodeSource
from habc.errors import ConfigError
from habc.evaluation.evaluate import check_fits
from habc.policy.backend import checkpoint_tasks, load_policy
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.runner import run_episode


@dataclass(frozen=True)
class ThroughputConfig:
    """Measure env steps/s of the raw simulator and of evaluation with the policy in the loop."""

    checkpoint: Path
    """Checkpoint directory of the policy."""
    task: str | None = None
    """Task; defaults to the checkpoint's (a multi-task checkpoint's first)."""
    sim_steps: int = 3000
    """Steps of the raw simulator (random actions) to time."""
    episodes: int = 5
    """Policy-in-the-loop episodes to time (single process)."""
    num_threads: int = 1
    """torch threads for the policy."""

    def __post_init__(self) -> None:
        if self.sim_steps < 1 or self.episodes < 1 or self.num_threads < 1:
            raise ConfigError("sim_steps, episodes and num_threads must be >= 1")


def measure_throughput(config: ThroughputConfig) -> dict[str, Any]:
    """Return raw and policy-in-loop env steps/s (one process each) and their ratio."""
    torch.set_num_threads(config.num_threads)
    policy = load_policy(config.checkpoint)
    task = get_task(config.task or checkpoint_tasks(policy)[0])
    env = make_policy_env(task, policy)
    check_fits(policy, env, config.checkpoint)
    rng = np.random.default_rng(0)
    env.reset(seed=eval_seeds(1)[0])
    start = time.perf_counter()
    for _ in range(config.sim_steps):
        _, _, terminated, truncated, _ = env.step(rng.uniform(-1, 1, 4).astype(np.float32))
        if terminated or truncated:
            env.reset(seed=eval_seeds(1)[0])
    sim_rate = config.sim_steps / (time.perf_counter() - start)
    actor = PolicyActor(policy, prompt=task.prompt, version=0,
                        generator=torch.Generator().manual_seed(0))
    steps, start = 0, time.perf_counter()
    for seed in eval_seeds(config.episodes):
        steps += run_episode(env, actor, seed=seed, source=EpisodeSource.EVAL).length
    loop_rate = steps / (time.perf_counter() - start)
    return {"task": task.name, "sim_steps_per_s": sim_rate, "policy_loop_steps_per_s": loop_rate,
            "ratio": loop_rate / sim_rate, "policy_loop_steps": steps,
            "exec_horizon": policy.config.exec_horizon,
            "num_inference_steps": policy.config.num_inference_steps}
