"""Why pick-place trials fail: replay a `habc eval` result's trials and classify each failure.

Usage: python docs/ab/pick_place_failures.py EVAL_JSON [EVAL_JSON ...] > summary.json

Each EVAL_JSON is the output of `habc eval --checkpoint C --seed-offset 100000 ...` (its
checkpoint and seeds are read from it; sampling seed 0, as `habc eval` uses by default). Every
trial is replayed and must reproduce its recorded outcome. A failure is:
- ``never_lifted``: the puck never rose 2 cm above its start;
- ``lost``: the puck was lifted, and at the end lies back within 2 cm of the table;
- ``holding``: the puck is still lifted when time runs out.
For lifted trials it also reports the median finger opening (obs[3]) while the puck was up (the
expert's fingers close around the puck at about 0.44; at 0.30 they are shut with the puck
outside them, pinched or wedged) and the lowest gripper command then (the expert holds 1.0), and
for lost ones the steps left after the puck fell and the share of them with the gripper closed
(a closed gripper cannot regrasp), and how many lost trials lifted the puck more than once.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from replay import replayed_trials

LIFT = 0.02  # m above the puck's start
CLOSED = 0.5  # gripper opening (obs[3]) below which the fingers are shut


def classify(path: Path) -> dict[str, object]:
    """Replay one eval result's trials and count its failures by kind."""
    checkpoint = json.loads(path.read_text())["checkpoint"]
    counts = {"success": 0, "never_lifted": 0, "lost": 0, "holding": 0}
    min_grip: dict[str, list[float]] = {"success": [], "lost": []}
    opening: dict[str, list[float]] = {"success": [], "lost": []}
    left, closed_after, relifted = [], [], 0
    for ep in replayed_trials(path, "pick-place"):
        puck_z, grip = ep.state[:, 6], ep.state[:, 3]
        lifted = puck_z > puck_z[0] + LIFT
        if ep.success:
            kind = "success"
        elif not lifted.any():
            kind = "never_lifted"
        else:
            kind = "holding" if lifted[-1] else "lost"
        counts[kind] += 1
        if kind in min_grip and lifted.any():
            min_grip[kind].append(float(ep.action[lifted, 3].min()))
            opening[kind].append(float(np.median(grip[lifted])))
        if kind == "lost":
            fell = int(np.flatnonzero(lifted).max()) + 1
            left.append(ep.length - fell)
            closed_after.append(float(np.mean(grip[fell:] < CLOSED)))
            relifted += int(np.sum(lifted[1:] & ~lifted[:-1]) + lifted[0] > 1)
    return {"eval": str(path), "checkpoint": checkpoint, **counts,
            "min_grip_while_lifted": {k: float(np.mean(v)) if v else None
                                      for k, v in min_grip.items()},
            "opening_while_lifted": {k: float(np.mean(v)) if v else None
                                     for k, v in opening.items()},
            "shut_fraction_while_lifted": {k: float(np.mean(np.array(v) < 0.35)) if v else None
                                           for k, v in opening.items()},
            "lost_steps_left": float(np.mean(left)) if left else None,
            "lost_closed_share": float(np.mean(closed_after)) if closed_after else None,
            "lost_lifted_more_than_once": relifted}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps([classify(Path(p)) for p in sys.argv[1:]], indent=2))
