import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from habc.episodes import store as store_mod
from habc.episodes.episode import EpisodeSource
from habc.episodes.store import EpisodeStore, open_stores
from habc.errors import HabcError, StoreError
from tests.conftest import make_episode


def new_store(root: Path) -> EpisodeStore:
    return EpisodeStore.create(root, state_dim=39, action_dim=4, fps=80, robot_type="sawyer")


def test_round_trip_arrays_and_metadata(tmp_path, rng):
    store = new_store(tmp_path / "ds")
    episodes = [make_episode(rng, 7, seed=1), make_episode(rng, 3, seed=2, task="pick-place")]
    episodes += [make_episode(rng, 5, source=EpisodeSource.ROLLOUT, success=False, seed=3,
                              human_span=(1, 3))]
    assert store.append(episodes[:2]) == [0, 1]
    assert store.append(episodes[2:]) == [2]

    arrays = EpisodeStore.open(tmp_path / "ds").read()
    assert arrays.num_episodes == 3 and arrays.num_frames == 15
    assert arrays.episode_starts.tolist() == [0, 7, 10]
    assert arrays.episode_ends.tolist() == [7, 10, 15]
    for e, ep in enumerate(episodes):
        sl = slice(arrays.episode_starts[e], arrays.episode_ends[e])
        np.testing.assert_array_equal(arrays.state[sl], ep.state)
        np.testing.assert_array_equal(arrays.action[sl], ep.action)
        np.testing.assert_array_equal(arrays.controller[sl], ep.controller)
        np.testing.assert_array_equal(arrays.policy_version[sl], ep.policy_version)
        assert arrays.success[e] == ep.success
        assert arrays.source[e] == ep.source
        assert arrays.seed[e] == ep.seed
        assert arrays.task[e] == ep.task
    assert arrays.frame_episode.tolist() == [0] * 7 + [1] * 3 + [2] * 5


def test_episodes_that_ended_in_unstable_physics_are_marked_and_older_files_read_as_not(
        tmp_path, rng):
    """The flag rides on the episode row; episode files written before it existed read as
    false, also when a later file has the column; ``select`` and ``open_stores`` keep it."""
    store = new_store(tmp_path / "ds")
    store.append([make_episode(rng, 4, source=EpisodeSource.ROLLOUT, success=False, seed=1)])
    old = tmp_path / "ds/meta/episodes/chunk-000/file-000.parquet"  # as written before the flag
    pq.write_table(pq.read_table(old).drop_columns(["unstable"]), old)
    blown = replace(make_episode(rng, 3, source=EpisodeSource.ROLLOUT, success=False, seed=2),
                    unstable=True)
    store.append([blown, make_episode(rng, 5, source=EpisodeSource.ROLLOUT, seed=3)])

    arrays = EpisodeStore.open(tmp_path / "ds").read()
    assert arrays.unstable is not None and arrays.unstable.tolist() == [False, True, False]
    picked = arrays.select(np.array([False, True, True]))
    assert picked.unstable is not None and picked.unstable.tolist() == [True, False]
    both = open_stores([tmp_path / "ds", tmp_path / "ds"])
    assert both.unstable is not None and both.unstable.tolist() == [False, True, False] * 2
    with pytest.raises(HabcError, match="unstable physics is a failure"):
        replace(blown, success=True)


