"""Rollout animations: replay an episode's layout and actions with MuJoCo offscreen (CPU).

Rendering uses the GL backend named by ``MUJOCO_GL`` (the CLI defaults it to ``osmesa``,
Debian's libosmesa6, before anything imports MuJoCo) with shadows and offscreen anti-aliasing
switched off, which makes CPU rendering about 10x faster.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt

from habc.envs.metaworld_env import configure_sim
from habc.envs.registry import TaskSpec
from habc.episodes.episode import Controller


def render_replay(task: TaskSpec, seed: int, actions: npt.NDArray[np.float32],
                  controller: npt.NDArray[np.int8], *, width: int = 160, height: int = 120,
                  every: int = 4) -> list[npt.NDArray[np.uint8]]:
    """Replay ``actions`` (T, A) from ``seed``'s layout; return every ``every``-th frame.

    Human-controlled frames get a red border so that takeovers are visible.
    """
    from metaworld.env_dict import ALL_V3_ENVIRONMENTS

    sim = ALL_V3_ENVIRONMENTS[task.env_name](render_mode="rgb_array", width=width, height=height,
                                             camera_name="corner")
    configure_sim(sim, max(len(actions) + 1, task.max_steps))
    sim.model.vis.quality.shadowsize = 0
    sim.model.vis.quality.offsamples = 0
    sim.seed(seed)
    sim.reset()
    frames = []
    for t, action in enumerate(actions):
        if t % every == 0:
            frame = np.ascontiguousarray(np.flipud(sim.render()), dtype=np.uint8)  # GL is bottom-up
            if controller[t] == Controller.HUMAN:
                frame[:3], frame[-3:], frame[:, :3], frame[:, -3:] = 220, 220, 220, 220
                frame[:3, :, 1:] = frame[-3:, :, 1:] = 40
                frame[:, :3, 1:] = frame[:, -3:, 1:] = 40
            frames.append(frame)
        sim.step(np.clip(action, -1.0, 1.0))
    sim.close()
    return frames


def write_gif(frames: list[npt.NDArray[np.uint8]], path: Path, fps: int = 20) -> None:
    """Write frames (H, W, 3) as an animated GIF."""
    from PIL import Image

    images = [Image.fromarray(f) for f in frames]
    path.parent.mkdir(parents=True, exist_ok=True)
    images[0].save(path, save_all=True, append_images=images[1:], duration=int(1000 / fps),
                   loop=0)
