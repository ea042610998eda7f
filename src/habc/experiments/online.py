"""Online rounds (SPEC §9), synchronous mode: rollouts with the operator -> train -> evaluate.

Run directory::

    config.json
    rollouts/                 episode store of every rollout (tagged with its policy version)
    policies/v000/            the SFT checkpoint the run started from (version 0)
    policies/vRRR/            the policy after round RRR (it collects round RRR + 1)
    learner/latest/           actor, critic (or progress model), optimisers, counters, the actor's
                              weight average with actor_ema (saved every ckpt_every steps)
    rounds/round_RRR.json     per-round evaluation, rollout and weight statistics
    tb/                       TensorBoard scalars
    summary.json

The boundary between rollouts and learner is the store plus versioned policy directories:
rollout workers only read ``policies/vRRR`` and write tagged episodes; the learner only reads
the store. ``mode="async"`` (Hi-ORS's asynchronous actor/learner) runs both sides at once:
rollout workers collect every round's seeds back to back, each episode with the newest published
policy, while the learner trains on the store as it grows, held to the synchronous budget's
ratio of learner steps per collected episode, and publishes ``policies/vRRR`` at the end of each
round's steps. The policies are evaluated afterwards, as in synchronous rounds. With
``ray_address`` the rollout workers are Ray workers, on any machine: each episode starts with the
newest policy published when a worker takes it, sent through Ray's object store.

Killing the process at any point and re-running the same command resumes: episodes already in
the store are not collected again, training continues from ``learner/latest``, and finished
rounds are skipped.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import re
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt
import torch
from rich.console import Console
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from torch.utils.tensorboard import SummaryWriter

from habc.credit.labels import kind_counts, segment_ids
from habc.envs.expert_phases import ExpertPhases
from habc.envs.registry import (
    TaskSpec,
    check_train_seeds,
    eval_seeds,
    get_task,
    make_env,
    make_expert,
)
from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.episodes.store import EpisodeStore, StoreArrays, open_stores
from habc.errors import ConfigError, StoreError
from habc.evaluation.evaluate import (
    EvalConfig,
    check_fits,
    evaluate,
    format_result,
    pool_results,
)
from habc.learner.online import (
    LearnerConfig,
    OnlineLearner,
    TrainingData,
    imitates_failed_rollouts,
    prepare_data,
    restore_checkpoint,
)
from habc.policy.backend import ChunkPolicy, checkpoint_tasks, load_policy, task_meta
from habc.progress.primitives import (
    GripperStageConfig,
    approach_split,
    check_holding_test,
    debounced_state,
    goal_offset,
    grasp_offset,
    gripper_switches,
    holding,
    midpoint_threshold,
    near_point,
    num_stages_from_demos,
    stages_from_switches,
)
from habc.rollout.actors import PolicyActor, make_policy_env
from habc.rollout.operator import OperatorConfig, SimulatedOperator
from habc.rollout.ray_workers import RayDispatcher, checkpoint_files, ray_map, write_checkpoint
from habc.rollout.runner import run_episode
from habc.rollout.workers import LocalDispatcher, local_map
from habc.weighting.rules import RULES, HabcRule, RecapRule, RejectionRule, WeightingRule

Method = Literal["sft", "dagger", "recap", "habc_v", "habc", "habc_ir", "hiors", "rabc"]
METHODS: tuple[str, ...] = ("sft", "dagger", "recap", "habc_v", "habc", "habc_ir", "hiors",
                            "rabc")


@dataclass(frozen=True)
class OnlineConfig:
    """Online fine-tuning rounds from an SFT checkpoint, with a simulated operator."""

    sft_checkpoint: Path
    """SFT checkpoint directory to start from (e.g. RUN/checkpoints/last)."""
    run_dir: Path
    """Output directory of this online run."""
    method: Method = "habc"
    """Weighting rule / baseline: sft, dagger, recap, habc_v, habc, habc_ir, hiors, rabc."""
    demos: tuple[Path, ...] = ()
    """Demo datasets; default: the datasets recorded in the SFT checkpoint."""
    rounds: int = 3
    """Online rounds to run (in total, counting rounds already done)."""
    mode: Literal["sync", "async"] = "sync"
    """``sync``: collect a round with the last policy, then train on it. ``async`` (Hi-ORS):
    rollouts and training run at once; the learner does at most ``steps_per_round /
    rollouts_per_round`` steps per collected episode, so the budgets stay equal."""
    async_refresh_every: int = 100
    """async: re-read the store for newly collected episodes every this many learner steps."""
    async_max_lag: int = 0
    """async: round r's rollouts start only once policy v(r - 1 - lag) is published. 0: the
    policies are as fresh as in sync rounds, and a round's collection overlaps its training.
    Without a bound, fast simulated rollouts outrun the learner and most come from the SFT
    policy (docs/benchmarks.md)."""
    initial_rounds: int = 3
    """Rounds of the initial phase; habc_ir turns intervention reweighting on after them."""
    rollouts_per_round: int = 20
    """Rollout episodes collected per round (sft collects none)."""
    steps_per_round: int = 1000
    """Learner steps per round."""
    eval_trials: int = 50
    """Evaluation trials per round."""
    eval_seed_offset: int = 0
    """Evaluation seeds are EVAL_SEED_BASE + offset + i. Reported results use 0; tuning runs use
    a disjoint validation block (docs/benchmarks.md uses 100000) so nothing is tuned on the
    reported seeds."""
    workers: int = 2
    """Parallel processes for rollouts and evaluation."""
    ray_address: str | None = None
    """Collect the rollouts on Ray workers instead of local processes (either mode): 'local'
    starts Ray on this machine, 'auto' joins the running cluster, 'ray://HOST:10001' a remote
    one. ``workers`` workers of one CPU each collect the rollouts and run the evaluations."""
    max_steps: int | None = None
    """Episode step limit of rollouts and evaluation; defaults to the task's."""
    video: bool = False
    """Keep the rollouts' camera frames as MP4 videos (LeRobot's ``video`` features) instead of
    PNG images; set when the run's rollout store is created."""
    seed: int = 0
    """Seed of sampling, noise and the operator."""
    rollout_seed_base: int = 10_000
    """Round r uses training seeds rollout_seed_base + (r - 1) * rollouts_per_round + i."""
    ckpt_every: int = 250
    """Save the learner every this many steps (resume point)."""
    log_every: int = 50
    """Write TensorBoard scalars every this many steps."""
    num_threads: int = 1
    """torch CPU threads of the learner (1: other processes share the 2 cores)."""
    operator: OperatorConfig = field(default_factory=OperatorConfig)
    """Simulated operator."""
    learner: LearnerConfig = field(default_factory=LearnerConfig)
    """Learner."""
    habc: HabcRule = field(default_factory=lambda: HabcRule(warmup_steps=500))
    """HABC rule options (habc, habc_ir; habc_v uses them with gate=zero). Sim preset: warm-up
    scaled with the round length (SPEC default 2000 at the paper's 6k steps per round)."""
    recap: RecapRule = field(default_factory=RecapRule)
    """Recap rule options."""
    hiors: RejectionRule = field(default_factory=RejectionRule)
    """Hi-ORS rule options."""
    stages: Literal["expert", "gripper"] = "expert"
    """Stage labels of the progress model (rabc, hiors with a progress reward): the scripted
    expert's phase (SPEC §8), or the gripper's switches, as a robot's demos would give them."""
    gripper: GripperStageConfig = field(default_factory=GripperStageConfig)
    """Gripper stages (``--stages gripper``)."""

    def __post_init__(self) -> None:
        for name in ("rounds", "rollouts_per_round", "steps_per_round", "eval_trials",
                     "workers", "ckpt_every", "log_every", "num_threads",
                     "async_refresh_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be >= 1")
        if self.initial_rounds < 0 or self.eval_seed_offset < 0 or self.async_max_lag < 0:
            raise ConfigError("initial_rounds, eval_seed_offset and async_max_lag must be >= 0")
        last = self.rollout_seed_base + self.rounds * self.rollouts_per_round - 1
        check_train_seeds([self.rollout_seed_base, last])
        if self.mode == "async" and self.method == "sft":
            raise ConfigError("sft collects no rollouts; async mode needs a rollout method")
        if self.mode not in ("sync", "async"):
            raise ConfigError("mode must be 'sync' or 'async'")
        if self.stages not in ("expert", "gripper"):
            raise ConfigError("stages must be 'expert' or 'gripper'")

    def rule(self) -> WeightingRule:
        """The weighting rule of ``method``."""
        if self.method in ("habc", "habc_ir"):
            return self.habc
        if self.method == "habc_v":
            return dataclasses.replace(self.habc, gate="zero")
        if self.method == "recap":
            return self.recap
        if self.method == "hiors":
            return self.hiors
        return RULES[self.method]

    def round_seeds(self, r: int) -> list[int]:
        """Training seeds of round r (1-based)."""
        first = self.rollout_seed_base + (r - 1) * self.rollouts_per_round
        return list(range(first, first + self.rollouts_per_round))


