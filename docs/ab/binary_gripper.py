"""Probe: execute a checkpoint's gripper command as fully open or fully closed (its sign).

Usage: python docs/ab/binary_gripper.py CHECKPOINT [CHECKPOINT ...]

Scores each pick-place checkpoint on the 100 validation seeds 1,100,000+ (sampling seed 0 as
`habc eval`), with the last action dimension (Meta-World's gripper) replaced by +1 or -1 before
it is executed. Prints success and mean success length per checkpoint.
"""

from __future__ import annotations

import sys
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from habc.envs.registry import eval_seeds, get_task
from habc.episodes.episode import Controller, EpisodeSource
from habc.policy.backend import load_policy
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.runner import run_episode


class BinaryGripper(PolicyActor):
    """The policy, with its gripper command snapped to -1 or +1."""

    def act(self, obs: dict[str, npt.NDArray[Any]], raw_state: npt.NDArray[np.float64]) \
            -> tuple[npt.NDArray[np.float32], Controller, int]:
        """The policy's next action, gripper snapped."""
        action, controller, version = super().act(obs, raw_state)
        action = action.copy()
        action[-1] = 1.0 if action[-1] > 0 else -1.0
        return action, controller, version


if __name__ == "__main__":
    torch.set_num_threads(1)
    task = get_task("pick-place")
    for checkpoint in sys.argv[1:]:
        policy = load_policy(checkpoint)
        env = make_policy_env(task, policy)
        success, length = [], []
        for seed in eval_seeds(100, 100_000):
            actor = BinaryGripper(policy, prompt=task.prompt, version=0,
                                  generator=torch.Generator().manual_seed(seed))
            ep = run_episode(env, actor, seed=seed, source=EpisodeSource.EVAL)
            success.append(ep.success)
            length.append(ep.length)
        ok = np.array(success)
        print(f"{checkpoint}: {ok.mean():.0%}, mean success length "
              f"{np.mean(np.array(length)[ok]):.1f}", flush=True)
