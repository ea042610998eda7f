"""A weighting arm against its control: success, then what the weights did (session 39).

For an arm that changes only how Step-1 HABC weights its samples (``benchmark-100-ema-gate-demos``:
the sigmoid gate and ``critic_use_demos``; ``benchmark-100-ema-noisy-uniform``: weights of 1):
first the success tables of ``failpos.py`` (round 0
against the control's SFT, the arm's HABC against the control's HABC and DAgger, on the
reported and the validation block), then, per task, the round records' weight statistics
averaged over the seeds and rounds 1-3, for the arm's HABC and the control's:
- the gate's mean over the batch's rollout samples;
- the ESS fraction of the actor batch's weights, (sum w)^2 / (n sum w^2);
- the mean bounded weight w~ on the policy's own autonomous successes;
- the operator's share of the actor batch;
- the efficiency head's mean absolute error in steps, on its training frames and on the
  held-out episodes (a round whose held-out episodes hold no success has none, and is left
  out of that mean).

Usage, from the repository root, on exported or live experiment directories:

    .venv/bin/python docs/ab/weights_ab.py ARM_DIR CONTROL_DIR
    # e.g. docs/results/benchmark-100-ema-gate-demos docs/results/benchmark-100-ema
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
from failpos import online_rounds, short_name, spec_of, success_tables

STATS = (("gate mean", "adv/gate_mean", "{:.2f}"),
         ("ESS", "w_ess_fraction", "{:.2f}"),
         ("w~ own successes", "w_tilde_success_autonomous", "{:.2f}"),
         ("operator share", "actor/operator_fraction", "{:.0%}"),
         ("e error, train", "critic/e_abs_error", "{:.1f}"),
         ("e error, held out", "critic/heldout_e_abs_error", "{:.1f}"))


def weight_stats(out: Path, task: str, seeds: tuple[int, ...]) -> dict[str, float]:
    """Round-record key -> its mean over ``seeds`` and rounds 1-3 of Step-1 HABC.

    A key is averaged over the rounds that record it.
    """
    train = [r["train"] for s in seeds for r in online_rounds(out, task, s, "habc")]
    return {key: float(np.mean([t[key] for t in train if key in t])) for _, key, _ in STATS}


def main(arm: Path, control: Path) -> None:
    """Print the success tables, then the weight statistics of ``arm`` and ``control``."""
    success_tables(arm, control)
    spec = spec_of(arm)
    print("\nStep-1 habc, rounds 1-3, mean over the seeds: arm / control")
    print(f"| task | {' | '.join(label for label, _, _ in STATS)} |")
    print(f"|---|{'---|' * len(STATS)}")
    for task in (t for t, _ in spec.tasks):
        a, c = (weight_stats(out, task, spec.seeds) for out in (arm, control))
        cells = [f"{fmt.format(a[key])} / {fmt.format(c[key])}" for _, key, fmt in STATS]
        print(f"| {task} | {' | '.join(cells)} |")
    print(f"\narm: {short_name(arm)}; control: {short_name(control)}")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