# ---------------------------------------------------------------------------------- rollouts
_WORKER: dict[str, Any] = {}


RolloutItem = tuple[int, str]
"""One rollout to collect: (env seed, task name)."""


def rollout_items(seeds: Sequence[int], tasks: Sequence[str]) -> list[RolloutItem]:
    """The rollouts of a round's ``seeds``: seed i goes to task i mod len(tasks)."""
    return [(s, tasks[i % len(tasks)]) for i, s in enumerate(seeds)]


def _init_rollout_worker(policy_dir: Path, tasks: tuple[str, ...], operator: OperatorConfig,
                         seed: int, max_steps: int | None) -> None:
    """Load the policy, and an environment and a simulated operator for each of ``tasks``."""
    torch.set_num_threads(1)
    policy = load_policy(policy_dir)
    envs, operators = {}, {}
    for task in tasks:
        spec = get_task(task)
        envs[task] = make_policy_env(spec, policy, max_steps=max_steps)
        check_fits(policy, envs[task], policy_dir)
        operators[task] = SimulatedOperator(
            operator, make_expert(spec), np.random.default_rng(seed),
            backoff_action=np.asarray(spec.backoff_action, dtype=np.float32))
    _WORKER.update(envs=envs, policy=policy, seed=seed, operators=operators,
                   version=int(policy.meta["policy_version"]))


def _rollout(item: RolloutItem) -> Episode:
    env_seed, task = item
    env = _WORKER["envs"][task]
    operator: SimulatedOperator = _WORKER["operators"][task]
    operator.rng = np.random.default_rng([_WORKER["seed"], env_seed])
    actor = PolicyActor(_WORKER["policy"], prompt=env.task.prompt, version=_WORKER["version"],
                        generator=torch.Generator().manual_seed(_WORKER["seed"] * 7919 + env_seed))
    return run_episode(env, actor, seed=env_seed, source=EpisodeSource.ROLLOUT,
                       operator=operator)


def newest_policy_version(policies: Path) -> int:
    """Highest ``vRRR`` under ``policies`` (policy saves are atomic renames), -1 if none."""
    versions = [int(m.group(1)) for p in policies.iterdir()
                if (m := re.fullmatch(r"v(\d{3})", p.name)) and p.is_dir()] \
        if policies.exists() else []
    return max(versions, default=-1)


