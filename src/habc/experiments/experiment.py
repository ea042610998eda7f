"""`habc experiment`: the paper's study in simulation, every method side by side.

For each task and seed (with ``multi_task``: for each seed, one policy for every task): the
demos and SFT once; Step 1: every Step-1 method for ``step1_rounds``
rounds from that same SFT checkpoint with equal rollout and gradient budgets; Step 2: from the
Step-1 HABC run, continue ``habc`` and ``habc_ir`` for ``step2_rounds`` more rounds (IR switches
on after the initial phase). Jobs run in parallel processes as soon as the jobs they build on
have finished, later stages first, so each task and seed completes end to end early; every job
is resumable, so re-running the command after a crash redoes nothing that finished.

Layout: ``OUT/<task>/seed_<s>/{demos, sft, step1/<method>, step2/<method>}``; a multi-task
spec keeps each task's demos there and its policy's runs in ``OUT/multi-task/seed_<s>/{sft,
step1/.., step2/..}``; ``OUT/<task>/expert.json`` (the scripted expert on the evaluation seeds)
plus ``OUT/results.md`` and the HTML report in ``OUT/report``; ``--rescore`` adds
``OUT/rescore-<offset>/`` (see ``habc.experiments.rescore``).
"""

from __future__ import annotations

import json
import os
import shutil
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, Future, wait
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any, Literal, Protocol

import numpy as np
from rich.console import Console
from rich.progress import Progress

from habc.critic.config import CriticConfig
from habc.envs.registry import EVAL_SEED_BASE, eval_seeds, get_task
from habc.errors import ConfigError, HabcError
from habc.evaluation.evaluate import EvalConfig, evaluate
from habc.evaluation.stats import difference_interval, wilson_interval
from habc.experiments.online import METHODS, OnlineConfig, run_online
from habc.experiments.provenance import PROVENANCE_FILE, machines_line, record_invocation
from habc.experiments.tables import load_rounds, run_label, step2_source, task_rounds
from habc.learner.online import OWN_POOL_METHODS, LearnerConfig
from habc.learner.sft import TrainConfig, train_sft
from habc.policy.config import PolicyConfig
from habc.progress.primitives import GripperStageConfig
from habc.rollout.collect import CollectConfig, collect_demos
from habc.rollout.operator import OperatorConfig
from habc.rollout.workers import LocalDispatcher
from habc.weighting.rules import HabcRule, RejectionRule


