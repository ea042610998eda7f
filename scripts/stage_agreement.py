"""Where the gripper's switches (``--stages gripper``) fall among the scripted expert's phases.

For a Meta-World task, sets the gripper stages on its demos as ``habc online --stages gripper``
does, labels the demos and any rollout stores with both sources, and prints for each group of
episodes (the demos; successful and failed rollouts) how the frames of each gripper stage
spread over the expert's phases (SPEC §8's sim labels).

    .venv/bin/python scripts/stage_agreement.py --task pick-place --demos DEMOS \
        --rollouts RUN/rollouts
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import tyro

from habc.envs.registry import get_task
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import StoreArrays, open_stores
from habc.experiments.online import StageLabels, expert_stages, gripper_stages
from habc.progress.primitives import GripperStageConfig


@dataclass(frozen=True)
class Args:
    """Gripper stages against the expert's phases on a task's stores."""

    task: str
    """Meta-World task of the stores."""
    demos: tuple[Path, ...]
    """Demo stores (they set the gripper threshold and K)."""
    rollouts: tuple[Path, ...] = ()
    """Rollout stores to label as well (their episodes of ``task``)."""
    gripper: GripperStageConfig = field(default_factory=GripperStageConfig)
    """Gripper stages, as ``--gripper.*``."""


def _table(name: str, arrays: StoreArrays, gripper: StageLabels, expert: StageLabels) -> None:
    """Print one group's frames: a row per gripper stage, a column per expert phase."""
    g, e = gripper.label(arrays, 0), expert.label(arrays, 0)
    k_e = expert.num_stages[0]
    print(f"\n{name}: {arrays.num_episodes} episodes, {arrays.num_frames} frames")
    print("| gripper stage | frames | " + " | ".join(f"expert phase {p}" for p in range(k_e))
          + " |")
    print("|---" * (k_e + 2) + "|")
    for stage in range(gripper.num_stages[0]):
        counts = np.bincount(e[g == stage], minlength=k_e)
        shares = counts / max(1, counts.sum())
        print(f"| {stage} | {counts.sum()} | "
              + " | ".join(f"{c} ({s:.0%})" for c, s in zip(counts, shares, strict=True)) + " |")


def main(args: Args) -> None:
    """Print the cross tables of the demos and of the rollouts' successes and failures."""
    demos = open_stores(args.demos)
    gripper = gripper_stages(demos, [args.task], args.gripper)
    expert = expert_stages([get_task(args.task)])
    print(f"{args.task}: {gripper.source}; the expert has {expert.num_stages[0]} phases")
    _table("demos", demos, gripper, expert)
    if args.rollouts:
        rollouts = open_stores(args.rollouts)
        rollouts = rollouts.select((rollouts.source == str(EpisodeSource.ROLLOUT))
                                   & (rollouts.task == args.task))
        for name, mask in (("successful rollouts", rollouts.success),
                           ("failed rollouts", ~rollouts.success)):
            _table(name, rollouts.select(mask), gripper, expert)


if __name__ == "__main__":
    main(tyro.cli(Args))
