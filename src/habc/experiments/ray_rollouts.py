"""Rollouts on a Ray cluster: rollout workers on any machine, one episode store on the learner's.

The policy's checkpoint files travel through Ray's object store, so the workers need habc
installed but no shared file system. Each worker is a Ray actor that keeps its environment and
policy between episodes and returns whole ``Episode`` objects; the learner's process appends
them to the store as they arrive, so the store has one writer. An episode depends only on its
seed (the operator and the sampling noise are seeded per episode), so Ray workers collect the
same episodes as local worker processes.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from habc.episodes.episode import Episode
from habc.errors import ConfigError
from habc.policy.policy import CONFIG_FILE, WEIGHTS_FILE
from habc.rollout.operator import OperatorConfig


def checkpoint_files(directory: Path) -> dict[str, bytes]:
    """The files of a policy checkpoint directory, by name."""
    return {name: (Path(directory) / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}


class RayRolloutWorker:
    """One rollout worker (wrapped with ``ray.remote`` on use)."""

    def __init__(self, files: dict[str, bytes], task: str, operator: OperatorConfig, seed: int,
                 max_steps: int | None,
                 init: Callable[[Path, str, OperatorConfig, int, int | None], None]) -> None:
        """Write the checkpoint into a temporary directory and set the worker up with ``init``."""
        self._tmp = tempfile.TemporaryDirectory(prefix="habc-policy-")
        policy_dir = Path(self._tmp.name) / "policy"
        policy_dir.mkdir()
        for name, payload in files.items():
            (policy_dir / name).write_bytes(payload)
        init(policy_dir, task, operator, seed, max_steps)

    def rollout(self, env_seed: int, run: Callable[[int], Episode]) -> Episode:
        """The episode of ``env_seed``, run by ``run`` in this worker's process."""
        return run(env_seed)


def connect(address: str) -> bool:
    """Join Ray at ``address`` ('local' starts an instance on this machine).

    Returns:
        Whether this call started the connection (the caller then shuts it down).

    Raises:
        ConfigError: if Ray is not installed or the cluster cannot be reached.
    """
    try:
        import ray
    except ImportError as e:
        raise ConfigError("--ray-address needs Ray (pip install ray)") from e
    if ray.is_initialized():
        return False
    try:
        ray.init(address=None if address == "local" else address, include_dashboard=False,
                 log_to_driver=False, configure_logging=False)
    except (ConnectionError, RuntimeError, ValueError) as e:
        raise ConfigError(f"cannot join the Ray cluster at {address!r}: {e}") from e
    return True


def ray_episodes(address: str, workers: int, policy_dir: Path, seeds: Sequence[int],
                 worker_args: tuple[Any, ...],
                 init: Callable[[Path, str, OperatorConfig, int, int | None], None],
                 run: Callable[[int], Episode]) -> Iterator[Episode]:
    """Yield the episodes of ``seeds`` as Ray workers finish them; then stop the workers.

    Ray itself is shut down afterwards if this call joined it.

    ``worker_args``: (task, operator config, seed, max_steps) of ``init``; ``run(env_seed)``
    runs one episode in a worker set up by ``init``.
    """
    import ray
    from ray.util import ActorPool

    started = connect(address)
    files = ray.put(checkpoint_files(policy_dir))
    worker_cls: Any = ray.remote(num_cpus=1)(RayRolloutWorker)
    actors: list[Any] = [worker_cls.remote(files, *worker_args, init)
                         for _ in range(min(workers, len(seeds)))]
    try:
        pool: Any = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, s: actor.rollout.remote(s, run), list(seeds))
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