def test_lerobot_v3_layout(tmp_path, rng):
    store = new_store(tmp_path / "ds")
    store.append([make_episode(rng, 4), make_episode(rng, 6)])
    store.append([make_episode(rng, 2, task="pick-place")])
    root = tmp_path / "ds"
    info = json.loads((root / "meta/info.json").read_text())
    assert info["codebase_version"] == "v3.0"
    assert info["total_episodes"] == 3 and info["total_frames"] == 12 and info["total_tasks"] == 2
    assert info["splits"] == {"train": "0:3"}
    assert info["features"]["observation.state"]["shape"] == [39]
    for key in ("timestamp", "frame_index", "episode_index", "index", "task_index",
                "controller", "policy_version"):
        assert key in info["features"]
    assert (root / "data/chunk-000/file-000.parquet").exists()
    assert (root / "data/chunk-000/file-001.parquet").exists()
    assert (root / "meta/episodes/chunk-000/file-001.parquet").exists()
    import pandas as pd

    tasks = pd.read_parquet(root / "meta/tasks.parquet")
    assert tasks.index.name == "task"
    assert tasks.loc["reach"].task_index == 0 and tasks.loc["pick place"].task_index == 1
    eps = pd.read_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    assert eps["dataset_from_index"].tolist() == [0, 4]
    assert eps["dataset_to_index"].tolist() == [4, 10]
    frames = pd.read_parquet(root / "data/chunk-000/file-001.parquet")
    assert frames["index"].tolist() == [10, 11] and frames["frame_index"].tolist() == [0, 1]
    assert frames["task_index"].tolist() == [1, 1]
    stats = json.loads((root / "meta/stats.json").read_text())
    arrays = store.read()
    np.testing.assert_allclose(stats["action"]["mean"], arrays.action.mean(0), atol=1e-5)
    np.testing.assert_allclose(stats["action"]["std"], arrays.action.std(0), atol=1e-5)
    assert stats["action"]["count"] == [12]


def test_images_round_trip(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "ds", state_dim=39, action_dim=4, fps=80,
                                robot_type="sawyer", image_shapes={"top": (8, 6, 3)})
    ep = make_episode(rng, 3)
    frames = rng.integers(0, 255, size=(3, 8, 6, 3), dtype=np.uint8)
    ep = type(ep)(**{**ep.__dict__, "images": {"top": frames}})
    store.append([ep])
    np.testing.assert_array_equal(store.read_images(0, "top"), frames)


def test_failed_demo_refused(tmp_path, rng):
    store = new_store(tmp_path / "ds")
    with pytest.raises(StoreError, match="failed demo"):
        store.append([make_episode(rng, 3, success=False)])


def test_shape_mismatch_refused(tmp_path, rng):
    store = new_store(tmp_path / "ds")
    with pytest.raises(StoreError, match="do not match"):
        store.append([make_episode(rng, 3, state_dim=10)])


def test_missing_store_is_clear(tmp_path):
    with pytest.raises(StoreError, match="no episode store"):
        EpisodeStore.open(tmp_path / "nothing")


def test_truncated_file_error_names_file(tmp_path, rng):
    store = new_store(tmp_path / "ds")
    store.append([make_episode(rng, 5)])
    data = tmp_path / "ds/data/chunk-000/file-000.parquet"
    data.write_bytes(data.read_bytes()[:50])
    with pytest.raises(StoreError, match=r"file-000\.parquet"):
        EpisodeStore.open(tmp_path / "ds").read()


def test_corrupt_info_error_names_file(tmp_path, rng):
    new_store(tmp_path / "ds")
    (tmp_path / "ds/meta/info.json").write_text("{not json")
    with pytest.raises(StoreError, match=r"info\.json"):
        EpisodeStore.open(tmp_path / "ds")


def test_crash_before_commit_keeps_earlier_episodes(tmp_path, rng, monkeypatch):
    store = new_store(tmp_path / "ds")
    store.append([make_episode(rng, 4)])
    real_write = store_mod._atomic_write_bytes

    def crash_on_commit(path, payload):
        if "meta/episodes" in str(path):
            raise KeyboardInterrupt("killed")
        real_write(path, payload)

    monkeypatch.setattr(store_mod, "_atomic_write_bytes", crash_on_commit)
    with pytest.raises(KeyboardInterrupt):
        store.append([make_episode(rng, 9)])
    monkeypatch.setattr(store_mod, "_atomic_write_bytes", real_write)
    # The orphan data file of the failed append is ignored ...
    reopened = EpisodeStore.open(tmp_path / "ds")
    assert reopened.read().num_episodes == 1
    # ... and overwritten by the next append.
    assert reopened.append([make_episode(rng, 2)]) == [1]
    assert reopened.read().lengths.tolist() == [4, 2]


