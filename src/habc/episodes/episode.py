"""The episode data model of SPEC §1.

Conventions:
- A *step* ``t`` is one control step: the observation ``o_t`` the controller saw, and the action
  ``a_t`` that was actually sent to the robot, whoever produced it.
- ``controller[t]`` says who produced ``a_t``: ``Controller.POLICY`` (0) or ``Controller.HUMAN``
  (1). On a simulated robot the "human" is the simulated operator.
- ``policy_version[t]`` is the checkpoint index of the policy that produced a policy step, and
  ``-1`` for human steps.
- ``success`` is the episode outcome ``y``. Episodes stop on success, so when ``success`` is true
  the last step ``T-1`` is ``T_succ``, the step whose action achieved it. ``done`` (the episode
  ended) is not the same thing as ``success``: a time-out is done and not a success.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from habc.errors import HabcError


class Controller(enum.IntEnum):
    """Who produced an executed action."""

    POLICY = 0
    HUMAN = 1


class EpisodeSource(enum.StrEnum):
    """Why an episode was recorded."""

    DEMO = "demo"  # a teleoperated (here: scripted-expert) demonstration; always a success
    ROLLOUT = "rollout"  # the current policy ran, possibly with human takeovers
    EVAL = "eval"  # an evaluation trial


@dataclass(frozen=True)
class Episode:
    """One recorded episode, as flat per-step arrays.

    Attributes:
        state: (T, S) float32 proprio/state observations ``o_t``.
        action: (T, A) float32 executed actions ``a_t``.
        controller: (T,) int8 ``Controller`` values.
        policy_version: (T,) int32 checkpoint index for policy steps, -1 for human steps.
        success: the episode outcome ``y``.
        source: demo, rollout or eval.
        task: registry name of the task, e.g. ``peg-insert-side``.
        prompt: language task prompt (stored as the LeRobot task string).
        seed: environment seed that fixed the initial layout.
        images: optional camera frames, name -> (T, H, W, 3) uint8.
        stage: optional (T,) int64 stage label of each step (annotated task stages, for the
            stage-aware progress model where no scripted expert gives them).
        unstable: the episode ended because the simulator's physics went unstable (then it is
            a failure, and its last state is the last stable one).
    """

    state: npt.NDArray[np.float32]
    action: npt.NDArray[np.float32]
    controller: npt.NDArray[np.int8]
    policy_version: npt.NDArray[np.int32]
    success: bool
    source: EpisodeSource
    task: str
    prompt: str
    seed: int
    images: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)
    stage: npt.NDArray[np.int64] | None = None
    unstable: bool = False

    def __post_init__(self) -> None:
        n = len(self.state)
        if n == 0:
            raise HabcError("an episode needs at least one step")
        if self.unstable and self.success:
            raise HabcError("an episode that ended in unstable physics is a failure")
        for name in ("action", "controller", "policy_version", "stage"):
            if getattr(self, name) is not None and len(getattr(self, name)) != n:
                raise HabcError(f"episode field {name!r} has {len(getattr(self, name))} steps, "
                                f"state has {n}")

    @property
    def length(self) -> int:
        """Number of steps ``T``."""
        return len(self.state)
