"""Ground-truth progress and the dense reward of SPEC §8, as pure functions.

A frame's *stage* ``k`` (0-based, ``K`` stages) comes from a stage labeller (on sim tasks, the
scripted expert's phase). Within a maximal run of one stage inside an episode, frames
``s..e`` (inclusive) get the within-stage progress ``(t - s) / (e - s + 1)`` in [0, 1). The
dense progress is ``p_t = (k + within_t) / K`` in [0, 1), and the dense reward is
``r_t = p_{t+1} - p_t``. Stages may repeat within an episode (an expert that loses its grip
goes back a phase); each run is its own segment, so progress goes back with it.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
import torch
from torch import Tensor

from habc.credit.labels import segment_ids


def within_stage_progress(stage: npt.NDArray[np.integer],
                          episode_starts: npt.NDArray[np.int64]) -> npt.NDArray[np.float32]:
    """Within-stage progress of every frame.

    Args:
        stage: (N,) stage index of each frame of the flat episode arrays.
        episode_starts: (E,) first frame of each episode (a run never crosses one).

    Returns:
        (N,) ``(t - s) / (e - s + 1)`` where ``s..e`` is the frame's run of one stage.
    """
    run = segment_ids(stage, episode_starts)
    _, run_start, run_length = np.unique(run, return_index=True, return_counts=True)
    offset = np.arange(len(stage)) - run_start[run]
    return (offset / run_length[run]).astype(np.float32)


def dense_progress(stage: Tensor | npt.NDArray[np.integer],
                   within: Tensor | npt.NDArray[np.floating], num_stages: int | Tensor) -> Tensor:
    """``p = (stage + within) / K``: stage (B,), within (B,) in [0, 1], K scalar or (B,) -> (B,)."""
    return (torch.as_tensor(stage).float() + torch.as_tensor(within).float()) / num_stages


def chunk_progress_weight(p_start: Tensor, p_end: Tensor) -> Tensor:
    """Pre-normalisation weight of ``rabc``: the progress over a chunk, clipped to [0, 1].

    The chunk's progress is the sum of SPEC's dense rewards ``r_t = p_{t+1} - p_t`` over its
    steps, which telescopes to ``p_end - p_start``.

    p_start: (B,) progress at the chunk's first step; p_end: (B,) at its last -> (B,).
    """
    return (p_end - p_start).clamp(0.0, 1.0)


def progress_mse(predicted: Tensor, target: Tensor) -> float:
    """Quality metric of a progress model: mean squared error (B,) x (B,) -> scalar."""
    return float(((predicted - target) ** 2).mean())
