"""Stage labels from an action primitive: the gripper's switches (SPEC §8 off the simulator).

SPEC §8 takes sim stages from the scripted expert's phase; a robot's demos have no expert, and
annotating stages by hand is what a stage-aware reward model is meant to spare. The primitive
used here is the gripper: a frame's stage is the number of times the gripper command has
switched between open and closed since its episode began (approach -> grasp and carry ->
release -> ...), up to ``K - 1``.

Conventions:
- *closed* means the gripper command (one action dimension) is above a threshold. Which side
  is "closed" does not matter: only switches are counted.
- A switch counts once the new state holds for ``min_run`` frames in a row; shorter flickers
  (action noise around the threshold) are ignored. The switch is placed at the first frame of
  the run that confirms it.
- Each episode starts in the state of its first run of ``min_run`` frames; frames before that
  run are stage 0 whatever they show.
- ``K`` is one more than the number of switches most successful demos make (the smaller on a
  tie), so a demo's last stage is ``K - 1``. An episode that switches more often alternates
  between the last two stages (``stages_from_switches``), so its stage keeps the gripper state
  the demos have in it.

The command says "closed" whether or not anything is held, so a missed grasp advances the stage
as a grasp does. With the gripper's opening in the state (``opening_dim``), the switches are
those of *holding* instead: the fingers stopped on an object, i.e. the (debounced) command has
been closed for ``settle`` frames and the opening is still wider than ``opening_above`` (what
the fingers read when closed on nothing is below it). This is the object detection of
industrial grippers (fingers stopped before fully closed), from the state a robot logs anyway.

The gripper does not split the approach: moving over the object and closing in on it are one
stage, whose progress target (the time fraction through it) ranks approaches by how long they
have run rather than by where the hand is. With the hand's position in the state
(``approach_radius``, ``hand_dims``), the approach splits where the hand came within reach of
the place it grasped at (``approach_split``): a place known in hindsight, from the state and the
command, on any arm. With the object's position in the state as well (``object_dims``: a sim's
state, or a pose tracker's), the split is relative to the object instead: a frame that holds
nothing is in the approach's second part while the hand is within reach of the place on the
object where the demos grasp it (``grasp_offset``, ``near_point``), as a scripted
expert's "above the object" test is. With the goal's position in the state too
(``goal_radius``), the last stage splits where the carried object comes within reach of the
place at the goal where the demos leave it (``goal_offset``): the final fit of an insertion,
which the gripper does not mark.
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
    opening_dim: int | None = None
    """State dimension of the gripper's opening (Meta-World: 3). When set, the stages count
    switches of *holding* (see the module) instead of the command's."""
    opening_above: float | None = None
    """With ``opening_dim``: the fingers hold something when their settled opening is above this
    (Meta-World: 0.30 closed on nothing, 0.44 on the puck). Successful demos rarely close on
    nothing, so there is no default; stages fail on a task where most of the demos' settled
    grasps read at or below it (Meta-World's peg-insert-side: 0.30 on the peg)."""
    settle: int = 15
    """With ``opening_dim``: frames the command must have been closed before the opening is read
    (the time the fingers take to close; Meta-World's take 13)."""
    approach_radius: float | None = None
    """When set, the approach splits in two (K grows by one): a frame is past the split once the
    hand has come within this distance of where it was at the command's first switch (the
    grasp; ``approach_split``). Meta-World (x and y, metres): 0.02; its expert's demos on
    pick-place close in from 1.5 cm and move over the puck from 5 cm (medians)."""
    hand_dims: tuple[int, ...] = (0, 1)
    """With ``approach_radius``: the state dimensions of the hand's position that the distance
    is measured in (Meta-World: 0, 1 for x, y; 2 is its height)."""
    object_dims: tuple[int, ...] | None = None
    """With ``approach_radius``: the state dimensions of the object's position, one per hand
    dimension (Meta-World: 4, 5 for the first object's x, y). The split is then relative to the
    object: a frame holding nothing is in the approach's second part while the hand is within
    ``approach_radius`` of the object's position plus the median offset of the hand from it at
    the demos' first close (``near_point``)."""

    goal_radius: float | None = None
    """When set, the last stage splits in two (K grows by one): a frame in it is one stage later
    while the carried object is within this distance of the goal's position plus the median
    offset of the object from the goal at the demos' last frame (``goal_offset``). Needs
    ``carried_dims`` and ``goal_dims``. Meta-World's peg-insert-side (y and z, metres): 0.03,
    its expert's test for a peg level with the hole."""
    carried_dims: tuple[int, ...] | None = None
    """With ``goal_radius``: the state dimensions of the carried object's position
    (Meta-World: 4, 5, 6 for the first object's x, y, z; 5, 6 for y, z)."""
    goal_dims: tuple[int, ...] | None = None
    """With ``goal_radius``: the state dimensions of the goal's position, one per carried
    dimension (Meta-World: 36, 37, 38 for x, y, z)."""

    def __post_init__(self) -> None:
        if self.min_run < 1:
            raise ConfigError("gripper min_run must be >= 1")
        if (self.opening_dim is None) != (self.opening_above is None):
            raise ConfigError("gripper opening_dim and opening_above go together: the opening "
                              "a closed gripper reads on nothing is not in successful demos")
        if self.settle < 0:
            raise ConfigError("gripper settle must be >= 0")
        if self.approach_radius is not None and self.approach_radius <= 0:
            raise ConfigError("gripper approach_radius must be > 0")
        if not self.hand_dims:
            raise ConfigError("gripper hand_dims needs at least one state dimension")
        for name in ("hand_dims", "object_dims", "carried_dims", "goal_dims"):  # JSON lists
            if getattr(self, name) is not None:
                object.__setattr__(self, name, tuple(getattr(self, name)))
        if self.object_dims is not None:
            if len(self.object_dims) != len(self.hand_dims):
                raise ConfigError(f"gripper object_dims needs one dimension per hand dimension "
                                  f"({len(self.hand_dims)}), not {len(self.object_dims)}")
            if self.approach_radius is None:
                raise ConfigError("gripper object_dims needs approach_radius: the reach of "
                                  "the grasp point")
        if self.goal_radius is not None:
            if self.goal_radius <= 0:
                raise ConfigError("gripper goal_radius must be > 0")
            if not self.carried_dims or self.goal_dims is None \
                    or len(self.goal_dims) != len(self.carried_dims):
                raise ConfigError("gripper goal_radius needs carried_dims and goal_dims, one goal "
                                  "dimension per carried dimension")
        elif self.carried_dims is not None or self.goal_dims is not None:
            raise ConfigError("gripper carried_dims and goal_dims need goal_radius: the reach of "
                              "the object's place at the goal")