WRITER = """
import sys
import numpy as np
from habc.episodes.store import EpisodeStore
from tests.conftest import make_episode
store = EpisodeStore.open(sys.argv[1])
rng = np.random.default_rng(int(sys.argv[2]))
while True:
    ids = store.append([make_episode(rng, int(rng.integers(50, 400)))])
    print(ids[0], flush=True)
"""


@pytest.mark.parametrize("kill_after", [0.3, 0.7, 1.1])
def test_writer_killed_mid_append_leaves_readable_store(tmp_path, rng, kill_after):
    root = tmp_path / "ds"
    new_store(root)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    proc = subprocess.Popen([sys.executable, "-c", WRITER, str(root), str(int(kill_after * 10))],
                            stdout=subprocess.PIPE, text=True, env=env)
    assert proc.stdout is not None
    first = proc.stdout.readline()  # wait until the writer is running
    assert first.strip() == "0"
    time.sleep(kill_after)
    proc.send_signal(signal.SIGKILL)
    reported = [0] + [int(line) for line in proc.stdout.read().split()]
    proc.wait()
    arrays = EpisodeStore.open(root).read()
    stored = arrays.episode_index.tolist()
    assert set(reported) <= set(stored), "an episode reported saved was lost"
    assert stored == list(range(len(stored)))
    assert arrays.num_frames == int(arrays.lengths.sum())


def test_open_stores_concatenates(tmp_path, rng):
    a, b = new_store(tmp_path / "a"), new_store(tmp_path / "b")
    a.append([make_episode(rng, 3)])
    b.append([make_episode(rng, 4), make_episode(rng, 2)])
    arrays = open_stores([tmp_path / "a", tmp_path / "b"])
    assert arrays.episode_ends.tolist() == [3, 7, 9]
    assert arrays.frame_episode.tolist() == [0] * 3 + [1] * 4 + [2] * 2
    sub = arrays.select(np.array([False, True, True]))
    assert sub.episode_ends.tolist() == [4, 6]
    np.testing.assert_array_equal(sub.state, arrays.state[3:])


def staged(ep, stage):
    return type(ep)(**{**ep.__dict__, "stage": np.asarray(stage, dtype=np.int64)})


def test_stage_labels_round_trip_and_are_checked(tmp_path, rng):
    store = EpisodeStore.create(tmp_path / "a", state_dim=39, action_dim=4, fps=80,
                                robot_type="arm", stage_names=["reach", "grasp", "place"])
    store.append([staged(make_episode(rng, 3), [0, 1, 2]), staged(make_episode(rng, 2), [0, 0])])
    reopened = EpisodeStore.open(tmp_path / "a")
    assert reopened.stage_names == ["reach", "grasp", "place"]
    info = json.loads((tmp_path / "a/meta/info.json").read_text())
    assert info["features"]["stage"]["info"] == {"0": "reach", "1": "grasp", "2": "place"}
    arrays = reopened.read()
    assert arrays.stage is not None and arrays.stage.tolist() == [0, 1, 2, 0, 0]
    assert arrays.select(np.array([False, True])).stage.tolist() == [0, 0]
    with pytest.raises(StoreError, match="stage label in"):
        store.append([make_episode(rng, 2)])  # no labels
    with pytest.raises(StoreError, match="stage label in"):
        store.append([staged(make_episode(rng, 2), [0, 3])])  # no stage 3
    plain = new_store(tmp_path / "b")
    with pytest.raises(StoreError, match="keeps no stage labels"):
        plain.append([staged(make_episode(rng, 2), [0, 0])])
    with pytest.raises(HabcError, match="field 'stage' has 3 steps"):
        staged(make_episode(rng, 2), [0, 0, 0])
    plain.append([make_episode(rng, 4)])
    assert new_store(tmp_path / "c").stage_names is None and plain.read().stage is None
    # several stores: labels only when every store has them, under the same names
    assert open_stores([tmp_path / "a", tmp_path / "a"]).stage.tolist() == [0, 1, 2, 0, 0] * 2
    assert open_stores([tmp_path / "a", tmp_path / "b"]).stage is None
    other = EpisodeStore.create(tmp_path / "d", state_dim=39, action_dim=4, fps=80,
                                robot_type="arm", stage_names=["reach", "place"])
    other.append([staged(make_episode(rng, 2), [0, 1])])
    with pytest.raises(StoreError, match="different stage names"):
        open_stores([tmp_path / "a", tmp_path / "d"])


