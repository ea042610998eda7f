"""Supervised (SFT) training of the flow-matching policy on demonstration datasets.

The run directory holds ``config.json``, TensorBoard logs in ``tb/``, ``train_log.csv`` and
checkpoints in ``checkpoints/step_XXXXXX`` plus ``checkpoints/last``. A run that was stopped
resumes from ``checkpoints/last`` (model, optimiser and step) when the same command is re-run.
"""

from __future__ import annotations

import dataclasses
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import torch
from rich.progress import BarColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from safetensors.torch import load_file, save_file

from habc.envs.registry import get_task, task_prompt
from habc.episodes.store import StoreArrays, open_stores
from habc.errors import ConfigError, UnknownTaskError
from habc.learner.batches import gather_windows
from habc.learner.optim_state import flatten_optimizer, restore_optimizer
from habc.policy import flow_matching as fm
from habc.policy.backend import ChunkPolicy, load_policy, task_meta
from habc.policy.config import PolicyConfig
from habc.policy.policy import FlowMatchingPolicy

OPTIMIZER_FILE = "optimizer.safetensors"


@dataclass(frozen=True)
class TrainConfig:
    """Supervised flow-matching training (SFT) on one or more episode datasets."""

    datasets: tuple[Path, ...]
    """Episode store directories (LeRobot v3 layout) to train on."""
    run_dir: Path
    """Output directory: checkpoints, TensorBoard logs, train_log.csv."""
    steps: int = 4000
    """Gradient steps."""
    batch_size: int = 256
    """Windows per gradient step."""
    lr: float = 3e-4
    """Peak AdamW learning rate (linear warm-up, then cosine decay to 10%)."""
    lr_warmup_steps: int = 200
    """Linear learning-rate warm-up steps."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    grad_clip: float = 1.0
    """Gradient-norm clip."""
    seed: int = 0
    """Seed for initialisation, window sampling, noise and flow times."""
    ckpt_every: int = 1000
    """Save a checkpoint every this many steps (and at the end)."""
    log_every: int = 50
    """Write scalars every this many steps."""
    num_threads: int = 2
    """torch CPU threads (this machine kind has 2 cores)."""
    policy: PolicyConfig = field(default_factory=PolicyConfig)
    """Policy architecture."""
    init_checkpoint: Path | None = None
    """Fine-tune this checkpoint instead of a new flow-matching policy: any ``ChunkPolicy``
    backend (``habc.policy.backend``), such as the adapter of a pretrained VLA. Its own
    architecture, state normalisation and action bounds are kept; ``--policy.*`` is ignored."""

    def __post_init__(self) -> None:
        if not self.datasets:
            raise ConfigError("give at least one dataset (--datasets DIR ...)")
        for name in ("steps", "batch_size", "ckpt_every", "log_every", "num_threads"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1")
        if self.lr <= 0 or self.lr_warmup_steps < 0 or self.weight_decay < 0 \
                or self.grad_clip <= 0:
            raise ConfigError("lr and grad_clip must be > 0; warm-up and weight decay >= 0")


def lr_at(step: int, config: TrainConfig) -> float:
    """Learning rate at ``step``: linear warm-up then cosine decay to 10% of the peak."""
    if step < config.lr_warmup_steps:
        return config.lr * (step + 1) / config.lr_warmup_steps
    progress = (step - config.lr_warmup_steps) / max(1, config.steps - config.lr_warmup_steps)
    return config.lr * (0.1 + 0.9 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


def dataset_tasks(arrays: StoreArrays) -> list[str]:
    """The task names in ``arrays``, sorted; several make the policy multi-task."""
    return sorted(set(arrays.task.tolist()))


def check_image_size(arrays: StoreArrays, policy: PolicyConfig) -> None:
    """Raise ``ConfigError`` unless every camera's frames are ``image_size`` square."""
    size = (policy.image_size, policy.image_size, 3)
    wrong = {c: f.shape[1:] for c, f in arrays.images.items() if f.shape[1:] != size}
    if wrong:
        raise ConfigError(f"camera frames {wrong} are not the policy's {size}; set "
                          "--policy.image-size to the datasets' size")


def _config_json(config: TrainConfig) -> str:
    return json.dumps(dataclasses.asdict(config), indent=2, default=str)


def action_bounds(tasks: list[str], actions: npt.NDArray[np.float32]) \
        -> tuple[npt.NDArray[np.float32], npt.NDArray[np.float32]]:
    """The action range (A,), (A,) the policy maps to [-1, 1].

    The registry tasks' own bounds (their widest, for several); if any task is not in the
    registry (a robot's), the demos' per-dimension range ``actions`` (N, A), widened to at
    least 1e-3 where a dimension never moves.
    """
    try:
        specs = [get_task(t) for t in tasks]
    except UnknownTaskError:
        low, high = actions.min(0), actions.max(0)
        pad = np.maximum(1e-3 - (high - low), 0.0) / 2
        return (low - pad).astype(np.float32), (high + pad).astype(np.float32)
    dim = specs[0].action_dim
    return (np.full(dim, min(s.action_low for s in specs), dtype=np.float32),
            np.full(dim, max(s.action_high for s in specs), dtype=np.float32))


