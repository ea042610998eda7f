"""Camera images in observations: the key convention and a CPU offscreen renderer.

An observation dict carries ``state`` (S,) float32 and, for each camera ``c`` a task was built
with, ``image.c``: (H, W, 3) uint8, top row first. Episode stores keep them as the LeRobot
feature ``observation.images.c``.

Rendering uses the GL backend named by ``MUJOCO_GL`` (the CLI and the tests default it to
``osmesa``) with shadows and offscreen anti-aliasing switched off, which makes CPU rendering
about 10x faster.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from habc.errors import ConfigError

IMAGE_OBS_PREFIX = "image."
"""Observation key prefix of a camera's frame."""


def image_obs_key(camera: str) -> str:
    """The observation key of ``camera``'s frame."""
    return IMAGE_OBS_PREFIX + camera


def obs_images(obs: dict[str, npt.NDArray[Any]]) -> dict[str, npt.NDArray[np.uint8]]:
    """Camera name -> (H, W, 3) uint8 frame, for every camera in the observation ``obs``."""
    return {k.removeprefix(IMAGE_OBS_PREFIX): v for k, v in obs.items()
            if k.startswith(IMAGE_OBS_PREFIX)}


class CameraRig:
    """Renders named cameras of a MuJoCo model as square (size, size, 3) uint8 frames."""

    def __init__(self, model: Any, cameras: Sequence[str], size: int) -> None:
        """Switch shadows and anti-aliasing off on ``model`` and open an offscreen context.

        Raises:
            ConfigError: naming the model's cameras, if one of ``cameras`` is not among them.
        """
        import mujoco

        known = [model.camera(i).name for i in range(model.ncam)]
        unknown = [c for c in cameras if c not in known]
        if unknown:
            raise ConfigError(f"unknown cameras {unknown}; this task has {known}")
        if size < 8:
            raise ConfigError("image_size must be >= 8")
        model.vis.quality.shadowsize = 0
        model.vis.quality.offsamples = 0
        self.cameras = tuple(cameras)
        self.renderer = mujoco.Renderer(model, size, size)

    def render(self, data: Any) -> dict[str, npt.NDArray[np.uint8]]:
        """Observation entries ``image.<camera>`` -> (size, size, 3) uint8 of the state ``data``."""
        frames = {}
        for camera in self.cameras:
            self.renderer.update_scene(data, camera=camera)
            # Meta-World's cameras come out upside down; flip rows so the top row is first.
            frames[image_obs_key(camera)] = np.ascontiguousarray(np.flipud(self.renderer.render()))
        return frames

    def close(self) -> None:
        """Free the renderer's GL objects, then its GL context (safe to call twice).

        ``mujoco.Renderer.close`` (MuJoCo 3.3) frees the GL context first and the MjrContext's
        GL objects after it, so they are deleted in whatever context is current then: another
        renderer's, whose objects carry the same ids. That blanked every later frame of the
        other renderer (a second online run in one process rendered black frames). Here the
        MjrContext goes first, with its own context current.
        """
        renderer = getattr(self, "renderer", None)  # None: __init__ stopped before it
        if renderer is None:
            return
        gl, mjr = renderer._gl_context, renderer._mjr_context
        if gl is not None and mjr is not None:
            gl.make_current()
            mjr.free()
            renderer._mjr_context = None
        renderer.close()

    def __del__(self) -> None:
        # An environment dropped without close() must not take another renderer's frames.
        self.close()