def _init_async_worker(run_dir: Path, tasks: tuple[str, ...], operator: OperatorConfig,
                       seed: int, max_steps: int | None) -> None:
    _init_rollout_worker(_policy_dir(run_dir, 0), tasks, operator, seed, max_steps)
    _WORKER["run_dir"] = run_dir


def _rollout_newest(item: RolloutItem) -> Episode:
    """One rollout with the newest published policy (loaded when a newer one appears)."""
    version = newest_policy_version(Path(_WORKER["run_dir"]) / "policies")
    if version > _WORKER["version"]:
        policy = load_policy(_policy_dir(Path(_WORKER["run_dir"]), version))
        _WORKER.update(policy=policy, version=version)
    return _rollout(item)


def _rollout_published(item: tuple[int, list[Any], RolloutItem]) -> Episode:
    """One rollout on a Ray worker: ``(policy version, [its files' object ref], rollout)``.

    The policy is fetched from Ray's object store only when the version is newer than the
    worker's.
    """
    import ray

    version, (files,), rollout = item
    if version > _WORKER["version"]:
        with tempfile.TemporaryDirectory(prefix="habc-policy-") as tmp:
            policy = load_policy(write_checkpoint(ray.get(files), Path(tmp) / "policy"))
        _WORKER.update(policy=policy, version=version)
    return _rollout(rollout)


@contextmanager
def _async_workers(config: OnlineConfig, tasks: tuple[str, ...]) \
        -> Iterator[Callable[[RolloutItem], Future[Episode]]]:
    """``submit((env seed, task))`` -> the future episode, with the newest published policy.

    Local worker processes read ``policies/`` themselves; Ray workers get the newest version
    when they take the seed (``RayDispatcher``), its files put into the object store once.
    """
    run_dir = Path(config.run_dir)
    args = (tasks, config.operator, config.seed, config.max_steps)
    if config.ray_address is None:
        with LocalDispatcher(config.workers, _init_async_worker, (run_dir, *args),
                             _rollout_newest) as pool:
            yield pool.submit
        return
    import ray

    refs: dict[int, Any] = {}
    lock = threading.Lock()

    def prepare(item: RolloutItem) -> tuple[int, list[Any], RolloutItem]:
        version = newest_policy_version(run_dir / "policies")
        with lock:
            if version not in refs:
                refs[version] = ray.put(checkpoint_files(_policy_dir(run_dir, version)))
        return version, [refs[version]], item

    with RayDispatcher(config.ray_address, config.workers, _policy_dir(run_dir, 0),
                       _init_rollout_worker, args, _rollout_published, prepare) as dispatcher:
        yield dispatcher.submit


def async_allowed_steps(episodes: int, config: OnlineConfig) -> int:
    """Learner steps the async learner may have done once ``episodes`` rollouts are stored.

    The synchronous budget's ratio, ``steps_per_round / rollouts_per_round`` per episode, so
    all of round r's steps need all of rounds 1..r's episodes.
    """
    return episodes * config.steps_per_round // config.rollouts_per_round


def _stored_seeds(store: EpisodeStore) -> set[int]:
    """Seeds of the episodes already in ``store`` (they are not collected again)."""
    return set(store.read().seed.tolist()) if store.num_episodes else set()


def collect_rollouts(store: EpisodeStore, policy_dir: Path, items: list[RolloutItem],
                     config: OnlineConfig, progress: Progress) -> None:
    """Collect the rollouts ``items`` not yet in ``store``, appending each as it finishes.

    One pool of workers serves every task of the items (each worker builds their envs).
    """
    have = _stored_seeds(store)
    todo = [item for item in items if item[0] not in have]
    if not todo:
        return
    bar = progress.add_task("rollouts", total=len(items), completed=len(items) - len(todo),
                            name="rollouts", info="")
    tasks = tuple(dict.fromkeys(task for _, task in todo))
    args = (policy_dir, tasks, config.operator, config.seed, config.max_steps)
    workers = min(config.workers, len(todo))
    if config.ray_address is not None:
        for episode in ray_map(config.ray_address, workers, policy_dir, todo,
                               _init_rollout_worker, args[1:], _rollout):
            store.append([episode])
            progress.advance(bar)
    elif workers == 1:
        _init_rollout_worker(*args)
        for item in todo:
            store.append([_rollout(item)])
            progress.advance(bar)
    else:
        for episode in local_map(workers, todo, _init_rollout_worker, args, _rollout):
            store.append([episode])
            progress.advance(bar)
    progress.remove_task(bar)


def rollout_summary(arrays: StoreArrays, seeds: list[int]) -> dict[str, Any]:
    """Outcome and operator statistics of the rollouts of ``seeds`` among ``arrays``."""
    return episode_summary(arrays.select(np.isin(arrays.seed, seeds)))


def episode_summary(sub: StoreArrays) -> dict[str, Any]:
    """Outcome and operator statistics of a set of rollout episodes."""
    human = sub.controller == Controller.HUMAN
    per_ep = np.add.reduceat(human.astype(np.int64), sub.episode_starts) if sub.num_episodes \
        else np.zeros(0, dtype=np.int64)
    version = np.maximum.reduceat(sub.policy_version, sub.episode_starts) if sub.num_episodes \
        else np.zeros(0, dtype=np.int32)
    versions, counts = np.unique(version, return_counts=True)
    helped = per_ep > 0
    segment = segment_ids(sub.controller, sub.episode_starts)
    takeovers = len(np.unique(segment[human]))
    failed_unhelped = ~sub.success & ~helped
    return {
        "n": int(sub.num_episodes),
        "success_rate": float(sub.success.mean()) if sub.num_episodes else 0.0,
        "autonomous_successes": int(np.sum(sub.success & ~helped)),
        "with_intervention": int(helped.sum()),
        "takeovers": int(takeovers),
        "intervention_successes": int(np.sum(sub.success & helped)),
        "unhelped_failures": int(failed_unhelped.sum()),
        "unstable": int(sub.unstable.sum()) if sub.unstable is not None else 0,
        "operator_steps": int(human.sum()),
        "env_steps": int(sub.num_frames),
        "episodes_by_policy_version": {str(v): int(c) for v, c in zip(versions, counts,
                                                                       strict=True)},
    }


