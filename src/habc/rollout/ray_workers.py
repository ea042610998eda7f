"""Work on a Ray cluster: rollout and evaluation workers on any machine.

A policy checkpoint's files travel through Ray's object store, so the workers need habc
installed but no shared file system. Each worker is a Ray actor that keeps its environment and
policy between episodes (set up once by an ``init`` function, as a local worker process is) and
returns each item's result to the caller; the caller writes every file, so an episode store
keeps one writer. Episodes depend only on their seeds (the operator and the sampling noise are
seeded per episode), so Ray workers produce what local worker processes produce.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from habc.errors import ConfigError
from habc.policy.policy import CONFIG_FILE, WEIGHTS_FILE


def checkpoint_files(directory: Path) -> dict[str, bytes]:
    """The files of a policy checkpoint directory, by name."""
    return {name: (Path(directory) / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}


class RayWorker:
    """One worker (wrapped with ``ray.remote`` on use)."""

    def __init__(self, files: dict[str, bytes] | None, init: Callable[..., None],
                 init_args: tuple[Any, ...]) -> None:
        """Set the worker up: ``init(a copy of the checkpoint or None, *init_args)``.

        The checkpoint ``files`` (if any) are written to a temporary directory first.
        """
        self._tmp = tempfile.TemporaryDirectory(prefix="habc-policy-")
        policy_dir = None
        if files is not None:
            policy_dir = Path(self._tmp.name) / "policy"
            policy_dir.mkdir()
            for name, payload in files.items():
                (policy_dir / name).write_bytes(payload)
        init(policy_dir, *init_args)

    def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
        """``fn(item)`` in this worker's process."""
        return fn(item)


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


def ray_map(address: str, workers: int, checkpoint: Path | None, items: Sequence[Any],
            init: Callable[..., None], init_args: tuple[Any, ...],
            fn: Callable[[Any], Any]) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, in the order Ray workers finish them.

    Each of ``min(workers, len(items))`` workers (one CPU each) first runs
    ``init(its copy of checkpoint or None, *init_args)``. Afterwards the workers are stopped,
    and Ray is shut down if this call joined it.
    """
    import ray
    from ray.util import ActorPool

    started = connect(address)
    files = ray.put(checkpoint_files(checkpoint)) if checkpoint is not None else None
    worker_cls: Any = ray.remote(num_cpus=1)(RayWorker)
    actors: list[Any] = [worker_cls.remote(files, init, init_args)
                         for _ in range(min(workers, len(items)))]
    try:
        pool: Any = ActorPool(actors)
        yield from pool.map_unordered(lambda actor, item: actor.run.remote(fn, item), list(items))
    finally:
        for actor in actors:
            ray.kill(actor)
        if started:
            ray.shutdown()
