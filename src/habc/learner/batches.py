"""Turn flat episode arrays into training batches of windows (no Python loop over frames)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from habc.envs.registry import task_prompt
from habc.episodes.store import StoreArrays
from habc.episodes.windows import chunk_indices
from habc.policy.backend import Observation


@dataclass(frozen=True)
class WindowBatch:
    """B windows.

    Attributes:
        anchors: (B,) global frame index of each window's anchor step t.
        obs: observations o_t.
        actions: (B, H, A) raw action chunks a_{t:t+H}, padded past the episode end.
        valid: (B, H, A) bool; False on padded chunk steps.
    """

    anchors: npt.NDArray[np.int64]
    obs: Observation
    actions: Tensor
    valid: Tensor


def frames_at(arrays: StoreArrays, idx: npt.NDArray[np.int64]) -> dict[str, Tensor]:
    """Camera -> (len(idx), H, W, 3) uint8 frames at the global frame indices ``idx``."""
    return {c: torch.from_numpy(f[idx]) for c, f in arrays.images.items()}


def gather_windows(arrays: StoreArrays, anchors: npt.NDArray[np.int64],
                   horizon: int) -> WindowBatch:
    """Gather the windows anchored at ``anchors`` (B,) with chunk length ``horizon``.

    Each window's observation carries the prompt of its episode's task.
    """
    idx, valid = chunk_indices(anchors, arrays.episode_ends, arrays.frame_episode, horizon)
    actions = torch.from_numpy(arrays.action[idx])
    mask = torch.from_numpy(valid)[:, :, None].expand_as(actions)
    tasks = arrays.task[arrays.frame_episode[anchors]]
    obs = Observation(state=torch.from_numpy(arrays.state[anchors]),
                      prompt=tuple(task_prompt(str(t)) for t in tasks),
                      images=frames_at(arrays, anchors))
    return WindowBatch(anchors=anchors, obs=obs, actions=actions, valid=mask)