def train_sft(config: TrainConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Train (or resume training) and return a summary with the final checkpoint path."""
    from torch.utils.tensorboard import SummaryWriter

    torch.set_num_threads(config.num_threads)
    run_dir = Path(config.run_dir)
    ckpt_dir = run_dir / "checkpoints"
    last = ckpt_dir / "last"
    start_step = 0
    policy: ChunkPolicy | None = None
    if last.exists():
        policy = load_policy(last)
        start_step = int(policy.meta.get("step", 0))
        started_from = policy.meta.get("init_checkpoint")
        wanted = None if config.init_checkpoint is None else str(config.init_checkpoint)
        if started_from != wanted:
            raise ConfigError(f"{run_dir} was started from "
                              f"{started_from or 'a new policy'}, not {wanted or 'a new policy'}; "
                              "pass the same --init-checkpoint or use a new --run-dir")
        if wanted is None and policy.config != config.policy:
            raise ConfigError(f"{run_dir} was started with another policy config; use a new "
                              "--run-dir")
    elif config.init_checkpoint is not None:
        policy = load_policy(config.init_checkpoint)
    policy_config = config.policy if policy is None else policy.config
    arrays = open_stores(config.datasets, policy_config.cameras)
    check_image_size(arrays, policy_config)
    tasks = dataset_tasks(arrays)
    if policy is None:
        torch.manual_seed(config.seed)
        prompts = [task_prompt(t) for t in tasks] if len(tasks) > 1 else []
        policy = FlowMatchingPolicy(config.policy, arrays.state.shape[1], arrays.action.shape[1],
                                    meta=task_meta(tasks) | {"policy_version": 0},
                                    prompts=prompts)
        policy.normalizer.fit(arrays.state, *action_bounds(tasks, arrays.action))
    elif start_step == 0:  # a fresh fine-tune of the initial checkpoint
        widths = (arrays.state.shape[1], arrays.action.shape[1])
        if (policy.state_dim, policy.action_dim) != widths:
            raise ConfigError(f"{config.init_checkpoint} takes states of width "
                              f"{policy.state_dim} and actions of width {policy.action_dim}; "
                              f"the datasets have {widths[0]} and {widths[1]}")
        for t in tasks:
            policy.check_prompt(task_prompt(t))
        policy.meta = task_meta(tasks) | {"policy_version": 0,
                                          "init_checkpoint": str(config.init_checkpoint)}
    run_dir.mkdir(parents=True, exist_ok=True)
    (run_dir / "config.json").write_text(_config_json(config))

    optimizer = torch.optim.AdamW(policy.parameters(), lr=config.lr,
                                  weight_decay=config.weight_decay, fused=True)
    if start_step > 0 and (last / OPTIMIZER_FILE).exists():
        restore_optimizer("adamw", optimizer, load_file(str(last / OPTIMIZER_FILE)))
    name = "+".join(tasks)
    summary = task_meta(tasks) | {"checkpoint": str(last), "steps": config.steps,
               "num_episodes": arrays.num_episodes, "num_frames": arrays.num_frames}
    if start_step >= config.steps:
        return summary | {"resumed_from": start_step}

    rng = np.random.default_rng([config.seed, start_step])
    generator = torch.Generator().manual_seed(config.seed * 1_000_003 + start_step)
    writer = SummaryWriter(str(run_dir / "tb"))
    log_path = run_dir / "train_log.csv"
    if start_step == 0 or not log_path.exists():
        log_path.write_text("step,loss,lr,grad_norm,samples_per_s\n")
    else:  # drop rows logged after the checkpoint we resume from
        head, *rows = log_path.read_text().splitlines()
        kept = [r for r in rows if int(r.split(",")[0]) <= start_step]
        log_path.write_text("\n".join([head, *kept]) + "\n")
    policy.train()
    window_start, window_samples, losses = time.perf_counter(), 0, []

    def save(step: int) -> None:
        meta = task_meta(tasks) | {"step": step,
                                   "datasets": [str(d) for d in config.datasets]}
        for target in (ckpt_dir / f"step_{step:06d}", last):
            policy.save(target, **meta)
        save_file(flatten_optimizer("adamw", optimizer), str(last / OPTIMIZER_FILE))

    columns = [TextColumn("[bold]SFT {task.fields[name]}"), BarColumn(),
               TextColumn("{task.completed}/{task.total} loss {task.fields[loss]}"),
               TimeElapsedColumn(), TimeRemainingColumn()]
    with Progress(*columns, disable=not show_progress) as progress:
        bar = progress.add_task("sft", total=config.steps, completed=start_step, name=name,
                                loss="-")
        for step in range(start_step, config.steps):
            lr = lr_at(step, config)
            for group in optimizer.param_groups:
                group["lr"] = lr
            anchors = rng.integers(0, arrays.num_frames, size=config.batch_size)
            batch = gather_windows(arrays, anchors, policy_config.chunk_horizon)
            losses_i = policy.per_sample_loss(batch.obs, batch.actions, batch.valid, generator)
            weights = torch.ones(len(anchors))  # SFT: every demo window has weight 1
            loss = fm.weighted_loss(losses_i, weights, n_valid=len(anchors))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            grad_norm = float(torch.nn.utils.clip_grad_norm_(policy.parameters(),
                                                             config.grad_clip))
            optimizer.step()
            losses.append(loss.item())
            window_samples += len(anchors)
            done = step + 1
            if done % config.log_every == 0 or done == config.steps:
                elapsed = time.perf_counter() - window_start
                rate = window_samples / max(elapsed, 1e-9)
                mean_loss = float(np.mean(losses))
                for name, value in (("train/loss", mean_loss), ("train/lr", lr),
                                    ("train/grad_norm", grad_norm),
                                    ("perf/samples_per_s", rate)):
                    writer.add_scalar(name, value, done)
                with log_path.open("a") as f:
                    f.write(f"{done},{mean_loss:.6f},{lr:.6g},{grad_norm:.4f},{rate:.1f}\n")
                progress.update(bar, loss=f"{mean_loss:.4f}")
                window_start, window_samples, losses = time.perf_counter(), 0, []
            if done % config.ckpt_every == 0 or done == config.steps:
                save(done)
            progress.advance(bar)
    writer.close()
    return summary

