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

import sys
from pathlib import Path

import numpy as np
from failpos import blocks, final_counts, mixture, online_rounds, spec_of

from habc.experiments.experiment import Scores


def operator_steps(out: Path, task: str, seed: int, method: str) -> int:
    """The operator's steps over rounds 1-3 of one Step-1 run."""
    return sum(r["rollouts"]["operator_steps"] for r in online_rounds(out, task, seed, method))


def demo_frames(out: Path, task: str, seed: int) -> int:
    """Frames of one seed's demos, as the arm's round 1 counted them for credit."""
    return int(online_rounds(out, task, seed, "habc")[0]["train"]["credit/demo_frames"])


def cells(out: Path, scores: dict[str, Scores], demos: dict[int, int], task: str,
          method: str) -> list[str]:
    """Success on each block, operator steps, corrections / demo frames, operator share.

    ``scores``: block label -> the scores of ``out``; ``demos``: seed -> demo frames.
    """
    pooled = []
    for block in scores.values():
        counts = final_counts(block, task, method)
        k, n = (sum(counts[s][i] for s in demos) for i in (0, 1))
        pooled.append(f"{100 * k / n:.1f}%")
    steps = {s: operator_steps(out, task, s, method) for s in demos}
    ratio = np.mean([steps[s] / demos[s] for s in demos])
    share = np.mean([mixture(out, task, s, method)[0] for s in demos])
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
    arm_scores, control_scores = blocks(arm), blocks(control)
    for task, _ in spec.tasks:
        demos = {s: demo_frames(arm, task, s) for s in spec.seeds}
        for method in spec.step1_methods:
            c = cells(control, control_scores, demos, task, method)
            a = cells(arm, arm_scores, demos, task, method)
            print(f"| {task} | {method} | "
                  + " | ".join(f"{x} | {y}" for x, y in zip(c, a, strict=True)) + " |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