@dataclass(frozen=True)
class ExperimentSpec:
    """What an experiment runs (a preset file or a JSON config file holds one)."""

    name: str
    tasks: tuple[tuple[str, int], ...]
    seeds: tuple[int, ...] = (0,)
    description: str = ""
    action_noise: float = 0.1
    sft_steps: int = 4000
    step1_methods: tuple[str, ...] = ("sft", "dagger", "recap", "habc_v", "habc")
    step1_rounds: int = 3
    step2_methods: tuple[str, ...] = ("habc", "habc_ir")
    step2_rounds: int = 3
    rollouts_per_round: int = 20
    steps_per_round: int = 1000
    eval_trials: int = 50
    eval_seed_offset: int = 0
    max_steps: int | None = None
    batch_size: int = 256
    warmup_steps: int = 500
    beta: float = 1.0
    """Temperature of the HABC methods' bounded weight exp(A / beta) (SPEC §4)."""
    failed_rollout_weight: Literal["zero", "habc", "habc_positive"] = "zero"
    """The HABC methods' weight on the policy's steps of failed rollouts (SPEC §2's choice): 0,
    the HABC weight, or the HABC weight where the merged advantage is positive. With
    ``actor_batches`` 'weighted', the actor's batches then draw those steps too. On the
    benchmark 'habc_positive' cost 27 points, as the failed rollouts' long step-limit tails swamp
    the actor's pool (docs/benchmarks.md, session 37); 0 stays the default."""
    gate: Literal["linear", "sigmoid"] = "linear"
    """The gate of ``habc`` and ``habc_ir`` (SPEC §4's choice): g = sigmoid(v), or
    g = sigmoid((p - 0.7) / 0.1), so that efficiency takes over only where viability is high.
    ``habc_v`` keeps g = 0. With ``critic_use_demos`` on the benchmark, 'sigmoid' lowered the
    gate's mean by 0.05-0.07 and left the weights and success where they were
    (docs/benchmarks.md, session 39)."""
    advantage_scale: Literal["std", "robust"] = "std"
    """Running scale of the HABC methods' advantages (see LearnerConfig)."""
    advantage_horizon: int = 1
    """k of the HABC methods' k-step advantages (SPEC §4; paper: 1, one step)."""
    boundary_margin: int = 0
    """Rollout frames this near a logged takeover boundary are not imitated by dagger or the HABC
    methods and carry no outcome label (see LearnerConfig; 0: SPEC). hiors still accepts a
    successful episode whole."""
    actor_batches: Literal["shared", "weighted"] = "shared"
    """Actor batches of the HABC methods (see LearnerConfig); other methods always share."""
    imitate_failed_takeovers: bool = True
    """Whether dagger, hiors and the HABC methods imitate takeovers that failed to the end (see
    LearnerConfig); False needs ``actor_batches='weighted'``."""
    critic_steps_per_round: int | None = None
    """Learner steps per round in which the dual-head methods train their critic (see
    LearnerConfig; None: every step). Recap's value critic always trains every step."""
    actor_ema: float | None = None
    """Decay of the actor's weight average that every online run publishes (see LearnerConfig;
    None: the trained weights)."""
    online_mode: Literal["sync", "async"] = "sync"
    """Online runs in synchronous rounds or with Hi-ORS's asynchronous actor/learner (see
    OnlineConfig.mode); sft always runs in rounds."""
    hiors_reward: Literal["none", "progress"] = "none"
    """What weights hiors's kept samples: nothing, or rabc's progress model (see RejectionRule)."""
    stages: Literal["expert", "gripper"] = "expert"
    """Stage labels of the progress model: the scripted expert's phase, or the gripper's
    switches (see OnlineConfig.stages)."""
    gripper: GripperStageConfig = field(default_factory=GripperStageConfig)
    """With ``stages`` 'gripper': how the switches are read (see GripperStageConfig)."""
    multi_task: bool = False
    """One policy per seed for every task (README *Multi-task policies*): SFT on all the tasks'
    demos, and online runs whose rollouts alternate between the tasks and whose rounds evaluate
    each task. The budgets above stay per task, and the shared policy gets their sum (SFT
    steps, rollouts, learner steps, warm-up and critic steps times the number of tasks), so
    each task gets what a single-task run gets. Its runs read as ``<method>_mt`` in the report."""
    task_balance: bool = False
    """With ``multi_task``: every online run samples its batches task-balanced (see
    LearnerConfig.task_balance)."""
    late_rounds: int = 3
    """The results also average each run's success over its last this-many rounds (at most
    its step's own rounds): a view less sensitive to one checkpoint's luck. The targets are
    checked on the final round."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Every SFT policy; with ``cameras``, the demos record those cameras and the online runs
    render them."""
    critic: CriticConfig = field(default_factory=CriticConfig)
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    """The simulated operator of every online run (Step 1 and Step 2 alike)."""

    def __post_init__(self) -> None:
        if not self.tasks or not self.seeds:
            raise ConfigError("an experiment needs tasks and seeds")
        for task, demos in self.tasks:
            get_task(task)
            if demos < 1:
                raise ConfigError(f"{task}: demos must be >= 1")
        for m in (*self.step1_methods, *self.step2_methods):
            if m not in METHODS:
                raise ConfigError(f"unknown method {m!r}; choose from {', '.join(METHODS)}")
        for m in self.step2_methods:
            if step2_source(m) not in self.step1_methods:
                raise ConfigError(f"Step-2 {m} continues the Step-1 {step2_source(m)} run: add "
                                  f"{step2_source(m)} to step1_methods")
        if min(self.step1_rounds, self.rollouts_per_round, self.steps_per_round,
               self.eval_trials, self.sft_steps, self.late_rounds) < 1 or self.step2_rounds < 0:
            raise ConfigError("rounds, rollouts, steps and trials must be >= 1")
        LearnerConfig(advantage_scale=self.advantage_scale,  # it checks the values itself
                      advantage_horizon=self.advantage_horizon, actor_ema=self.actor_ema,
                      boundary_margin=self.boundary_margin)
        if self.actor_batches not in ("shared", "weighted"):
            raise ConfigError("actor_batches must be 'shared' or 'weighted'")
        if not self.imitate_failed_takeovers and self.actor_batches != "weighted":
            raise ConfigError("imitate_failed_takeovers=false needs actor_batches 'weighted'")
        if self.gate not in ("linear", "sigmoid"):
            raise ConfigError("gate must be 'linear' or 'sigmoid' (habc_v has gate 0 itself)")
        self.habc_rule()  # the rule checks beta, warmup_steps and failed_rollout_weight itself
        if self.online_mode not in ("sync", "async"):
            raise ConfigError("online_mode must be 'sync' or 'async'")
        if self.hiors_reward not in ("none", "progress"):
            raise ConfigError("hiors_reward must be 'none' or 'progress'")
        if self.stages not in ("expert", "gripper"):
            raise ConfigError("stages must be 'expert' or 'gripper'")
        if self.gripper != GripperStageConfig() and self.stages != "gripper":
            raise ConfigError("gripper settings need stages 'gripper'")
        if self.eval_seed_offset < 0:
            raise ConfigError("eval_seed_offset must be >= 0 (0: the reported block)")
        if self.critic_steps_per_round is not None and self.critic_steps_per_round < 1:
            raise ConfigError("critic_steps_per_round must be >= 1 (or null: every step)")
        if self.multi_task and len(self.tasks) < 2:
            raise ConfigError("multi_task needs two or more tasks")
        if self.task_balance and not self.multi_task:
            raise ConfigError("task_balance needs multi_task")

    @property
    def tasks_per_policy(self) -> int:
        """How many tasks each policy serves: the factor on its per-task budgets."""
        return len(self.tasks) if self.multi_task else 1

    def policies(self) -> list[tuple[tuple[str, int], ...]]:
        """The (task, demos) that each seed's policies train on: one entry per policy."""
        return [self.tasks] if self.multi_task else [(t,) for t in self.tasks]

    def habc_rule(self) -> HabcRule:
        """The weighting rule of the HABC methods' runs (the warm-up is per task)."""
        return HabcRule(gate=self.gate, warmup_steps=self.warmup_steps * self.tasks_per_policy,
                        beta=self.beta, failed_rollout_weight=self.failed_rollout_weight)

    def to_json(self) -> dict[str, Any]:
        """The spec as the JSON object that ``spec.json`` records; ``from_json`` reads it back.

        Every key is written, with nested configs as objects.
        """
        return json.loads(json.dumps({k: getattr(v, "__dict__", v)
                                      for k, v in self.__dict__.items()}, default=str))

    @classmethod
    def from_json(cls, payload: dict[str, Any]) -> ExperimentSpec:
        """Build from a JSON object (lists become tuples, nested configs dataclasses)."""
        data = dict(payload)
        try:
            data["tasks"] = tuple((str(t), int(n)) for t, n in data["tasks"])
            for key in ("seeds", "step1_methods", "step2_methods"):
                if key in data:
                    data[key] = tuple(data[key])
            if "policy" in data:
                data["policy"] = PolicyConfig(**data["policy"])
            if "critic" in data:
                data["critic"] = CriticConfig(**data["critic"])
            if "operator" in data:
                data["operator"] = OperatorConfig(**data["operator"])
            if "gripper" in data:
                data["gripper"] = GripperStageConfig(**data["gripper"])
            return cls(**data)
        except (KeyError, TypeError, ValueError) as e:
            raise ConfigError(f"bad experiment spec: {e}") from e


def preset_names() -> list[str]:
    """Names of the presets shipped with habc."""
    folder = resources.files("habc.experiments") / "presets"
    return sorted(p.name.removesuffix(".json") for p in folder.iterdir()
                  if p.name.endswith(".json"))