def debounced_state(closed: npt.NDArray[np.bool_], episode_starts: npt.NDArray[np.int64],
                    min_run: int) -> npt.NDArray[np.bool_]:
    """The gripper state each frame is in, flickers shorter than ``min_run`` ignored.

    Args:
        closed: (N,) whether the gripper is closed at each frame of the flat episodes.
        episode_starts: (E,) first frame of each episode, ascending.
        min_run: frames a state must hold to be entered.

    Returns:
        (N,) the value of the latest run of at least ``min_run`` frames that began at or before
        each frame in its episode; before an episode's first such run, that run's value; False
        (open) throughout an episode without one.
    """
    run = segment_ids(closed.astype(np.int8), episode_starts)  # (N,) run ids 0..R-1
    _, run_start, run_length = np.unique(run, return_index=True, return_counts=True)
    runs = np.arange(len(run_start))
    episode = np.searchsorted(episode_starts, run_start, side="right") - 1  # (R,)
    long = run_length >= min_run  # the runs that are states, not flickers
    before = np.maximum.accumulate(np.where(long, runs, -1))  # latest long run <= r
    after = np.minimum.accumulate(np.where(long, runs, len(runs))[::-1])[::-1]  # first >= r
    has_before = (before >= 0) & (episode[np.maximum(before, 0)] == episode)
    has_after = (after < len(runs)) & (episode[np.minimum(after, len(runs) - 1)] == episode)
    owner = np.where(has_before, before, after)
    value = closed[run_start[np.minimum(owner, len(runs) - 1)]] & (has_before | has_after)
    return value[run]


def gripper_switches(closed: npt.NDArray[np.bool_], episode_starts: npt.NDArray[np.int64],
                     min_run: int) -> npt.NDArray[np.int64]:
    """Switches of the gripper since each frame's episode began, debounced.

    Args:
        closed: (N,) whether the gripper is closed at each frame of the flat episodes.
        episode_starts: (E,) first frame of each episode, ascending.
        min_run: frames a state must hold for a switch into it to count.

    Returns:
        (N,) the number of changes of ``debounced_state`` at or before each frame within its
        episode.
    """
    state = debounced_state(closed, episode_starts, min_run)
    change = np.zeros(len(state), dtype=np.int64)
    change[1:] = state[1:] != state[:-1]
    lengths = np.diff(np.append(episode_starts, len(state)))
    episode = np.repeat(np.arange(len(episode_starts)), lengths)
    change[episode_starts[lengths > 0]] = 0  # a new episode is not a switch
    total = np.cumsum(change)
    return total - total[episode_starts[episode]]


