"""Why disassemble trials fail: replay a `habc eval` result's trials and classify each failure.

Usage: python docs/ab/disassemble_failures.py EVAL_JSON [EVAL_JSON ...] > summary.json

Each EVAL_JSON is the output of `habc eval --checkpoint C --seed-offset 100000 ...` (its
checkpoint and seeds are read from it; sampling seed 0, as `habc eval` uses by default). Every
trial is replayed and must reproduce its recorded outcome. The task succeeds once the wrench
(obs[4:7]) is lifted above the peg's top. A failure is:
- ``never_lifted``: the wrench never rose 2 cm above its start;
- ``lost``: the wrench was lifted, and at the end lies back within 2 cm of its start;
- ``stuck``: the wrench is still lifted when time runs out, below the peg's top.
For ``never_lifted`` failures it also reports whether the hand ever got to grasping height over
the handle (the expert's stage 2: within 2 cm in x-y and 3 cm in height of the handle point
that it aims at), whether the wrench was pushed more than 2 cm sideways, and the hand's median
height above that point over the last 100 steps (hovering above the handle, or pressing on it).
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import torch
from replay import replayed_trials

LIFT = 0.02  # m above the wrench's start
HANDLE = np.array([-0.02, 0.0, 0.01])  # the expert's grasp point, relative to obs[4:7]


def classify(path: Path) -> dict[str, object]:
    """Replay one eval result's trials and count its failures by kind."""
    checkpoint = json.loads(path.read_text())["checkpoint"]
    counts = {"success": 0, "never_lifted": 0, "lost": 0, "stuck": 0}
    reached, pushed, hover = 0, 0, []
    for ep in replayed_trials(path, "disassemble"):
        hand, wrench = ep.state[:, :3], ep.state[:, 4:7]
        lifted = wrench[:, 2] > wrench[0, 2] + LIFT
        if ep.success:
            counts["success"] += 1
            continue
        if lifted.any():
            counts["stuck" if lifted[-1] else "lost"] += 1
            continue
        counts["never_lifted"] += 1
        error = hand - (wrench + HANDLE)
        aligned = np.linalg.norm(error[:, :2], axis=1) <= 0.02
        reached += int(np.any(aligned & (np.abs(error[:, 2]) <= 0.03)))
        pushed += int(np.linalg.norm(wrench[-1, :2] - wrench[0, :2]) > 0.02)
        hover.append(float(np.median(error[-100:, 2])))
    return {"eval": str(path), "checkpoint": checkpoint, **counts,
            "never_lifted_reached_grasp_height": reached,
            "never_lifted_pushed_sideways": pushed,
            "never_lifted_median_height_last_100": float(np.median(hover)) if hover else None}


if __name__ == "__main__":
    torch.set_num_threads(1)
    print(json.dumps([classify(Path(p)) for p in sys.argv[1:]], indent=2))