def moving_frames(length: int, start: int = 0, size: tuple[int, int] = (16, 16)):
    """Smooth frames that compress well: a grey level that changes, and a white band 4 pixels
    wide that moves right."""
    h, w = size
    frames = np.zeros((length, h, w, 3), dtype=np.uint8)
    for t in range(length):
        frames[t] = 8 * (start + t) % 200
        frames[t, :, np.arange(start + t, start + t + 4) % w] = 255
    return frames


def with_images(ep, **images):
    return type(ep)(**{**ep.__dict__, "images": images})


def test_videos_round_trip_in_the_lerobot_v3_layout(tmp_path, rng):
    root = tmp_path / "ds"
    store = EpisodeStore.create(root, state_dim=39, action_dim=4, fps=80, robot_type="sawyer",
                                image_shapes={"top": (16, 16, 3)}, video=True)
    frames = [moving_frames(5), moving_frames(3, start=5), moving_frames(4, start=8)]
    episodes = [with_images(make_episode(rng, len(f), seed=i), top=f)
                for i, f in enumerate(frames)]
    store.append(episodes[:2])
    store.append(episodes[2:])
    info = json.loads((root / "meta/info.json").read_text())
    feature = info["features"]["observation.images.top"]
    assert feature["dtype"] == "video" and feature["shape"] == [16, 16, 3]
    assert feature["info"]["video.codec"] == "av1" and feature["info"]["video.fps"] == 80
    assert info["video_path"] == \
        "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
    import pandas as pd

    # One file per append, its episodes one after another; the data files hold no frames.
    eps = pd.read_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    key = "videos/observation.images.top"
    assert eps[f"{key}/from_timestamp"].tolist() == [0.0, 5 / 80]
    assert eps[f"{key}/to_timestamp"].tolist() == [5 / 80, 8 / 80]
    assert eps[f"{key}/file_index"].tolist() == [0, 0]
    assert "observation.images.top" not in pd.read_parquet(
        root / "data/chunk-000/file-000.parquet").columns
    first = store_mod.decode_frames(root / "videos/observation.images.top/chunk-000/file-000.mp4")
    assert first.shape == (8, 16, 16, 3)
    assert (root / "videos/observation.images.top/chunk-000/file-001.mp4").exists()
    # AV1 is lossy: every frame comes back close to what was written.
    arrays = EpisodeStore.open(root).read(["top"])
    np.testing.assert_array_equal(arrays.state, np.concatenate([e.state for e in episodes]))
    back = arrays.images["top"].astype(int)
    assert back.shape == (12, 16, 16, 3)
    assert np.abs(back - np.concatenate(frames)).mean() < 3
    for e, f in enumerate(frames):
        sl = slice(arrays.episode_starts[e], arrays.episode_ends[e])
        np.testing.assert_array_equal(store.read_images(e, "top"), arrays.images["top"][sl])
        assert np.abs(store.read_images(e, "top").astype(int) - f).mean() < 3
    with pytest.raises(StoreError, match="no frames of camera"):
        store.read_images(0, "front")