# ----------------------------------------------------------------------------------- rounds
def _policy_dir(run_dir: Path, version: int) -> Path:
    return run_dir / "policies" / f"v{version:03d}"


def write_run_config(run_dir: Path, config: Any) -> None:
    """Write ``config`` (a dataclass with a ``method``) to ``run_dir/config.json``.

    Raises:
        ConfigError: if ``run_dir`` already holds a run of another method.
    """
    path = run_dir / "config.json"
    if path.exists() and (held := json.loads(path.read_text())["method"]) != config.method:
        raise ConfigError(f"{run_dir} holds a {held} run; use another --run-dir")
    run_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(dataclasses.asdict(config), indent=2, default=str))


@dataclass(frozen=True)
class StageLabels:
    """Where the stage labels of rabc's progress model come from."""

    num_stages: tuple[int, ...]
    """K of each task, in the order of the policy's tasks (one entry for a single task)."""
    label: Callable[[StoreArrays, int], npt.NDArray[np.int64]]
    """``label(arrays, start)``: the (N - start,) labels of frames ``start`` to N - 1."""
    source: str
    """Where they come from, in words (for the console and the run's records)."""

    def summary(self) -> dict[str, Any]:
        """A run record's ``stages`` entry: where the labels came from and each task's K."""
        return {"source": self.source, "num_stages": list(self.num_stages)}


def expert_stages(tasks: Sequence[TaskSpec]) -> StageLabels:
    """The phase of each state in the scripted expert of its episode's task (Meta-World)."""
    phases = {task.name: ExpertPhases(task) for task in tasks}

    def label(arrays: StoreArrays, start: int) -> npt.NDArray[np.int64]:
        frame_task = arrays.task[arrays.frame_episode[start:]]
        stages = np.zeros(len(frame_task), dtype=np.int64)
        for name in np.unique(frame_task):
            if str(name) not in phases:
                raise StoreError(f"episodes of task {name} are not among {sorted(phases)}")
            mine = frame_task == name
            stages[mine] = phases[str(name)](arrays.state[start:][mine])
        return stages

    return StageLabels(tuple(p.num_stages for p in phases.values()), label,
                       "the scripted expert's phase")


def stored_stages(num_stages: int, num_tasks: int = 1) -> StageLabels:
    """The stage labels annotated in the stores (``EpisodeStore.create(stage_names=...)``).

    Every task has the same ``num_stages``.
    """

    def label(arrays: StoreArrays, start: int) -> npt.NDArray[np.int64]:
        if arrays.stage is None:
            raise StoreError("a dataset has no stage labels")
        return arrays.stage[start:]

    return StageLabels((num_stages,) * num_tasks, label, "the datasets' annotated stages")


