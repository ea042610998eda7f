"""How the simulated operator's takeovers ended, counted in stored rollouts (docs/benchmarks.md).

For each episode store (an online run's ``rollouts/`` folder), counts human segments that end
before the episode does, split into hand-backs shorter than ``--limit`` (the sub-goal was
reached) and hand-backs that lasted the whole limit; and human segments that run to the
episode's end, split by the episode's outcome; and how many human frames (imitated with weight
1 by dagger and HABC) belong to takeovers that ran to the end of a failed episode.

    .venv/bin/python scripts/takeover_stats.py --stores RUN/step1/*/rollouts --limit 80
"""

from __future__ import annotations

from dataclasses import astuple, dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt
import tyro

from habc.episodes.store import EpisodeStore
from habc.rollout.operator import takeover_endings


@dataclass(frozen=True)
class Args:
    """Takeover outcomes in stored rollouts."""

    stores: tuple[Path, ...]
    """Episode stores (rollouts folders); stores without episodes are skipped."""
    limit: int = 200
    """The operator's max_takeover_steps when the rollouts were collected."""


def main(args: Args) -> None:
    """Print one line per store and a total."""
    total = np.zeros(6, dtype=np.int64)
    for path in args.stores:
        store = EpisodeStore.open(path)
        if not store.num_episodes:
            continue
        a = store.read()
        counts = np.array(astuple(takeover_endings(a.controller, a.episode_starts,
                                                   a.episode_ends, a.success, args.limit)))
        total += counts
        print(f"{path}: {_line(counts)}")
    print(f"total: {_line(total)}")


def _line(counts: npt.NDArray[np.int64]) -> str:
    return (f"hand-backs {counts[0]} reached the sub-goal, {counts[1]} hit the limit; "
            f"to the episode end {counts[2]} succeeded, {counts[3]} failed; human frames "
            f"{counts[4]}, {counts[5]} ({100 * counts[5] / max(counts[4], 1):.0f}%) of them in "
            "takeovers that failed to the end")


if __name__ == "__main__":
    main(tyro.cli(Args))
