"""Evaluate a checkpoint on fixed evaluation seeds, trials in parallel processes (SPEC §10)."""

from __future__ import annotations

import json
import os
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from rich.progress import Progress

from habc.envs.expert_phases import ExpertPhases
from habc.envs.metaworld_env import MetaWorldTaskEnv
from habc.envs.registry import check_eval_seeds, eval_seeds, get_task, make_env, make_expert
from habc.episodes.episode import EpisodeSource
from habc.errors import CheckpointError, ConfigError
from habc.evaluation.stats import failures_by_stage, mean_success_length, wilson_interval
from habc.policy.backend import ChunkPolicy, load_policy
from habc.rollout.actors import (
    Actor,
    ExpertActor,
    PolicyActor,
    make_policy_env,
    resolve_exec_horizon,
)
from habc.rollout.ray_workers import ray_map
from habc.rollout.runner import run_episode
from habc.rollout.workers import local_map


@dataclass(frozen=True)
class EvalConfig:
    """Evaluate a policy checkpoint, or the scripted expert, on fixed evaluation seeds."""

    checkpoint: Path | None = None
    """Checkpoint directory (holds model.safetensors and config.json)."""
    task: str | None = None
    """Task to evaluate on; defaults to the task the checkpoint was trained on (a multi-task
    checkpoint needs it: one of its tasks)."""
    expert: bool = False
    """Evaluate the task's scripted expert instead of a checkpoint (needs --task): the reference
    rate of the benchmark targets."""
    expert_noise: float = 0.0
    """Std of Gaussian noise on the expert's actions (with --expert)."""
    num_trials: int = 50
    """Number of trials; they use evaluation seeds EVAL_SEED_BASE + seed_offset + i."""
    seed_offset: int = 0
    """Offset of the evaluation seeds (0: the reported block; the A/Bs validate on 100000)."""
    seeds: tuple[int, ...] = ()
    """Explicit evaluation seeds (overrides num_trials); must be >= EVAL_SEED_BASE."""
    workers: int = 2
    """Parallel worker processes (1 = run in this process)."""
    ray_address: str | None = None
    """Run the trials on Ray workers ('local', 'auto' or 'ray://HOST:10001'; see
    ``habc online --ray-address``) instead of local processes."""
    max_steps: int | None = None
    """Episode step limit; defaults to the task's."""
    out: Path | None = None
    """Result JSON path; defaults to <checkpoint>/eval-<task>.json, or with --expert to
    runs/expert/eval-<task>.json."""
    sample_seed: int = 0
    """Seed of the policy's sampling noise (trial i uses sample_seed + its env seed)."""
    exec_horizon: int | None = None
    """Actions executed from each predicted chunk before the policy predicts again (a deployment
    choice, at most the checkpoint's chunk length); None: the checkpoint's own, as trained."""

    def __post_init__(self) -> None:
        if self.num_trials < 1:
            raise ConfigError("num_trials must be >= 1")
        if self.workers < 1:
            raise ConfigError("workers must be >= 1")
        if self.seed_offset < 0 or (self.seed_offset and self.seeds):
            raise ConfigError("seed_offset must be >= 0, and cannot go with explicit --seeds")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be >= 1")
        if self.expert == (self.checkpoint is not None):
            raise ConfigError("pass either --checkpoint or --expert (with --task)")
        if self.expert and self.task is None:
            raise ConfigError("--expert needs --task")
        if self.expert_noise < 0 or (self.expert_noise > 0 and not self.expert):
            raise ConfigError("expert_noise must be >= 0 and needs --expert")
        if self.exec_horizon is not None and (self.expert or self.exec_horizon < 1):
            raise ConfigError("exec_horizon must be >= 1 and needs --checkpoint")
        check_eval_seeds(self.seeds)

    def seed_list(self) -> list[int]:
        """Return the evaluation seeds to run."""
        return list(self.seeds) if self.seeds else eval_seeds(self.num_trials, self.seed_offset)


