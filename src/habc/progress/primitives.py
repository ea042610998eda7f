"""Stage labels from an action primitive: the gripper's switches (SPEC §8 off the simulator).

SPEC §8 takes sim stages from the scripted expert's phase; a robot's demos have no expert, and
annotating stages by hand is what a stage-aware reward model is meant to spare. The primitive
used here is the gripper: a frame's stage is the number of times the gripper command has
switched between open and closed since its episode began (approach -> grasp and carry ->
release -> ...), capped at ``K - 1``.

Conventions:
- *closed* means the gripper command (one action dimension) is above a threshold. Which side
  is "closed" does not matter: only switches are counted.
- A switch counts once the new state holds for ``min_run`` frames in a row; shorter flickers
  (action noise around the threshold) are ignored. The switch is placed at the first frame of
  the run that confirms it.
- Each episode starts in the state of its first run of ``min_run`` frames; frames before that
  run are stage 0 whatever they show.
- ``K`` is one more than the number of switches most successful demos make (the smaller on a
  tie), so a demo's last stage is ``K - 1``; an episode that switches more often stays in the
  last stage.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from habc.credit.labels import segment_ids
from habc.errors import ConfigError


@dataclass(frozen=True)
class GripperStageConfig:
    """Stage labels from the gripper's switches (``--stages gripper``)."""

    dim: int = -1
    """Action dimension of the gripper command (-1: the last, as in Meta-World and LeRobot's
    arms)."""
    threshold: float | None = None
    """The command is *closed* above this value; default: per task, the midpoint between the
    1st and 99th percentile of the command over its successful demos."""
    min_run: int = 3
    """Frames a new gripper state must hold for its switch to count."""

    def __post_init__(self) -> None:
        if self.min_run < 1:
            raise ConfigError("gripper min_run must be >= 1")


def gripper_switches(closed: npt.NDArray[np.bool_], episode_starts: npt.NDArray[np.int64],
                     min_run: int) -> npt.NDArray[np.int64]:
    """Switches of the gripper since each frame's episode began, debounced.

    Args:
        closed: (N,) whether the gripper command is closed at each frame of the flat episodes.
        episode_starts: (E,) first frame of each episode, ascending.
        min_run: frames a state must hold for a switch into it to count.

    Returns:
        (N,) the number of confirmed switches at or before each frame within its episode.
    """
    if len(closed) == 0:
        return np.zeros(0, dtype=np.int64)
    run = segment_ids(closed.astype(np.int8), episode_starts)
    _, run_start, run_length = np.unique(run, return_index=True, return_counts=True)
    run_episode = np.searchsorted(episode_starts, run_start, side="right") - 1
    long = np.flatnonzero(run_length >= min_run)  # the runs that are states, not flickers
    switch = np.zeros(len(long), dtype=bool)  # a long run that changes the episode's state
    switch[1:] = (closed[run_start[long[1:]]] != closed[run_start[long[:-1]]]) \
        & (run_episode[long[1:]] == run_episode[long[:-1]])
    marks = np.zeros(len(closed), dtype=np.int64)
    marks[run_start[long[switch]]] = 1
    total = np.cumsum(marks)
    before = total[episode_starts] - marks[episode_starts]  # switches of earlier episodes
    lengths = np.diff(np.append(episode_starts, len(closed)))
    return total - np.repeat(before, lengths)


def midpoint_threshold(command: npt.NDArray[np.floating]) -> float:
    """Midpoint between the 1st and 99th percentile of a gripper command (N,) -> scalar."""
    low, high = np.percentile(command, [1, 99])
    return float((low + high) / 2)


def stages_from_switches(switches: npt.NDArray[np.int64],
                         num_stages: int | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Stage of each frame: its switch count (N,) capped at ``K - 1`` (K scalar or (N,)) -> (N,)."""
    return np.minimum(switches, num_stages - 1)


def num_stages_from_demos(final_switches: npt.NDArray[np.int64]) -> int:
    """``K``: 1 + the most common switch count of successful demos (E,) (the smaller on a tie)."""
    if len(final_switches) == 0:
        raise ConfigError("gripper stages need a successful demo to count switches on")
    counts = np.bincount(final_switches)
    return int(np.argmax(counts)) + 1
