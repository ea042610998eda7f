"""One learner round on episodes collected elsewhere: a robot, a teleop rig, another stack.

``habc online`` collects its rollouts in simulation. On a robot the rollouts come from the
robot's own loop, which writes them into an episode store (LeRobot v3 layout with the
``controller`` and ``policy_version`` columns, and each episode's ``success``). ``habc learn``
then trains one round on the demos plus those stores with the same learner ``habc online``
uses, and publishes the next policy for the robot to run::

    habc learn --sft-checkpoint SFT --rollouts ROBOT_STORE --run-dir R        # -> R/policies/v001
    (the robot collects round 2 with v001 into ROBOT_STORE)
    habc learn --sft-checkpoint SFT --rollouts ROBOT_STORE --run-dir R        # -> R/policies/v002

Run directory: ``config.json``, ``policies/vRRR`` (``v000`` is the SFT checkpoint),
``learner/latest`` (actor, critic, optimisers, counters), ``learn/round_RRR.json`` (the
round's training statistics and a summary of the rollouts it trained on) and ``tb/``. Each call
trains the round after the last published one, and a round is published once: a call after a
stop finishes the round it stopped in (from the learner's last save) instead of starting
another, and with ``--round R`` a repeated call trains nothing more.
"""

from __future__ import annotations

import contextlib
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from rich.console import Console
from rich.progress import Progress

from habc.envs.registry import get_task
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import EpisodeStore, open_stores
from habc.errors import ConfigError, HabcError, StoreError
from habc.experiments.online import (
    Method,
    OnlineConfig,
    RoundTrainer,
    StageLabels,
    episode_summary,
    expert_stages,
    gripper_stages,
    stored_stages,
    write_run_config,
)
from habc.learner.online import LearnerConfig, TrainingData
from habc.policy.backend import checkpoint_tasks, load_policy
from habc.progress.primitives import GripperStageConfig
from habc.weighting.rules import HabcRule, RecapRule, RejectionRule


@dataclass(frozen=True)
class LearnConfig:
    """Train one round on the demos plus rollout stores collected elsewhere; publish it."""

    sft_checkpoint: Path
    """SFT checkpoint the run starts from (policies/v000)."""
    rollouts: tuple[Path, ...]
    """Episode stores of the rollouts (every round's, as they grow)."""
    run_dir: Path
    """Output directory of the run (the learner's state lives here between rounds)."""
    method: Method = "habc"
    """Weighting rule / baseline, as in ``habc online``."""
    demos: tuple[Path, ...] = ()
    """Demo datasets; default: the datasets recorded in the SFT checkpoint."""
    round: int | None = None
    """Round to train; default: the one after the last published. A published round is not
    trained again."""
    steps: int = 1000
    """Learner steps of the round."""
    max_steps: int | None = None
    """Episode step limit the rollouts ran under (the efficiency head's T_max); default: the
    task's limit in the registry, which only knows Meta-World tasks."""
    initial_rounds: int = 3
    """Rounds of the initial phase; habc_ir turns intervention reweighting on after them."""
    seed: int = 0
    """Seed of sampling and initialisation."""
    ckpt_every: int = 250
    """Save the learner every this many steps (resume point)."""
    log_every: int = 50
    """Write TensorBoard scalars every this many steps."""
    num_threads: int = 2
    """torch CPU threads of the learner."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Learner."""
    habc: HabcRule = field(default_factory=lambda: HabcRule(warmup_steps=500))
    """HABC rule options, as in ``habc online``."""
    recap: RecapRule = field(default_factory=RecapRule)
    """Recap rule options."""
    hiors: RejectionRule = field(default_factory=RejectionRule)
    """Hi-ORS rule options."""
    stages: Literal["auto", "annotated", "expert", "gripper"] = "auto"
    """Stage labels of the progress model (rabc, hiors with a progress reward): the datasets'
    annotated stages, the scripted expert's phase (registry tasks), or the gripper's switches
    (any arm with a gripper command). ``auto``: annotated if every dataset has them, else the
    expert's."""
    gripper: GripperStageConfig = field(default_factory=GripperStageConfig)
    """Gripper stages (``--stages gripper``)."""

    def __post_init__(self) -> None:
        if not self.rollouts:
            raise ConfigError("pass the rollout stores with --rollouts")
        if self.round is not None and self.round < 1:
            raise ConfigError("round must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be >= 1")
        if self.stages not in ("auto", "annotated", "expert", "gripper"):
            raise ConfigError("stages must be 'auto', 'annotated', 'expert' or 'gripper'")

    def online(self, t_max: int) -> OnlineConfig:
        """The ``OnlineConfig`` whose learner settings these are (its rollout fields unused)."""
        return OnlineConfig(sft_checkpoint=self.sft_checkpoint, run_dir=self.run_dir,
                            method=self.method, demos=self.demos, steps_per_round=self.steps,
                            initial_rounds=self.initial_rounds, seed=self.seed,
                            max_steps=t_max, ckpt_every=self.ckpt_every,
                            log_every=self.log_every, num_threads=self.num_threads,
                            learner=self.learner, habc=self.habc, recap=self.recap,
                            hiors=self.hiors)


def _step_limit(config: LearnConfig, tasks: list[str]) -> int:
    if config.max_steps is not None:
        return config.max_steps
    try:
        return max(get_task(task).max_steps for task in tasks)
    except HabcError:
        raise ConfigError(f"a task of {tasks} is not in the registry: pass --max-steps, the "
                          "step limit of its episodes") from None


