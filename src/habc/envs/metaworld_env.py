"""Meta-World v3 tasks behind the gymnasium API, with deterministic layouts per seed.

Meta-World 3.1's ``reset(seed=k)`` does not fix the object/goal layout on its own: the layout
("rand_vec") is drawn from a random state the benchmark wrappers manage. Here the layout of seed
``k`` is drawn from the environment's own generator re-seeded with ``k`` at every reset, so a seed
gives the same layout on any env object, whatever ran before.

Observation: ``{"state": (39,) float32}`` with the goal position visible (the MT1 convention),
plus ``image.<camera>``: (H, W, 3) uint8 for each camera the env was built with (see
``habc.envs.cameras``).
``terminated`` is True on success; ``truncated`` is True at the step limit. ``info["success"]``
is the normalised success signal; ``info["progress"]`` is a privileged task-progress signal in
[0, 1] (Meta-World's shaped reward / 10), for the simulated operator only.

When MuJoCo's physics goes unstable (a NaN or huge acceleration), MuJoCo resets the whole scene
to its model defaults and carries on, so the rest of the episode would run in a teleported
world. Here such an episode ends at that step as a failure (``truncated``, ``info["unstable"]``),
keeping the last stable observation, which is what Meta-World's own ``step`` means to do
("penalize for causing instability"); a ``UserWarning`` names the task, seed and step.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import gymnasium as gym
import mujoco
import numpy as np
import numpy.typing as npt

from habc.envs.cameras import CameraRig, image_obs_key
from habc.envs.registry import TaskSpec

warnings.filterwarnings("ignore", message="Constant\\(s\\) may be too high")


def configure_sim(sim: Any, max_steps: int) -> None:
    """Make a Meta-World simulator show the goal and draw layouts from its seeded generator."""
    sim._partially_observable = False  # goal visible in the state, as in MT1
    del sim.sawyer_observation_space  # recompute the cached space for the new observability
    sim._set_task_called = True
    sim._freeze_rand_vec = False
    sim.seeded_rand_vec = True  # layouts come from sim.np_random, seeded at each reset
    sim.max_path_length = max_steps


class MetaWorldTaskEnv(gym.Env[dict[str, npt.NDArray[Any]], npt.NDArray[np.float32]]):
    """One Meta-World task; see the module docstring for the conventions."""

    observation_space: gym.spaces.Dict  # type: ignore[assignment]
    action_space: gym.spaces.Box  # type: ignore[assignment]

    def __init__(self, task: TaskSpec, *, max_steps: int, cameras: Sequence[str] = (),
                 image_size: int = 64) -> None:
        """``cameras``: MuJoCo cameras rendered into every observation, ``image_size`` square."""
        from metaworld.env_dict import ALL_V3_ENVIRONMENTS

        self.task = task
        self.max_steps = max_steps
        sim = ALL_V3_ENVIRONMENTS[task.env_name]()
        configure_sim(sim, max_steps)
        self.sim = sim
        self.cameras = CameraRig(sim.model, cameras, image_size) if cameras else None
        box = sim.sawyer_observation_space
        self.observation_space = gym.spaces.Dict({
            "state": gym.spaces.Box(box.low.astype(np.float32), box.high.astype(np.float32),
                                    dtype=np.float32),
            **{image_obs_key(c): gym.spaces.Box(0, 255, (image_size, image_size, 3), np.uint8)
               for c in cameras}})
        self.action_space = gym.spaces.Box(-1.0, 1.0, shape=(4,), dtype=np.float32)
        self.metadata = {"render_fps": round(1.0 / sim.dt)}
        self._raw: npt.NDArray[np.float64] | None = None
        self._steps = 0
        self._seed = 0
        self._last_obs: dict[str, npt.NDArray[Any]] = {}

    @property
    def fps(self) -> int:
        """Control rate in Hz."""
        return int(self.metadata["render_fps"])

    @property
    def state_dim(self) -> int:
        """Width of the ``state`` observation."""
        return int(self.sim.sawyer_observation_space.shape[0])

    @property
    def action_dim(self) -> int:
        """Width of the action."""
        return int(self.action_space.shape[0])

    @property
    def unstable(self) -> bool:
        """Whether the physics went unstable in this episode (which then ended as a failure)."""
        return int(self.sim.data.warning[mujoco.mjtWarning.mjWARN_BADQACC].number) > 0

    @property
    def raw_state(self) -> npt.NDArray[np.float64]:
        """The simulator's last raw observation (what the scripted expert reads)."""
        if self._raw is None:
            raise RuntimeError("call reset() first")
        return self._raw

    def _obs(self, raw: npt.NDArray[np.float64]) -> dict[str, npt.NDArray[Any]]:
        obs: dict[str, npt.NDArray[Any]] = {"state": raw.astype(np.float32)}
        if self.cameras is not None:
            obs |= self.cameras.render(self.sim.data)
        return obs

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[dict[str, npt.NDArray[Any]], dict[str, Any]]:
        """Reset to the layout of ``seed`` (required: layouts are always explicit here)."""
        if seed is None:
            raise ValueError("MetaWorldTaskEnv.reset needs an explicit seed")
        super().reset(seed=seed)
        self.sim.seed(seed)
        raw, _ = self.sim.reset()  # MuJoCo's reset also clears its warning counters
        self._raw = raw
        self._steps = 0
        self._seed = seed
        self._last_obs = self._obs(raw)
        return self._last_obs, {"success": False, "progress": 0.0}

    def step(
        self, action: npt.NDArray[np.float32]
    ) -> tuple[dict[str, npt.NDArray[Any]], float, bool, bool, dict[str, Any]]:
        """Apply one action (clipped to [-1, 1])."""
        clipped = np.clip(np.asarray(action, dtype=np.float32), -1.0, 1.0)
        raw, reward, _, _, sim_info = self.sim.step(clipped)
        self._steps += 1
        if self.unstable:
            warnings.warn(f"{self.task.name} seed {self._seed}: MuJoCo's physics went unstable "
                          f"at step {self._steps}; the episode ends there as a failure",
                          stacklevel=2)
            return self._last_obs, 0.0, False, True, {
                "success": False, "progress": 0.0, "unstable": True}
        self._raw = raw
        success = bool(sim_info["success"])
        truncated = not success and self._steps >= self.max_steps
        info = {"success": success, "progress": float(np.clip(reward / 10.0, 0.0, 1.0)),
                "unstable": False}
        self._last_obs = self._obs(raw)
        return self._last_obs, float(reward), success, truncated, info

    def close(self) -> None:
        """Release the simulator and the renderer."""
        if self.cameras is not None:
            self.cameras.close()
        self.sim.close()
