"""How often disassemble episodes push the wrench sideways before lifting it.

Usage: python docs/ab/disassemble_pushes.py STORE [STORE ...]

For each stored episode, the push is how far the wrench (state[4:7]) has moved in x-y from its
start when it is first lifted 2 cm (or at the episode's end if it never is). It reports, by
kind of episode (successes with no operator step, successes with a takeover, failures), the
count, the share pushed more than 2 cm, and the median push in mm: which of the episodes an
imitation learner copies approach the handle cleanly.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from habc.episodes.episode import Controller
from habc.episodes.store import EpisodeStore

LIFT = 0.02  # m above the wrench's start
PUSHED = 0.02  # m of x-y motion before the lift


def pushes(root: str) -> dict[str, object]:
    """Push statistics of one store's episodes, by kind."""
    arrays = EpisodeStore.open(root).read()
    kinds: dict[str, list[float]] = {"own_success": [], "helped_success": [], "failure": []}
    for e, (start, end) in enumerate(zip(arrays.episode_starts, arrays.episode_ends,
                                         strict=True)):
        wrench = arrays.state[start:end, 4:7]
        lifted = np.flatnonzero(wrench[:, 2] > wrench[0, 2] + LIFT)
        at = int(lifted[0]) if len(lifted) else len(wrench) - 1
        push = float(np.linalg.norm(wrench[at, :2] - wrench[0, :2]))
        helped = bool(np.any(arrays.controller[start:end] == Controller.HUMAN))
        kind = "failure" if not arrays.success[e] else (
            "helped_success" if helped else "own_success")
        kinds[kind].append(push)
    return {"store": root, **{k: {"episodes": len(v),
                                  "pushed_share": float(np.mean(np.array(v) > PUSHED)) if v
                                  else None,
                                  "median_mm": 1000 * float(np.median(v)) if v else None}
                              for k, v in kinds.items()}}


if __name__ == "__main__":
    print(json.dumps([pushes(root) for root in sys.argv[1:]], indent=2))
