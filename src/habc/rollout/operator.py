"""The simulated operator: watches a rollout and takes over the way a person would.

It watches a privileged task-progress signal (``info["progress"]``: Meta-World's shaped reward
scaled to [0, 1], computed from simulator state) smoothed by an EMA, and triggers when

- ``stall``: the best smoothed progress has not improved by ``stall_min_gain`` for
  ``stall_steps`` steps (the robot is stuck or wandering), or
- ``drop``: smoothed progress fell ``drop_threshold`` below its best (e.g. the object was
  knocked away).

Whether it helps at all in an episode is one coin flip with probability ``help_prob`` (people do
not rescue every failure). After ``reaction_delay`` steps it takes over with the scripted
expert (plus ``action_noise``), and either **finishes** the task or **hands control back** once
progress rose ``subgoal_gain`` above its level at the trigger (or after ``max_takeover_steps``),
which leaves a post-intervention policy suffix. Up to ``max_interventions`` per episode.

A scripted expert only knows the way from states it was written for; from the states a failing
policy leaves behind (fingers closed on top of the object, say) it can stall for good. A person
would back off and try again, so during a takeover, when smoothed progress has not risen by
``stall_min_gain`` for ``retry_steps`` steps, the operator executes the task's back-off action
(lift, open the gripper) for ``backoff_steps`` steps and then lets the expert try again. A
hand-back takeover is given time for that (``max_takeover_steps`` > ``retry_steps`` +
``backoff_steps``): with an 80-step limit, 26 of 28 pick-place hand-backs gave a stuck robot back
(docs/benchmarks.md).

``boundary_jitter`` shifts the *logged* takeover boundaries by up to +-j steps (the executed
actions are unchanged), for the noisy-boundary study.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

import numpy as np
import numpy.typing as npt

from habc.credit.labels import segment_ids
from habc.episodes.episode import Controller
from habc.errors import ConfigError


@dataclass(frozen=True)
class OperatorConfig:
    """Simulated operator behaviour."""

    trigger: Literal["stall", "drop", "stall_or_drop"] = "stall_or_drop"
    """What makes the operator step in."""
    help_prob: float = 0.5
    """Probability that the operator is willing to help in a given episode."""
    stall_steps: int = 150
    """Steps without progress gain that count as a stall."""
    stall_min_gain: float = 0.05
    """Gain of the best smoothed progress that counts as progress."""
    drop_threshold: float = 0.45
    """Fall of smoothed progress below its best that counts as a drop."""
    smoothing: float = 0.3
    """EMA rate of the progress smoothing."""
    reaction_delay: int = 5
    """Steps between the trigger and the takeover."""
    finish_prob: float = 0.5
    """Probability that a takeover finishes the task instead of handing control back."""
    subgoal_gain: float = 0.2
    """Hand back once smoothed progress rose this much above its level at the trigger."""
    min_takeover_steps: int = 15
    """A hand-back takeover lasts at least this many steps."""
    max_takeover_steps: int = 200
    """A hand-back takeover lasts at most this many steps. Longer than ``retry_steps`` plus
    ``backoff_steps``, so that a takeover stuck where the expert cannot go on backs off and
    retries before it gives control back (handing a stuck robot back teaches nothing)."""
    max_interventions: int = 2
    """Takeovers per episode at most."""
    retry_steps: int = 100
    """During a takeover, back off and retry after this many steps without progress (0: never;
    needs the task's back-off action)."""
    backoff_steps: int = 10
    """Steps of the back-off action before the expert tries again."""
    action_noise: float = 0.1
    """Std of Gaussian noise on the operator's actions."""
    boundary_jitter: int = 0
    """Shift each logged human-segment boundary by a uniform integer in [-j, j]."""

    def __post_init__(self) -> None:
        for name in ("help_prob", "finish_prob", "smoothing"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ConfigError(f"operator {name} must lie in [0, 1]")
        if min(self.stall_steps, self.min_takeover_steps, self.max_takeover_steps) < 1:
            raise ConfigError("operator step counts must be >= 1")
        if self.min_takeover_steps > self.max_takeover_steps:
            raise ConfigError("min_takeover_steps must be <= max_takeover_steps")
        if min(self.reaction_delay, self.max_interventions, self.boundary_jitter,
               self.retry_steps) < 0 or self.backoff_steps < 1:
            raise ConfigError("reaction_delay, max_interventions, boundary_jitter, retry_steps "
                              "must be >= 0 and backoff_steps >= 1")
        if self.retry_steps and self.retry_steps + self.backoff_steps >= self.max_takeover_steps:
            raise ConfigError("retry_steps + backoff_steps must be < max_takeover_steps, or a "
                              "hand-back takeover gives up before it can back off and retry "
                              "(or set retry_steps 0: never retry)")
        if self.action_noise < 0 or self.stall_min_gain < 0 or self.drop_threshold <= 0:
            raise ConfigError("action_noise, stall_min_gain >= 0 and drop_threshold > 0")


class SimulatedOperator:
    """Stateful operator for one episode at a time (call ``reset`` at each episode start)."""

    def __init__(self, config: OperatorConfig,
                 expert: Callable[[npt.NDArray[np.float64]], npt.NDArray[np.float32]],
                 rng: np.random.Generator,
                 backoff_action: npt.NDArray[np.float32] | None = None) -> None:
        """``backoff_action`` (A,): what the operator executes to back off (None: never)."""
        self.config = config
        self.expert = expert
        self.rng = rng
        self.backoff_action = backoff_action
        self.reset()

    def reset(self) -> None:
        """Start a new episode: draw whether to help, clear the trackers."""
        self.willing = bool(self.rng.random() < self.config.help_prob)
        self.interventions = 0
        self.in_control = False
        self._rearm(0.0)
        self._countdown: int | None = None
        self._finish = False
        self._takeover_steps = 0
        self._trigger_level = 0.0
        self._backoff_left = 0
        self._attempt_best = 0.0
        self._attempt_since = 0

    def _rearm(self, level: float) -> None:
        self._smooth = level
        self._best = level
        self._since_gain = 0

    def observe(self, progress: float) -> None:
        """Take in the progress signal after a step; decide control for the next step."""
        c = self.config
        self._smooth += c.smoothing * (progress - self._smooth)
        if self.in_control:
            self._takeover_steps += 1
            self._track_attempt()
            risen = self._smooth >= self._trigger_level + c.subgoal_gain
            if not self._finish and self._backoff_left == 0 and \
                    self._takeover_steps >= c.min_takeover_steps and (
                    risen or self._takeover_steps >= c.max_takeover_steps):
                self.in_control = False
                self._rearm(self._smooth)
            return
        if self._countdown is not None:
            self._countdown -= 1
            if self._countdown <= 0:
                self._take_over()
            return
        if self._smooth >= self._best + c.stall_min_gain:
            self._best = self._smooth
            self._since_gain = 0
        else:
            self._since_gain += 1
        self._best = max(self._best, self._smooth)
        stalled = self._since_gain >= c.stall_steps
        dropped = self._smooth <= self._best - c.drop_threshold
        fired = (c.trigger != "drop" and stalled) or (c.trigger != "stall" and dropped)
        if fired and self.willing and self.interventions < c.max_interventions:
            if c.reaction_delay == 0:
                self._take_over()
            else:
                self._countdown = c.reaction_delay
        elif fired:
            self._rearm(self._smooth)

    def _track_attempt(self) -> None:
        """During a takeover: count down a back-off, or start one after a stalled attempt."""
        c = self.config
        if self._backoff_left > 0:
            self._backoff_left -= 1
            if self._backoff_left == 0:  # a fresh attempt starts from here
                self._attempt_best, self._attempt_since = self._smooth, 0
        elif self._smooth >= self._attempt_best + c.stall_min_gain:
            self._attempt_best, self._attempt_since = self._smooth, 0
        else:
            self._attempt_since += 1
            if c.retry_steps and self.backoff_action is not None and \
                    self._attempt_since >= c.retry_steps:
                self._backoff_left, self._attempt_since = c.backoff_steps, 0

    @property
    def backing_off(self) -> bool:
        """Whether the operator's next action is a back-off step."""
        return self.in_control and self._backoff_left > 0

    def _take_over(self) -> None:
        self._countdown = None
        self.in_control = True
        self.interventions += 1
        self._takeover_steps = 0
        self._trigger_level = self._smooth
        self._attempt_best, self._attempt_since, self._backoff_left = self._smooth, 0, 0
        self._finish = bool(self.rng.random() < self.config.finish_prob)

    def act(self, raw_state: npt.NDArray[np.float64]) -> npt.NDArray[np.float32]:
        """The operator's action: the expert's, or the back-off action; plus noise."""
        action = np.array(self.backoff_action if self.backing_off and
                          self.backoff_action is not None else self.expert(raw_state),
                          dtype=np.float32)
        if self.config.action_noise > 0:
            noise = self.config.action_noise * self.rng.standard_normal(action.shape)
            action = (action + noise).astype(np.float32)
        return np.clip(action, -1.0, 1.0).astype(np.float32)

    def logged_controllers(self, controller: npt.NDArray[np.int8]) -> npt.NDArray[np.int8]:
        """Controller labels as logged, with boundary jitter applied."""
        return jitter_boundaries(controller, self.config.boundary_jitter, self.rng)


def jitter_boundaries(controller: npt.NDArray[np.int8], jitter: int,
                      rng: np.random.Generator) -> npt.NDArray[np.int8]:
    """Shift each human segment's start and end by uniform integers in [-jitter, jitter].

    Args:
        controller: (T,) controller of one episode.
        jitter: maximum shift j in steps (0 returns a copy).
        rng: random generator.

    Returns:
        (T,) logged controller labels; every segment keeps at least one human step.
    """
    out = controller.copy()
    if jitter == 0:
        return out
    human = (controller == Controller.HUMAN).astype(np.int8)
    edges = np.diff(np.concatenate([[0], human, [0]]))
    starts, ends = np.flatnonzero(edges == 1), np.flatnonzero(edges == -1)
    out[:] = Controller.POLICY
    n = len(controller)
    for s, e in zip(starts, ends, strict=True):
        s2 = int(np.clip(s + rng.integers(-jitter, jitter + 1), 0, n - 1))
        e2 = int(np.clip(e + rng.integers(-jitter, jitter + 1), s2 + 1, n))
        out[s2:e2] = Controller.HUMAN
    return out


@dataclass(frozen=True)
class TakeoverEndings:
    """How takeovers (maximal human segments) ended, counted over a set of episodes."""

    reached: int
    """Handed back after fewer than ``limit`` steps: the sub-goal was reached."""
    hit_limit: int
    """Handed back after ``limit`` steps or more: the operator gave up on the sub-goal."""
    to_end_success: int
    """Ran to the end of an episode that succeeded."""
    to_end_failure: int
    """Ran to the end of an episode that failed: the operator did not finish the task."""
    human_frames: int
    """Human-controlled frames in all takeovers."""
    to_end_failure_frames: int
    """Human frames of the ``to_end_failure`` takeovers (imitated with weight 1 all the same)."""


def takeover_endings(controller: npt.NDArray[np.integer], episode_starts: npt.NDArray[np.int64],
                     episode_ends: npt.NDArray[np.int64], success: npt.NDArray[np.bool_],
                     limit: int) -> TakeoverEndings:
    """Count how the takeovers of stored episodes ended.

    Args:
        controller: (N,) controller per frame.
        episode_starts: (E,) first frame of each episode.
        episode_ends: (E,) one past the last frame of each episode.
        success: (E,) episode outcomes.
        limit: the operator's ``max_takeover_steps`` when the episodes were collected.
    """
    human = np.flatnonzero(controller == Controller.HUMAN)
    _, first, length = np.unique(segment_ids(controller, episode_starts)[human],
                                 return_index=True, return_counts=True)
    start = human[first]
    episode = np.searchsorted(episode_starts, start, side="right") - 1
    to_end = start + length == episode_ends[episode]
    failed_to_end = to_end & ~success[episode]
    return TakeoverEndings(reached=int(np.sum(~to_end & (length < limit))),
                           hit_limit=int(np.sum(~to_end & (length >= limit))),
                           to_end_success=int(np.sum(to_end & success[episode])),
                           to_end_failure=int(np.sum(failed_to_end)),
                           human_frames=int(length.sum()),
                           to_end_failure_frames=int(length[failed_to_end].sum()))
