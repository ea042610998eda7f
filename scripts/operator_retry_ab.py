"""A/B of the simulated operator's back-off-and-retry (docs/benchmarks.md, session 3).

Runs an SFT policy with an operator that always helps and always finishes, and counts how many
of the episodes it took over end in success, for each retry window (0: never back off).

    .venv/bin/python scripts/operator_retry_ab.py --checkpoint C --episodes 20 --retry 0 40 100
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from habc.envs.registry import get_task, make_env, make_expert
from habc.episodes.episode import Controller, EpisodeSource
from habc.policy.policy import load_policy
from habc.rollout.actors import PolicyActor
from habc.rollout.operator import OperatorConfig, SimulatedOperator
from habc.rollout.runner import run_episode


@dataclass(frozen=True)
class Args:
    """Operator retry A/B."""

    checkpoint: Path
    """SFT checkpoint; its task is the task."""
    episodes: int = 20
    """Episodes per setting (training seeds from seed_start)."""
    seed_start: int = 50_000
    retry: tuple[int, ...] = (0, 100)
    """retry_steps values to compare."""


def main(args: Args) -> None:
    """Print, per retry window, how many takeovers ended in success."""
    torch.set_num_threads(1)
    policy = load_policy(args.checkpoint)
    spec = get_task(str(policy.meta["task"]))
    env = make_env(spec)
    for retry in args.retry:
        config = OperatorConfig(help_prob=1.0, finish_prob=1.0, retry_steps=retry)
        helped = succeeded = 0
        for seed in range(args.seed_start, args.seed_start + args.episodes):
            operator = SimulatedOperator(config, make_expert(spec), np.random.default_rng(seed),
                                         backoff_action=np.asarray(spec.backoff_action,
                                                                   dtype=np.float32))
            actor = PolicyActor(policy, prompt=spec.prompt, version=0,
                                generator=torch.Generator().manual_seed(seed))
            episode = run_episode(env, actor, seed=seed, source=EpisodeSource.ROLLOUT,
                                  operator=operator)
            if (episode.controller == Controller.HUMAN).any():
                helped += 1
                succeeded += episode.success
        print(f"{spec.name}: retry_steps {retry}: {succeeded} of {helped} takeovers succeed",
              flush=True)


if __name__ == "__main__":
    main(tyro.cli(Args))
