"""Work on a Ray cluster: rollout and evaluation workers on any machine.

A policy checkpoint's files travel through Ray's object store, so the workers need habc
installed but no shared file system. Each worker is a Ray actor that keeps its environment and
policy between episodes (set up once by an ``init`` function, as a local worker process is) and
returns each item's result to the caller; the caller writes every file, so an episode store
keeps one writer. Episodes depend only on their seeds (the operator and the sampling noise are
seeded per episode), so Ray workers produce what local worker processes produce.

``ray_map`` runs a fixed list of items; ``RayDispatcher`` takes items while it runs (Hi-ORS's
asynchronous rollouts) and hands each to the next idle worker, with arguments made at that
moment, such as the newest published policy.

A worker whose process or node is lost mid-item (a crash, a preempted or removed machine) is
replaced and its item rerun, as for local worker processes (``habc.rollout.workers``).
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any

from habc.errors import ConfigError
from habc.policy.backend import CONFIG_FILE, WEIGHTS_FILE
from habc.rollout.workers import Dispatcher, Done


def checkpoint_files(directory: Path) -> dict[str, bytes]:
    """The files of a policy checkpoint directory, by name."""
    return {name: (Path(directory) / name).read_bytes() for name in (CONFIG_FILE, WEIGHTS_FILE)}


def write_checkpoint(files: dict[str, bytes], directory: Path) -> Path:
    """Write ``checkpoint_files``'s result into ``directory`` (created); return it."""
    directory.mkdir(parents=True)
    for name, payload in files.items():
        (directory / name).write_bytes(payload)
    return directory


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
            policy_dir = write_checkpoint(files, Path(self._tmp.name) / "policy")
        init(policy_dir, *init_args)

    def ready(self) -> None:
        """Return once ``__init__`` has run (a replacement worker takes items after this)."""

    def run(self, fn: Callable[[Any], Any], item: Any) -> Any:
        """``fn(item)`` in this worker's process."""
        return fn(item)


def worker_lost(error: BaseException) -> bool:
    """Whether a Ray call failed because its worker's process or node went away.

    An error raised by the item's function, or by the worker's ``init``, is not a loss: a
    rerun would raise it again.
    """
    from ray.exceptions import RayActorError

    return isinstance(error, RayActorError) and not error.actor_init_failed


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
    with RayDispatcher(address, min(workers, len(items)), checkpoint, init, init_args, fn,
                       lambda item: item) as dispatcher:
        for future in as_completed([dispatcher.submit(item) for item in items]):
            yield future.result()


class RayDispatcher(Dispatcher[Any]):
    """A ``Dispatcher`` whose workers are Ray actors, on any machine of the cluster.

    Each of ``workers`` workers (one CPU each) first runs ``init(its copy of checkpoint or None,
    *init_args)``. On exit Ray is also shut down if this object joined it.
    """

    worker_name = "Ray worker"

    def __init__(self, address: str, workers: int, checkpoint: Path | None,
                 init: Callable[..., None], init_args: tuple[Any, ...],
                 fn: Callable[[Any], Any], prepare: Callable[[Any], Any]) -> None:
        import ray

        self._started = connect(address)
        files = ray.put(checkpoint_files(checkpoint)) if checkpoint is not None else None
        self._worker_cls: Any = ray.remote(num_cpus=1)(RayWorker)
        self._worker_args = (files, init, init_args)
        super().__init__(workers, fn, prepare)

    def _start(self) -> Any:
        return self._worker_cls.remote(*self._worker_args)

    def _run(self, worker: Any, arg: Any, done: Done) -> None:
        def ended(call: Future[Any]) -> None:
            error = call.exception()
            done(None if error is not None else call.result(), error,
                 error is not None and worker_lost(error))

        worker.run.remote(self._fn, arg).future().add_done_callback(ended)

    def _when_up(self, worker: Any, up: Callable[[BaseException | None], None]) -> None:
        """Once Ray has placed it.

        An error of ``init`` is not a loss: it shows on the worker's first run, as for the first
        workers.
        """
        def ended(call: Future[Any]) -> None:
            error = call.exception()
            up(error if error is not None and worker_lost(error) else None)

        worker.ready.remote().future().add_done_callback(ended)

    def _stop(self, workers: list[Any]) -> None:
        """``ray.kill`` each (never from Ray's callback thread, where it would block)."""
        import ray

        for worker in workers:
            ray.kill(worker)
        if self._started:
            ray.shutdown()
