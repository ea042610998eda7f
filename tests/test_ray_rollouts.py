"""`habc online --ray-address local`: Ray workers collect the same episodes as local processes."""

from pathlib import Path

import numpy as np
import pytest
import ray

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError
from habc.experiments import online
from habc.experiments.online import OnlineConfig
from habc.experiments.ray_rollouts import ray_episodes
from tests.test_online_cli import TINY_ONLINE, TINY_POLICY


@pytest.fixture(scope="module")
def sft_checkpoint(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("sft")
    assert main(["collect", "--task", "reach", "--out", str(root / "demos"), "--num-episodes",
                 "2", "--max-steps", "150"]) == 0
    assert main(["train", "--datasets", str(root / "demos"), "--run-dir", str(root / "run"),
                 "--steps", "10", "--batch-size", "8", *TINY_POLICY]) == 0
    return root / "run/checkpoints/last"


def episodes_by_seed(root: Path) -> dict[int, tuple[np.ndarray, ...]]:
    arrays = EpisodeStore.open(root).read()
    return {int(arrays.seed[i]): tuple(getattr(arrays, f)[s:e] for f in
                                       ("state", "action", "controller", "policy_version"))
            for i, (s, e) in enumerate(zip(arrays.episode_starts, arrays.episode_ends,
                                           strict=True))}


def test_ray_workers_collect_the_episodes_local_workers_collect(sft_checkpoint, tmp_path,
                                                                monkeypatch):
    collected: list[int] = []

    def spy(*args, **kwargs):
        for episode in ray_episodes(*args, **kwargs):
            collected.append(episode.seed)
            yield episode

    monkeypatch.setattr(online, "ray_episodes", spy)
    runs = {}
    for name, extra in (("local", []), ("ray", ["--ray-address", "local"])):
        run = tmp_path / name
        args = ["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                "--method", "habc", "--rounds", "1", *TINY_ONLINE, *extra]
        if name == "ray":
            args += ["--workers", "2"]
        assert main(args) == 0
        runs[name] = episodes_by_seed(run / "rollouts")
    assert sorted(collected) == sorted(runs["ray"]) and not ray.is_initialized()
    assert sorted(runs["ray"]) == sorted(runs["local"]) and len(runs["ray"]) == 3
    for seed, fields in runs["local"].items():
        for mine, theirs in zip(runs["ray"][seed], fields, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_ray_collects_synchronous_rounds_only(sft_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--mode sync"):
        OnlineConfig(sft_checkpoint=sft_checkpoint, run_dir=tmp_path, method="habc",
                     mode="async", ray_address="local")