@dataclass(frozen=True)
class ExperimentConfig:
    """Run every method side by side on a preset or a JSON experiment file (resumable)."""

    preset: str | None = "benchmark"
    """Preset name (see src/habc/experiments/presets), used when no --config-file is given."""
    config_file: Path | None = None
    """JSON experiment spec (same keys as a preset)."""
    out: Path | None = None
    """Output directory; default runs/experiments/<name>."""
    seeds: tuple[int, ...] = ()
    """Run only these seeds (default: the spec's); finished jobs of other seeds are kept."""
    tasks: tuple[str, ...] = ()
    """Run only these tasks of the spec (default: all); finished jobs of others are kept."""
    jobs: int = field(default_factory=lambda: os.cpu_count() or 1)
    """Jobs run in parallel processes, each on one core (default: the cores available)."""
    report: bool = True
    """Write the HTML report at the end."""
    table_only: bool = False
    """Run nothing: print the results table of the runs finished so far."""
    export: Path | None = None
    """Run nothing: copy the records of OUT (spec, results, expert rates, run configs, round
    records, logs; no checkpoints or episodes, a few hundred kB) to this directory, small
    enough to commit; ``--table-only --out`` on the copy prints the same table."""
    against: Path | None = None
    """Run nothing: compare OUT's finished runs with this experiment directory's (an A/B arm,
    or the benchmark before a change), method by method, with 95% intervals of the
    differences. Both are read with OUT's spec, each with its own layout (a multi-task
    experiment against single-task runs, say). With --rescore OFFSET: on that block's scores."""

    rescore: int | None = None
    """Run no training: evaluate the final policy of every finished run, each seed's SFT
    checkpoint and the scripted expert again on the evaluation seeds from this offset on
    (100000: the validation block), ``--rescore-trials`` per seed, and print the results and
    targets on them: whether the verdicts hold on seeds that are not the reported block.
    Resumable; the scores go to OUT/rescore-<offset>/. With --table-only, only the tables;
    with --against, compare the two directories' scores on that block (both rescored)."""
    rescore_trials: int = 100
    """Evaluation trials per seed with --rescore."""

    def __post_init__(self) -> None:
        if self.jobs < 1:
            raise ConfigError("jobs must be >= 1")
        if self.rescore is not None and self.export is not None:
            raise ConfigError("--rescore cannot be combined with --export")

    def spec(self) -> ExperimentSpec:
        """Load the experiment spec."""
        if self.config_file is not None:
            path = Path(self.config_file)
        elif self.preset is not None:
            if self.preset not in preset_names():
                raise ConfigError(f"unknown preset {self.preset!r}; presets: "
                                  f"{', '.join(preset_names())}")
            path = Path(str(resources.files("habc.experiments") / "presets" /
                            f"{self.preset}.json"))
        else:
            raise ConfigError("give --preset or --config-file")
        try:
            payload = json.loads(path.read_text())
        except (OSError, json.JSONDecodeError) as e:
            raise ConfigError(f"cannot read experiment spec {path}: {e}") from e
        if self.seeds:
            payload["seeds"] = list(self.seeds)
        if self.tasks:
            names = [t for t, _ in payload.get("tasks", [])]
            if unknown := sorted(set(self.tasks) - set(names)):
                raise ConfigError(f"tasks {unknown} are not in the spec's {names}")
            if payload.get("multi_task"):
                raise ConfigError("--tasks cannot pick tasks of a multi-task spec: its policy "
                                  "trains on all of them")
            payload["tasks"] = [[t, n] for t, n in payload["tasks"] if t in self.tasks]
        return ExperimentSpec.from_json(payload)


# ------------------------------------------------------------------------------------- jobs
EXPERT_FILE = "expert.json"

def cell_dir(out: Path, task: str, seed: int) -> Path:
    """The directory of one task and seed: ``OUT/<task>/seed_<s>`` (its demos, expert)."""
    return out / get_task(task).name / f"seed_{seed}"


MULTI_TASK = "multi-task"
"""The folder of a multi-task spec's runs: ``OUT/multi-task/seed_<s>``."""


def policy_cell(out: Path, task: str, seed: int, multi_task: bool) -> Path:
    """Where the SFT and online runs of ``task``'s policy of ``seed`` live.

    ``multi_task``: the spec's (one policy for every task).
    """
    return out / MULTI_TASK / f"seed_{seed}" if multi_task else cell_dir(out, task, seed)


def quiet_job() -> None:
    """Set up a job process: offscreen rendering on the CPU, one torch thread."""
    os.environ.setdefault("MUJOCO_GL", "osmesa")
    os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
    import torch

    torch.set_num_threads(1)


def _demos(spec: ExperimentSpec, out: Path, task: str, demos: int, seed: int) -> Path:
    """Collect (or top up) one task's demos of ``seed`` (seed-specific training seeds)."""
    ds = cell_dir(out, task, seed) / "demos"
    have = 0
    if (ds / "meta/info.json").exists():
        from habc.episodes.store import EpisodeStore

        have = EpisodeStore.open(ds).num_episodes
    if have < demos:
        collect_demos(CollectConfig(task=task, out=ds, num_episodes=demos - have,
                                    seed_start=seed * 1000, action_noise=spec.action_noise,
                                    max_steps=spec.max_steps, noise_seed=seed,
                                    cameras=spec.policy.cameras,
                                    image_size=spec.policy.image_size),
                      show_progress=False)
    return ds


def sft_job(spec: ExperimentSpec, out: Path, tasks: tuple[tuple[str, int], ...],
            seed: int) -> str:
    """Demos and SFT of one policy of ``seed`` on ``tasks`` ((task, demos); several: multi-task).

    SFT trains ``sft_steps`` per task.
    """
    quiet_job()
    datasets = tuple(_demos(spec, out, t, n, seed) for t, n in tasks)
    cell = policy_cell(out, tasks[0][0], seed, spec.multi_task)
    train_sft(TrainConfig(datasets=datasets, run_dir=cell / "sft",
                          steps=spec.sft_steps * len(tasks), seed=seed, num_threads=1,
                          policy=spec.policy, batch_size=spec.batch_size), show_progress=False)
    return f"{'+'.join(t for t, _ in tasks)} seed {seed}: SFT"


def _online_config(spec: ExperimentSpec, cell: Path, method: str, run_dir: Path, rounds: int,
                   seed: int) -> OnlineConfig:
    habc = method in ("habc_v", "habc", "habc_ir")
    per_task = spec.tasks_per_policy
    return OnlineConfig(
        sft_checkpoint=cell / "sft" / "checkpoints" / "last", run_dir=run_dir,
        method=method,  # type: ignore[arg-type]
        mode=spec.online_mode if method != "sft" else "sync",
        rounds=rounds, initial_rounds=spec.step1_rounds,
        rollouts_per_round=spec.rollouts_per_round * per_task,
        steps_per_round=spec.steps_per_round * per_task,
        eval_trials=spec.eval_trials, eval_seed_offset=spec.eval_seed_offset, workers=1,
        seed=seed, max_steps=spec.max_steps, operator=spec.operator,
        num_threads=1, learner=LearnerConfig(
            batch_size=spec.batch_size, critic=spec.critic, advantage_scale=spec.advantage_scale,
            advantage_horizon=spec.advantage_horizon, actor_ema=spec.actor_ema,
            boundary_margin=spec.boundary_margin, task_balance=spec.task_balance,
            actor_batches=spec.actor_batches if habc else "shared",
            critic_steps_per_round=spec.critic_steps_per_round * per_task
            if habc and spec.critic_steps_per_round is not None else None,
            imitate_failed_takeovers=spec.imitate_failed_takeovers
            or not (habc or method in OWN_POOL_METHODS)),
        habc=spec.habc_rule(), hiors=RejectionRule(reward=spec.hiors_reward),
        stages=spec.stages, gripper=spec.gripper)