def gripper_stages(demos: StoreArrays, tasks: Sequence[str],
                   config: GripperStageConfig) -> StageLabels:
    """The gripper's switches (``progress.primitives``), thresholds and K from the demos.

    Each task's threshold (unless ``config`` sets one) and K come from its successful demos.
    With ``config.opening_dim``, the switches are those of holding (a settled close on
    something) rather than of the command. With ``config.approach_radius``, the approach splits
    where the hand came within reach of its first grasp (``approach_split``), one more stage;
    with ``config.object_dims`` too, while the hand is within reach of the point on the object
    where the task's demos grasp it (``grasp_offset``, ``near_point``). With
    ``config.goal_radius``, the last stage splits while the carried object is within reach of
    where the task's demos leave it relative to the goal (``goal_offset``), one more stage.

    Raises:
        ConfigError: a gripper dimension outside the actions, an opening, hand, object,
            carried or goal dimension outside the states, a task without a successful demo, with
            ``opening_dim``, a task whose demos' grasps the opening does not tell from closing
            on nothing (``check_holding_test``), or, with ``object_dims``, a task none of whose
            successful demos closes the gripper.
    """
    hand_dims = config.hand_dims if config.approach_radius is not None else ()
    object_dims = config.object_dims or ()
    carried_dims, goal_dims = config.carried_dims or (), config.goal_dims or ()
    for name, dim, kind, width in (("dim", config.dim, "action", demos.action.shape[1]),
                                   ("opening_dim", config.opening_dim, "state",
                                    demos.state.shape[1]),
                                   *((name, d, "state", demos.state.shape[1])
                                     for name, dims in (("hand_dims", hand_dims),
                                                        ("object_dims", object_dims),
                                                        ("carried_dims", carried_dims),
                                                        ("goal_dims", goal_dims))
                                     for d in dims)):
        if dim is not None and not -width <= dim < width:
            raise ConfigError(f"gripper {name} {dim} is outside the {width} {kind} dimensions")

    def switches(arrays: StoreArrays, threshold: float | npt.NDArray[np.floating]) \
            -> npt.NDArray[np.int64]:
        signal = arrays.action[:, config.dim] > threshold
        if config.opening_dim is not None and config.opening_above is not None:
            state = debounced_state(signal, arrays.episode_starts, config.min_run)
            signal = holding(state, arrays.state[:, config.opening_dim],
                             arrays.episode_starts, config.opening_above, config.settle)
        return gripper_switches(signal, arrays.episode_starts, config.min_run)

    def grasps(arrays: StoreArrays, threshold: float | npt.NDArray[np.floating]) \
            -> npt.NDArray[np.int64]:
        return gripper_switches(arrays.action[:, config.dim] > threshold, arrays.episode_starts,
                                config.min_run)

    def position(arrays: StoreArrays, dims: Sequence[int]) -> npt.NDArray[np.floating]:
        """The state's columns ``dims``: (N, len(dims))."""
        return arrays.state[:, list(dims)]

    split = int(config.approach_radius is not None)  # the approach's second part: one stage
    fit = int(config.goal_radius is not None)  # the last stage's second part: one stage
    thresholds, offsets, goal_offsets, num_stages = {}, {}, {}, []
    for task in tasks:
        mine = (demos.task == task) & demos.success
        if not mine.any():
            raise ConfigError(f"no successful demo of {task} to set its gripper stages on")
        one = demos.select(mine)
        thresholds[task] = config.threshold if config.threshold is not None \
            else midpoint_threshold(one.action[:, config.dim])
        if config.opening_dim is not None and config.opening_above is not None:
            check_holding_test(task, debounced_state(one.action[:, config.dim] > thresholds[task],
                                                     one.episode_starts, config.min_run),
                               one.state[:, config.opening_dim], one.episode_starts,
                               config.opening_above, config.settle)
        if object_dims:
            try:
                offsets[task] = grasp_offset(position(one, hand_dims), position(one, object_dims),
                                             grasps(one, thresholds[task]), one.episode_starts)
            except ConfigError as e:
                raise ConfigError(f"{task}: {e} (gripper object_dims)") from e
        if fit:
            goal_offsets[task] = goal_offset(position(one, carried_dims), position(one, goal_dims),
                                             one.episode_ends)
        num_stages.append(num_stages_from_demos(
            switches(one, thresholds[task])[one.episode_ends - 1]) + split + fit)
    k = dict(zip(tasks, num_stages, strict=True))

    def label(arrays: StoreArrays, start: int) -> npt.NDArray[np.int64]:
        if unknown := set(arrays.task.tolist()) - set(tasks):
            raise StoreError(f"episodes of task {sorted(unknown)[0]} are not among "
                             f"{sorted(tasks)}")
        threshold = np.repeat([thresholds[t] for t in arrays.task], arrays.lengths)
        cap = np.repeat([k[t] - split - fit for t in arrays.task], arrays.lengths)
        stages = stages_from_switches(switches(arrays, threshold), cap)
        if object_dims and config.approach_radius is not None:
            offset = np.repeat([offsets[t] for t in arrays.task], arrays.lengths, axis=0)
            near = near_point(position(arrays, hand_dims), position(arrays, object_dims), offset,
                              config.approach_radius)
            stages = np.where(stages > 0, stages + 1, near)  # holding nothing: split by reach
        elif config.approach_radius is not None:
            stages += approach_split(position(arrays, hand_dims), grasps(arrays, threshold),
                                     arrays.episode_starts, config.approach_radius)
        if config.goal_radius is not None:
            offset = np.repeat([goal_offsets[t] for t in arrays.task], arrays.lengths, axis=0)
            placed = near_point(position(arrays, carried_dims), position(arrays, goal_dims), offset,
                                config.goal_radius)
            stages += (stages == cap + split - 1) & placed  # in the last stage, at the goal
        return stages[start:]

    def listed(dims: Sequence[int]) -> str:
        return ", ".join(map(str, dims))

    def per_task(by_task: dict[str, npt.NDArray[np.float64]]) -> str:
        return ", ".join(f"{t} [{', '.join(f'{x:.3g}' for x in by_task[t])}]" for t in tasks)

    described = ", ".join(f"{t} K={k[t]} (closed above {thresholds[t]:.3g})" for t in tasks)
    if config.opening_dim is not None:
        described += (f"; holding: opening (state dim {config.opening_dim}) above "
                      f"{config.opening_above:.3g}, {config.settle} frames after a close")
    if object_dims:
        described += (f"; the approach split {config.approach_radius:.3g} from the demos' grasp "
                      f"point on the object (hand state dims {listed(hand_dims)}, object "
                      f"{listed(object_dims)}; offsets {per_task(offsets)})")
    elif config.approach_radius is not None:
        described += (f"; the approach split {config.approach_radius:.3g} from the first grasp "
                      f"(state dims {listed(hand_dims)})")
    if config.goal_radius is not None:
        described += (f"; the last stage split {config.goal_radius:.3g} from the demos' final "
                      f"place at the goal (object state dims {listed(carried_dims)}, goal "
                      f"{listed(goal_dims)}; offsets {per_task(goal_offsets)})")
    return StageLabels(tuple(num_stages), label, f"the gripper's switches: {described}")


def online_stages(stages: Literal["expert", "gripper"], gripper: GripperStageConfig,
                  demos: Sequence[Path], specs: Sequence[TaskSpec]) -> StageLabels:
    """The stage labels of an online run (``OnlineConfig.stages``) on its demos and tasks."""
    if stages == "gripper":
        return gripper_stages(open_stores(demos), [spec.name for spec in specs], gripper)
    return expert_stages(specs)


