"""Camera frames from Meta-World offscreen rendering, through the runner into the store."""

import numpy as np
import pytest

from habc.envs.registry import get_task, make_env, make_expert
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import EpisodeStore, open_stores
from habc.errors import ConfigError, StoreError
from habc.rollout.actors import ExpertActor
from habc.rollout.runner import run_episode


def test_env_renders_each_camera_deterministically():
    env = make_env(get_task("reach"), max_steps=5, cameras=("corner2", "topview"),
                   image_size=16)
    obs, _ = env.reset(seed=3)
    assert sorted(obs) == ["image.corner2", "image.topview", "state"]
    frame = obs["image.corner2"]
    assert frame.shape == (16, 16, 3) and frame.dtype == np.uint8 and frame.std() > 0
    assert env.observation_space.contains(obs)
    moved, *_ = env.step(np.array([1.0, 0.0, 0.0, 0.0], np.float32))
    again, _ = env.reset(seed=3)
    np.testing.assert_array_equal(again["image.corner2"], frame)
    assert not np.array_equal(moved["image.topview"], obs["image.topview"])
    env.close()


def test_unknown_camera_names_the_task_cameras():
    with pytest.raises(ConfigError, match="corner2"):
        make_env(get_task("reach"), cameras=("front",))


def test_runner_records_frames_and_store_reads_them_back(tmp_path):
    env = make_env(get_task("reach"), max_steps=6, cameras=("corner2",), image_size=16)
    actor = ExpertActor(make_expert(env.task), noise_std=0.0, rng=np.random.default_rng(0))
    episode = run_episode(env, actor, seed=1, source=EpisodeSource.ROLLOUT)
    frames = episode.images["corner2"]
    assert frames.shape == (episode.length, 16, 16, 3) and frames.dtype == np.uint8
    root = tmp_path / "ds"
    store = EpisodeStore.create(root, state_dim=39, action_dim=4, fps=env.fps, robot_type="sawyer",
                                image_shapes={"corner2": (16, 16, 3)})
    store.append([episode, episode])
    assert store.image_shapes == {"corner2": (16, 16, 3)}
    assert store.read().images == {}  # frames are decoded only when asked for
    arrays = open_stores([root], cameras=("corner2",))
    np.testing.assert_array_equal(arrays.images["corner2"], np.concatenate([frames, frames]))
    picked = arrays.select(np.array([False, True]))
    np.testing.assert_array_equal(picked.images["corner2"], frames)
    np.testing.assert_array_equal(store.read_images(1, "corner2"), frames)
    with pytest.raises(StoreError, match=r"no frames of cameras \['topview'\]"):
        store.read(cameras=("topview",))
    small = type(episode)(**{**episode.__dict__, "images": {"corner2": frames[:, :8]}})
    with pytest.raises(StoreError, match="takes uint8"):
        store.append([small])
    other = EpisodeStore.create(tmp_path / "other", state_dim=39, action_dim=4, fps=env.fps,
                                robot_type="sawyer", image_shapes={"corner2": (8, 16, 3)})
    other.append([small])
    with pytest.raises(StoreError, match="different sizes"):
        open_stores([root, tmp_path / "other"], cameras=("corner2",))
    env.close()


def test_dropping_an_environment_leaves_another_ones_frames_intact():
    """Regression: mujoco.Renderer.close freed its GL objects in another renderer's context,
    so a second online run in one process rendered black frames."""
    import gc

    dropped = make_env(get_task("reach"), cameras=("corner2",), image_size=16)
    dropped.reset(seed=6)
    keep = make_env(get_task("reach"), cameras=("corner2",), image_size=16)
    before = keep.reset(seed=5)[0]["image.corner2"]  # its context is the current one now
    del dropped  # not closed: garbage collection frees the older renderer
    gc.collect()
    after = keep.reset(seed=5)[0]["image.corner2"]
    assert before.std() > 10
    np.testing.assert_array_equal(after, before)
    keep.close()