def online_job(spec: ExperimentSpec, cell: Path, seed: int, method: str, step: int) -> str:
    """One Step-1 run of the policy in ``cell``, or one Step-2 run forked from its Step-1 run.

    A Step-2 run continues the Step-1 run of ``step2_source``.
    """
    quiet_job()
    run_dir = cell / f"step{step}" / method
    rounds = final_round(spec, step)
    if step == 2 and not (run_dir / "config.json").exists():
        source = cell / "step1" / step2_source(method)
        if run_dir.exists():
            shutil.rmtree(run_dir)  # an interrupted fork: copy again
        top_level = {"config.json", "summary.json", "tb", "eval"}
        shutil.copytree(source, run_dir, ignore=lambda folder, names: [
            n for n in names if Path(folder) == source and n in top_level])
    log = (run_dir.parent / f"{method}.log")
    log.parent.mkdir(parents=True, exist_ok=True)
    with log.open("a") as handle:
        run_online(_online_config(spec, cell, method, run_dir, rounds, seed),
                   Console(file=handle, width=100), show_progress=False)
    return f"{cell.parent.name} seed {seed}: step {step} {method}"


@dataclass(frozen=True)
class Job:
    """One unit of work: ``fn(*args)`` once every job named in ``after`` has finished.

    Jobs of later stages go first when several are ready, so a task and seed finishes end to
    end (SFT, Step 1, Step 2) before the next one starts its later stages.
    """

    name: str
    stage: int
    fn: Callable[..., str]
    args: tuple[Any, ...]
    after: frozenset[str] = frozenset()


def experiment_jobs(spec: ExperimentSpec, out: Path) -> list[Job]:
    """Every job of an experiment, with the dependencies between them.

    Jobs are named by the policy's tasks (``sft reach 0``; a multi-task policy's ``sft
    multi-task 0``).
    """
    jobs = [Job(f"expert {t}", 0, expert_job, (spec, out, t)) for t, _ in spec.tasks]
    for tasks in spec.policies():
        name = MULTI_TASK if spec.multi_task else tasks[0][0]
        for s in spec.seeds:
            cell = policy_cell(out, tasks[0][0], s, spec.multi_task)
            sft = f"sft {name} {s}"
            jobs.append(Job(sft, 0, sft_job, (spec, out, tasks, s)))
            jobs += [Job(f"step1 {m} {name} {s}", 1, online_job, (spec, cell, s, m, 1),
                         frozenset({sft})) for m in spec.step1_methods]
            jobs += [Job(f"step2 {m} {name} {s}", 2, online_job, (spec, cell, s, m, 2),
                         frozenset({f"step1 {step2_source(m)} {name} {s}"}))
                     for m in spec.step2_methods]
    return jobs


def next_job(pending: list[Job], done: set[str]) -> Job | None:
    """The first of the latest-stage jobs whose dependencies are done (None: nothing ready).

    Within a stage, a job that other pending jobs wait on goes first (the Step-1 habc run that
    Step 2 forks from, say), so that the later stage can start sooner.
    """
    ready = [j for j in pending if j.after <= done]
    awaited = {name for j in pending for name in j.after}
    return max(ready, key=lambda j: (j.stage, j.name in awaited)) if ready else None


def _no_setup() -> None:
    """Job processes need no set-up (each job builds what it uses)."""


def _call(job: tuple[Callable[..., str], tuple[Any, ...]]) -> str:
    """``fn(*args)`` of ``job``: one job in a worker process."""
    fn, args = job
    return fn(*args)


def run_jobs(jobs: list[Job], workers: int, console: Console) -> None:
    """Run ``jobs`` in ``workers`` spawned processes, respecting dependencies.

    Raises:
        HabcError: when a job fails (the jobs already running finish first).
    """
    pending, done = list(jobs), set[str]()
    running: dict[Future[str], tuple[Job, float]] = {}
    with Progress(console=console) as progress, \
            LocalDispatcher(workers, _no_setup, (), _call) as pool:
        bar = progress.add_task("experiment", total=len(jobs))
        while pending or running:
            while len(running) < workers and (job := next_job(pending, done)) is not None:
                pending.remove(job)
                running[pool.submit((job.fn, job.args))] = (job, time.perf_counter())
            if not running:
                raise HabcError(f"jobs wait on jobs that never run: {pending[0].name}")
            finished, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in finished:
                job, started = running.pop(future)
                try:  # a timed line per job, so that a log without a terminal shows progress
                    progress.console.print(
                        f"{time.strftime('%H:%M:%S')} done {len(done) + 1}/{len(jobs)} in "
                        f"{time.perf_counter() - started:.0f} s: {future.result()}")
                except HabcError as e:
                    wait(running)  # the jobs already running finish (leaving the pool stops them)
                    raise HabcError(f"job {job.name} failed: {e}") from e
                done.add(job.name)
                progress.advance(bar)


RECORD_PATTERNS = ("spec.json", "results.md", PROVENANCE_FILE, f"*/{EXPERT_FILE}",
                   "*/seed_*/sft/train_log.csv",
                   "*/seed_*/step*/*.log", "*/seed_*/step*/*/config.json",
                   "*/seed_*/step*/*/rounds/round_*.json", "rescore-*/block.json",
                   "rescore-*/results.md", f"rescore-*/{PROVENANCE_FILE}",
                   f"rescore-*/*/{EXPERT_FILE}",
                   "rescore-*/*/seed_*/*.json")
"""What ``export_records`` copies: everything the results tables read (the rescored blocks'
too), and the logs."""


def export_records(out: Path, dest: Path) -> list[Path]:
    """Copy the record files of experiment directory ``out`` to ``dest`` (same layout).

    Returns the copied paths under ``dest``. Files already in ``dest`` are overwritten.
    """
    copied = []
    for pattern in RECORD_PATTERNS:
        for source in sorted(out.glob(pattern)):
            target = dest / source.relative_to(out)
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, target)
            copied.append(target)
    return copied