def _check_fits(store: EpisodeStore, state_dim: int, action_dim: int, t_max: int) -> None:
    """Refuse a store that is empty, has other widths or holds episodes over the step limit.

    Reads only the store's metadata, not its frames.
    """
    lengths = store.episodes_table()["length"]
    if len(lengths) == 0:
        raise StoreError(f"episode store {store.root} holds no episodes")
    if (store.state_dim, store.action_dim) != (state_dim, action_dim):
        raise ConfigError(f"store {store.root} holds state/action widths {store.state_dim}/"
                          f"{store.action_dim}, the policy {state_dim}/{action_dim}")
    if (longest := int(lengths.max())) > t_max:
        raise ConfigError(f"an episode of {longest} steps is longer than the step limit {t_max}"
                          " (--max-steps)")


def _stage_labels(config: LearnConfig, tasks: list[str], demos: tuple[Path, ...],
                  datasets: list[EpisodeStore]) -> StageLabels:
    """The progress model's stage labels from the source ``config.stages`` names."""
    if config.stages == "gripper":
        return gripper_stages(open_stores(demos), tasks, config.gripper)
    names = {tuple(store.stage_names or ()) for store in datasets}
    annotated = len(names) == 1 and () not in names
    if config.stages == "annotated" or (config.stages == "auto" and annotated):
        if not annotated:
            raise ConfigError("--stages annotated: not every dataset has the same stage column "
                              "(EpisodeStore.create(stage_names=...))")
        return stored_stages(len(names.pop()), len(tasks))
    try:
        return expert_stages([get_task(task) for task in tasks])
    except HabcError:
        raise ConfigError(f"the progress model needs stage labels: a task of {tasks} has no "
                          "scripted expert, and not every dataset has a stage column "
                          "(EpisodeStore.create(stage_names=...)); --stages gripper derives "
                          "them from the gripper's switches") from None


def _check_run_dir(config: LearnConfig) -> None:
    """Refuse a run directory of ``habc online``, or one that trains rounds of other lengths."""
    if (config.run_dir / "rounds").exists():
        raise ConfigError(f"{config.run_dir} holds a `habc online` run; use another --run-dir")
    held = config.run_dir / "config.json"
    if held.exists():
        steps = json.loads(held.read_text()).get("steps")
        if steps is None:
            raise ConfigError(f"{config.run_dir} holds a run of another command; use another "
                              "--run-dir")
        if steps != config.steps:
            raise ConfigError(f"{config.run_dir} trains {steps} steps per round; pass --steps "
                              f"{steps}")


def _train(config: LearnConfig, trainer: RoundTrainer, console: Console,
           show_progress: bool) -> tuple[int, TrainingData | None, dict[str, float]]:
    """Pick the round and train it: (round, the data it trained on, its statistics).

    The data is None when the round was published before (nothing trained).
    """
    learner = trainer.learner
    published = (config.run_dir / "policies" / f"v{learner.round:03d}").exists()
    r = config.round or (learner.round + 1 if published else learner.round)
    if r > learner.round + 1:
        raise ConfigError(f"round {r} cannot come next: the learner has trained "
                          f"{learner.round} round(s)")
    path = config.run_dir / "learn" / f"round_{r:03d}.json"
    if path.exists():
        console.print(f"round {r} is published already: {config.run_dir}/policies/v{r:03d}")
        return r, None, {}
    if r < learner.round:
        raise ConfigError(f"round {r} lies behind the learner, which has trained "
                          f"{learner.round} rounds; its record is missing")
    data = trainer.load_data()
    with Progress(disable=not show_progress, console=console, transient=True) as progress:
        stats = trainer.train(r, lambda step: (data, r * config.steps), progress)
    return r, data, stats


def run_learn(config: LearnConfig, console: Console | None = None,
              *, show_progress: bool = True) -> dict[str, Any]:
    """Train (or finish) one round on the stores, publish ``policies/vRRR``, return its record.

    Raises:
        ConfigError: bad input (no demos, a round out of order, stores that do not fit the
            policy or the step limit, rabc without stage labels).
        StoreError: a store that does not open or holds no episodes.
    """
    console = console or Console()
    sft = load_policy(config.sft_checkpoint)
    tasks = checkpoint_tasks(sft)
    demos = config.demos or tuple(Path(d) for d in sft.meta.get("datasets", []))
    if not demos:
        raise ConfigError("no demo dataset: pass --demos (the checkpoint does not record one)")
    t_max = _step_limit(config, tasks)
    datasets = [EpisodeStore.open(p) for p in (*demos, *config.rollouts)]
    for store in datasets:
        _check_fits(store, sft.state_dim, sft.action_dim, t_max)
    online = config.online(t_max)
    stages = None
    if online.rule().critic == "progress":
        stages = _stage_labels(config, tasks, demos, datasets)
        console.print(f"progress stages: {stages.source}")
    _check_run_dir(config)
    write_run_config(config.run_dir, config)
    trainer = RoundTrainer(online, sft, tasks, t_max=t_max, demos=demos,
                           rollouts=datasets[len(demos):],
                           stages=stages)
    with contextlib.closing(trainer.writer):
        r, data, stats = _train(config, trainer, console, show_progress)
    learner = trainer.learner
    path = config.run_dir / "learn" / f"round_{r:03d}.json"
    if data is None:
        return dict(json.loads(path.read_text()))
    trained_on = data.arrays.select(data.arrays.source != str(EpisodeSource.DEMO))
    record: dict[str, Any] = {
        "round": r, "method": config.method, "task": "+".join(tasks), "policy_version": r,
        "learner_step": learner.step, "ir_enabled": learner.ir_enabled,
        "policy": str(config.run_dir / "policies" / f"v{r:03d}"),
        "rollouts": episode_summary(trained_on), "train": stats} | \
        ({"stages": stages.summary()} if stages is not None else {})
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(record, indent=2))
    return record
