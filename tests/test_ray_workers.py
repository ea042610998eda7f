"""`habc online --ray-address local`: Ray workers collect the same episodes and evaluation
trials as local processes."""

import json
import os
import time
from pathlib import Path

import numpy as np
import pytest
import ray

from habc.cli import main
from habc.episodes.store import EpisodeStore
from habc.evaluation import evaluate
from habc.experiments import online
from habc.policy.backend import CONFIG_FILE, WEIGHTS_FILE
from habc.rollout.ray_workers import RayDispatcher, ray_map
from habc.rollout.workers import MAX_ATTEMPTS, WorkerLostError
from tests.rollout.test_workers import (
    _check_every_worker_lost,
    _dies_on_first_run,
    _lines,
    _marks_and_dies_on_b,
)
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


def test_async_rounds_on_ray_workers_use_the_newest_policy(sft_checkpoint, tmp_path):
    """Hi-ORS's asynchronous mode on Ray: round 1's episodes are the local workers' (both use
    v0), and each later episode comes from the policy published before its round may start."""
    stores = {}
    for name, extra in (("local", []), ("ray", ["--ray-address", "local"])):
        run = tmp_path / name
        assert main(["online", "--sft-checkpoint", str(sft_checkpoint), "--run-dir", str(run),
                     "--method", "habc", "--mode", "async", "--rounds", "2", *TINY_ONLINE,
                     "--workers", "2", "--async-refresh-every", "3", *extra]) == 0
        stores[name] = episodes_by_seed(run / "rollouts")
    assert not ray.is_initialized()
    assert sorted(stores["ray"]) == list(range(10_000, 10_006))
    for seed in range(10_000, 10_003):
        for mine, theirs in zip(stores["ray"][seed], stores["local"][seed], strict=True):
            np.testing.assert_array_equal(mine, theirs)
    # async_max_lag 0: round 2's episodes start once v1 is published, and use it
    versions = {seed: int(fields[3].max()) for seed, fields in stores["ray"].items()}
    assert versions == {s: 0 if s < 10_003 else 1 for s in range(10_000, 10_006)}
    record = json.loads((tmp_path / "ray/rounds/round_002.json").read_text())
    assert record["rollouts"]["episodes_by_policy_version"] == {"1": 3}


def test_dispatcher_makes_each_items_arguments_when_a_worker_takes_it(tmp_path):
    version = [0]  # what the caller publishes while the items run

    def prepare(item: int) -> tuple[int, int]:
        return item, version[0]

    with RayDispatcher("local", 1, _checkpoint(tmp_path), _no_init, (), _slow_echo,
                       prepare) as pool:
        first, second = pool.submit(0), pool.submit(1)  # one worker: the second one waits
        version[0] = 1  # published while item 0 runs (it takes 2 s)
        assert first.result(timeout=60) == (0, 0) and second.result(timeout=60) == (1, 1)
        failed = pool.submit(-1)
        with pytest.raises(ValueError, match="negative"):
            failed.result(timeout=60)
    assert not ray.is_initialized()


def _checkpoint(tmp_path: Path) -> Path:
    for name in (CONFIG_FILE, WEIGHTS_FILE):
        (tmp_path / name).write_bytes(b"x")
    return tmp_path


def _no_init(policy_dir: Path | None) -> None:
    assert policy_dir is not None and (policy_dir / WEIGHTS_FILE).read_bytes() == b"x"


def _slow_echo(item: tuple[int, int]) -> tuple[int, int]:
    if item[0] < 0:
        raise ValueError("negative item")
    time.sleep(2.0 if item[0] == 0 else 0.0)
    return item


def test_dispatcher_reruns_the_item_of_a_lost_worker(tmp_path):
    """A worker process that dies mid-item is replaced and the item rerun; an item that kills
    every worker it runs on fails after MAX_ATTEMPTS runs."""
    with RayDispatcher("local", 2, None, _no_checkpoint, (), _dies_on_first_run,
                       lambda item: item) as pool:
        with pytest.warns(RuntimeWarning, match=r"item runs again \(run 2 of at most 3\)"):
            runs = {item: pool.submit((tmp_path, item)) for item in ("a", "b", "c")}
            assert {item: f.result(timeout=120) for item, f in runs.items()} == \
                {"a": "a", "b": "b", "c": "c"}
        assert [len(_lines(tmp_path / f"{item}.runs")) for item in ("a", "b", "c")] == [1, 2, 1]
        with pytest.warns(RuntimeWarning, match=r"item runs again \(run [23] of at most 3\)"), \
                pytest.raises(WorkerLostError, match=f"each of its {MAX_ATTEMPTS} runs"):
            pool.submit((tmp_path, "always")).result(timeout=120)
        assert len(_lines(tmp_path / "always.runs")) == MAX_ATTEMPTS
        assert pool.submit((tmp_path, "d")).result(timeout=120) == "d"  # the pool goes on
    assert not ray.is_initialized()


def test_dispatcher_fails_the_items_once_every_worker_is_lost(tmp_path):
    """One worker; item 'b' kills it and leaves a marker that kills its replacement on the way
    up. Then no worker is left: the queued items fail, and so does any item submitted later."""
    with RayDispatcher("local", 1, None, _dies_if_marked, (tmp_path,), _marks_and_dies_on_b,
                       lambda item: item) as pool:
        _check_every_worker_lost(pool, tmp_path, "every Ray worker was lost", 120)
    assert not ray.is_initialized()


def _dies_if_marked(policy_dir: Path | None, root: Path) -> None:
    if (root / "marked").exists():
        os._exit(1)



def _no_checkpoint(policy_dir: Path | None) -> None:
    assert policy_dir is None




def test_ray_map_spreads_over_a_clusters_nodes_and_survives_losing_one(tmp_path):
    """Two nodes of one CPU each (Ray's ``cluster_utils``, on this machine): ``ray_map`` joins
    the cluster by address and puts a worker on each node; the second node is removed while it
    runs an item, and that item is rerun on the head node."""
    from ray.cluster_utils import Cluster

    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 1})
    try:
        second = cluster.add_node(num_cpus=1)
        cluster.wait_for_nodes()
        head_id, second_id = (node.node_id for node in (cluster.head_node, second))
        items = [(tmp_path, i, head_id) for i in range(4)]
        results = ray_map(cluster.address, 2, None, items, _no_checkpoint, (), _node_of_run)
        first = next(results)  # the head's first item, once the second node has one
        started = {line.split()[1] for line in _lines(tmp_path / "started")}
        assert started == {head_id, second_id}
        with pytest.warns(RuntimeWarning, match="item runs again"):
            cluster.remove_node(second)
            done = [first, *results]
        assert not ray.is_initialized()
    finally:
        cluster.shutdown()
    assert sorted(item for item, _ in done) == [0, 1, 2, 3]
    lost = [int(line.split()[0]) for line in _lines(tmp_path / "started")
            if line.split()[1] == second_id]
    assert len(lost) == 1 and dict(done)[lost[0]] == head_id  # rerun on the head node
    assert {node for _, node in done} == {head_id}


def _node_of_run(job: tuple[Path, int, str]) -> tuple[int, str]:
    """Log 'item node' on start; on the head node, return once two items have started; on
    another node, wait (for the node's removal)."""
    root, item, head = job
    node = ray.get_runtime_context().get_node_id()
    with (root / "started").open("a") as log:
        log.write(f"{item} {node}\n")
    while node != head or len(_lines(root / "started")) < 2:
        time.sleep(0.1)
    return item, node
