"""How often pick-place rollouts drop the puck, and who picks it up again.

Usage: python docs/ab/pick_place_rollout_drops.py ROLLOUT_STORE [ROLLOUT_STORE ...]

For each stored rollout episode: a *drop* is the puck rising 2 cm above its start and coming
back down later. It counts the drops, those made under the policy, those after which the
operator took over at some point, the episodes in which the puck was lifted again after the
first drop (and who held the controls at that step), and the dropped episodes that succeeded.
"""

from __future__ import annotations

import json
import sys

import numpy as np

from habc.episodes.episode import Controller
from habc.episodes.store import EpisodeStore

LIFT = 0.02  # m above the puck's start


def drops(root: str) -> dict[str, object]:
    """Drop and recovery counts of one rollout store."""
    arrays = EpisodeStore.open(root).read()
    counts = {"episodes": len(arrays.success), "dropped": 0, "dropped_by_policy": 0,
              "operator_after_drop": 0, "relifted_by_operator": 0, "relifted_by_policy": 0,
              "dropped_and_succeeded": 0}
    for e, (start, end) in enumerate(zip(arrays.episode_starts, arrays.episode_ends,
                                         strict=True)):
        puck_z, who = arrays.state[start:end, 6], arrays.controller[start:end]
        lifted = puck_z > puck_z[0] + LIFT
        falls = np.flatnonzero(lifted[:-1] & ~lifted[1:])
        if not len(falls):
            continue
        fall = int(falls[0]) + 1
        counts["dropped"] += 1
        counts["dropped_by_policy"] += int(who[fall - 1] == Controller.POLICY)
        counts["operator_after_drop"] += int(np.any(who[fall:] == Controller.HUMAN))
        again = np.flatnonzero(lifted[fall:])
        if len(again):
            by = "operator" if who[fall + int(again[0]) - 1] == Controller.HUMAN else "policy"
            counts[f"relifted_by_{by}"] += 1
        counts["dropped_and_succeeded"] += int(arrays.success[e])
    return {"store": root, **counts}


if __name__ == "__main__":
    print(json.dumps([drops(root) for root in sys.argv[1:]], indent=2))