def holding(state: npt.NDArray[np.bool_], opening: npt.NDArray[np.floating],
            episode_starts: npt.NDArray[np.int64], opening_above: float,
            settle: int) -> npt.NDArray[np.bool_]:
    """Whether the fingers hold something: stopped on it, wider apart than on nothing.

    Args:
        state: (N,) the debounced gripper state (``debounced_state``), True when closed.
        opening: (N,) the gripper's opening read from the state.
        episode_starts: (E,) first frame of each episode, ascending.
        opening_above: the opening above which settled fingers hold something.
        settle: frames the state must have been closed before the opening is read.

    Returns:
        (N,) True where the state has been closed for at least ``settle`` frames before this
        one (its position in its run of closed frames, counted from 0, is >= ``settle``) and
        the opening is above ``opening_above``.
    """
    run = segment_ids(state.astype(np.int8), episode_starts)  # (N,) run ids 0..R-1
    _, run_start = np.unique(run, return_index=True)
    position = np.arange(len(state)) - run_start[run]
    return state & (position >= settle) & (opening > opening_above)


def settled_openings(state: npt.NDArray[np.bool_], opening: npt.NDArray[np.floating],
                     episode_starts: npt.NDArray[np.int64],
                     settle: int) -> npt.NDArray[np.floating]:
    """The opening at the frames where the fingers have settled closed, whatever they hold.

    state: (N,) the debounced gripper state, True when closed; opening: (N,); episode_starts:
    (E,) ascending -> (M,) ``opening`` at the frames ``holding`` reads (closed for at least
    ``settle`` frames before), in order. On successful demos these are grasps, so they show
    whether ``opening_above`` tells a grasp from closing on nothing.
    """
    return opening[holding(state, opening, episode_starts, -np.inf, settle)]


def check_holding_test(task: str, state: npt.NDArray[np.bool_], opening: npt.NDArray[np.floating],
                       episode_starts: npt.NDArray[np.int64], opening_above: float,
                       settle: int) -> None:
    """Fail unless most of a task's settled demo grasps read as holding (``opening_above``).

    Successful demos rarely close on nothing, so where their fingers have settled closed they
    hold the object. If half or more of those frames read at or below ``opening_above``, the
    opening cannot tell this task's grasps from closing on nothing (Meta-World's
    peg-insert-side: 0.30 on the peg, as on nothing), and holding would switch only while the
    fingers close. ``state`` (N,) is the demos' debounced gripper state, ``opening`` (N,).

    Raises:
        ConfigError: as above, naming the task and the grasps' median opening.
    """
    openings = settled_openings(state, opening, episode_starts, settle)
    share = float(np.mean(openings > opening_above)) if len(openings) else 1.0
    if share < 0.5:
        raise ConfigError(
            f"{task}: the demos' settled grasps read an opening of {np.median(openings):.3g} "
            f"(median), and only {share:.0%} of them above opening_above {opening_above:.3g}, "
            f"so the opening cannot tell this task's grasps from closing on nothing; drop "
            f"opening_dim to count the command's switches, or set opening_above below the "
            f"grasps' opening")


