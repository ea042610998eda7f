"""HABC+IR against DAgger at an equal budget of rounds, from two experiments' records.

Usage: python docs/ab/equal_budget.py HABC_DIR DAGGER_DIR [TASK ...]

HABC_DIR is a benchmark-100-ema directory (or its exported records) and DAGGER_DIR one of
benchmark-100-ema-dagger, whose Step-2 ``dagger`` runs continue Step-1 DAgger for as many rounds
as Step-2 HABC+IR. For each task, and pooled over the tasks given, it prints both methods' final
success on the reported block (round records) and, where both directories hold a ``--rescore
100000`` block, on the validation block, with the difference and its 95% interval (Newcombe's,
for independent proportions; each seed's runs share their SFT checkpoint, so it is
conservative), the per-seed differences, and Step-1 DAgger (round 3) for reference. It also
checks that the DAgger experiment's Step-1 rounds reproduce HABC_DIR's records exactly.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

from habc.evaluation.stats import difference_interval

SEEDS = (0, 1, 2)
BLOCK = "rescore-100000"


def _eval(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    record = json.loads(path.read_text())
    return record.get("eval", record)


def _counts(evals: list[dict[str, Any]]) -> tuple[int, int]:
    return (sum(round(e["success_rate"] * e["n_trials"]) for e in evals),
            sum(e["n_trials"] for e in evals))


def _row(name: str, ir: list[dict[str, Any]], dagger: list[dict[str, Any]],
         step1: list[dict[str, Any]]) -> str:
    (k, n), (k_d, n_d), (k_1, n_1) = _counts(ir), _counts(dagger), _counts(step1)
    low, high = difference_interval(k, n, k_d, n_d)
    seeds = "/".join(f"{100 * (a['success_rate'] - b['success_rate']):+.0f}"
                     for a, b in zip(ir, dagger, strict=True))
    return (f"| {name} | {k / n:.1%} | {k_d / n_d:.1%} | {100 * (k / n - k_d / n_d):+.1f} "
            f"[{100 * low:+.1f}, {100 * high:+.1f}] | {seeds or '-'} | {k_1 / n_1:.1%} |")


def main(habc_dir: Path, dagger_dir: Path, tasks: list[str]) -> None:
    """Print the tables (see the module docstring)."""
    for task in tasks:  # the reproduction check
        for seed in SEEDS:
            for r in range(4):
                mine = dagger_dir / task / f"seed_{seed}/step1/dagger/rounds/round_{r:03d}.json"
                theirs = habc_dir / task / f"seed_{seed}/step1/dagger/rounds/round_{r:03d}.json"
                if not mine.exists():
                    continue
                m, t = (_eval(path) or {} for path in (mine, theirs))
                keys = ("success_rate", "n_trials", "mean_success_length")
                if [m.get(k) for k in keys] != [t.get(k) for k in keys]:
                    raise SystemExit(f"{mine}: not a reproduction ({m} against {t})")
    print("Step-1 DAgger reproduces the benchmark's round records.\n")
    blocks = {"reported block (round records)": (
        lambda t, s: _eval(habc_dir / t / f"seed_{s}/step2/habc_ir/rounds/round_006.json"),
        lambda t, s: _eval(dagger_dir / t / f"seed_{s}/step2/dagger/rounds/round_006.json"),
        lambda t, s: _eval(dagger_dir / t / f"seed_{s}/step1/dagger/rounds/round_003.json"))}
    if (habc_dir / BLOCK).is_dir() and (dagger_dir / BLOCK).is_dir():
        blocks["validation block (--rescore 100000)"] = (
            lambda t, s: _eval(habc_dir / BLOCK / t / f"seed_{s}/step2_habc_ir.json"),
            lambda t, s: _eval(dagger_dir / BLOCK / t / f"seed_{s}/step2_dagger.json"),
            lambda t, s: _eval(dagger_dir / BLOCK / t / f"seed_{s}/step1_dagger.json"))
    for block, (ir_of, dagger_of, step1_of) in blocks.items():
        print(f"{block}: round 6 of each run, 3 seeds pooled")
        print("| task | HABC+IR | DAgger continued | difference [95% CI] | per seed | "
              "DAgger round 3 |")
        print("|---|---|---|---|---|---|")
        pooled: list[list[dict[str, Any]]] = [[], [], []]
        for task in tasks:
            got = [[f(task, s) for s in SEEDS] for f in (ir_of, dagger_of, step1_of)]
            if any(e is None for evals in got for e in evals):
                print(f"| {task} | not finished |")
                continue
            runs = [[e for e in evals if e is not None] for evals in got]
            print(_row(task, *runs))
            for acc, evals in zip(pooled, runs, strict=True):
                acc.extend(evals)
        if len(tasks) > 1 and pooled[0]:
            print(_row("pooled", *pooled))
        print()


if __name__ == "__main__":
    if len(sys.argv) < 3:
        raise SystemExit(__doc__)
    main(Path(sys.argv[1]), Path(sys.argv[2]),
         sys.argv[3:] or ["peg-insert-side", "pick-place", "disassemble"])
