"""Step-1 HABC against DAgger across the committed benchmark runs, in one figure and table.

Reads each experiment's exported records in docs/results/ (the round records for the reported
block, ``rescore-100000/`` for the validation block), takes the targets' pooled gap of every
task and of all tasks (``ResultTables.gaps``, the figures of ``habc experiment --table-only``),
and draws them with the report's figure of the gaps. Each operator's two runs of one spec are
also pooled (seeds 0-5), as the replicating presets' secondary rules name. A second figure puts
each method's success against the operator's action noise, on the seeds 0-2 runs that differ
only in it. Usage, from the repository root:

    .venv/bin/python docs/ab/habc_vs_dagger.py   # writes docs/img/habc_vs_dagger.png and
                                                 # docs/img/operator_noise.png
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np

from habc.envs.registry import EVAL_SEED_BASE
from habc.evaluation.stats import wilson_interval
from habc.experiments.experiment import ExperimentSpec, Gap, result_tables
from habc.experiments.rescore import rescored_results
from habc.report.figures import habc_gaps

RESULTS = Path("docs/results")
RUNS = {  # experiment directory -> what its operator and policies were
    "benchmark-100": "precise operator",
    "benchmark-100-ema": "precise operator, weight average",
    "benchmark-100-ema-rep": "precise operator, weight average, seeds 3-5",
    "benchmark-100-ema-mt": "precise operator, multi-task policy",
    "benchmark-100-ema-op03": "middle operator (0.3), seeds 0-2",
    "benchmark-100-ema-noisy": "noisy operator (0.5), seeds 0-2",
    "benchmark-100-ema-noisy-rep": "noisy operator (0.5), seeds 3-5",
    "benchmark-100-ema-help01": "precise operator helping in 1 of 10 episodes, seeds 0-2",
}
POOLED = {  # a row that pools two runs of one spec on seeds 0-2 and 3-5, as their presets name
    "precise operator, seeds 0-5 pooled": ("benchmark-100-ema", "benchmark-100-ema-rep"),
    "noisy operator, seeds 0-5 pooled": ("benchmark-100-ema-noisy",
                                         "benchmark-100-ema-noisy-rep"),
}
NOISE = {  # operator action noise -> the seeds 0-2 run that differs from the others only in it
    0.1: "benchmark-100-ema",
    0.3: "benchmark-100-ema-op03",
    0.5: "benchmark-100-ema-noisy",
}
VALIDATION = 100_000


def dagger_gaps(name: str) -> dict[str, Gap]:
    """Block label -> the all-tasks gap of HABC to DAgger in one experiment directory."""
    out = RESULTS / name
    spec = ExperimentSpec.from_json(json.loads((out / "spec.json").read_text()))
    blocks = {"reported": result_tables(out, spec).gaps}
    if (out / f"rescore-{VALIDATION}").exists():
        blocks["validation"] = rescored_results(out, spec, VALIDATION, 100)[1].gaps
    return {block: next(g for g in gaps if g.task == "all tasks" and g.other == "DAgger")
            for block, gaps in blocks.items()}


def pool(a: Gap, b: Gap) -> Gap:
    """Two runs' gaps as one over both runs' trials."""
    return replace(a, k=a.k + b.k, n=a.n + b.n, k_other=a.k_other + b.k_other,
                   n_other=a.n_other + b.n_other)


def operator_noise(by_run: dict[str, dict[str, Gap]], path: Path) -> Path:
    """Round-3 success of HABC and DAgger against the operator's action noise, per block.

    One panel per block; each point pools the 9 task-seed pairs of one run, with its Wilson 95%
    interval.
    """
    noise = np.array(list(NOISE))
    blocks = list(by_run[NOISE[0.1]])
    fig, axes = plt.subplots(1, len(blocks), figsize=(4.2 * len(blocks), 3.4), squeeze=False,
                             sharey=True)
    for ax, block in zip(axes[0], blocks, strict=True):
        gaps = [by_run[NOISE[x]][block] for x in noise]
        series = {"DAgger": [(g.k_other, g.n_other) for g in gaps],
                  "HABC": [(g.k, g.n) for g in gaps]}
        for c, (label, counts) in enumerate(series.items()):
            rate = 100 * np.array([s / t for s, t in counts])
            bounds = 100 * np.array([wilson_interval(s, t) for s, t in counts])  # (noise, 2)
            ax.errorbar(noise + (c - 0.5) * 0.01, rate, yerr=[rate - bounds[:, 0],
                        bounds[:, 1] - rate], fmt="o-", ms=4, capsize=2, label=label,
                        color=f"C{c}")
        ax.set_title(f"{block} block, seeds 0-2, 3 tasks", fontsize=9)
        ax.set_xlabel("operator action noise (std)")
        ax.set_xticks(noise)
    axes[0, 0].set_ylabel("round-3 success, % (95% CI)")
    axes[0, 0].legend(fontsize=8, frameon=False)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main() -> None:
    """Draw the figure and print the table."""
    by_run = {name: dagger_gaps(name) for name in RUNS}
    rows = {f"{name}\n{what}": by_run[name] for name, what in RUNS.items()}
    for row, (first, second) in POOLED.items():
        rows[row] = {b: pool(by_run[first][b], by_run[second][b]) for b in by_run[first]}
    labels = {"reported": f"reported block (seeds {EVAL_SEED_BASE:,}+, 50 per seed)",
              "validation": f"validation block (seeds {EVAL_SEED_BASE + VALIDATION:,}+, "
                            "100 per seed)"}
    blocks = {label: [replace(gaps[block], task=row) for row, gaps in rows.items()
                      if block in gaps] for block, label in labels.items()}
    png = habc_gaps(blocks, Path("docs/img/habc_vs_dagger.png"))
    dose = operator_noise(by_run, Path("docs/img/operator_noise.png"))
    print(f"wrote {png} and {dose}\n\n| run | block | HABC | DAgger | HABC - DAgger [95% CI] |\n"
          "|---|---|---|---|---|")
    for row, gaps in rows.items():
        for block, g in gaps.items():
            low, high = g.interval
            print(f"| {row.replace(chr(10), ', ')} | {block} | {g.k / g.n:.1%} | "
                  f"{g.k_other / g.n_other:.1%} | {100 * g.difference:+.1f} "
                  f"[{100 * low:+.1f}, {100 * high:+.1f}] |")


if __name__ == "__main__":
    main()
