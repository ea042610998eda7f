"""The main job: expert demos -> flow-matching SFT -> online rounds -> evaluation.

Everything lives under one run directory::

    demos/            expert demonstrations (LeRobot v3 layout)
    sft/              SFT run (checkpoints, TensorBoard, train_log.csv)
    eval/sft.json     SFT evaluation (only when rounds = 0)
    online/METHOD/    online rounds (see habc.experiments.online)
    report/           HTML report (index.html and the figures it shows)
    summary.json

Re-running the same command resumes: demos already collected are kept, training continues from
its last checkpoint, finished rounds are skipped.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError
from habc.evaluation.evaluate import EvalConfig, evaluate, format_result
from habc.experiments.online import Method, OnlineConfig, run_online
from habc.learner.sft import TrainConfig, train_sft
from habc.policy.config import PolicyConfig
from habc.report.html import ReportConfig, build_report
from habc.rollout.collect import CollectConfig, collect_demos


@dataclass(frozen=True)
class PipelineConfig:
    """Collect expert demos, train a flow-matching policy (SFT), improve it online, evaluate."""

    task: str = "peg-insert-side"
    """Task name (see `habc tasks`)."""
    run_dir: Path = Path("runs/pipeline")
    """Everything is written under this directory."""
    num_demos: int = 5
    """Successful expert demos to collect."""
    action_noise: float = 0.1
    """Std of Gaussian noise on the expert's actions."""
    train_steps: int = 4000
    """SFT gradient steps."""
    batch_size: int = 256
    """SFT batch size."""
    method: Method = "habc"
    """Online method (sft, dagger, recap, habc_v, habc, habc_ir, hiors, rabc)."""
    rounds: int = 3
    """Online rounds after SFT (0: stop after evaluating SFT)."""
    rollouts_per_round: int = 20
    """Rollout episodes per online round."""
    steps_per_round: int = 1000
    """Learner steps per online round."""
    eval_trials: int = 50
    """Evaluation trials (evaluation seeds) per evaluation."""
    workers: int = 2
    """Parallel processes for rollouts and evaluation."""
    max_steps: int | None = None
    """Episode step limit of demos, rollouts and evaluation; defaults to the task's."""
    seed: int = 0
    """Training seed."""
    report: bool = True
    """Write the HTML report (RUN_DIR/report/index.html) at the end."""
    num_threads: int = 2
    """torch CPU threads for SFT (use 1 when other jobs share the cores)."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy architecture."""

    def __post_init__(self) -> None:
        if self.num_demos < 1 or self.train_steps < 1 or self.eval_trials < 1:
            raise ConfigError("num_demos, train_steps and eval_trials must be >= 1")
        if self.rounds < 0:
            raise ConfigError("rounds must be >= 0")


def _ci(result: dict[str, Any]) -> str:
    return (f"{result['success_rate']:.0%} [95% CI {result['ci95_low']:.0%}-"
            f"{result['ci95_high']:.0%}]")


def run_pipeline(config: PipelineConfig, console: Console | None = None) -> dict[str, Any]:
    """Run (or resume) the pipeline; return and write ``summary.json``."""
    console = console or Console()
    run_dir = Path(config.run_dir)
    demos = run_dir / "demos"
    timings: dict[str, float] = {}

    start = time.perf_counter()
    have = EpisodeStore.open(demos).num_episodes if (demos / "meta/info.json").exists() else 0
    if have < config.num_demos:
        info = collect_demos(CollectConfig(task=config.task, out=demos,
                                           num_episodes=config.num_demos - have,
                                           action_noise=config.action_noise,
                                           max_steps=config.max_steps))
        console.print(f"collected {info['kept']} demos ({info['discarded']} failed expert "
                      f"attempts discarded) -> {demos}")
    timings["collect_s"] = time.perf_counter() - start

    start = time.perf_counter()
    train = train_sft(TrainConfig(datasets=(demos,), run_dir=run_dir / "sft",
                                  steps=config.train_steps, batch_size=config.batch_size,
                                  seed=config.seed, policy=config.policy,
                                  num_threads=config.num_threads))
    timings["train_s"] = time.perf_counter() - start
    console.print(f"SFT checkpoint -> {train['checkpoint']}")

    start = time.perf_counter()
    summary: dict[str, Any] = {"task": train["task"], "run_dir": str(run_dir)}
    if config.rounds == 0:
        result = evaluate(EvalConfig(checkpoint=Path(train["checkpoint"]),
                                     num_trials=config.eval_trials, workers=config.workers,
                                     max_steps=config.max_steps,
                                     out=run_dir / "eval" / "sft.json"))
        console.print(format_result(result))
        sft_eval = result
    else:
        online = run_online(OnlineConfig(
            sft_checkpoint=Path(train["checkpoint"]), run_dir=run_dir / "online" / config.method,
            method=config.method, rounds=config.rounds,
            rollouts_per_round=config.rollouts_per_round,
            steps_per_round=config.steps_per_round, eval_trials=config.eval_trials,
            workers=config.workers, seed=config.seed, max_steps=config.max_steps), console)
        sft_eval = online["rounds"][0]["eval"]
        final = online["rounds"][-1]["eval"]
        summary["online"] = {"method": config.method, "run_dir": online["run_dir"],
                             "success_by_round": online["success_by_round"],
                             "final": final}
        console.print(f"success moved from {_ci(sft_eval)} after SFT to {_ci(final)} after "
                      f"{config.rounds} rounds of {config.method} "
                      f"({final['success_rate'] - sft_eval['success_rate']:+.0%})")
    timings["online_s" if config.rounds else "eval_s"] = time.perf_counter() - start
    summary["sft"] = {k: sft_eval[k] for k in ("success_rate", "ci95_low", "ci95_high",
                                               "n_trials", "mean_success_length")}
    if config.rounds and config.report:
        start = time.perf_counter()
        index = build_report(ReportConfig(run_dir=run_dir))
        timings["report_s"] = time.perf_counter() - start
        summary["report"] = str(index)
        console.print(f"report -> {index}")
    summary["timings"] = timings
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary -> {run_dir / 'summary.json'}")
    return summary
