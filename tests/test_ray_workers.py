"""`habc online --ray-address local`: Ray workers collect the same episodes and evaluation
trials as local processes."""

import json
from pathlib import Path

import numpy as np
import pytest
import ray

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.errors import ConfigError
from habc.evaluation import evaluate
from habc.experiments import online
from habc.experiments.online import OnlineConfig
from habc.rollout.ray_workers import ray_map
from tests.test_online_cli import TINY_ONLINE


def episodes_by_seed(root: Path) -> dict[int, tuple[np.ndarray, ...]]:
    arrays = EpisodeStore.open(root).read()
    return {int(arrays.seed[i]): tuple(getattr(arrays, f)[s:e] for f in
                                       ("state", "action", "controller", "policy_version"))
            for i, (s, e) in enumerate(zip(arrays.episode_starts, arrays.episode_ends,
                                           strict=True))}


def test_ray_workers_collect_the_episodes_and_trials_local_workers_do(sft_checkpoint, tmp_path,
                                                                monkeypatch):
    collected: list[object] = []

    def spy(*args, **kwargs):
        for result in ray_map(*args, **kwargs):
            collected.append(result)
            yield result

    monkeypatch.setattr(online, "ray_map", spy)
    monkeypatch.setattr(evaluate, "ray_map", spy)
    runs, trials = {}, {}
    for name, extra in (("local", []), ("ray", ["--ray-address", "local"])):
        run = tmp_path / name
        args = ["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                "--method", "habc", "--rounds", "1", *TINY_ONLINE, *extra]
        if name == "ray":
            args += ["--workers", "2"]
        assert main(args) == 0
        runs[name] = episodes_by_seed(run / "rollouts")
        trials[name] = [json.loads((run / f"eval/v{v:03d}.json").read_text())["trials"]
                        for v in (0, 1)]
    # the SFT's 2 evaluation trials, the round's 3 rollouts, then its 2 trials
    assert len(collected) == 7 and not ray.is_initialized()
    assert trials["ray"] == trials["local"]
    assert sorted(runs["ray"]) == sorted(runs["local"]) and len(runs["ray"]) == 3
    for seed, fields in runs["local"].items():
        for mine, theirs in zip(runs["ray"][seed], fields, strict=True):
            np.testing.assert_array_equal(mine, theirs)


def test_ray_collects_synchronous_rounds_only(sft_checkpoint, tmp_path):
    with pytest.raises(ConfigError, match="--mode sync"):
        OnlineConfig(sft_checkpoint=sft_checkpoint, run_dir=tmp_path, method="habc",
                     mode="async", ray_address="local")
