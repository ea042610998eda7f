"""A/B of the simulated operator's settings (docs/benchmarks.md, "The simulated operator").

Runs an SFT policy with an operator that always helps, for every combination of retry window
and hand-back limit, and prints, per setting: how many helped episodes end in success, how many
hand-back takeovers reached their subgoal or hit the limit, and the operator steps.

    .venv/bin/python scripts/operator_ab.py --checkpoint C --episodes 20 --retry 0 100
    .venv/bin/python scripts/operator_ab.py --checkpoint C --finish-prob 0 --retry 0 100 \
        --max-takeover 80 200   # (retry 100, limit 80) is refused: no time to retry

Settings that OperatorConfig refuses are reported and skipped.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import tyro

from habc.envs.registry import get_task, make_expert
from habc.episodes.episode import Controller, EpisodeSource
from habc.errors import ConfigError
from habc.policy.backend import load_policy
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.operator import OperatorConfig, SimulatedOperator, takeover_endings
from habc.rollout.runner import run_episode


@dataclass(frozen=True)
class Args:
    """Operator A/B."""

    checkpoint: Path
    """SFT checkpoint; its task is the task."""
    episodes: int = 20
    """Episodes per setting (training seeds from seed_start)."""
    seed_start: int = 50_000
    finish_prob: float = 1.0
    """Share of takeovers that finish the task (1: always finish, 0: always hand back)."""
    retry: tuple[int, ...] = (100,)
    """retry_steps values to compare (0: never back off)."""
    max_takeover: tuple[int, ...] = (OperatorConfig.max_takeover_steps,)
    """max_takeover_steps values to compare."""


def main(args: Args) -> None:
    """Print one line of outcome and effort counts per setting."""
    torch.set_num_threads(1)
    policy = load_policy(args.checkpoint)
    spec = get_task(str(policy.meta["task"]))
    env = make_policy_env(spec, policy)
    for retry, limit in itertools.product(args.retry, args.max_takeover):
        try:
            config = OperatorConfig(help_prob=1.0, finish_prob=args.finish_prob,
                                    retry_steps=retry, max_takeover_steps=limit)
        except ConfigError as e:
            print(f"retry_steps {retry}, max_takeover_steps {limit}: skipped ({e})")
            continue
        helped = succeeded = reached = timed_out = operator_steps = 0
        for seed in range(args.seed_start, args.seed_start + args.episodes):
            operator = SimulatedOperator(config, make_expert(spec), np.random.default_rng(seed),
                                         backoff_action=np.asarray(spec.backoff_action,
                                                                   dtype=np.float32))
            actor = PolicyActor(policy, prompt=spec.prompt, version=0,
                                generator=torch.Generator().manual_seed(seed))
            episode = run_episode(env, actor, seed=seed, source=EpisodeSource.ROLLOUT,
                                  operator=operator)
            human = int(np.sum(episode.controller == Controller.HUMAN))
            if not human:
                continue
            helped += 1
            succeeded += episode.success
            operator_steps += human
            endings = takeover_endings(episode.controller, np.array([0]),
                                       np.array([len(episode.controller)]),
                                       np.array([episode.success]), limit)
            reached += endings.reached
            timed_out += endings.hit_limit
        print(f"{spec.name}: retry_steps {retry}, max_takeover_steps {limit}: {succeeded} of "
              f"{helped} helped episodes succeed; hand-backs: {reached} reached the subgoal, "
              f"{timed_out} hit the limit; operator steps {operator_steps}", flush=True)


if __name__ == "__main__":
    main(tyro.cli(Args))
