"""The main job: expert demos -> flow-matching SFT -> evaluation, under one run directory.

Re-running the same command resumes: demos already collected are kept, training continues from
its last checkpoint, and only missing stages run.
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
from habc.learner.sft import TrainConfig, train_sft
from habc.policy.config import PolicyConfig
from habc.rollout.collect import CollectConfig, collect_demos


@dataclass(frozen=True)
class PipelineConfig:
    """Collect expert demos, train a flow-matching policy on them (SFT), and evaluate it."""

    task: str = "peg-insert-side"
    """Task name (see `habc tasks`)."""
    run_dir: Path = Path("runs/pipeline")
    """Everything is written under this directory."""
    num_demos: int = 10
    """Successful expert demos to collect."""
    action_noise: float = 0.1
    """Std of Gaussian noise on the expert's actions."""
    train_steps: int = 4000
    """SFT gradient steps."""
    batch_size: int = 256
    """SFT batch size."""
    eval_trials: int = 50
    """Evaluation trials (evaluation seeds)."""
    workers: int = 2
    """Parallel evaluation processes."""
    seed: int = 0
    """Training seed."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy architecture."""

    def __post_init__(self) -> None:
        if self.num_demos < 1 or self.train_steps < 1 or self.eval_trials < 1:
            raise ConfigError("num_demos, train_steps and eval_trials must be >= 1")


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
                                           action_noise=config.action_noise))
        console.print(f"collected {info['kept']} demos ({info['discarded']} failed expert "
                      f"attempts discarded) -> {demos}")
    timings["collect_s"] = time.perf_counter() - start

    start = time.perf_counter()
    train = train_sft(TrainConfig(datasets=(demos,), run_dir=run_dir / "sft",
                                  steps=config.train_steps, batch_size=config.batch_size,
                                  seed=config.seed, policy=config.policy))
    timings["train_s"] = time.perf_counter() - start
    console.print(f"SFT checkpoint -> {train['checkpoint']}")

    start = time.perf_counter()
    result = evaluate(EvalConfig(checkpoint=Path(train["checkpoint"]),
                                 num_trials=config.eval_trials, workers=config.workers,
                                 out=run_dir / "eval" / "sft.json"))
    timings["eval_s"] = time.perf_counter() - start
    console.print(format_result(result))
    summary = {"task": result["task"], "run_dir": str(run_dir), "sft": {
        k: result[k] for k in ("success_rate", "ci95_low", "ci95_high", "n_trials",
                               "mean_success_length")}, "timings": timings}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    console.print(f"summary -> {run_dir / 'summary.json'}")
    return summary
