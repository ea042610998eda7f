"""SFT benchmark: success of flow-matching SFT per task and demo count (resumable).

Each (task, demos) cell is one ``habc pipeline`` run under ``<out>/<task>/demos_<n>``; a cell whose
evaluation exists is not run again. The table is written to ``<out>/sft_benchmark.md`` and
``<out>/sft_benchmark.json``.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from habc.envs.registry import get_task
from habc.errors import ConfigError
from habc.experiments.pipeline import PipelineConfig, run_pipeline
from habc.policy.config import PolicyConfig


@dataclass(frozen=True)
class SftBenchmarkConfig:
    """Run SFT for every task x demo count and tabulate success with 95% intervals."""

    tasks: tuple[str, ...] = ("peg-insert-side", "pick-place", "assembly", "disassemble")
    """Tasks to benchmark."""
    demos: tuple[int, ...] = (5, 10, 25)
    """Demo counts."""
    out: Path = Path("runs/sft_benchmark")
    """Output directory."""
    action_noise: float = 0.1
    """Expert action-noise std for the demos."""
    train_steps: int = 4000
    """SFT gradient steps per cell."""
    eval_trials: int = 50
    """Evaluation trials per cell."""
    workers: int = 2
    """Parallel evaluation processes."""
    num_threads: int = 2
    """torch CPU threads for SFT (use 1 when other jobs share the cores)."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy architecture."""

    def __post_init__(self) -> None:
        if not self.tasks or not self.demos or min(self.demos) < 1:
            raise ConfigError("give at least one task and demo counts >= 1")
        for task in self.tasks:
            get_task(task)


def run_sft_benchmark(config: SftBenchmarkConfig, console: Console | None = None) \
        -> list[dict[str, Any]]:
    """Run the missing cells, then write and return the table rows."""
    console = console or Console()
    rows = []
    for task in config.tasks:
        for n in config.demos:
            cell = Path(config.out) / get_task(task).name / f"demos_{n}"
            start = time.perf_counter()
            summary_path = cell / "summary.json"
            if summary_path.exists():
                summary = json.loads(summary_path.read_text())
            else:
                console.rule(f"{task}, {n} demos")
                summary = run_pipeline(PipelineConfig(
                    task=task, run_dir=cell, num_demos=n, action_noise=config.action_noise,
                    train_steps=config.train_steps, eval_trials=config.eval_trials,
                    workers=config.workers, policy=config.policy, rounds=0,
                    num_threads=config.num_threads), console)
                summary["cell_wall_s"] = time.perf_counter() - start
                summary_path.write_text(json.dumps(summary, indent=2))
            rows.append({"task": summary["task"], "demos": n, **summary["sft"],
                         "cell_wall_s": summary.get("cell_wall_s")})
    write_table(rows, Path(config.out), config)
    return rows


def write_table(rows: list[dict[str, Any]], out: Path, config: SftBenchmarkConfig) -> None:
    """Write the rows as JSON and as a Markdown table (success % [95% CI])."""
    (out / "sft_benchmark.json").write_text(json.dumps(rows, indent=2))
    demos = sorted({r["demos"] for r in rows})
    lines = [f"SFT success rate, {config.eval_trials} evaluation trials per cell, expert action "
             f"noise std {config.action_noise}, {config.train_steps} training steps.", "",
             "| task | " + " | ".join(f"{n} demos" for n in demos) + " |",
             "|---|" + "---|" * len(demos)]
    for task in dict.fromkeys(r["task"] for r in rows):
        cells = []
        for n in demos:
            r = next((r for r in rows if r["task"] == task and r["demos"] == n), None)
            cells.append("-" if r is None else f"{r['success_rate']:.0%} "
                         f"[{r['ci95_low']:.0%}, {r['ci95_high']:.0%}]")
        lines.append(f"| {task} | " + " | ".join(cells) + " |")
    (out / "sft_benchmark.md").write_text("\n".join(lines) + "\n")
