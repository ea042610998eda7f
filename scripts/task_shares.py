"""How a multi-task run's sampling pools split between its tasks.

For each online run of a multi-task policy, labels its demos and stored rollouts as the learner
does (SPEC §2 credit labels, the run's own learner options) and prints, per sampling pool
(demos, rollouts, the operator's windows, the policy's own successes, ...), its frame count and
each task's share of its frames: the share of that pool's samples each task gets without
``--learner.task-balance`` (with it, every task present gets an equal share).

    .venv/bin/python scripts/task_shares.py --runs RUN ...
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from habc.episodes.store import open_stores
from habc.learner.online import prepare_data
from habc.policy.backend import load_policy


@dataclass(frozen=True)
class Args:
    """Task shares of the sampling pools of multi-task online runs."""

    runs: tuple[Path, ...]
    """Online run directories of multi-task policies (with rollouts/ and config.json)."""


def main(args: Args) -> None:
    """Print each run's pools with their frame counts and task shares."""
    for run in args.runs:
        config = json.loads((run / "config.json").read_text())
        policy = load_policy(Path(config["sft_checkpoint"]))
        tasks = list(policy.prompts)
        demos = config.get("demos") or policy.meta["datasets"]
        arrays = open_stores([*map(Path, demos), run / "rollouts"], ())
        learner = config["learner"]
        data = prepare_data(arrays, horizon=policy.config.chunk_horizon,
                            k=learner["advantage_horizon"], naive=False,
                            critic_use_demos=learner["critic"]["critic_use_demos"],
                            validation_every=learner["validation_every"],
                            imitate_failed_takeovers=learner["imitate_failed_takeovers"],
                            boundary_margin=learner["boundary_margin"],
                            prompts=tasks)
        assert data.episode_task is not None
        frame_task = data.episode_task[arrays.frame_episode]
        print(f"{run}:")
        print(f"  {'pool':18s} {'frames':>8s} " + " ".join(f"{t:>16s}" for t in tasks))
        for name, pool in data.pools.items():
            shares = np.bincount(frame_task[pool], minlength=len(tasks)) / max(len(pool), 1)
            print(f"  {name:18s} {len(pool):8d} " + " ".join(f"{x:16.0%}" for x in shares))


if __name__ == "__main__":
    main(tyro.cli(Args))