def check_fits(policy: ChunkPolicy, env: MetaWorldTaskEnv, checkpoint: Path) -> None:
    """Raise ``CheckpointError`` if the policy does not fit the task.

    Its shapes must be the task's, and a multi-task policy must know the task's prompt.
    """
    state_dim, action_dim = env.state_dim, env.action_dim
    if (policy.state_dim, policy.action_dim) != (state_dim, action_dim):
        raise CheckpointError(
            f"checkpoint {checkpoint} expects state {policy.state_dim}/action {policy.action_dim},"
            f" but task {env.task.name} has state {state_dim}/action {action_dim}")
    policy.check_prompt(env.task.prompt)


_WORKER: dict[str, Any] = {}


def _init_worker(checkpoint: Path | None, task: str, max_steps: int | None, sample_seed: int,
                 expert_noise: float, exec_horizon: int | None) -> None:
    torch.set_num_threads(1)
    _WORKER.update(sample_seed=sample_seed, expert_noise=expert_noise, policy=None,
                   exec_horizon=exec_horizon, phases=ExpertPhases(get_task(task)))
    if checkpoint is None:
        _WORKER["env"] = make_env(get_task(task), max_steps=max_steps)
    else:
        policy = load_policy(checkpoint)
        env = make_policy_env(get_task(task), policy, max_steps=max_steps)
        check_fits(policy, env, checkpoint)
        _WORKER.update(env=env, policy=policy,
                       version=int(policy.meta.get("policy_version", 0)))


def _run_trial(seed: int) -> dict[str, Any]:
    env: MetaWorldTaskEnv = _WORKER["env"]
    actor: Actor
    if _WORKER["policy"] is None:  # the scripted expert; its noise is seeded per trial
        actor = ExpertActor(make_expert(env.task), noise_std=_WORKER["expert_noise"],
                            rng=np.random.default_rng(_WORKER["sample_seed"] + seed))
    else:
        generator = torch.Generator().manual_seed(_WORKER["sample_seed"] + seed)
        actor = PolicyActor(_WORKER["policy"], prompt=env.task.prompt,
                            version=_WORKER["version"], generator=generator,
                            exec_horizon=_WORKER["exec_horizon"])
    start = time.perf_counter()
    episode = run_episode(env, actor, seed=seed, source=EpisodeSource.EVAL)
    wall = time.perf_counter() - start
    stages = _WORKER["phases"](episode.state)
    return {"seed": seed, "success": episode.success, "length": episode.length, "wall_s": wall,
            "stage_last": int(stages[-1]), "stage_furthest": int(stages.max()),
            "unstable": episode.unstable}


