"""Markdown tables of online runs: success per round with 95% intervals, operator effort."""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from habc.errors import ConfigError, HabcError


@dataclass(frozen=True)
class TableConfig:
    """Tabulate the rounds of one or more `habc online` run directories."""

    runs: tuple[Path, ...]
    """Online run directories (each holds rounds/round_RRR.json)."""
    out: Path | None = None
    """Also write the table to this Markdown file."""

    def __post_init__(self) -> None:
        if not self.runs:
            raise ConfigError("give at least one run directory")


def step2_source(method: str) -> str:
    """The Step-1 run that a Step-2 run of ``method`` continues.

    ``habc`` for ``habc_ir`` (IR switches on in Step 2), the method's own run otherwise.
    """
    return "habc" if method == "habc_ir" else method


def run_label(step: int, method: str) -> str:
    """A run's name in tables and figures.

    A Step-2 run that continues its own method's Step-1 run is ``<method>_cont``
    (``habc_cont``, ``dagger_cont``).
    """
    return f"{method}_cont" if step == 2 and step2_source(method) == method else method


def load_rounds(run_dir: Path) -> list[dict[str, Any]]:
    """The per-round records of a run, in round order."""
    files = sorted((Path(run_dir) / "rounds").glob("round_*.json"))
    if not files:
        raise HabcError(f"no rounds/round_*.json in {run_dir}")
    return [json.loads(f.read_text()) for f in files]


def task_rounds(rounds: list[dict[str, Any]], task: str) -> list[dict[str, Any]]:
    """A multi-task run's round records as seen from one of its tasks.

    That task's evaluation and rollouts replace the pooled ones.
    """
    return [rec | {"task": task, "eval": rec["eval_by_task"][task]}
            | ({"rollouts": rec["rollouts_by_task"][task]} if "rollouts_by_task" in rec else {})
            for rec in rounds]


def _cell(ev: dict[str, Any]) -> str:
    return f"{ev['success_rate']:.0%} [{ev['ci95_low']:.0%}, {ev['ci95_high']:.0%}]"


def rounds_table(runs: tuple[Path, ...]) -> str:
    """Markdown: one row per run, success per round, final mean success length, effort.

    A multi-task run has one more row per task, with that task's evaluation and rollouts.
    """
    records = {Path(r): load_rounds(Path(r)) for r in runs}
    n = max(len(v) for v in records.values())
    head = ["method", *[f"round {i}" for i in range(n)], "final mean success length",
            "operator steps", "rollouts", "train+collect+eval s/round"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]

    def row(name: str, recs: list[dict[str, Any]], wall: str) -> str:
        cells = [_cell(rec["eval"]) for rec in recs] + ["-"] * (n - len(recs))
        msl = recs[-1]["eval"]["mean_success_length"]
        effort = sum(rec["rollouts"]["operator_steps"] for rec in recs[1:])
        rollouts = sum(rec["rollouts"]["n"] for rec in recs[1:])
        length = f"{msl:.1f}" if msl is not None else "-"
        return (f"| {name} | " + " | ".join(cells)
                + f" | {length} | {effort} | {rollouts} | {wall} |")

    for run, recs in records.items():
        walls = [sum(rec["wall_s"].values()) for rec in recs[1:]]
        wall = f"{sum(walls) / len(walls):.0f}" if walls else "-"
        method = json.loads((run / "config.json").read_text())["method"]
        lines.append(row(f"{method} ({run.name})", recs, wall))
        for task in recs[0].get("tasks", []):
            lines.append(row(f"{method} ({run.name}): {task}", task_rounds(recs, task), "-"))
    return "\n".join(lines) + "\n"