def test_a_lerobot_dataset_recorded_elsewhere_reads_as_demos(tmp_path, rng):
    """A dataset as LeRobot writes it (no habc columns; a camera as video, two episodes packed
    into one MP4) reads as human-controlled successful demos, and stays read-only."""
    import pandas as pd

    root = tmp_path / "lerobot"
    lengths, fps, key = [4, 6], 30, "observation.images.front"
    state = rng.standard_normal((10, 6)).astype(np.float32)
    action = rng.uniform(-1, 1, (10, 2)).astype(np.float32)
    scalar = {"shape": [1], "names": None}
    info = {"codebase_version": "v3.0", "robot_type": "so101", "fps": fps,
            "total_episodes": 2, "total_frames": 10, "total_tasks": 1, "chunks_size": 1000,
            "data_path": "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet",
            "video_path": "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4",
            "features": {
                "action": {"dtype": "float32", "shape": [2], "names": ["x", "grip"]},
                "observation.state": {"dtype": "float32", "shape": [6], "names": None},
                key: {"dtype": "video", "shape": [16, 16, 3],
                      "names": ["height", "width", "channels"]},
                **{k: {"dtype": d, **scalar} for k, d in (
                    ("timestamp", "float32"), ("frame_index", "int64"),
                    ("episode_index", "int64"), ("index", "int64"), ("task_index", "int64"))}}}
    (root / "meta/episodes/chunk-000").mkdir(parents=True)
    (root / "data/chunk-000").mkdir(parents=True)
    (root / "meta/info.json").write_text(json.dumps(info))
    pd.DataFrame({"task_index": [0]}, index=pd.Index(["fold the towel"], name="task")) \
        .to_parquet(root / "meta/tasks.parquet")
    frame_index = np.concatenate([np.arange(n) for n in lengths])
    pd.DataFrame({"action": list(action), "observation.state": list(state),
                  "timestamp": (frame_index / fps).astype(np.float32),
                  "frame_index": frame_index, "episode_index": np.repeat([0, 1], lengths),
                  "index": np.arange(10), "task_index": np.zeros(10, dtype=np.int64)}) \
        .to_parquet(root / "data/chunk-000/file-000.parquet")
    pd.DataFrame({"episode_index": [0, 1], "tasks": [["fold the towel"]] * 2,
                  "length": lengths, "data/chunk_index": [0, 0], "data/file_index": [0, 0],
                  "dataset_from_index": [0, 4], "dataset_to_index": [4, 10],
                  f"videos/{key}/chunk_index": [0, 0], f"videos/{key}/file_index": [0, 0],
                  f"videos/{key}/from_timestamp": [0.0, 4 / fps],
                  f"videos/{key}/to_timestamp": [4 / fps, 10 / fps]}) \
        .to_parquet(root / "meta/episodes/chunk-000/file-000.parquet")
    frames = moving_frames(10)
    (root / f"videos/{key}/chunk-000").mkdir(parents=True)
    store_mod.encode_frames(frames, fps, root / f"videos/{key}/chunk-000/file-000.mp4")

    store = EpisodeStore.open(root)
    assert store.image_keys == store.video_keys == ["front"] and not store.habc_columns
    arrays = store.read(["front"])
    np.testing.assert_array_equal(arrays.state, state)
    np.testing.assert_array_equal(arrays.action, action)
    assert arrays.controller.tolist() == [1] * 10 and arrays.policy_version.tolist() == [-1] * 10
    assert arrays.source.tolist() == ["demo", "demo"] and arrays.success.tolist() == [True] * 2
    assert arrays.task.tolist() == ["fold the towel"] * 2 and arrays.seed.tolist() == [-1, -1]
    assert np.abs(arrays.images["front"].astype(int) - frames).mean() < 3
    np.testing.assert_array_equal(store.read_images(1, "front"), arrays.images["front"][4:])
    with pytest.raises(StoreError, match="read-only"):
        store.append([make_episode(rng, 2, state_dim=6)])
    # SFT trains on it from the CLI, camera included.
    from habc.cli import main

    assert main(["train", "--datasets", str(root), "--run-dir", str(tmp_path / "sft"),
                 "--steps", "2", "--batch-size", "4", "--policy.hidden-dim", "16",
                 "--policy.num-blocks", "1", "--policy.chunk-horizon", "4",
                 "--policy.exec-horizon", "2", "--policy.cameras", "front",
                 "--policy.image-size", "16", "--policy.image-shift", "2"]) == 0
    assert (tmp_path / "sft/checkpoints/last/model.safetensors").exists()