def evaluate(config: EvalConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Run the trials, write the result JSON, and return it."""
    meta: dict[str, Any] = {}
    exec_horizon = None
    policy: ChunkPolicy | None = None
    if config.checkpoint is not None:
        policy = load_policy(config.checkpoint)
        meta, exec_horizon = policy.meta, resolve_exec_horizon(policy, config.exec_horizon)
    if config.task is None and "tasks" in meta:
        raise ConfigError(f"{config.checkpoint} is a multi-task policy ({', '.join(meta['tasks'])}"
                          "); pass --task")
    task = get_task(config.task or str(meta.get("task", "")) or "")
    if policy is not None:
        policy.check_prompt(task.prompt)
    seeds = config.seed_list()
    args = (config.checkpoint, task.name, config.max_steps, config.sample_seed,
            config.expert_noise, exec_horizon)
    cores = (os.cpu_count() or 1) if config.ray_address is None else len(seeds)
    workers = min(config.workers, len(seeds), cores)
    start = time.perf_counter()
    rows: list[dict[str, Any]] = []
    with Progress(disable=not show_progress, transient=True) as progress:
        bar = progress.add_task(f"eval {task.name}", total=len(seeds))
        if config.ray_address is not None:
            for row in ray_map(config.ray_address, workers, config.checkpoint, seeds,
                               _init_worker, args[1:], _run_trial):
                rows.append(row)
                progress.advance(bar)
        elif workers == 1:
            _init_worker(*args)
            for seed in seeds:
                rows.append(_run_trial(seed))
                progress.advance(bar)
        else:
            for row in local_map(workers, seeds, _init_worker, args, _run_trial):
                rows.append(row)
                progress.advance(bar)
    rows.sort(key=lambda row: seeds.index(row["seed"]))  # the workers finish in any order
    wall = time.perf_counter() - start
    success = np.array([r["success"] for r in rows], dtype=bool)
    length = np.array([r["length"] for r in rows], dtype=np.int64)
    low, high = wilson_interval(int(success.sum()), len(rows))
    num_stages = ExpertPhases(task).num_stages
    result: dict[str, Any] = {
        "task": task.name,
        "checkpoint": str(config.checkpoint) if config.checkpoint is not None else None,
        "controller": "expert" if config.expert else "policy",
        "expert_noise": config.expert_noise,
        "policy_version": int(meta.get("policy_version", 0)),
        "exec_horizon": exec_horizon,
        "n_trials": len(rows),
        "n_successes": int(success.sum()),
        "success_rate": float(success.mean()),
        "ci95_low": low,
        "ci95_high": high,
        "mean_success_length": mean_success_length(success, length),
        "env_steps": int(length.sum()),
        "n_unstable": sum(r["unstable"] for r in rows),
        "num_stages": num_stages,
        "failures_by_stage": {
            key: failures_by_stage(success, np.array([r[f"stage_{key}"] for r in rows]),
                                   num_stages) for key in STAGE_KEYS},
        "wall_s": wall,
        "workers": workers,
        "trials": [{"seed": r["seed"], "success": bool(r["success"]), "length": int(r["length"]),
                    "stage_furthest": r["stage_furthest"], "stage_last": r["stage_last"],
                    "unstable": r["unstable"]}
                   for r in rows],
    }
    out = config.out or (Path(config.checkpoint) if config.checkpoint is not None
                         else Path("runs/expert")) / f"eval-{task.name}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    result["out"] = str(out)
    return result


def pool_results(results: list[dict[str, Any]]) -> dict[str, Any]:
    """One result over the trials of several (a multi-task policy's tasks).

    The success rate and its Wilson interval are over all trials, and the mean success length
    over all successful ones; ``task`` joins the tasks' names with ``+``.
    """
    trials = [t for r in results for t in r["trials"]]
    success = np.array([t["success"] for t in trials], dtype=bool)
    length = np.array([t["length"] for t in trials], dtype=np.int64)
    low, high = wilson_interval(int(success.sum()), len(trials))
    return {"task": "+".join(r["task"] for r in results), "n_trials": len(trials),
            "n_successes": int(success.sum()), "success_rate": float(success.mean()),
            "ci95_low": low, "ci95_high": high,
            "mean_success_length": mean_success_length(success, length)}


def format_result(result: dict[str, Any]) -> str:
    """One line: success rate with its 95% interval and mean success length."""
    msl = result["mean_success_length"]
    length = f"{msl:.1f}" if msl is not None else "n/a"
    return (f"{result['task']}: success {result['success_rate']:.0%} "
            f"[95% CI {result['ci95_low']:.0%}-{result['ci95_high']:.0%}] over "
            f"{result['n_trials']} trials, mean success length {length} steps")


STAGE_KEYS = ("furthest", "last")
"""The two stages counted per failed trial: the furthest it reached, and the one it ended in."""


def format_stage_counts(counts: list[int]) -> str:
    """Counts per stage as ``0: n0 1: n1 ...``."""
    return " ".join(f"{k}: {n}" for k, n in enumerate(counts))


def format_failures(result: dict[str, Any]) -> str | None:
    """Where the failed trials stopped in the scripted expert's plan; None without failures.

    Stage k is the k-th branch of the expert's plan (``habc.envs.expert_phases``), e.g. on
    pick-place 0 above the puck, 1 down onto it, 2 closing the gripper, 3 carrying it to goal.
    """
    failed = result["n_trials"] - result["n_successes"]
    if not failed or result["num_stages"] < 2:
        return None
    counts = {key: format_stage_counts(result["failures_by_stage"][key]) for key in STAGE_KEYS}
    unstable = result.get("n_unstable", 0)  # results written before session 33 lack the count
    return (f"{failed} failed trials by the scripted expert's stage (0-{result['num_stages'] - 1})"
            f": furthest reached {counts['furthest']}; at the end {counts['last']}"
            + (f"; {unstable} ended when the physics went unstable" if unstable else ""))
