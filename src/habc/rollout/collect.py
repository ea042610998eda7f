"""Collect scripted-expert demonstrations into an episode store."""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from rich.progress import Progress

from habc.envs.registry import check_train_seeds, get_task, make_env, make_expert
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError, HabcError
from habc.rollout.actors import ExpertActor
from habc.rollout.runner import run_episode


@dataclass(frozen=True)
class CollectConfig:
    """Collect successful scripted-expert demonstrations (failed attempts are discarded)."""

    task: str
    """Task name, e.g. peg-insert-side (see `habc tasks`)."""
    out: Path
    """Dataset directory (LeRobot v3 layout); appended to if it exists."""
    num_episodes: int = 10
    """Number of successful demos to add."""
    seed_start: int = 0
    """First training seed to try; seeds go up by one per attempt."""
    max_seed: int = 100_000
    """Stop with an error if no more seeds are left below this bound."""
    max_failures_in_a_row: int = 50
    """Stop with an error after this many failed attempts in a row (a step limit too short for
    the task, say, or action noise the expert cannot recover from)."""
    action_noise: float = 0.0
    """Std of Gaussian noise added to the expert's actions (demos still must succeed)."""
    max_steps: int | None = None
    """Episode step limit; defaults to the task's."""
    noise_seed: int = 0
    """Seed of the action-noise generator."""
    cameras: tuple[str, ...] = ()
    """Cameras recorded with every step (e.g. corner2), as LeRobot image features."""
    image_size: int = 64
    """Height and width of the recorded camera frames."""
    video: bool = False
    """Keep the camera frames as MP4 videos (LeRobot's ``video`` features, AV1) instead of PNG
    images; a new dataset only (an existing one keeps its own format)."""

    def __post_init__(self) -> None:
        if self.num_episodes < 1:
            raise ConfigError("num_episodes must be >= 1")
        if self.action_noise < 0:
            raise ConfigError("action_noise must be >= 0")
        if self.max_steps is not None and self.max_steps < 1:
            raise ConfigError("max_steps must be >= 1")
        if self.max_failures_in_a_row < 1:
            raise ConfigError("max_failures_in_a_row must be >= 1")
        check_train_seeds([self.seed_start, self.max_seed - 1])


def collect_demos(config: CollectConfig, *, show_progress: bool = True) -> dict[str, Any]:
    """Run the expert on consecutive training seeds until enough demos succeeded."""
    task = get_task(config.task)
    out = Path(config.out)
    size = (config.image_size, config.image_size, 3)
    env = make_env(task, max_steps=config.max_steps, cameras=config.cameras,
                   image_size=config.image_size)
    if (out / "meta" / "info.json").exists():
        store = EpisodeStore.open(out)
        if (held := store.image_shapes) != dict.fromkeys(config.cameras, size):
            raise ConfigError(f"{out} keeps camera frames {held or 'none'}; this call would "
                              f"record {dict.fromkeys(config.cameras, size) or 'none'}")
        used = set(store.read().seed.tolist()) if store.num_episodes else set()
    else:
        store = EpisodeStore.create(out, state_dim=task.state_dim, action_dim=task.action_dim,
                                    fps=env.fps, robot_type="sawyer",
                                    image_shapes=dict.fromkeys(config.cameras, size),
                                    video=config.video)
        used = set()
    actor = ExpertActor(make_expert(task), noise_std=config.action_noise,
                        rng=np.random.default_rng(config.noise_seed))
    kept, discarded, in_a_row, seed = 0, 0, 0, config.seed_start
    start = time.perf_counter()
    with Progress(disable=not show_progress, transient=True) as progress:
        bar = progress.add_task(f"demos {task.name}", total=config.num_episodes)
        try:
            while kept < config.num_episodes:
                if seed >= config.max_seed:
                    raise ConfigError(f"ran out of seeds below {config.max_seed} after {kept} "
                                      "demos")
                if seed in used:
                    seed += 1
                    continue
                episode = run_episode(env, actor, seed=seed, source=EpisodeSource.DEMO)
                seed += 1
                if not episode.success:
                    discarded += 1
                    in_a_row += 1
                    if in_a_row >= config.max_failures_in_a_row:
                        raise HabcError(
                            f"the scripted expert failed {in_a_row} {task.name} episodes in a "
                            f"row (after {kept} demos; step limit {env.max_steps}, action "
                            f"noise {config.action_noise}); raise max_steps or lower "
                            "action_noise")
                    continue
                in_a_row = 0
                store.append([episode])
                kept += 1
                progress.advance(bar)
        finally:
            env.close()
    return {"task": task.name, "out": str(out), "kept": kept, "discarded": discarded,
            "total_episodes": store.num_episodes, "wall_s": time.perf_counter() - start}
