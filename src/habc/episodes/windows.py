"""Training windows as pure index functions over flat episode arrays (SPEC §1).

A window anchored at global frame ``t`` holds ``o_t`` and the action chunk ``a_{t:t+H}``. Chunk
steps past the end of ``t``'s episode are padded by repeating the episode's last frame and
flagged in ``pad_mask`` so that losses can leave them out.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt


def chunk_indices(
    anchors: npt.NDArray[np.int64],
    episode_ends: npt.NDArray[np.int64],
    frame_episode: npt.NDArray[np.int64],
    horizon: int,
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.bool_]]:
    """Frame indices of the action chunk of each anchor, and which of them are real.

    Args:
        anchors: (B,) global frame indices ``t``.
        episode_ends: (E,) exclusive end frame of each episode.
        frame_episode: (N,) episode position of each frame.
        horizon: chunk length ``H``.

    Returns:
        indices: (B, H) frame indices ``t + j``, clipped to the last frame of ``t``'s episode.
        valid: (B, H) True where ``t + j`` is inside the episode (False = padding).
    """
    raw = anchors[:, None] + np.arange(horizon, dtype=np.int64)[None, :]
    end = episode_ends[frame_episode[anchors]][:, None]
    valid = raw < end
    return np.minimum(raw, end - 1), valid