class RoundTrainer:
    """The learner side of online rounds: train, save the learner, publish the policy.

    Round r trains on the demos and the rollout stores, saves ``learner/latest`` and publishes
    ``policies/vRRR``. ``habc online`` feeds it the rollouts it collects, ``habc learn`` the
    episodes collected elsewhere. Constructing it publishes the SFT checkpoint as
    ``policies/v000`` (if not yet there) and resumes the learner from ``learner/latest``.
    """

    def __init__(self, config: OnlineConfig, sft: ChunkPolicy, tasks: Sequence[str], *,
                 t_max: int, demos: Sequence[Path], rollouts: Sequence[EpisodeStore],
                 stages: StageLabels | None) -> None:
        """Publish v000, build the learner and resume it.

        ``tasks``: the policy's (one, or a multi-task policy's); ``t_max``: the episode step
        limit; ``stages``: where rabc's stage labels come from.

        Raises:
            ConfigError: for ``learner.task_balance`` with a single-task policy.
        """
        if config.learner.task_balance and len(tasks) < 2:
            raise ConfigError("--learner.task-balance needs a multi-task policy; this one has "
                              f"the one task {tasks[0]}")
        self.config, self.demos, self.rollouts = config, demos, rollouts
        self.task_meta = task_meta(tasks)
        self.run_dir = Path(config.run_dir)
        self.chunk_horizon = sft.config.chunk_horizon
        self.stages = stages
        v0 = _policy_dir(self.run_dir, 0)
        if not v0.exists():
            sft.meta |= {"policy_version": 0}
            sft.save(v0, **sft.meta)
        torch.manual_seed(config.seed)  # critic initialisation: independent of the past
        self.learner = OnlineLearner(
            load_policy(v0), config.rule(), config.learner, t_max=t_max, method=config.method,
            num_stages=stages.num_stages if stages is not None else None)
        self.latest = self.run_dir / "learner" / "latest"
        if restore_checkpoint(self.latest):
            self.learner.load(self.latest)
        self.writer = SummaryWriter(str(self.run_dir / "tb"))
        self._labels = np.zeros(0, dtype=np.int64)  # stages of the frames read so far

    def load_data(self) -> TrainingData:
        """Read the demos and the non-empty rollout stores and label their frames."""
        stores = [*self.demos, *(s.root for s in self.rollouts if s.num_episodes)]
        arrays = open_stores(stores, self.learner.policy.config.cameras)
        if self.stages is not None:  # label only the frames appended since the last read
            self._labels = np.concatenate([self._labels,
                                           self.stages.label(arrays, len(self._labels))])
        c = self.config
        return prepare_data(arrays, horizon=self.chunk_horizon, k=c.learner.advantage_horizon,
                            naive=self.learner.rule.naive_credit,
                            critic_use_demos=c.learner.critic.critic_use_demos,
                            validation_every=c.learner.validation_every,
                            imitate_failed_takeovers=c.learner.imitate_failed_takeovers,
                            imitate_failed_rollouts=imitates_failed_rollouts(self.learner.rule),
                            boundary_margin=c.learner.boundary_margin,
                            stage=self._labels if self.stages is not None else None,
                            prompts=self.learner.policy.prompts,
                            task_balance=c.learner.task_balance)

    def train(self, r: int, supply: DataSupply, progress: Progress) -> dict[str, float]:
        """Train round r (unless done before a stop), save the learner, publish vRRR."""
        learner, config = self.learner, self.config
        stats_path = self.run_dir / "learner" / f"train_stats_{r:03d}.json"
        train_stats: dict[str, float] = {}
        if learner.round < r:
            learner.ir_enabled = config.method == "habc_ir" and r > config.initial_rounds
            train_stats = _train_round(learner, supply, r, config, self.writer, self.latest,
                                       progress, self.task_meta)
            stats_path.parent.mkdir(parents=True, exist_ok=True)
            stats_path.write_text(json.dumps(train_stats, indent=2))
            learner.round = r
            learner.save(self.latest, policy_version=r, round=r, **self.task_meta)
        elif stats_path.exists():  # trained before a stop that came ahead of the record
            train_stats = json.loads(stats_path.read_text())
        if not _policy_dir(self.run_dir, r).exists():
            learner.deployed_policy().save(_policy_dir(self.run_dir, r), **(learner.policy.meta | {
                "policy_version": r, **self.task_meta, "round": r,
                "datasets": [str(d) for d in self.demos]}))
        return train_stats


