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
"""

from __future__ import annotations

import tempfile
import threading
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any

from habc.errors import ConfigError
from habc.policy.backend import CONFIG_FILE, WEIGHTS_FILE


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
    with RayDispatcher(address, min(workers, len(items)), checkpoint, init, init_args, fn,
                       lambda item: item) as dispatcher:
        for future in as_completed([dispatcher.submit(item) for item in items]):
            yield future.result()


class RayDispatcher:
    """Run ``fn(prepare(item))`` on Ray workers for items submitted while it runs.

    Each of ``workers`` workers (one CPU each) first runs ``init(its copy of checkpoint or None,
    *init_args)``. ``submit`` queues an item and returns a future of its result; a worker that
    becomes idle takes the oldest queued item, and ``prepare(item)`` makes its argument at that
    moment, on this machine (in the thread that noticed the idle worker, so it must be cheap and
    thread-safe). Use it as a context manager: on exit the queued items are cancelled, the
    workers are stopped, and Ray is shut down if this object joined it.
    """

    def __init__(self, address: str, workers: int, checkpoint: Path | None,
                 init: Callable[..., None], init_args: tuple[Any, ...],
                 fn: Callable[[Any], Any], prepare: Callable[[Any], Any]) -> None:
        import ray

        self._started = connect(address)
        files = ray.put(checkpoint_files(checkpoint)) if checkpoint is not None else None
        worker_cls: Any = ray.remote(num_cpus=1)(RayWorker)
        self._actors: list[Any] = [worker_cls.remote(files, init, init_args)
                                   for _ in range(workers)]
        self._idle = deque(self._actors)
        self._queue: deque[tuple[Any, Future[Any]]] = deque()
        self._lock = threading.Lock()
        self._fn, self._prepare = fn, prepare

    def submit(self, item: Any) -> Future[Any]:
        """Queue ``item``; the future holds ``fn(prepare(item))`` once a worker has run it."""
        future: Future[Any] = Future()
        with self._lock:
            self._queue.append((item, future))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give queued items to idle workers."""
        while True:
            with self._lock:
                if not self._idle or not self._queue:
                    return
                actor, (item, future) = self._idle.popleft(), self._queue.popleft()
            if not future.set_running_or_notify_cancel():
                with self._lock:
                    self._idle.appendleft(actor)
                continue
            try:
                ref = actor.run.remote(self._fn, self._prepare(item))
            except Exception as e:  # the caller sees it through the future
                future.set_exception(e)
                with self._lock:
                    self._idle.append(actor)
                continue
            ref.future().add_done_callback(
                lambda done, actor=actor, future=future: self._finished(actor, future, done))

    def _finished(self, actor: Any, future: Future[Any], done: Future[Any]) -> None:
        """A worker returned: pass its result on, and give it the next item."""
        error = done.exception()
        if error is None:
            future.set_result(done.result())
        else:
            future.set_exception(error)
        with self._lock:
            self._idle.append(actor)
        self._dispatch()

    def __enter__(self) -> RayDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        with self._lock:
            queued, self._queue = list(self._queue), deque()
            self._idle.clear()  # nothing is dispatched any more
        for _, future in queued:
            future.cancel()
        for actor in self._actors:
            ray.kill(actor)
        if self._started:
            ray.shutdown()
