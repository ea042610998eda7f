"""Replay the trials of a `habc eval` result, for the failure analyses in this folder.

``replayed_trials(EVAL_JSON, task)`` rebuilds the result's checkpoint and environment, runs
each trial again on its seed (sampling seed 0, as `habc eval` uses by default) and yields its
episode, after checking that the replay reproduces the recorded outcome
and length.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import torch

from habc.envs.registry import get_task
from habc.episodes.episode import Episode, EpisodeSource
from habc.policy.backend import load_policy
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.runner import run_episode


def replayed_trials(path: Path, task_name: str) -> Iterator[Episode]:
    """The replayed episode of every trial of the eval result at ``path``."""
    result = json.loads(path.read_text())
    policy = load_policy(Path(result["checkpoint"]))
    task = get_task(task_name)
    env = make_policy_env(task, policy)
    for trial in result["trials"]:
        seed = trial["seed"]
        actor = PolicyActor(policy, prompt=task.prompt, version=0,
                            generator=torch.Generator().manual_seed(seed))
        ep = run_episode(env, actor, seed=seed, source=EpisodeSource.EVAL)
        assert ep.success == trial["success"] and ep.length == trial["length"], seed
        yield ep