def run_online(config: OnlineConfig, console: Console | None = None,
               *, show_progress: bool = True) -> dict[str, Any]:
    """Run (or resume) the online rounds; return the summary.

    From a multi-task checkpoint, each round's rollouts go to its tasks in turn (seed i of the
    round to task i mod n) and every task is evaluated on the same seeds; the round record's
    ``eval`` pools them, ``eval_by_task`` and ``rollouts_by_task`` hold each task's.
    """
    console = console or Console()
    torch.set_num_threads(config.num_threads)
    run_dir = Path(config.run_dir)
    sft = load_policy(config.sft_checkpoint)
    specs = [get_task(t) for t in checkpoint_tasks(sft)]
    tasks = tuple(spec.name for spec in specs)
    name = "+".join(tasks)
    demos = config.demos or tuple(Path(d) for d in sft.meta.get("datasets", []))
    if not demos:
        raise ConfigError("no demo dataset: pass --demos (the checkpoint does not record one)")
    write_run_config(run_dir, config)
    rollouts_dir = run_dir / "rollouts"
    size = sft.config.image_size
    store = EpisodeStore.open(rollouts_dir) if (rollouts_dir / "meta/info.json").exists() else \
        EpisodeStore.create(rollouts_dir, state_dim=sft.state_dim, action_dim=sft.action_dim,
                            fps=make_env(specs[0]).fps, robot_type="sawyer",
                            image_shapes=dict.fromkeys(sft.config.cameras, (size, size, 3)),
                            video=config.video)
    stages = None
    if config.rule().critic == "progress":
        stages = online_stages(config.stages, config.gripper, demos, specs)
        console.print(f"progress stages: {stages.source}")
    trainer = RoundTrainer(config, sft, list(tasks),
                           t_max=config.max_steps or max(spec.max_steps for spec in specs),
                           demos=demos, rollouts=[store], stages=stages)
    learner, writer, load_data, train = \
        trainer.learner, trainer.writer, trainer.load_data, trainer.train
    rounds_dir = run_dir / "rounds"
    rounds_dir.mkdir(exist_ok=True)

    def eval_policy(version: int) -> dict[str, dict[str, Any]]:
        """Task name -> the evaluation of policy ``version`` on it."""
        results = {}
        for spec in specs:
            out = f"v{version:03d}.json" if len(specs) == 1 else f"v{version:03d}-{spec.name}.json"
            results[spec.name] = evaluate(EvalConfig(
                checkpoint=_policy_dir(run_dir, version), task=spec.name,
                seeds=tuple(eval_seeds(config.eval_trials, config.eval_seed_offset)),
                workers=config.workers, ray_address=config.ray_address,
                max_steps=config.max_steps, out=run_dir / "eval" / out,
                sample_seed=config.seed), show_progress=show_progress)
        return results

    def eval_record(results: dict[str, dict[str, Any]]) -> dict[str, Any]:
        if len(results) == 1:
            return {"eval": _eval_fields(next(iter(results.values())))}
        return {"eval": pool_results(list(results.values())),
                "eval_by_task": {t: _eval_fields(r) for t, r in results.items()}}

    def describe(results: dict[str, dict[str, Any]], evaluated: dict[str, Any]) -> str:
        """The round's evaluation for the console: pooled first, then each task's."""
        if len(results) == 1:
            return format_result(next(iter(results.values())))
        return "\n  ".join(map(format_result, [evaluated["eval"], *results.values()]))

    identity = {"method": config.method, "task": name} | \
        ({"tasks": list(tasks)} if len(specs) > 1 else {}) | \
        ({"stages": stages.summary()} if stages is not None else {})
    columns = [TextColumn("[bold]{task.fields[name]}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} {task.fields[info]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    records = []
    round0 = rounds_dir / "round_000.json"
    if not round0.exists():
        results = eval_policy(0)
        evaluated = eval_record(results)
        round0.write_text(json.dumps({"round": 0, **identity, **evaluated}, indent=2))
        console.print(f"round 0 (SFT): {describe(results, evaluated)}")
    records.append(json.loads(round0.read_text()))

    async_s: dict[int, float] = {}
    if config.mode == "async" and learner.round < config.rounds:
        with Progress(*columns, disable=not show_progress, console=console) as progress:
            async_s = _run_async(config, store, tasks, load_data, train, learner.round,
                                 progress)

    for r in range(1, config.rounds + 1):
        path = rounds_dir / f"round_{r:03d}.json"
        if path.exists():
            records.append(json.loads(path.read_text()))
            continue
        timing: dict[str, float] = {}
        seeds = config.round_seeds(r) if config.method != "sft" else []
        items = rollout_items(seeds, tasks)
        with Progress(*columns, disable=not show_progress, console=console) as progress:
            start = time.perf_counter()
            if seeds and config.mode == "sync":
                collect_rollouts(store, _policy_dir(run_dir, r - 1), items, config, progress)
            timing["collect_s"] = time.perf_counter() - start
            start = time.perf_counter()
            train_stats = train(r, functools.partial(_whole_round, load_data,
                                                     r * config.steps_per_round), progress)
            timing["train_s"] = time.perf_counter() - start
        if r in async_s:
            timing["collect_and_train_s"] = async_s[r]

        start = time.perf_counter()
        results = eval_policy(r)
        evaluated = eval_record(results)
        timing["eval_s"] = time.perf_counter() - start
        stored = store.read() if seeds else None  # the rollouts, read once for the summaries
        rollouts = rollout_summary(stored, seeds) if stored is not None \
            else {"n": 0, "operator_steps": 0}
        record: dict[str, Any] = {
            "round": r, **identity, "policy_version": r,
            "learner_step": learner.step, "ir_enabled": learner.ir_enabled,
            **evaluated, "rollouts": rollouts, "train": train_stats, "wall_s": timing}
        if len(specs) > 1 and stored is not None:
            record["rollouts_by_task"] = {
                task: rollout_summary(stored, [s for s, t in items if t == task])
                for task in tasks}
        path.write_text(json.dumps(record, indent=2))
        writer.add_scalar("eval/success_rate", record["eval"]["success_rate"], r)
        for t, result in record.get("eval_by_task", {}).items():
            writer.add_scalar(f"eval/{t}/success_rate", result["success_rate"], r)
        unstable = rollouts.get("unstable", 0)
        console.print(f"round {r} ({config.method}): {describe(results, evaluated)}; "
                      f"operator steps {rollouts['operator_steps']}; "
                      + (f"{unstable} rollouts ended in unstable physics; " if unstable else "")
                      + f"{sum(timing.values()):.0f} s")
        records.append(record)
    writer.close()
    summary: dict[str, Any] = {
        **identity, "run_dir": str(run_dir),
        "success_by_round": [rec["eval"]["success_rate"] for rec in records], "rounds": records}
    (run_dir / "summary.json").write_text(json.dumps(summary, indent=2))
    return summary


def _whole_round(load_data: Callable[[], TrainingData], end: int,
                 step: int) -> tuple[TrainingData, int]:
    """Sync mode's data supply: the store as it is, for the whole round."""
    return load_data(), end


def _run_async(config: OnlineConfig, store: EpisodeStore, tasks: tuple[str, ...],
               load_data: Callable[[], TrainingData],
               train: Callable[[int, DataSupply, Progress], dict[str, float]],
               rounds_done: int, progress: Progress) -> dict[int, float]:
    """Collect every round's missing rollouts while training rounds ``rounds_done + 1..``.

    Episodes are appended to the store by this process as workers finish them. Returns the
    wall-clock seconds of each trained round (collection ran alongside).
    """
    have = _stored_seeds(store)
    queue = [(r, item) for r in range(1, config.rounds + 1)
             for item in rollout_items(config.round_seeds(r), tasks) if item[0] not in have]
    bar = progress.add_task("rollouts", total=config.rounds * config.rollouts_per_round,
                            completed=config.rounds * config.rollouts_per_round - len(queue),
                            name="rollouts (async)", info="")
    pending: set[Future[Episode]] = set()
    cache: dict[str, Any] = {}
    policies = Path(config.run_dir) / "policies"

    def submit_ready() -> None:
        """Submit the queued seeds whose round may start under ``async_max_lag``.

        ``submit`` is the workers' (``_async_workers``), bound below before any call.
        """
        published = newest_policy_version(policies)
        while queue and queue[0][0] <= published + 1 + config.async_max_lag:
            pending.add(submit(queue.pop(0)[1]))

    def drain(block: bool) -> None:
        if block:
            wait(pending, return_when=FIRST_COMPLETED)
        for future in [f for f in pending if f.done()]:
            pending.remove(future)
            store.append([future.result()])
            progress.advance(bar)

    def supply(step: int) -> tuple[TrainingData, int]:
        while True:
            submit_ready()
            drain(block=False)
            allowed = async_allowed_steps(store.num_episodes, config)
            if allowed > step:
                if cache.get("episodes") != store.num_episodes:
                    cache.update(episodes=store.num_episodes, data=load_data())
                return cache["data"], min(allowed, step + config.async_refresh_every)
            if not pending:
                raise RuntimeError("async learner has no data left to wait for")
            drain(block=True)

    seconds: dict[int, float] = {}
    with _async_workers(config, tasks) as submit:
        try:
            for r in range(rounds_done + 1, config.rounds + 1):
                start = time.perf_counter()
                train(r, supply, progress)
                seconds[r] = time.perf_counter() - start
            submit_ready()
        except BaseException:
            for future in pending:
                future.cancel()
            raise
        while pending:
            drain(block=True)
    progress.remove_task(bar)
    return seconds


def _eval_fields(result: dict[str, Any]) -> dict[str, Any]:
    keys = ("success_rate", "ci95_low", "ci95_high", "n_trials", "mean_success_length",
            "num_stages", "failures_by_stage", "n_unstable", "out")
    return {k: result[k] for k in keys}


DataSupply = Callable[[int], tuple[TrainingData, int]]
"""Given the learner's step: the data to train on, and the step up to which it may be used
(sync: the whole round; async: as far as the collected episodes allow)."""


def _train_round(learner: OnlineLearner, supply: DataSupply, r: int, config: OnlineConfig,
                 writer: SummaryWriter, latest: Path, progress: Progress,
                 meta: dict[str, Any]) -> dict[str, float]:
    """Run learner steps up to ``r * steps_per_round``; return the round's mean statistics."""
    end = r * config.steps_per_round
    data, limit = supply(learner.step)
    critic_end = end if config.learner.critic_steps_per_round is None \
        else (r - 1) * config.steps_per_round + config.learner.critic_steps_per_round
    rng = np.random.default_rng([config.seed, learner.step])
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + learner.step)
    sums: dict[str, float] = {}
    counts: dict[str, int] = {}
    window: dict[str, list[float]] = {}
    bar = progress.add_task("train", total=config.steps_per_round,
                            completed=config.steps_per_round - (end - learner.step),
                            name=f"round {r} {config.method}", info="")
    learner.policy.train()
    pretrain: dict[str, float] = {}
    if learner.progress is not None and learner.step == end - config.steps_per_round:
        pretrain = learner.pretrain_progress(data, rng)  # not again on a resume mid-round
    while learner.step < end:
        if learner.step >= limit:
            data, limit = supply(learner.step)
            continue
        stats = learner.update(data, rng, generator, train_critic=learner.step < critic_end)
        for key, value in stats.items():
            sums[key] = sums.get(key, 0.0) + value
            counts[key] = counts.get(key, 0) + 1
            window.setdefault(key, []).append(value)
        if learner.step % config.log_every == 0:
            for key, values in window.items():
                writer.add_scalar(key, float(np.mean(values)), learner.step)
            loss = window.get("actor/loss", [float("nan")])
            progress.update(bar, info=f"actor loss {np.mean(loss):.3f}")
            window = {}
        if learner.step % config.ckpt_every == 0 and learner.step < end:
            learner.save(latest, policy_version=r, round=r - 1, **meta)
        progress.advance(bar)
    progress.remove_task(bar)
    learner.policy.eval()
    out = {k: sums[k] / counts[k] for k in sums} | pretrain
    out["skipped_batches"] = sums.get("skipped_batch", 0.0)
    out |= {f"credit/{name}_frames": float(n) for name, n in kind_counts(data.labels.kind).items()}
    heldout: dict[str, float] = {}
    if learner.critic is not None:
        heldout = learner.critic_heldout(data)
    elif learner.progress is not None:
        heldout = learner.progress_heldout(data)
    for key, value in heldout.items():
        writer.add_scalar(key, value, learner.step)
    return out | heldout

