import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
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
