"""Episode store on disk, in the LeRobot v3.0 dataset layout.

Layout (paths relative to the store root)::

    meta/info.json                            codebase_version "v3.0", features, totals
    meta/stats.json                           per-feature min/max/mean/std/count
    meta/tasks.parquet                        task string (index) -> task_index
    meta/episodes/chunk-XXX/file-YYY.parquet  one row per episode
    data/chunk-XXX/file-YYY.parquet           one row per frame
    videos/<key>/chunk-XXX/file-YYY.mp4       camera frames of a store created with video=True

Cameras are ``observation.images.<name>`` features: PNG bytes in the data files (LeRobot's
``image`` dtype) by default, or, with ``video=True``, MP4 streams (its ``video`` dtype, the one
LeRobot records by default; see ``habc.episodes.video``), one file per append and camera with
the appended episodes one after another, located by the episode rows' ``videos/<key>/...``
columns.

Every ``append`` call writes one new data file and one new episodes file with the same
chunk/file index, so nothing already written is ever rewritten. Beyond LeRobot's standard
columns, frames carry ``controller`` (0 = policy, 1 = human) and ``policy_version`` (-1 for
human steps), and episode rows carry ``source``, ``success``, ``seed``, ``env_task`` and
``unstable`` (the episode ended when the physics went unstable; stores written before it
read as false). A store
created with ``stage_names`` also carries each frame's annotated ``stage`` (its names in the
feature's ``info``).

A LeRobot v3 dataset recorded elsewhere (teleoperated demos, say) opens too, read-only: without
habc's columns its frames read as human steps of successful demos (``controller`` 1,
``policy_version`` -1, ``source`` demo, ``success`` true, ``seed`` -1, ``env_task`` the
episode's first task string).

Crash safety: each file is written to a temporary name, flushed to disk and renamed into place.
The episodes file is the commit point: it is renamed only after its data (and video) files are
in place, and
readers only trust data files that a committed episodes file points to. A crash mid-append
therefore leaves at most an orphan data file, which the next append overwrites. ``info.json``
and ``stats.json`` are derived from the committed episodes and repaired on open.
"""

from __future__ import annotations

import contextlib
import fcntl
import io
import json
import os
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from habc.episodes.episode import Controller, Episode, EpisodeSource
from habc.episodes.video import decode_frames, encode_frames, episode_frames, feature_info
from habc.errors import StoreError

CODEBASE_VERSION = "v3.0"
CHUNKS_SIZE = 1000  # files per chunk directory, as in LeRobot
DATA_PATH = "data/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
VIDEO_PATH = "videos/{video_key}/chunk-{chunk_index:03d}/file-{file_index:03d}.mp4"
EPISODES_PATH = "meta/episodes/chunk-{chunk_index:03d}/file-{file_index:03d}.parquet"
TASKS_PATH = "meta/tasks.parquet"
INFO_PATH = "meta/info.json"
STATS_PATH = "meta/stats.json"
STATE_KEY = "observation.state"
ACTION_KEY = "action"
IMAGE_PREFIX = "observation.images."
STAGE_KEY = "stage"