def directory_spec(saved: dict[str, Any] | None, current: dict[str, Any]) -> dict[str, Any]:
    """The spec an experiment directory records (``spec.json``) after an invocation.

    A directory is often run a few seeds or tasks at a time (``--seeds``, ``--tasks``). When
    the ``saved`` spec agrees with the invocation's ``current`` one on everything but those, the
    record keeps both: the seeds of either, sorted, and the saved tasks followed by the new ones
    (the tables and the report read it). Otherwise (another setting, or a task with another
    number of demos) ``current`` replaces it.
    """
    def rest(spec: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in spec.items() if k not in ("seeds", "tasks")}

    if saved is None or rest(saved) != rest(current):
        return current
    demos = {str(t): int(n) for t, n in saved["tasks"]}
    if any(demos.get(str(t), int(n)) != int(n) for t, n in current["tasks"]):
        return current
    tasks = [*saved["tasks"], *([t, n] for t, n in current["tasks"] if t not in demos)]
    return current | {"tasks": tasks, "seeds": sorted({*saved["seeds"], *current["seeds"]})}


def run_experiment(config: ExperimentConfig, console: Console | None = None) -> Path:
    """Run (or resume) every job, then write results.md (and the report); return OUT."""
    console = console or Console()
    spec = config.spec()
    out = Path(config.out or Path("runs/experiments") / spec.name)
    if config.rescore is not None:
        from habc.experiments.rescore import rescore, rescored_comparison

        if config.against is not None:
            console.print(rescored_comparison(out, config.against, spec, config.rescore),
                          soft_wrap=True)
            return out
        rescore(spec, out, config.rescore, config.rescore_trials, config.jobs, console,
                table_only=config.table_only)
        return out
    if config.table_only or config.export is not None or config.against is not None:
        for directory in (out, config.against):
            if directory is not None and not directory.is_dir():
                raise ConfigError(f"no experiment directory {directory}")
        if config.against is not None:
            console.print(comparison_table(out, config.against, spec), soft_wrap=True)
        elif config.export is not None:
            copied = export_records(out, config.export)
            console.print(f"exported {len(copied)} record files -> {config.export}")
        else:
            console.print(results_table(out, spec), soft_wrap=True)
        return out
    out.mkdir(parents=True, exist_ok=True)
    spec_file = out / "spec.json"
    merged = directory_spec(json.loads(spec_file.read_text()) if spec_file.exists() else None,
                            spec.to_json())
    spec_file.write_text(json.dumps(merged, indent=2))
    record_invocation(out, config.jobs)
    start = time.perf_counter()
    run_jobs(experiment_jobs(spec, out), config.jobs, console)
    wall = time.perf_counter() - start
    table = results_table(out, ExperimentSpec.from_json(merged))
    (out / "results.md").write_text(table + f"\nWall-clock of this invocation: {wall:.0f} s "
                                    f"with {config.jobs} parallel jobs.\n{machines_line(out)}\n")
    console.print(table, soft_wrap=True)
    if config.report:
        from habc.report.html import ReportConfig, build_report

        console.print(f"report -> {build_report(ReportConfig(run_dir=out))}")
    return out


def expert_job(spec: ExperimentSpec, out: Path, task: str) -> str:
    """The scripted expert on the experiment's evaluation seeds: the targets' reference rate."""
    quiet_job()
    path = out / get_task(task).name / EXPERT_FILE
    if not path.exists():
        evaluate(EvalConfig(expert=True, task=task, workers=1, max_steps=spec.max_steps,
                            seeds=tuple(eval_seeds(spec.eval_trials, spec.eval_seed_offset)),
                            out=path), show_progress=False)
    return f"{task}: scripted expert"


def final_round(spec: ExperimentSpec, step: int) -> int:
    """The last round of a Step-``step`` run (Step 2 counts on from Step 1's rounds)."""
    return spec.step1_rounds + (spec.step2_rounds if step == 2 else 0)


def _seed_rounds(out: Path, spec: ExperimentSpec, task: str, step: int, method: str,
                 sft: dict[int, dict[str, Any]], *,
                 multi_task: bool | None = None) -> dict[int, list[dict[str, Any]]]:
    """Per finished seed of one run, the evals of rounds 0 to final (records each SFT eval).

    ``multi_task`` (default: the spec's) reads the runs of ``out``'s multi-task policies, with
    ``task``'s evals.
    """
    rounds = final_round(spec, step)
    multi_task = spec.multi_task if multi_task is None else multi_task
    per_seed = {}
    for s in spec.seeds:
        run = policy_cell(out, task, s, multi_task) / f"step{step}" / method
        started = any((run / "rounds").glob("round_*.json"))
        recs = load_rounds(run) if started else []
        if recs and multi_task:
            recs = task_rounds(recs, task)
        if recs and step == 1:
            sft.setdefault(s, recs[0]["eval"])
        if len(recs) > rounds:
            per_seed[s] = [rec["eval"] for rec in recs[:rounds + 1]]
    return per_seed


