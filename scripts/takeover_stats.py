"""How the simulated operator's takeovers ended, counted in stored rollouts (docs/benchmarks.md).

For each episode store (an online run's ``rollouts/`` folder), counts human segments that end
before the episode does, split into hand-backs shorter than ``--limit`` (the sub-goal was
reached) and hand-backs that lasted the whole limit; and human segments that run to the
episode's end, split by the episode's outcome.

    .venv/bin/python scripts/takeover_stats.py RUN/step1/*/rollouts --limit 80
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import tyro

from habc.episodes.episode import Controller
from habc.episodes.store import EpisodeStore


@dataclass(frozen=True)
class Args:
    """Takeover outcomes in stored rollouts."""

    stores: tuple[Path, ...]
    """Episode stores (rollouts folders); stores without episodes are skipped."""
    limit: int = 200
    """The operator's max_takeover_steps when the rollouts were collected."""


def main(args: Args) -> None:
    """Print one line per store and a total."""
    total = np.zeros(4, dtype=np.int64)
    for path in args.stores:
        store = EpisodeStore.open(path)
        if not store.num_episodes:
            continue
        arrays = store.read()
        counts = np.zeros(4, dtype=np.int64)  # reached, hit limit, to end & success, to end & fail
        for e in range(arrays.num_episodes):
            start, end = arrays.episode_starts[e], arrays.episode_ends[e]
            human = (arrays.controller[start:end] == Controller.HUMAN).astype(np.int64)
            edges = np.diff(np.concatenate([[0], human, [0]]))
            for s, t in zip(np.flatnonzero(edges == 1), np.flatnonzero(edges == -1), strict=True):
                if t == len(human):
                    counts[2 if arrays.success[e] else 3] += 1
                else:
                    counts[1 if t - s >= args.limit else 0] += 1
        total += counts
        print(f"{path}: hand-backs {counts[0]} reached the sub-goal, {counts[1]} hit the limit; "
              f"to the episode end {counts[2]} succeeded, {counts[3]} failed")
    print(f"total: hand-backs {total[0]} reached the sub-goal, {total[1]} hit the limit; "
          f"to the episode end {total[2]} succeeded, {total[3]} failed")


if __name__ == "__main__":
    main(tyro.cli(Args))
