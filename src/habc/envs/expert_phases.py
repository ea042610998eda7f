"""Stage labels from the scripted expert's phase (SPEC §8: on sim tasks, stages come from it).

A Meta-World expert picks its next target in ``_desired_pos`` with an ``if/elif`` chain whose
branches are written in task order (above the object, down onto it, grasp, to the goal). The
phase of a state is the index, in source order, of the ``return`` statement that
``_desired_pos`` takes on it; the number of stages is the number of those statements. The
branch taken is read by tracing that one function (``sys.settrace``), so every task's expert
works without a hand-written copy of its conditions. Experts without ``_desired_pos``
(reach, drawer-open) have one stage.
"""

from __future__ import annotations

import ast
import inspect
import sys
import textwrap
from types import FrameType
from typing import Any

import numpy as np
import numpy.typing as npt

from habc.envs.registry import TaskSpec


class ExpertPhases:
    """The scripted expert's phase of raw states: ``phases(states (N, S)) -> (N,) int64``."""

    def __init__(self, task: TaskSpec) -> None:
        from metaworld.policies import ENV_POLICY_MAP

        self.task = task
        policy_cls: Any = ENV_POLICY_MAP[task.env_name]
        self._policy = policy_cls()
        target = getattr(type(self._policy), "_desired_pos", None)
        self._code = target.__code__ if target is not None else None
        self._returns: list[int] = []
        if target is not None:
            tree = ast.parse(textwrap.dedent(inspect.getsource(target)))
            first = self._code.co_firstlineno - 1 if self._code else 0
            self._returns = sorted({node.lineno + first for node in ast.walk(tree)
                                    if isinstance(node, ast.Return)})
        self._hit: list[int] = []

    @property
    def num_stages(self) -> int:
        """K: the number of phases of the expert (1 without a branch chain)."""
        return max(len(self._returns), 1)

    def _global_trace(self, frame: FrameType, event: str, arg: object) -> Any:
        return self._local_trace if frame.f_code is self._code else None

    def _local_trace(self, frame: FrameType, event: str, arg: object) -> Any:
        if event == "return":
            self._hit.append(frame.f_lineno)
        return self._local_trace

    def phase(self, state: npt.NDArray[np.floating]) -> int:
        """Phase index of one raw state (S,)."""
        if self._code is None:
            return 0
        parsed = self._policy._parse_obs(np.asarray(state, dtype=np.float64))
        self._hit.clear()
        previous = sys.gettrace()
        sys.settrace(self._global_trace)
        try:
            self._policy._desired_pos(parsed)
        finally:
            sys.settrace(previous)
        return self._returns.index(self._hit[-1])

    def __call__(self, states: npt.NDArray[np.floating]) -> npt.NDArray[np.int64]:
        """Phase index of each raw state: (N, S) -> (N,)."""
        return np.array([self.phase(s) for s in states], dtype=np.int64)
