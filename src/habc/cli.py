"""The `habc` command line: one entry point, one subcommand per stage.

Errors caused by input (unknown task, missing dataset, bad option value, unfit checkpoint) are
printed as one line on stderr, with exit status 2.
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from dataclasses import dataclass
from typing import Annotated

import tyro
from rich.console import Console

from habc.errors import HabcError
from habc.evaluation.evaluate import EvalConfig
from habc.evaluation.throughput import ThroughputConfig
from habc.experiments.experiment import ExperimentConfig
from habc.experiments.learn import LearnConfig
from habc.experiments.online import OnlineConfig
from habc.experiments.pipeline import PipelineConfig
from habc.experiments.sft_benchmark import SftBenchmarkConfig
from habc.experiments.tables import TableConfig
from habc.learner.sft import TrainConfig
from habc.report.html import ReportConfig
from habc.rollout.collect import CollectConfig


@dataclass(frozen=True)
class TasksConfig:
    """List every task name of the registry."""


Command = (
    Annotated[PipelineConfig, tyro.conf.subcommand("pipeline")]
    | Annotated[OnlineConfig, tyro.conf.subcommand("online")]
    | Annotated[LearnConfig, tyro.conf.subcommand("learn")]
    | Annotated[CollectConfig, tyro.conf.subcommand("collect")]
    | Annotated[TrainConfig, tyro.conf.subcommand("train")]
    | Annotated[EvalConfig, tyro.conf.subcommand("eval")]
    | Annotated[SftBenchmarkConfig, tyro.conf.subcommand("sft-benchmark")]
    | Annotated[ThroughputConfig, tyro.conf.subcommand("throughput")]
    | Annotated[ExperimentConfig, tyro.conf.subcommand("experiment")]
    | Annotated[TableConfig, tyro.conf.subcommand("table")]
    | Annotated[ReportConfig, tyro.conf.subcommand("report")]
    | Annotated[TasksConfig, tyro.conf.subcommand("tasks")]
)


def run(command: object, console: Console) -> None:
    """Dispatch a parsed command."""
    if isinstance(command, PipelineConfig):
        from habc.experiments.pipeline import run_pipeline

        run_pipeline(command, console)
    elif isinstance(command, OnlineConfig):
        from habc.experiments.online import run_online

        summary = run_online(command, console)
        curve = " -> ".join(f"{s:.0%}" for s in summary["success_by_round"])
        console.print(f"{summary['method']} on {summary['task']}: success by round {curve}")
    elif isinstance(command, LearnConfig):
        from habc.experiments.learn import run_learn

        record = run_learn(command, console)
        rollouts = record["rollouts"]
        console.print(f"round {record['round']} ({record['method']}): {command.steps} learner "
                      f"steps on the demos and {rollouts['n']} rollout episodes "
                      f"({rollouts['success_rate']:.0%} successful, {rollouts['operator_steps']} "
                      f"operator steps); policy -> {record['policy']}")
    elif isinstance(command, CollectConfig):
        from habc.rollout.collect import collect_demos

        info = collect_demos(command)
        console.print(f"kept {info['kept']} demos, discarded {info['discarded']} failed attempts;"
                      f" {info['total_episodes']} episodes in {info['out']}")
    elif isinstance(command, TrainConfig):
        from habc.learner.sft import train_sft

        summary = train_sft(command)
        console.print(f"trained on {summary['num_episodes']} episodes "
                      f"({summary['num_frames']} frames); checkpoint -> {summary['checkpoint']}")
    elif isinstance(command, EvalConfig):
        from habc.evaluation.evaluate import evaluate, format_failures, format_result

        result = evaluate(command)
        console.print(format_result(result))
        if (failures := format_failures(result)) is not None:
            console.print(failures)
        console.print(f"results -> {result['out']}")
    elif isinstance(command, SftBenchmarkConfig):
        from habc.experiments.sft_benchmark import run_sft_benchmark

        run_sft_benchmark(command, console)
        console.print(f"table -> {command.out / 'sft_benchmark.md'}")
    elif isinstance(command, ThroughputConfig):
        from habc.evaluation.throughput import measure_throughput

        console.print_json(json.dumps(measure_throughput(command)))
    elif isinstance(command, ExperimentConfig):
        from habc.experiments.experiment import run_experiment

        console.print(f"experiment -> {run_experiment(command, console)}")
    elif isinstance(command, TableConfig):
        from habc.experiments.tables import rounds_table

        table = rounds_table(command.runs)
        if command.out is not None:
            command.out.write_text(table)
        print(table, end="")
    elif isinstance(command, ReportConfig):
        from habc.report.html import build_report

        console.print(f"report -> {build_report(command)}")
    elif isinstance(command, TasksConfig):
        from habc.envs.registry import list_tasks

        console.print("\n".join(list_tasks()))


def _format_warning(message: Warning | str, category: type[Warning], filename: str,
                    lineno: int, line: str | None = None) -> str:
    """A warning as one line (a rerun after a lost worker, say), without the source line."""
    return f"habc: warning: {message}\n"


def main(argv: list[str] | None = None) -> int:
    """Entry point of the `habc` command."""
    warnings.formatwarning = _format_warning
    os.environ.setdefault("MUJOCO_GL", "osmesa")  # CPU offscreen rendering (libosmesa6)
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    console = Console(stderr=False)
    try:
        command = tyro.cli(Command, args=argv,
                           description="habc: improve robot policies from their own rollouts.")
        run(command, console)
    except HabcError as e:
        print(f"habc: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("habc: interrupted; re-run the same command to resume", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
