"""Task registry: every Meta-World v3 task, its scripted expert, step limit and seed scheme.

Seed scheme: a seed fixes the initial object/goal layout of an episode. Training seeds (demos,
rollouts) are ``0 <= seed < EVAL_SEED_BASE``; evaluation seeds are ``EVAL_SEED_BASE + i``. The
two ranges never overlap, and the helpers below refuse seeds from the wrong range.
"""

from __future__ import annotations

import difflib
import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from habc.errors import ConfigError, UnknownTaskError

if TYPE_CHECKING:
    from habc.envs.metaworld_env import MetaWorldTaskEnv

EVAL_SEED_BASE = 1_000_000
"""First evaluation seed. Training seeds lie below it, evaluation seeds at or above it."""

DEFAULT_MAX_STEPS = 500
"""Meta-World's own episode step limit (``max_path_length``)."""


@dataclass(frozen=True)
class TaskSpec:
    """One task of the registry.

    Attributes:
        name: registry name, e.g. ``peg-insert-side``.
        env_name: the simulator's own name, e.g. ``peg-insert-side-v3``.
        prompt: language task prompt stored with every episode.
        max_steps: episode step limit (time-out).
        state_dim: width of the ``state`` observation.
        action_dim: width of the action.
        action_low: lower action bound (every dimension).
        action_high: upper action bound (every dimension).
        backoff_action: what the simulated operator executes to back off before it retries
            (Meta-World: move the hand up, open the gripper).
    """

    name: str
    env_name: str
    prompt: str
    max_steps: int
    state_dim: int = 39
    action_dim: int = 4
    action_low: float = -1.0
    action_high: float = 1.0
    backoff_action: tuple[float, ...] = (0.0, 0.0, 1.0, -1.0)


@functools.cache
def _metaworld_names() -> tuple[str, ...]:
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    return tuple(sorted(n.removesuffix("-v3") for n in ALL_V3_ENVIRONMENTS))


def task_prompt(task: str) -> str:
    """The language prompt of a task name: ``pick-place`` -> ``pick place``.

    Episodes store it as their LeRobot task string, and a multi-task policy is conditioned on
    it. A name that is already a sentence (a dataset recorded elsewhere) is its own prompt.
    """
    return task.replace("-", " ")


def list_tasks() -> list[str]:
    """All registry task names."""
    return list(_metaworld_names())


def get_task(name: str) -> TaskSpec:
    """Look a task up by name (with or without the ``-v3`` suffix).

    Raises:
        UnknownTaskError: with the closest names, when ``name`` is not a task.
    """
    short = name.strip().lower().removesuffix("-v3")
    names = _metaworld_names()
    if short not in names:
        close = difflib.get_close_matches(short, names, n=3, cutoff=0.5)
        hint = f"; did you mean {', '.join(close)}?" if close else \
            " (run `habc tasks` for the list)"
        raise UnknownTaskError(f"unknown task {name!r}{hint}")
    return TaskSpec(name=short, env_name=f"{short}-v3", prompt=task_prompt(short),
                    max_steps=DEFAULT_MAX_STEPS)


def train_seeds(start: int, count: int) -> list[int]:
    """``count`` consecutive training seeds from ``start``; refuses the evaluation range."""
    seeds = list(range(start, start + count))
    check_train_seeds(seeds)
    return seeds


def eval_seeds(count: int, offset: int = 0) -> list[int]:
    """``count`` evaluation seeds, ``EVAL_SEED_BASE + offset + i``."""
    if count < 1 or offset < 0:
        raise ConfigError("need count >= 1 and offset >= 0 for evaluation seeds")
    return [EVAL_SEED_BASE + offset + i for i in range(count)]


def check_train_seeds(seeds: Sequence[int]) -> None:
    """Raise ``ConfigError`` if any seed is negative or in the evaluation range."""
    bad = [s for s in seeds if not 0 <= s < EVAL_SEED_BASE]
    if bad:
        raise ConfigError(f"training seeds must lie in [0, {EVAL_SEED_BASE}); got {bad[:5]}")


def check_eval_seeds(seeds: Sequence[int]) -> None:
    """Raise ``ConfigError`` if any seed is in the training range."""
    bad = [s for s in seeds if s < EVAL_SEED_BASE]
    if bad:
        raise ConfigError(f"evaluation seeds must be >= {EVAL_SEED_BASE} so they never overlap "
                          f"training seeds; got {bad[:5]}")


def make_env(task: TaskSpec, *, max_steps: int | None = None, cameras: Sequence[str] = (),
             image_size: int = 64) -> MetaWorldTaskEnv:
    """Build the gymnasium environment of ``task``. Reuse it: construction costs ~0.2-0.6 s.

    ``cameras``: cameras rendered into every observation as ``image.<camera>``
    (``image_size`` square); rendering costs about 13 ms per 64x64 frame on this CPU.
    """
    from habc.envs.metaworld_env import MetaWorldTaskEnv

    return MetaWorldTaskEnv(task, max_steps=max_steps or task.max_steps, cameras=cameras,
                            image_size=image_size)


def make_expert(task: TaskSpec) -> Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float32]]:
    """Build the scripted expert of ``task``: raw simulator state (39,) -> action (4,)."""
    from metaworld.policies import ENV_POLICY_MAP

    policy_cls: Any = ENV_POLICY_MAP[task.env_name]
    policy = policy_cls()
    act: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float32]] = policy.get_action
    return act

