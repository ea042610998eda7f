"""benchmark-100-ema-failpos against its controls in benchmark-100-ema-rep (session 37).

The preset's rules 1 and 2: Step-1 HABC with ``failed_rollout_weight`` 'habc_positive' against
benchmark-100-ema-rep's HABC and DAgger, round 3 pooled over the three tasks and seeds 3-5, on
the reported block (round records) and the validation block (``rescore-100000``), with
Newcombe's 95% interval of each difference; then, per task, the same differences; then the
actor batch's mixture over rounds 1-3 (the prediction of rule 3). Rule 0, round 0 against the
control's SFT, is in the same table. Usage, from the repository root, on exported or live
experiment directories:

    .venv/bin/python docs/ab/failpos.py ARM_DIR CONTROL_DIR
    # e.g. docs/results/benchmark-100-ema-failpos docs/results/benchmark-100-ema-rep
"""

from __future__ import annotations

import json
import sys
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from habc.evaluation.stats import difference_interval
from habc.experiments.experiment import ExperimentSpec, RecordedScores, Scores, cell_dir
from habc.experiments.rescore import RescoredScores, rescore_dir
from habc.experiments.tables import load_rounds

VALIDATION = 100_000


def spec_of(out: Path) -> ExperimentSpec:
    """The spec an experiment directory recorded."""
    return ExperimentSpec.from_json(json.loads((out / "spec.json").read_text()))


def final_counts(scores: Scores, task: str, method: str) -> dict[int, tuple[int, int]]:
    """Seed -> (successes, trials) of a Step-1 run's final eval, or of SFT's for 'sft'."""
    sft: dict[int, dict[str, Any]] = {}
    runs = scores.run(task, 1, "habc" if method == "sft" else method, sft)
    evals = dict(sft) if method == "sft" else {s: e[-1] for s, e in runs.items()}
    return {s: (round(e["success_rate"] * e["n_trials"]), e["n_trials"]) for s, e in evals.items()}


def blocks(out: Path) -> dict[str, Scores]:
    """Block label -> the scores of ``out`` on it."""
    spec = spec_of(out)
    block = replace(spec, eval_seed_offset=VALIDATION, eval_trials=100)
    return {"reported": RecordedScores(out, spec),
            "validation": RescoredScores(rescore_dir(out, VALIDATION), block)}


def line(label: str, a: dict[Any, tuple[int, int]], b: dict[Any, tuple[int, int]]) -> str:
    """One table row: pooled rates over the keys both have (seeds, or task-seed pairs).

    Then the difference with its 95% interval, and the difference per key.
    """
    seeds = sorted(set(a) & set(b))
    ka, na = (sum(a[s][i] for s in seeds) for i in (0, 1))
    kb, nb = (sum(b[s][i] for s in seeds) for i in (0, 1))
    lo, hi = difference_interval(ka, na, kb, nb)
    per_seed = " / ".join(f"{100 * (a[s][0] / a[s][1] - b[s][0] / b[s][1]):+.0f}" for s in seeds)
    return (f"| {label} | {100 * ka / na:.1f}% | {100 * kb / nb:.1f}% | "
            f"{100 * (ka / na - kb / nb):+.1f} [{100 * lo:+.1f}, {100 * hi:+.1f}] | {per_seed} |")


def online_rounds(out: Path, task: str, seed: int, method: str) -> list[dict[str, Any]]:
    """The round records of one Step-1 run after round 0 (rounds 1-3), in order."""
    return load_rounds(cell_dir(out, task, seed) / "step1" / method)[1:]


def mixture(out: Path, task: str, seed: int, method: str) -> tuple[float, float]:
    """Mean operator share of the actor batch and the mean zero-weight share, rounds 1-3."""
    train = [r["train"] for r in online_rounds(out, task, seed, method)]
    return (float(np.mean([t["actor/operator_fraction"] for t in train])),
            float(np.mean([t["zero_weight_fraction"] for t in train])))


def short_name(out: Path) -> str:
    """The label of an experiment directory in the tables.

    Its spec's name less the prefix ``benchmark-100-ema-``; ``benchmark-100-ema`` stays whole.
    """
    return spec_of(out).name.removeprefix("benchmark-100-ema-")


def success_tables(arm: Path, control: Path) -> None:
    """Print rules 0-2's success tables of experiment directory ``arm`` against ``control``."""
    spec = spec_of(arm)
    tasks = [t for t, _ in spec.tasks]
    names = short_name(arm), short_name(control)
    control_blocks = blocks(control)
    for block, arm_scores in blocks(arm).items():
        control_scores = control_blocks[block]
        print(f"\n{block} block, round 3 (round 0 for SFT), arm minus control")
        print("| comparison | arm | control | difference [95% CI] | per seed |")
        print("|---|---|---|---|---|")
        for method, other in (("sft", "sft"), ("habc", "habc"), ("habc", "dagger")):
            pooled_a: dict[tuple[str, int], tuple[int, int]] = {}
            pooled_b: dict[tuple[str, int], tuple[int, int]] = {}
            label = f"{method} ({names[0]}) - {other} ({names[1]})"
            for task in tasks:
                a = final_counts(arm_scores, task, method)
                b = final_counts(control_scores, task, other)
                print(line(f"{task}: {label}", a, b))
                pooled_a |= {(task, s): v for s, v in a.items()}
                pooled_b |= {(task, s): v for s, v in b.items()}
            print(line(f"**all tasks: {label}**", pooled_a, pooled_b))


def main(arm: Path, control: Path) -> None:
    """Print the rules' tables for experiment directory ``arm`` against ``control``."""
    success_tables(arm, control)
    spec = spec_of(arm)
    print("\nactor batch, rounds 1-3: operator share / zero-weight share")
    print(f"| task | {short_name(arm)} habc | {short_name(control)} habc |")
    print("|---|---|---|")
    for task in (t for t, _ in spec.tasks):
        cells = []
        for out in (arm, control):
            m = [mixture(out, task, s, "habc") for s in spec.seeds]
            cells.append(f"{100 * np.mean([x for x, _ in m]):.0f}% / "
                         f"{100 * np.mean([z for _, z in m]):.0f}%")
        print(f"| {task} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main(Path(sys.argv[1]), Path(sys.argv[2]))