@dataclass(frozen=True)
class StoreArrays:
    """Everything in a store as flat arrays plus episode boundaries (diffusion_policy style).

    Frames of episode ``e`` are ``[episode_starts[e], episode_ends[e])``.

    Attributes:
        state: (N, S) float32.
        action: (N, A) float32.
        controller: (N,) int8 ``Controller`` values.
        policy_version: (N,) int32, -1 for human steps.
        frame_episode: (N,) int64 position (0..E-1) of each frame's episode in these arrays.
        episode_index: (E,) int64 LeRobot episode_index.
        episode_starts: (E,) int64.
        episode_ends: (E,) int64, exclusive.
        success: (E,) bool.
        source: (E,) str.
        seed: (E,) int64.
        task: (E,) str registry names.
        stage: (N,) int64 annotated stage labels, or None when a store has none.
        images: camera name -> (N, H, W, 3) uint8 frames, when they were asked for.
        unstable: (E,) bool, the episode ended when the physics went unstable; None for
            arrays made without that record.
    """

    state: npt.NDArray[np.float32]
    action: npt.NDArray[np.float32]
    controller: npt.NDArray[np.int8]
    policy_version: npt.NDArray[np.int32]
    frame_episode: npt.NDArray[np.int64]
    episode_index: npt.NDArray[np.int64]
    episode_starts: npt.NDArray[np.int64]
    episode_ends: npt.NDArray[np.int64]
    success: npt.NDArray[np.bool_]
    source: npt.NDArray[np.str_]
    seed: npt.NDArray[np.int64]
    task: npt.NDArray[np.str_]
    stage: npt.NDArray[np.int64] | None = None
    images: dict[str, npt.NDArray[np.uint8]] = field(default_factory=dict)
    unstable: npt.NDArray[np.bool_] | None = None

    @property
    def num_frames(self) -> int:
        """Total number of frames N."""
        return len(self.state)

    @property
    def num_episodes(self) -> int:
        """Number of episodes E."""
        return len(self.episode_starts)

    @property
    def lengths(self) -> npt.NDArray[np.int64]:
        """(E,) episode lengths."""
        return self.episode_ends - self.episode_starts

    def select(self, episode_mask: npt.NDArray[np.bool_]) -> StoreArrays:
        """Return the subset of episodes where ``episode_mask`` (E,) is true, re-packed."""
        keep_frames = episode_mask[self.frame_episode]
        lengths = self.lengths[episode_mask]
        ends = np.cumsum(lengths)
        starts = ends - lengths
        return StoreArrays(
            state=self.state[keep_frames],
            action=self.action[keep_frames],
            controller=self.controller[keep_frames],
            policy_version=self.policy_version[keep_frames],
            frame_episode=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
            episode_index=self.episode_index[episode_mask],
            episode_starts=starts,
            episode_ends=ends,
            success=self.success[episode_mask],
            source=self.source[episode_mask],
            seed=self.seed[episode_mask],
            task=self.task[episode_mask],
            stage=self.stage[keep_frames] if self.stage is not None else None,
            images={c: f[keep_frames] for c, f in self.images.items()},
            unstable=self.unstable[episode_mask] if self.unstable is not None else None,
        )


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write ``payload`` to ``path`` so that readers see the old file or the whole new one."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    with open(tmp, "wb") as f:
        f.write(payload)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _atomic_write_video(frames: npt.NDArray[np.uint8], fps: int, path: Path) -> None:
    """``encode_frames`` to a temporary name, flushed, then renamed into place."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.stem}.tmp-{os.getpid()}.mp4")
    encode_frames(frames, fps, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)
    _fsync_dir(path.parent)


def _table_bytes(table: pa.Table) -> bytes:
    sink = io.BytesIO()
    pq.write_table(table, sink, compression="snappy")
    return sink.getvalue()


def _read_table(path: Path) -> pa.Table:
    try:
        return pq.read_table(path)
    except FileNotFoundError as e:
        raise StoreError(f"missing store file {path}") from e
    except (pa.ArrowException, OSError) as e:
        raise StoreError(f"corrupt or truncated store file {path}: {e}") from e


def _vector_column(values: npt.NDArray[np.floating[Any]]) -> pa.FixedSizeListArray:
    flat = pa.array(np.ascontiguousarray(values, dtype=np.float32).reshape(-1))
    return pa.FixedSizeListArray.from_arrays(flat, values.shape[1])


def _column_matrix(column: pa.ChunkedArray, width: int) -> npt.NDArray[np.float32]:
    """Turn a (fixed-size or variable) list<float> column into an (N, width) array."""
    flat = pa.concat_arrays([chunk.flatten() for chunk in column.chunks]) if column.num_chunks \
        else pa.array([], pa.float32())
    return np.asarray(flat.to_numpy(zero_copy_only=False), dtype=np.float32).reshape(-1, width)


def _decode_pngs(column: pa.ChunkedArray) -> npt.NDArray[np.uint8]:
    """A LeRobot image column (structs of PNG ``bytes``) -> (N, H, W, 3) uint8."""
    from PIL import Image

    return np.stack([np.asarray(Image.open(io.BytesIO(cell["bytes"])).convert("RGB"))
                     for cell in column.to_pylist()])


def _png_bytes(frame: npt.NDArray[np.uint8]) -> bytes:
    from PIL import Image

    sink = io.BytesIO()
    Image.fromarray(frame).save(sink, format="PNG")
    return sink.getvalue()


def _feature_stats(values: npt.NDArray[np.floating[Any]]) -> dict[str, list[float]]:
    x = values.astype(np.float64)
    return {
        "min": x.min(0).tolist(), "max": x.max(0).tolist(), "mean": x.mean(0).tolist(),
        "std": x.std(0).tolist(), "count": [len(x)],
    }


def _merge_stats(a: dict[str, list[float]], b: dict[str, list[float]]) -> dict[str, list[float]]:
    """Combine two per-feature stats dicts (parallel mean/variance formula)."""
    na, nb = float(a["count"][0]), float(b["count"][0])
    ma, mb = np.asarray(a["mean"]), np.asarray(b["mean"])
    va, vb = np.asarray(a["std"]) ** 2, np.asarray(b["std"]) ** 2
    n = na + nb
    mean = (na * ma + nb * mb) / n
    var = (na * (va + (ma - mean) ** 2) + nb * (vb + (mb - mean) ** 2)) / n
    return {
        "min": np.minimum(a["min"], b["min"]).tolist(),
        "max": np.maximum(a["max"], b["max"]).tolist(),
        "mean": mean.tolist(), "std": np.sqrt(var).tolist(), "count": [int(n)],
    }


class EpisodeStore:
    """Append-only episode store in the LeRobot v3.0 layout. See the module docstring."""

    def __init__(self, root: Path, info: dict[str, Any]) -> None:
        """Use ``EpisodeStore.create`` or ``EpisodeStore.open`` instead."""
        self.root = root
        self.info = info

    # ----------------------------------------------------------------------------- opening
    @classmethod
    def create(
        cls,
        root: Path,
        *,
        state_dim: int,
        action_dim: int,
        fps: int,
        robot_type: str,
        image_shapes: dict[str, tuple[int, int, int]] | None = None,
        stage_names: Sequence[str] | None = None,
        video: bool = False,
    ) -> EpisodeStore:
        """Create an empty store at ``root`` (which must not hold one already).

        ``stage_names``: the task's stages in order; every episode then carries a ``stage``
        label per step. ``video``: keep the cameras' frames as MP4 videos instead of PNG images.
        """
        root = Path(root)
        if (root / INFO_PATH).exists():
            raise StoreError(f"an episode store already exists at {root}")
        features: dict[str, Any] = {
            STATE_KEY: {"dtype": "float32", "shape": [state_dim], "names": None},
            ACTION_KEY: {"dtype": "float32", "shape": [action_dim], "names": None},
        }
        for name, shape in (image_shapes or {}).items():
            features[IMAGE_PREFIX + name] = {
                "dtype": "video" if video else "image", "shape": list(shape),
                "names": ["height", "width", "channels"],
            } | ({"info": feature_info(shape[0], shape[1], fps)} if video else {})
        features |= {
            "controller": {"dtype": "int64", "shape": [1], "names": None,
                           "info": {str(int(c)): c.name.lower() for c in Controller}},
            "policy_version": {"dtype": "int64", "shape": [1], "names": None,
                               "info": {"-1": "human step"}},
        }
        if stage_names:
            features[STAGE_KEY] = {"dtype": "int64", "shape": [1], "names": None,
                                   "info": {str(i): name for i, name in enumerate(stage_names)}}
        features |= {
            "timestamp": {"dtype": "float32", "shape": [1], "names": None},
            "frame_index": {"dtype": "int64", "shape": [1], "names": None},
            "episode_index": {"dtype": "int64", "shape": [1], "names": None},
            "index": {"dtype": "int64", "shape": [1], "names": None},
            "task_index": {"dtype": "int64", "shape": [1], "names": None},
        }
        info = {
            "codebase_version": CODEBASE_VERSION,
            "robot_type": robot_type,
            "total_episodes": 0,
            "total_frames": 0,
            "total_tasks": 0,
            "chunks_size": CHUNKS_SIZE,
            "data_files_size_in_mb": 100,
            "video_files_size_in_mb": 200,
            "fps": fps,
            "splits": {"train": "0:0"},
            "data_path": DATA_PATH,
            "video_path": VIDEO_PATH if video and image_shapes else None,
            "features": features,
        }
        root.mkdir(parents=True, exist_ok=True)
        _atomic_write_bytes(root / INFO_PATH, json.dumps(info, indent=4).encode())
        return cls(root, info)

    @classmethod
    def open(cls, root: Path) -> EpisodeStore:
        """Open an existing store; raise ``StoreError`` naming the file if it is unreadable."""
        root = Path(root)
        info_path = root / INFO_PATH
        if not info_path.exists():
            raise StoreError(f"no episode store at {root} ({INFO_PATH} not found)")
        try:
            info = json.loads(info_path.read_text())
            _ = info["features"][STATE_KEY]["shape"], info["features"][ACTION_KEY]["shape"]
        except (json.JSONDecodeError, KeyError, TypeError) as e:
            raise StoreError(f"corrupt store file {info_path}: {e}") from e
        if info.get("codebase_version") != CODEBASE_VERSION:
            raise StoreError(f"{info_path}: codebase_version {info.get('codebase_version')!r} "
                             f"is not {CODEBASE_VERSION!r}")
        return cls(root, info)

    @property
    def state_dim(self) -> int:
        """Width S of ``observation.state``."""
        return int(self.info["features"][STATE_KEY]["shape"][0])

    @property
    def action_dim(self) -> int:
        """Width A of ``action``."""
        return int(self.info["features"][ACTION_KEY]["shape"][0])

    @property
    def stage_names(self) -> list[str] | None:
        """The annotated stages in order, or None if the store carries no stage labels."""
        feature = self.info["features"].get(STAGE_KEY)
        return None if feature is None else [feature["info"][str(i)]
                                             for i in range(len(feature["info"]))]

    @property
    def image_keys(self) -> list[str]:
        """Camera names (LeRobot ``image`` or ``video`` features)."""
        return [k.removeprefix(IMAGE_PREFIX) for k in self.info["features"]
                if k.startswith(IMAGE_PREFIX)]

    @property
    def video_keys(self) -> list[str]:
        """The cameras kept as MP4 videos."""
        return [c for c in self.image_keys
                if self.info["features"][IMAGE_PREFIX + c]["dtype"] == "video"]

    @property
    def habc_columns(self) -> bool:
        """Whether the store has habc's columns (False: a dataset recorded elsewhere)."""
        return "controller" in self.info["features"]

    @property
    def image_shapes(self) -> dict[str, tuple[int, ...]]:
        """Camera name -> (H, W, 3) of its frames."""
        return {c: tuple(self.info["features"][IMAGE_PREFIX + c]["shape"])
                for c in self.image_keys}

    # ----------------------------------------------------------------------------- reading
    def _episode_files(self) -> list[Path]:
        return sorted((self.root / "meta" / "episodes").glob("chunk-*/file-*.parquet"))

    def episodes_table(self) -> pd.DataFrame:
        """One row per committed episode, ordered by ``episode_index``."""
        files = self._episode_files()
        if not files:
            return pd.DataFrame(columns=["episode_index", "length", "dataset_from_index",
                                         "dataset_to_index", "source", "success", "seed",
                                         "env_task", "data/chunk_index", "data/file_index"])
        table = pa.concat_tables([_read_table(f) for f in files], promote_options="default")
        df: pd.DataFrame = table.to_pandas()
        return df.sort_values("episode_index").reset_index(drop=True)

    def tasks(self) -> list[str]:
        """Task prompts in task_index order."""
        path = self.root / TASKS_PATH
        if not path.exists():
            return []
        df = _read_table(path).to_pandas()
        if "task" not in df.columns:
            df = df.reset_index()
        df = df.rename(columns={"__index_level_0__": "task"})
        return [str(t) for t in df.sort_values("task_index")["task"]]

    @property
    def num_episodes(self) -> int:
        """Number of committed episodes."""
        return len(self.episodes_table())

    def read(self, cameras: Sequence[str] = ()) -> StoreArrays:
        """Read every committed episode into flat arrays (no Python loop over frames).

        ``cameras``: the cameras whose frames to decode into ``StoreArrays.images`` (PNG
        decoding is the slow part: about 0.1 ms per 64x64 frame).

        Raises:
            StoreError: if the store has no episodes, does not keep one of ``cameras``, or its
                files disagree.
        """
        missing = sorted(set(cameras) - set(self.image_keys))
        if missing:
            raise StoreError(f"episode store {self.root} has no frames of cameras {missing} "
                             f"(it keeps {self.image_keys or 'none'})")
        episodes = self.episodes_table()
        s_dim, a_dim = self.state_dim, self.action_dim
        if len(episodes) == 0:
            raise StoreError(f"episode store {self.root} holds no episodes")
        pairs = episodes[["data/chunk_index", "data/file_index"]].drop_duplicates()
        videos = [c for c in cameras if c in self.video_keys]
        pngs = [c for c in cameras if c not in videos]
        tables = []
        for chunk_index, file_index in pairs.itertuples(index=False):
            path = self.root / DATA_PATH.format(chunk_index=chunk_index, file_index=file_index)
            tables.append(_read_table(path).select(
                [STATE_KEY, ACTION_KEY,
                 *(["controller", "policy_version"] if self.habc_columns else []),
                 "episode_index", "frame_index", *([STAGE_KEY] if self.stage_names else []),
                 *(IMAGE_PREFIX + c for c in pngs)]))
        frames = pa.concat_tables(tables)
        ep_of_frame = frames["episode_index"].to_numpy()
        order = np.lexsort((frames["frame_index"].to_numpy(), ep_of_frame))
        ep_of_frame = ep_of_frame[order]
        lengths = episodes["length"].to_numpy(np.int64)
        ends = np.cumsum(lengths)
        episode_index = episodes["episode_index"].to_numpy(np.int64)
        expected = np.repeat(episode_index, lengths)
        if len(ep_of_frame) != len(expected) or np.any(ep_of_frame != expected):
            raise StoreError(f"episode store {self.root}: data files do not match "
                             "meta/episodes (frame counts differ)")
        n = len(ep_of_frame)
        if self.habc_columns:
            controller = frames["controller"].to_numpy().astype(np.int8)[order]
            policy_version = frames["policy_version"].to_numpy().astype(np.int32)[order]
            success, source = episodes["success"].to_numpy(bool), episodes["source"].to_numpy(str)
            seed, task = episodes["seed"].to_numpy(np.int64), episodes["env_task"].to_numpy(str)
            # Episode files written before the column read as null there: not unstable.
            unstable = (episodes["unstable"].eq(True).to_numpy(bool)
                        if "unstable" in episodes.columns else np.zeros(len(episodes), bool))
        else:  # a dataset recorded elsewhere: demos (see the module docstring)
            controller = np.full(n, Controller.HUMAN, dtype=np.int8)
            policy_version = np.full(n, -1, dtype=np.int32)
            success = np.ones(len(episodes), dtype=bool)
            source = np.full(len(episodes), str(EpisodeSource.DEMO))
            seed = np.full(len(episodes), -1, dtype=np.int64)
            task = np.array([str(t[0]) if len(t) else "" for t in episodes["tasks"]])
            unstable = np.zeros(len(episodes), dtype=bool)
        images = {c: _decode_pngs(frames[IMAGE_PREFIX + c])[order] for c in pngs}
        if videos:
            records = episodes.to_dict("records")
            images |= {c: self._video_frames(records, c) for c in videos}
        return StoreArrays(
            state=_column_matrix(frames[STATE_KEY], s_dim)[order],
            action=_column_matrix(frames[ACTION_KEY], a_dim)[order],
            controller=controller,
            policy_version=policy_version,
            frame_episode=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
            episode_index=episode_index,
            episode_starts=ends - lengths,
            episode_ends=ends,
            success=success,
            source=source,
            seed=seed,
            task=task,
            stage=frames[STAGE_KEY].to_numpy().astype(np.int64)[order] if self.stage_names
            else None,
            unstable=unstable,
            images={c: images[c] for c in cameras},
        )

    def _video_frames(self, rows: list[dict[str, Any]], camera: str) -> npt.NDArray[np.uint8]:
        """The frames of a video camera for episodes ``rows`` (``episodes_table`` records).

        Returns (sum of their lengths, H, W, 3) uint8 in row order. A file is decoded once for
        each run of rows that it holds.
        """
        key = IMAGE_PREFIX + camera
        parts: list[npt.NDArray[np.uint8]] = []
        decoded: dict[Path, npt.NDArray[np.uint8]] = {}  # the file of the last row only
        for row in rows:
            try:
                where = {"chunk_index": int(row[f"videos/{key}/chunk_index"]),
                         "file_index": int(row[f"videos/{key}/file_index"])}
                start = float(row[f"videos/{key}/from_timestamp"])
            except KeyError as e:
                raise StoreError(f"episode store {self.root}: episode {row['episode_index']} "
                                 f"does not locate its {key} video ({e})") from e
            path = self.root / str(self.info.get("video_path") or VIDEO_PATH).format(
                video_key=key, **where)
            if path not in decoded:
                decoded = {path: decode_frames(path)}
            parts.append(episode_frames(decoded[path], start, int(row["length"]),
                                        int(self.info["fps"]), path))
        return np.concatenate(parts)

    def read_images(self, episode_index: int, camera: str) -> npt.NDArray[np.uint8]:
        """Decode one episode's frames of one camera: (T, H, W, 3) uint8."""
        episodes = self.episodes_table()
        row = episodes[episodes["episode_index"] == episode_index]
        if row.empty:
            raise StoreError(f"episode {episode_index} is not in {self.root}")
        if camera not in self.image_keys:
            raise StoreError(f"episode store {self.root} has no frames of camera {camera!r} "
                             f"(it keeps {self.image_keys or 'none'})")
        if camera in self.video_keys:
            return self._video_frames(row.to_dict("records"), camera)
        path = self.root / DATA_PATH.format(chunk_index=int(row["data/chunk_index"].iloc[0]),
                                            file_index=int(row["data/file_index"].iloc[0]))
        table = _read_table(path)
        table = table.filter(pa.array(table["episode_index"].to_numpy() == episode_index))
        order = np.argsort(table["frame_index"].to_numpy(), kind="stable")
        return _decode_pngs(table[IMAGE_PREFIX + camera])[order]

    # ----------------------------------------------------------------------------- writing
    @contextlib.contextmanager
    def _lock(self) -> Iterator[None]:
        with open(self.root / "meta" / ".lock", "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def append(self, episodes: Sequence[Episode]) -> list[int]:
        """Append episodes atomically; return their episode indices.

        When this returns, the episodes are on disk and survive a crash. If the process dies
        before it returns, the store still opens with every earlier episode.
        """
        if not episodes:
            return []
        if not self.habc_columns:
            raise StoreError(f"{self.root} is a LeRobot dataset without habc's columns "
                             "(controller, policy_version, ...); it is read-only here")
        for ep in episodes:
            if ep.state.shape[1] != self.state_dim or ep.action.shape[1] != self.action_dim:
                raise StoreError(
                    f"episode shapes state {ep.state.shape[1]}/action {ep.action.shape[1]} do not "
                    f"match store {self.root} ({self.state_dim}/{self.action_dim})")
            if ep.source is EpisodeSource.DEMO and not ep.success:
                raise StoreError(f"refusing a failed demo (seed {ep.seed}): demos are successes")
            if sorted(ep.images) != sorted(self.image_keys):
                raise StoreError(f"episode cameras {sorted(ep.images)} do not match store "
                                 f"cameras {sorted(self.image_keys)}")
            for camera, frames in ep.images.items():
                shape = self.image_shapes[camera]
                if frames.dtype != np.uint8 or frames.shape != (ep.length, *shape):
                    raise StoreError(f"camera {camera} frames are {frames.dtype} "
                                     f"{frames.shape}; store {self.root} takes uint8 "
                                     f"({ep.length}, {', '.join(map(str, shape))})")
            _check_stage(ep, self.stage_names, self.root)
        with self._lock():
            existing = self.episodes_table()
            first_episode = int(existing["episode_index"].max()) + 1 if len(existing) else 0
            first_frame = int(existing["dataset_to_index"].max()) if len(existing) else 0
            files = self._episode_files()
            if files:
                last = files[-1]
                chunk_index = int(last.parent.name.split("-")[1])
                file_index = int(last.stem.split("-")[1]) + 1
                if file_index >= CHUNKS_SIZE:
                    chunk_index, file_index = chunk_index + 1, 0
            else:
                chunk_index, file_index = 0, 0

            tasks = self.tasks()
            for ep in episodes:
                if ep.prompt not in tasks:
                    tasks.append(ep.prompt)
            task_df = pd.DataFrame({"task_index": np.arange(len(tasks), dtype=np.int64)},
                                   index=pd.Index(tasks, name="task"))
            sink = io.BytesIO()
            task_df.to_parquet(sink)
            _atomic_write_bytes(self.root / TASKS_PATH, sink.getvalue())

            lengths = np.array([ep.length for ep in episodes], dtype=np.int64)
            ep_ids = np.arange(first_episode, first_episode + len(episodes), dtype=np.int64)
            ends = first_frame + np.cumsum(lengths)
            starts = ends - lengths
            frame_index = np.concatenate([np.arange(n, dtype=np.int64) for n in lengths])
            columns: dict[str, Any] = {
                STATE_KEY: _vector_column(np.concatenate([ep.state for ep in episodes])),
                ACTION_KEY: _vector_column(np.concatenate([ep.action for ep in episodes])),
            }
            for camera in [c for c in self.image_keys if c not in self.video_keys]:
                columns[IMAGE_PREFIX + camera] = pa.array(
                    [{"bytes": _png_bytes(frame), "path": None}
                     for ep in episodes for frame in ep.images[camera]],
                    pa.struct([("bytes", pa.binary()), ("path", pa.string())]))
            columns |= {
                "controller": np.concatenate([ep.controller for ep in episodes]).astype(np.int64),
                "policy_version": np.concatenate(
                    [ep.policy_version for ep in episodes]).astype(np.int64),
                "timestamp": (frame_index / float(self.info["fps"])).astype(np.float32),
                "frame_index": frame_index,
                "episode_index": np.repeat(ep_ids, lengths),
                "index": np.arange(first_frame, int(ends[-1]), dtype=np.int64),
                "task_index": np.repeat([tasks.index(ep.prompt) for ep in episodes], lengths),
            }
            if self.stage_names:
                columns[STAGE_KEY] = np.concatenate([ep.stage for ep in episodes if
                                                     ep.stage is not None]).astype(np.int64)
            loc = {"chunk_index": chunk_index, "file_index": file_index}
            video_columns: dict[str, Any] = {}
            for camera in self.video_keys:
                key = IMAGE_PREFIX + camera
                path = self.root / VIDEO_PATH.format(video_key=key, **loc)
                _atomic_write_video(np.concatenate([ep.images[camera] for ep in episodes]),
                                    int(self.info["fps"]), path)
                video_columns |= {
                    f"videos/{key}/chunk_index": np.full(len(episodes), chunk_index, np.int64),
                    f"videos/{key}/file_index": np.full(len(episodes), file_index, np.int64),
                    f"videos/{key}/from_timestamp": (starts - first_frame) / self.info["fps"],
                    f"videos/{key}/to_timestamp": (ends - first_frame) / self.info["fps"]}
            _atomic_write_bytes(self.root / DATA_PATH.format(**loc),
                                _table_bytes(pa.table(columns)))

            meta = pa.table({
                "episode_index": ep_ids,
                "tasks": pa.array([[ep.prompt] for ep in episodes], pa.list_(pa.string())),
                "length": lengths,
                "data/chunk_index": np.full(len(episodes), chunk_index, dtype=np.int64),
                "data/file_index": np.full(len(episodes), file_index, dtype=np.int64),
                "dataset_from_index": starts,
                "dataset_to_index": ends,
                "meta/episodes/chunk_index": np.full(len(episodes), chunk_index, dtype=np.int64),
                "meta/episodes/file_index": np.full(len(episodes), file_index, dtype=np.int64),
                "source": pa.array([str(ep.source) for ep in episodes], pa.string()),
                "success": pa.array([bool(ep.success) for ep in episodes], pa.bool_()),
                "seed": np.array([ep.seed for ep in episodes], dtype=np.int64),
                "env_task": pa.array([ep.task for ep in episodes], pa.string()),
                "unstable": pa.array([ep.unstable for ep in episodes], pa.bool_()),
                "n_human_steps": np.array(
                    [int(np.sum(ep.controller == Controller.HUMAN)) for ep in episodes],
                    dtype=np.int64),
            } | video_columns)
            # Commit point: once this file is in place the episodes are part of the store.
            _atomic_write_bytes(self.root / EPISODES_PATH.format(**loc), _table_bytes(meta))
            self._write_summary(episodes, total_episodes=int(ep_ids[-1]) + 1,
                                total_frames=int(ends[-1]), total_tasks=len(tasks))
        return [int(i) for i in ep_ids]

    def _write_summary(self, new: Sequence[Episode], *, total_episodes: int, total_frames: int,
                       total_tasks: int) -> None:
        stats_path = self.root / STATS_PATH
        old = json.loads(stats_path.read_text()) if stats_path.exists() else {}
        stats = {
            STATE_KEY: _feature_stats(np.concatenate([ep.state for ep in new])),
            ACTION_KEY: _feature_stats(np.concatenate([ep.action for ep in new])),
        }
        stats = {k: _merge_stats(old[k], v) if k in old else v for k, v in stats.items()}
        _atomic_write_bytes(stats_path, json.dumps(stats, indent=4).encode())
        self.info |= {"total_episodes": total_episodes, "total_frames": total_frames,
                      "total_tasks": total_tasks, "splits": {"train": f"0:{total_episodes}"}}
        _atomic_write_bytes(self.root / INFO_PATH, json.dumps(self.info, indent=4).encode())


def _check_stage(ep: Episode, names: list[str] | None, root: Path) -> None:
    """Raise ``StoreError`` unless ``ep`` has stage labels exactly when the store keeps them."""
    if names is None:
        if ep.stage is not None:
            raise StoreError(f"store {root} keeps no stage labels; create it with stage_names")
    elif ep.stage is None or not 0 <= ep.stage.min() <= ep.stage.max() < len(names):
        raise StoreError(f"store {root} needs a stage label in [0, {len(names)}) for every "
                         f"step (episode seed {ep.seed})")


def open_stores(roots: Sequence[Path], cameras: Sequence[str] = ()) -> StoreArrays:
    """Read several stores (same state/action widths) into one set of arrays.

    Stage labels are kept when every store has them, with the same stage names. ``cameras``:
    the cameras whose frames to read; every store must keep them, at one size.
    """
    if not roots:
        raise StoreError("no dataset given")
    stores = [EpisodeStore.open(Path(r)) for r in roots]
    parts = [store.read(cameras) for store in stores]
    names = {tuple(store.stage_names or ()) for store in stores}
    if len(names) > 1 and () not in names:
        raise StoreError(f"datasets have different stage names: {sorted(names)}")
    staged = () not in names
    widths = {(p.state.shape[1], p.action.shape[1]) for p in parts}
    if len(widths) > 1:
        raise StoreError(f"datasets have different state/action widths: {sorted(widths)}")
    sizes = {(c, p.images[c].shape[1:]) for p in parts for c in cameras}
    if len(sizes) > len(cameras):
        raise StoreError(f"datasets have camera frames of different sizes: {sorted(sizes)}")
    lengths = np.concatenate([p.lengths for p in parts])
    ends = np.cumsum(lengths)
    return StoreArrays(
        state=np.concatenate([p.state for p in parts]),
        action=np.concatenate([p.action for p in parts]),
        controller=np.concatenate([p.controller for p in parts]),
        policy_version=np.concatenate([p.policy_version for p in parts]),
        frame_episode=np.repeat(np.arange(len(lengths), dtype=np.int64), lengths),
        episode_index=np.concatenate([p.episode_index for p in parts]),
        episode_starts=ends - lengths,
        episode_ends=ends,
        success=np.concatenate([p.success for p in parts]),
        source=np.concatenate([p.source for p in parts]),
        seed=np.concatenate([p.seed for p in parts]),
        task=np.concatenate([p.task for p in parts]),
        stage=np.concatenate([p.stage for p in parts if p.stage is not None]) if staged
        else None,
        images={c: np.concatenate([p.images[c] for p in parts]) for c in cameras},
        unstable=np.concatenate([p.unstable for p in parts])
        if all(p.unstable is not None for p in parts) else None,
    )


__all__ = ["EpisodeSource", "EpisodeStore", "StoreArrays", "open_stores"]
