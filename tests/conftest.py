import os
from pathlib import Path

import numpy as np
import pytest
import torch

from habc.episodes.episode import Controller, Episode, EpisodeSource

os.environ.setdefault("MUJOCO_GL", "osmesa")
os.environ.setdefault("PYOPENGL_PLATFORM", os.environ["MUJOCO_GL"])
torch.set_num_threads(1)

TINY_POLICY = ["--policy.hidden-dim", "32", "--policy.num-blocks", "1",
               "--policy.chunk-horizon", "4", "--policy.exec-horizon", "2",
               "--policy.num-inference-steps", "2"]


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


@pytest.fixture(scope="module")
def sft_checkpoint(tmp_path_factory) -> Path:
    """A tiny SFT checkpoint on 2 reach demos (one per test module)."""
    from habc.cli import main  # after MUJOCO_GL is set above
    root = tmp_path_factory.mktemp("sft")
    assert main(["collect", "--task", "reach", "--out", str(root / "demos"), "--num-episodes",
                 "2", "--max-steps", "150"]) == 0
    assert main(["train", "--datasets", str(root / "demos"), "--run-dir", str(root / "run"),
                 "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    return root / "run/checkpoints/last"


@pytest.fixture(scope="module")
def multi_task_checkpoint(tmp_path_factory) -> Path:
    """A tiny SFT checkpoint on 2 reach and 2 drawer-close demos."""
    from habc.cli import main
    root = tmp_path_factory.mktemp("mt")
    stores = [root / "reach", root / "drawer-close"]
    for store in stores:
        assert main(["collect", "--task", store.name, "--out", str(store), "--num-episodes",
                     "2", "--max-steps", "150"]) == 0
    assert main(["train", "--datasets", *map(str, stores), "--run-dir", str(root / "run"),
                 "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    return root / "run/checkpoints/last"
