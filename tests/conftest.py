import os

import numpy as np
import pytest
import torch

from habc.episodes.episode import Controller, Episode, EpisodeSource

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
torch.set_num_threads(1)


def make_episode(rng: np.random.Generator, length: int, *,
                 source: EpisodeSource = EpisodeSource.DEMO, success: bool = True,
                 seed: int = 0, task: str = "reach",
                 human_span: tuple[int, int] | None = None, state_dim: int = 39) -> Episode:
    first = Controller.HUMAN if source is EpisodeSource.DEMO else Controller.POLICY
    controller = np.full(length, first, dtype=np.int8)
    if human_span is not None:
        controller[human_span[0]:human_span[1]] = Controller.HUMAN
    version = np.where(controller == Controller.POLICY, 3, -1).astype(np.int32)
    return Episode(state=rng.standard_normal((length, state_dim)).astype(np.float32),
                   action=rng.uniform(-1, 1, (length, 4)).astype(np.float32),
                   controller=controller, policy_version=version, success=success, source=source,
                   task=task, prompt=task.replace("-", " "), seed=seed)


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)