class Scores(Protocol):
    """Where the results tables read their evaluations from."""

    def run(self, task: str, step: int, method: str,
            sft: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """Per finished seed of one run, its evals in round order (the final one last).

        Puts each seed's SFT eval into ``sft``.
        """
        ...

    def expert(self, task: str) -> list[dict[str, Any]]:
        """The scripted expert's eval of ``task`` (empty if not measured)."""
        ...


@dataclass(frozen=True)
class RecordedScores:
    """The evaluations in an experiment's round records, on the spec's evaluation seeds."""

    out: Path
    spec: ExperimentSpec
    multi_task: bool | None = None
    """Whether ``out`` holds multi-task policies (default: the spec's)."""

    def run(self, task: str, step: int, method: str,
            sft: dict[int, dict[str, Any]]) -> dict[int, list[dict[str, Any]]]:
        """See ``Scores.run``: every round's eval, SFT from the Step-1 runs' round 0."""
        return _seed_rounds(self.out, self.spec, task, step, method, sft,
                            multi_task=self.multi_task)

    def expert(self, task: str) -> list[dict[str, Any]]:
        """See ``Scores.expert``."""
        path = self.out / get_task(task).name / EXPERT_FILE
        return [json.loads(path.read_text())] if path.exists() else []


COMPARED = (((0, "sft"), "SFT"), ((1, "dagger"), "DAgger"), ((1, "recap"), "Recap"))
"""The runs that Step-1 HABC is compared with in the targets: (step, method), and a label."""


@dataclass(frozen=True)
class Gap:
    """Step-1 HABC's pooled final success against another run's, on one task or pooled."""

    task: str
    """The task, or 'all tasks' for the trials of every task where both runs finished."""
    other: str
    """The other run's label (``COMPARED``)."""
    k: int
    """HABC's successes, pooled over seeds (and tasks)."""
    n: int
    """HABC's trials."""
    k_other: int
    """The other run's successes."""
    n_other: int
    """The other run's trials."""

    @property
    def difference(self) -> float:
        """HABC's rate minus the other's."""
        return self.k / self.n - self.k_other / self.n_other

    @property
    def interval(self) -> tuple[float, float]:
        """95% interval of the difference (Newcombe's)."""
        return difference_interval(self.k, self.n, self.k_other, self.n_other)


def _gap(task: str, other: str, habc: list[dict[str, Any]],
         theirs: list[dict[str, Any]]) -> Gap:
    (k, n, _), (k_o, n_o, _) = _pool(habc), _pool(theirs)
    return Gap(task, other, k, n, k_o, n_o)


@dataclass(frozen=True)
class ResultTables:
    """The results of an experiment as header + rows (rendered as Markdown or HTML)."""

    caption: str
    header: list[str]
    rows: list[list[str]]
    target_caption: str
    target_header: list[str]
    target_rows: list[list[str]]
    late_caption: str
    late_header: list[str]
    late_rows: list[list[str]]
    job_time: str
    gaps: list[Gap]
    """HABC against each ``COMPARED`` run on every task where both finished, then pooled
    over the tasks (with several tasks)."""


def result_tables(out: Path, spec: ExperimentSpec, scores: Scores | None = None) -> ResultTables:
    """Final success per task and method, pooled over seeds (95% Wilson CI), and the targets.

    Only finished runs count (Step 1: ``step1_rounds`` rounds; Step 2: all rounds); each cell
    also lists the per-seed rates and says when some seeds have not finished. The targets are
    checked on the runs where every seed has finished. ``scores`` (default: the round records
    of ``out``) is where the evaluations come from.
    """
    scores = scores or RecordedScores(out, spec)
    columns = [*(f"{m}" for m in spec.step1_methods),
               *(run_label(2, m) for m in spec.step2_methods)]
    step2 = (f" and {spec.step1_rounds + spec.step2_rounds} rounds (Step 2)"
             if spec.step2_methods else "")
    caption = (f"{spec.name}: {spec.description} Final success after {spec.step1_rounds} rounds "
               f"(Step 1){step2}; {spec.eval_trials} evaluation trials per seed (seeds "
               f"{EVAL_SEED_BASE + spec.eval_seed_offset}+), pooled over seeds "
               f"{list(spec.seeds)}; SFT = round 0; expert = the scripted expert on the same "
               "seeds. Mean success length in parentheses, then the per-seed rates."
               + (" One multi-task policy per seed for every task (SFT on all the tasks' demos; "
                  "each online round's rollouts alternate between the tasks): a task's cells "
                  "are that policy's evaluations on it." if spec.multi_task else ""))
    rows, target_rows, late_rows = [], [], []
    gaps: list[Gap] = []
    finished: Finished = []
    late = _late_rounds(spec)
    late_step2 = (f"; Step 2: rounds {spec.step1_rounds + spec.step2_rounds - late[2] + 1}-"
                  f"{spec.step1_rounds + spec.step2_rounds}" if spec.step2_methods else "")
    late_caption = (f"Success averaged over each run's last rounds (Step 1: rounds "
                    f"{spec.step1_rounds - late[1] + 1}-{spec.step1_rounds}{late_step2}), "
                    "pooled over seeds, then the "
                    "per-seed averages. No interval: a run's rounds are evaluated on the same "
                    "seeds and are not independent. The targets use the final round.")
    for task, demos in spec.tasks:
        sft: dict[int, dict[str, Any]] = {}
        per_seed = {(step, m): scores.run(task, step, m, sft)
                    for step, methods in ((1, spec.step1_methods), (2, spec.step2_methods))
                    for m in methods}
        finals = {key: [evals[-1] for evals in seeds.values()]
                  for key, seeds in per_seed.items()}
        expert = scores.expert(task)
        rows.append([f"{task} ({demos} demos)", _pooled(expert, 1),
                     _pooled(list(sft.values()), len(spec.seeds)),
                     *(_pooled(e, len(spec.seeds)) for e in finals.values())])
        done = {key: e for key, e in finals.items() if len(e) == len(spec.seeds)}
        if len(sft) == len(spec.seeds):
            done[(0, "sft")] = [sft[s] for s in spec.seeds]
        finished.append((done, expert))
        habc = done.get((1, "habc"))
        if habc is not None:
            gaps += [_gap(task, name, habc, done[key]) for key, name in COMPARED if key in done]
        target_rows.append([task, _rate_target(done.get((2, "habc_ir")), expert),
                            *(_compare(habc, done.get(key)) for key, _ in COMPARED),
                            _length_target(habc, done.get((1, "habc_v")))])
        late_rows.append([f"{task} ({demos} demos)", *(
            _late_cell(list(seeds.values()), late[step], len(spec.seeds))
            for (step, _), seeds in per_seed.items())])
    if len(spec.tasks) > 1:
        pooled = [gap for key, name in COMPARED if (gap := _all_tasks_gap(finished, key, name))]
        target_rows.append(_all_tasks_targets(finished, pooled))
        gaps += pooled
    target_caption = ("Targets (pooled rates, then HABC's gap to the other method on each seed "
                      "in points; a target needs every seed of its runs finished)"
                      + ("; the row 'all tasks' pools the trials of every task where both runs "
                         "finished, and there HABC beats another method only where the 95% "
                         "interval of the difference (Newcombe's) lies above 0"
                         if len(spec.tasks) > 1 else "") + ":")
    return ResultTables(
        caption=caption, header=["task", "expert", "SFT", *columns], rows=rows,
        target_caption=target_caption,
        target_header=["task", "HABC+IR >= min(90%, 95% of expert)", "HABC > SFT",
                       "HABC > DAgger", "HABC > Recap", "HABC length <= HABC-V"],
        target_rows=target_rows, late_caption=late_caption,
        late_header=["task", *columns], late_rows=late_rows, job_time=_job_time(out, spec),
        gaps=gaps)


def _late_rounds(spec: ExperimentSpec) -> dict[int, int]:
    """How many final rounds the last-rounds averages of Step 1 and Step 2 take."""
    return {1: min(spec.late_rounds, spec.step1_rounds),
            2: min(spec.late_rounds, max(spec.step2_rounds, 1))}


def comparison_table(out: Path, against: Path, spec: ExperimentSpec,
                     scores: tuple[Scores, Scores] | None = None) -> str:
    """Final success of ``out``'s runs against ``against``'s, method by method (Markdown).

    ``scores``: where ``out``'s and ``against``'s evaluations come from (a rescored block's,
    one per run); by default both directories' round records, read with ``spec`` (``out``'s),
    each with the layout of its own ``spec.json``: a multi-task experiment compares task by
    task with single-task runs. Per task, for the SFT checkpoints and then each method, over
    the seeds finished in both: each side's pooled final success, the difference in points
    with its 95% interval, the per-seed differences and, from round records, the difference of
    the last-rounds averages; the rows ``all tasks`` pool the tasks.
    """
    late = _late_rounds(spec)
    if scores is None:
        saved = against / "spec.json"
        multi_task = json.loads(saved.read_text()).get("multi_task", False) \
            if saved.exists() else spec.multi_task
        scores = (RecordedScores(out, spec), RecordedScores(against, spec, multi_task))
        with_late = True
    else:
        with_late = False
    rows: list[list[str]] = []
    pools: dict[str, list[tuple[int, int, int, int, float]]] = {"SFT": []}  # SFT first

    def add(task: str, name: str, mine: dict[int, list[dict[str, Any]]],
            theirs: dict[int, list[dict[str, Any]]], last: int) -> list[str]:
        seeds = [s for s in spec.seeds if s in mine and s in theirs]
        if not seeds:
            return [task, name, "-", "-", "-", *(["-"] if with_late else []), "-"]
        k, n, _ = _pool([mine[s][-1] for s in seeds])
        k_o, n_o, _ = _pool([theirs[s][-1] for s in seeds])
        late_gap = (_pooled_rate([e for s in seeds for e in mine[s][-last:]])
                    - _pooled_rate([e for s in seeds for e in theirs[s][-last:]]))
        gaps = [mine[s][-1]["success_rate"] - theirs[s][-1]["success_rate"] for s in seeds]
        pools.setdefault(name, []).append((k, n, k_o, n_o, late_gap))
        return [task, name, *_difference_cells(k, n, k_o, n_o),
                *([_points(late_gap)] if with_late else []),
                _seeds_text(gaps, len(spec.seeds), signed=True).removeprefix("; ")]

    for task, _ in spec.tasks:
        sft: tuple[dict[int, dict[str, Any]], dict[int, dict[str, Any]]] = ({}, {})
        method_rows = [add(task, run_label(step, method), scores[0].run(task, step, method, sft[0]),
                           scores[1].run(task, step, method, sft[1]), late[step])
                       for step, methods in ((1, spec.step1_methods), (2, spec.step2_methods))
                       for method in methods]
        mine_sft, their_sft = ({s: [e] for s, e in side.items()} for side in sft)
        rows += [add(task, "SFT", mine_sft, their_sft, 1), *method_rows]
    for name, parts in pools.items() if len(spec.tasks) > 1 else ():
        if not parts:
            continue
        k, n = sum(p[0] for p in parts), sum(p[1] for p in parts)
        k_o, n_o = sum(p[2] for p in parts), sum(p[3] for p in parts)
        mean_late = float(np.mean([p[4] for p in parts]))
        rows.append(["all tasks", name, *_difference_cells(k, n, k_o, n_o),
                     *([_points(mean_late)] if with_late else []),
                     f"{len(parts)} of {len(spec.tasks)} tasks"])
    late_text = (f", the difference of the last-rounds averages (Step 1: {late[1]} rounds, "
                 f"Step 2: {late[2]}; SFT: round 0; all tasks: their mean)" if with_late else "")
    caption = (f"{out} against {against}: final success pooled over the seeds finished in "
               "both, the difference in points with its 95% interval (Newcombe's, for "
               "independent proportions; a seed's runs share their SFT checkpoint and "
               f"evaluation layouts, which makes it conservative){late_text} and the per-seed "
               "differences. SFT: each seed's SFT checkpoint.")
    header = ["task", "method", str(out.name), str(against.name), "difference [95% CI]",
              *(["last rounds"] if with_late else []), "per seed"]
    return "\n".join([caption, "", *markdown_table(header, rows)]) + "\n"


def _pooled_rate(evals: list[dict[str, Any]]) -> float:
    k, n, _ = _pool(evals)
    return k / n


def _difference_cells(k: int, n: int, k_o: int, n_o: int) -> list[str]:
    """Both pooled rates and their difference [95% CI]."""
    low, high = difference_interval(k, n, k_o, n_o)
    return [f"{k / n:.0%}", f"{k_o / n_o:.0%}",
            f"{_points(k / n - k_o / n_o)} [{_points(low)}, {_points(high)}]"]


def _points(x: float) -> str:
    """A difference of rates in signed whole points ('+0', never '-0')."""
    return f"{round(100 * x):+d}"


def markdown_table(header: list[str], rows: list[list[str]]) -> list[str]:
    """The lines of a Markdown table."""
    return ["| " + " | ".join(header) + " |", "|" + "---|" * len(header),
            *("| " + " | ".join(row) + " |" for row in rows)]


def _job_time(out: Path, spec: ExperimentSpec) -> str:
    """The job time in the round records of experiment directory ``out``, over every run.

    Each online round records its collection, training and evaluation time; the sum adds up
    across resumed invocations. A Step-2 run starts with copies of the Step-1 HABC run's
    rounds, which count once. SFT training and rounds that a crash cut short are not in the
    records, so it is a lower bound on the experiment's job time.
    """
    first = {"step1": 1, "step2": spec.step1_rounds + 1}
    walls = [sum(json.loads(f.read_text())["wall_s"].values())
             for step, start in first.items()
             for f in out.glob(f"*/seed_*/{step}/*/rounds/round_*.json")
             if int(f.stem.removeprefix("round_")) >= start]
    return (f"Job time in the round records: {sum(walls) / 3600:.1f} h over {len(walls)} "
            "online rounds (collection, training, evaluation; SFT training not counted).")


def results_table(out: Path, spec: ExperimentSpec) -> str:
    """Markdown of ``result_tables``."""
    tables = result_tables(out, spec)
    return "\n".join([tables.caption, "", *markdown_table(tables.header, tables.rows), "",
                      tables.target_caption,
                      "", *markdown_table(tables.target_header, tables.target_rows), "",
                      tables.late_caption, "",
                      *markdown_table(tables.late_header, tables.late_rows), "",
                      tables.job_time]) + "\n"


def _pool(evals: list[dict[str, Any]]) -> tuple[int, int, float | None]:
    """(successes, trials, mean of the per-eval mean success lengths) over evals."""
    k = sum(round(e["success_rate"] * e["n_trials"]) for e in evals)
    n = sum(e["n_trials"] for e in evals)
    lengths = [e["mean_success_length"] for e in evals if e["mean_success_length"]]
    return k, n, float(np.mean(lengths)) if lengths else None


def _pooled(evals: list[dict[str, Any]], n_seeds: int) -> str:
    """Pooled rate [95% CI] (mean success length); per-seed rates; how many seeds finished."""
    if not evals:
        return "-"
    k, n, length = _pool(evals)
    low, high = wilson_interval(k, n)
    length_text = f" ({length:.0f})" if length is not None else ""
    seeds = _seeds_text([e["success_rate"] for e in evals], n_seeds)
    return f"{k / n:.0%} [{100 * low:.0f}, {100 * high:.0f}]{length_text}{seeds}"


def _seeds_text(rates: list[float], n_seeds: int, *, signed: bool = False) -> str:
    """'; a/b/c' per-seed rates (when several seeds), then how many seeds finished if not all."""
    form = "+.0f" if signed else ".0f"
    per_seed = "; " + "/".join(f"{100 * r:{form}}" for r in rates) if n_seeds > 1 else ""
    done = "" if len(rates) == n_seeds else f", {len(rates)} of {n_seeds} seeds"
    return per_seed + done


def _late_cell(per_seed: list[list[dict[str, Any]]], late: int, n_seeds: int) -> str:
    """Success pooled over the last ``late`` rounds of every finished seed; per-seed means."""
    if not per_seed:
        return "-"
    pooled = [_pool(evals[-late:])[:2] for evals in per_seed]
    k, n = sum(k for k, _ in pooled), sum(n for _, n in pooled)
    return f"{k / n:.0%}{_seeds_text([k_s / n_s for k_s, n_s in pooled], n_seeds)}"


def _verdict(met: bool) -> str:
    return "**met**" if met else "missed"


def _rate_bar(expert: list[dict[str, Any]]) -> float:
    """HABC+IR's bar: min(90%, 95% of the expert's rate), 90% with no expert measured."""
    return min(0.9, 0.95 * expert[0]["success_rate"]) if expert else 0.9


def _rate_target(evals: list[dict[str, Any]] | None, expert: list[dict[str, Any]]) -> str:
    """HABC+IR's pooled rate against its bar."""
    if evals is None:
        return "-"
    k, n, _ = _pool(evals)
    bar = _rate_bar(expert)
    return f"{k / n:.0%} vs {bar:.0%}: {_verdict(k / n >= bar)}"


Finished = list[tuple[dict[tuple[int, str], list[dict[str, Any]]], list[dict[str, Any]]]]
"""Per task: its runs where every seed finished, by (step, method), and its expert's eval."""


def _both_finished(finished: Finished, key: tuple[int, str]) \
        -> list[tuple[list[dict[str, Any]], list[dict[str, Any]]]]:
    """(HABC's evals, run ``key``'s evals) of every task where both finished."""
    return [(done[(1, "habc")], done[key]) for done, _ in finished
            if (1, "habc") in done and key in done]


def _all_tasks_gap(finished: Finished, key: tuple[int, str], name: str) -> Gap | None:
    """HABC against run ``key``, pooled over every task where both finished (None if none)."""
    pairs = _both_finished(finished, key)
    if not pairs:
        return None
    return _gap("all tasks", name, [e for pair in pairs for e in pair[0]],
                [e for pair in pairs for e in pair[1]])


def _all_tasks_targets(finished: Finished, pooled: list[Gap]) -> list[str]:
    """The targets row 'all tasks': each task's finished runs and expert's eval, pooled gaps.

    ``pooled`` holds ``_all_tasks_gap``'s gaps. The rate and length targets count the tasks
    that meet them. HABC's comparisons pool the trials of every task where both runs
    finished: both rates, the difference in points with its 95% interval, met only where the
    interval lies above 0.
    """
    def tasks_text(met: int, checked: int) -> str:
        if not checked:
            return "-"
        rest = len(finished) - checked
        return f"met on {met} of {checked} tasks" + (f", {rest} not finished" if rest else "")

    rate = [_pooled_rate(done[(2, "habc_ir")]) >= _rate_bar(expert)
            for done, expert in finished if (2, "habc_ir") in done]
    lengths = [(_pool(done[(1, "habc")])[2], _pool(done[(1, "habc_v")])[2])
               for done, _ in finished if (1, "habc") in done and (1, "habc_v") in done]
    lengths_met = [a <= b for a, b in lengths if a is not None and b is not None]

    def compare(key: tuple[int, str], name: str) -> str:
        gap = next((g for g in pooled if g.other == name), None)
        if gap is None:
            return "-"
        mine, theirs, text = _difference_cells(gap.k, gap.n, gap.k_other, gap.n_other)
        both = len(_both_finished(finished, key))
        return (f"{mine} vs {theirs}: {text}, {_verdict(gap.interval[0] > 0)}"
                + (f"; {both} of {len(finished)} tasks" if both < len(finished) else ""))

    return ["all tasks", tasks_text(sum(rate), len(rate)),
            *(compare(key, name) for key, name in COMPARED),
            tasks_text(sum(lengths_met), len(lengths_met))]


def _compare(habc: list[dict[str, Any]] | None, other: list[dict[str, Any]] | None) -> str:
    """HABC's pooled rate against another method's, then the per-seed gaps in points.

    Both lists hold one eval per seed, in the spec's seed order: a seed shares its SFT
    checkpoint and evaluation layouts across methods, so its gap is a paired comparison.
    """
    if habc is None or other is None:
        return "-"
    (k, n, _), (k_o, n_o, _) = _pool(habc), _pool(other)
    gaps = "/".join(f"{100 * (a['success_rate'] - b['success_rate']):+.0f}"
                    for a, b in zip(habc, other, strict=True))
    return f"{k / n:.0%} vs {k_o / n_o:.0%}: {_verdict(k / n > k_o / n_o)}; per seed {gaps}"


def _length_target(habc: list[dict[str, Any]] | None,
                   habc_v: list[dict[str, Any]] | None) -> str:
    """HABC's mean success length against HABC-V's."""
    if habc is None or habc_v is None:
        return "-"
    length, length_v = _pool(habc)[2], _pool(habc_v)[2]
    if length is None or length_v is None:
        return "-"
    return f"{length:.0f} vs {length_v:.0f}: {_verdict(length <= length_v)}"