def first_switches(switches: npt.NDArray[np.int64],
                   episode_starts: npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """The frame of each episode's first gripper switch (its first grasp, from open).

    switches: (N,) ``gripper_switches``; episode_starts: (E,) ascending -> (E,) the flat frame
    index, -1 for an episode whose gripper never switches.
    """
    ends = np.append(episode_starts[1:], len(switches))
    first = np.full(len(episode_starts), -1, dtype=np.int64)
    for e, (start, end) in enumerate(zip(episode_starts, ends, strict=True)):
        switched = np.flatnonzero(switches[start:end] > 0)
        if len(switched):
            first[e] = start + switched[0]
    return first


def approach_split(position: npt.NDArray[np.floating], switches: npt.NDArray[np.int64],
                   episode_starts: npt.NDArray[np.int64], radius: float) -> npt.NDArray[np.int64]:
    """Whether the hand has come within reach of its episode's first grasp: 1 from then on.

    The approach to a grasp has two parts that the gripper does not tell apart: moving over the
    object, then closing in on it (Meta-World's expert: "above the puck", "down onto it"). The
    place of the grasp is known in hindsight, from where the hand was when the gripper first
    switched; the second part starts when the hand entered, for the last time before that
    switch, the ball of ``radius`` around that place.

    Args:
        position: (N, D) the hand's position (some state dimensions: x and y, say).
        switches: (N,) the gripper's switches since each frame's episode began
            (``gripper_switches`` of the command).
        episode_starts: (E,) first frame of each episode, ascending.
        radius: the ball's radius, in ``position``'s units.

    Returns:
        (N,) 1 from the frame the hand entered the ball to the episode's end, 0 before it and
        throughout an episode whose gripper never switches.
    """
    near = np.zeros(len(switches), dtype=np.int64)
    ends = np.append(episode_starts[1:], len(switches))
    for start, end, grasp in zip(episode_starts, ends, first_switches(switches, episode_starts),
                                 strict=True):
        if grasp < 0:
            continue
        away = np.linalg.norm(position[start:grasp + 1] - position[grasp], axis=1) > radius
        outside = np.flatnonzero(away)
        near[start + (outside[-1] + 1 if len(outside) else 0):end] = 1
    return near


def grasp_offset(hand: npt.NDArray[np.floating], target: npt.NDArray[np.floating],
                 switches: npt.NDArray[np.int64],
                 episode_starts: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Where on the object episodes grasp it: the median offset of the hand from the object.

    Args:
        hand: (N, D) the hand's position.
        target: (N, D) the object's position, in the same dimensions.
        switches: (N,) the gripper's switches since each frame's episode began.
        episode_starts: (E,) first frame of each episode, ascending.

    Returns:
        (D,) the per-dimension median, over the episodes whose gripper switches, of
        ``hand - target`` at the episode's first switch.

    Raises:
        ConfigError: no episode's gripper switches.
    """
    first = first_switches(switches, episode_starts)
    first = first[first >= 0]
    if len(first) == 0:
        raise ConfigError("no demo closes its gripper, so none shows where the object is "
                          "grasped")
    return np.median(hand[first] - target[first], axis=0)


def near_point(position: npt.NDArray[np.floating], target: npt.NDArray[np.floating],
               offset: npt.NDArray[np.floating], radius: float) -> npt.NDArray[np.bool_]:
    """Whether ``position`` is within ``radius`` of the point ``target + offset``.

    The hand of the grasp point (``grasp_offset``), or the carried object of its place at the
    goal (``goal_offset``). position, target: (N, D); offset: (D,) or (N, D) -> (N,).
    """
    return np.linalg.norm(position - (target + offset), axis=1) <= radius


def goal_offset(carried: npt.NDArray[np.floating], goal: npt.NDArray[np.floating],
                episode_ends: npt.NDArray[np.int64]) -> npt.NDArray[np.float64]:
    """Where the task leaves the object relative to its goal: the median final offset.

    Args:
        carried: (N, D) the carried object's position.
        goal: (N, D) the goal's position, in the same dimensions.
        episode_ends: (E,) one past each episode's last frame, ascending; E >= 1.

    Returns:
        (D,) the per-dimension median, over the episodes, of ``carried - goal`` at each
        episode's last frame (successful demos: where the object ends up when the task is done).
    """
    last = episode_ends - 1
    return np.median(carried[last] - goal[last], axis=0)


def midpoint_threshold(command: npt.NDArray[np.floating]) -> float:
    """Midpoint between the 1st and 99th percentile of a gripper command (N,) -> scalar."""
    low, high = np.percentile(command, [1, 99])
    return float((low + high) / 2)


def stages_from_switches(switches: npt.NDArray[np.int64],
                         num_stages: int | npt.NDArray[np.int64]) -> npt.NDArray[np.int64]:
    """Stage of each frame from its switch count (N,) and ``K`` (scalar or (N,)) -> (N,).

    Counts up to ``K - 1`` are the stage. Past it (more switches than the demos make: a grasp
    lost and retried), the stage alternates between ``K - 1`` and ``K - 2``, so that the
    gripper is always in the state the demos have in that stage: a dropped object sends a
    pick back to its approach stage, and the regrasp to its carry stage.
    """
    over = np.maximum(switches - (num_stages - 1), 0)
    return np.maximum(np.minimum(switches, num_stages - 1) - over % 2, 0)


def num_stages_from_demos(final_switches: npt.NDArray[np.int64]) -> int:
    """``K``: 1 + the most common switch count of successful demos (E,) (the smaller on a tie)."""
    if len(final_switches) == 0:
        raise ConfigError("gripper stages need a successful demo to count switches on")
    counts = np.bincount(final_switches)
    return int(np.argmax(counts)) + 1
