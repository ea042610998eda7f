"""The operator's effort against what it bought: benchmark-100-ema-help01 (session 38).

Rule 2 of the preset, beside the success tables of ``habc experiment --table-only --against``:
for each task and Step-1 method, pooled over the seeds, the round-3 success on the reported
block (round records) and the validation block (``rescore-100000``), the operator's steps over
rounds 1-3, the corrections the actor could draw on after round 3 as a multiple of the demos'
frames, and the operator's share of the actor batch in rounds 1-3. The two runs share their
demos (the same seeds and SFT settings), so the demo frames are read from the arm's records,
which count them. Usage, from the repository root, on exported or live experiment directories:

    .venv/bin/python docs/ab/operator_effort.py ARM_DIR CONTROL_DIR
    # e.g. docs/results/benchmark-100-ema-help01 docs/results/benchmark-100-ema
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from failpos import blocks, final_counts, spec_of

from habc.envs.registry import get_task


def round_records(out: Path, task: str, seed: int, method: str) -> list[dict]:
    """Rounds 1-3 of one Step-1 run, in order."""
    rounds = out / get_task(task).name / f"seed_{seed}" / "step1" / method / "rounds"
    return [json.loads((rounds / f"round_00{r}.json").read_text()) for r in (1, 2, 3)]


def demo_frames(out: Path, task: str, seed: int) -> int:
    """Frames of one seed's demos, as the arm's round 1 counted them for credit."""
    return int(round_records(out, task, seed, "habc")[0]["train"]["credit/demo_frames"])


def cells(out: Path, arm: Path, task: str, method: str,
          seeds: Sequence[int]) -> list[str]:
    """Success on each block, operator steps, corrections / demo frames, operator share."""
    pooled = []
    for scores in blocks(out).values():
        counts = final_counts(scores, task, method)
        k, n = (sum(counts[s][i] for s in seeds) for i in (0, 1))
        pooled.append(f"{100 * k / n:.1f}%")
    records = {s: round_records(out, task, s, method) for s in seeds}
    steps = {s: sum(r["rollouts"]["operator_steps"] for r in records[s]) for s in seeds}
    ratio = np.mean([steps[s] / demo_frames(arm, task, s) for s in seeds])
    share = np.mean([r["train"]["actor/operator_fraction"] for s in seeds for r in records[s]])
    return [" / ".join(pooled), f"{sum(steps.values())}", f"{ratio:.1f}x", f"{100 * share:.0f}%"]


def main(arm: Path, control: Path) -> None:
    """Print the effort table of experiment directory ``arm`` beside ``control``."""
    spec = spec_of(arm)
    print(f"round 3, seeds {spec.seeds} pooled: success reported / validation; operator steps "
          "over rounds 1-3; corrections after round 3 / demo frames; operator share of the "
          "actor batch, rounds 1-3")
    print("| task | method | control success | arm success | control steps | arm steps "
          "| control ratio | arm ratio | control share | arm share |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for task, _ in spec.tasks:
        for method in spec.step1_methods:
            c = cells(control, arm, task, method, spec.seeds)
            a = cells(arm, arm, task, method, spec.seeds)
            print(f"| {task} | {method} | "
                  + " | ".join(f"{x} | {y}" for x, y in zip(c, a, strict=True)) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
