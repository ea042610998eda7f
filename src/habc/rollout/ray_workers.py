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
replaced, and its item goes back to the front of the queue for the next idle worker (which
calls ``prepare`` for it again): items are pure functions of their arguments (an episode of its
seed and policy), so a rerun returns what the lost run would have. Each rerun warns
(``RuntimeWarning``), and an item whose worker is lost ``MAX_ATTEMPTS`` times fails with
``WorkerLostError``. A replacement takes items once Ray has placed it; until then the
surviving workers do, so a cluster that lost capacity finishes on what it has left.
"""

from __future__ import annotations

import tempfile
import threading
import warnings
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from pathlib import Path
from typing import Any

from habc.errors import ConfigError
from habc.policy.backend import CONFIG_FILE, WEIGHTS_FILE

MAX_ATTEMPTS = 3
"""Runs of one item before the loss of its worker fails it."""


class WorkerLostError(RuntimeError):
    """An item's Ray worker was lost (process or node) on each of its ``MAX_ATTEMPTS`` runs."""


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


class RayDispatcher:
    """Run ``fn(prepare(item))`` on Ray workers for items submitted while it runs.

    Each of ``workers`` workers (one CPU each) first runs ``init(its copy of checkpoint or None,
    *init_args)``. ``submit`` queues an item and returns a future of its result; a worker that
    becomes idle takes the oldest queued item, and ``prepare(item)`` makes its argument at that
    moment, on this machine (in the thread that noticed the idle worker, so it must be cheap and
    thread-safe). A lost worker is replaced and its item rerun (see the module). Use it as a
    context manager: on exit the queued items are cancelled, the workers are stopped, and Ray is
    shut down if this object joined it.
    """

    def __init__(self, address: str, workers: int, checkpoint: Path | None,
                 init: Callable[..., None], init_args: tuple[Any, ...],
                 fn: Callable[[Any], Any], prepare: Callable[[Any], Any]) -> None:
        import ray

        self._started = connect(address)
        files = ray.put(checkpoint_files(checkpoint)) if checkpoint is not None else None
        worker_cls: Any = ray.remote(num_cpus=1)(RayWorker)
        self._new_worker = lambda: worker_cls.remote(files, init, init_args)
        self._actors: list[Any] = [self._new_worker() for _ in range(workers)]
        self._idle = deque(self._actors)
        # queued items: (item, its future, runs lost so far)
        self._queue: deque[tuple[Any, Future[Any], int]] = deque()
        self._lock = threading.Lock()
        self._closed = False
        self._lost = 0  # workers lost (they stay in _actors, to be stopped on exit)
        self._fn, self._prepare = fn, prepare

    def submit(self, item: Any) -> Future[Any]:
        """Queue ``item``; its future holds ``fn(prepare(item))``, or ``WorkerLostError``."""
        future: Future[Any] = Future()
        with self._lock:
            if self._lost == len(self._actors):
                future.set_exception(WorkerLostError("every Ray worker was lost"))
                return future
            self._queue.append((item, future, 0))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give queued items to idle workers."""
        while True:
            with self._lock:
                if not self._idle or not self._queue:
                    return
                actor, (item, future, lost) = self._idle.popleft(), self._queue.popleft()
            if lost == 0 and not future.set_running_or_notify_cancel():
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
                lambda done, actor=actor, queued=(item, future, lost):
                self._finished(actor, queued, done))

    def _finished(self, actor: Any, queued: tuple[Any, Future[Any], int],
                  done: Future[Any]) -> None:
        """A worker returned: pass its result on (or rerun a lost one), give it the next item."""
        item, future, lost = queued
        error = done.exception()
        if error is not None and worker_lost(error):
            with self._lock:
                self._lost += 1
            self._replace()
            if lost + 1 < MAX_ATTEMPTS:
                warnings.warn(f"a Ray worker was lost mid-item; the item runs again (run "
                              f"{lost + 2} of at most {MAX_ATTEMPTS}): {error}", RuntimeWarning,
                              stacklevel=1)
                with self._lock:
                    self._queue.appendleft((item, future, lost + 1))
            else:
                future.set_exception(WorkerLostError(
                    f"the Ray worker running an item was lost on each of its {MAX_ATTEMPTS} "
                    f"runs; the last time: {error}"))
        else:
            if error is None:
                future.set_result(done.result())
            else:
                future.set_exception(error)
            with self._lock:
                self._idle.append(actor)
        self._dispatch()

    def _replace(self) -> None:
        """Start a worker in place of a lost one; it takes items once Ray has placed it.

        The lost one is stopped on exit, with the others (``ray.kill`` would block Ray's
        callback thread, which runs this).
        """
        with self._lock:
            if self._closed:
                return
            actor = self._new_worker()
            self._actors.append(actor)
        actor.ready.remote().future().add_done_callback(
            lambda done: self._joined(actor, done))

    def _joined(self, actor: Any, done: Future[Any]) -> None:
        """A replacement worker is up, or was lost on its way up.

        One that is up takes items (an error of ``init`` shows on its first run, as for the
        first workers). One that was lost is not replaced again; once no worker is left, the
        queued items fail.
        """
        error = done.exception()
        if error is None or not worker_lost(error):
            with self._lock:
                if self._closed:
                    return
                self._idle.append(actor)
            self._dispatch()
            return
        with self._lock:
            if self._closed:
                return
            self._lost += 1
            queued = list(self._queue) if self._lost == len(self._actors) else []
            if queued:
                self._queue.clear()
        for _, future, _ in queued:
            if not future.done():  # not cancelled
                future.set_exception(WorkerLostError(f"every Ray worker was lost; the last: "
                                                     f"{error}"))

    def __enter__(self) -> RayDispatcher:
        return self

    def __exit__(self, *exc: object) -> None:
        import ray

        with self._lock:
            self._closed = True  # nothing is dispatched or replaced any more
            queued, self._queue = list(self._queue), deque()
            self._idle.clear()
            actors = list(self._actors)
        for _, future, _ in queued:
            future.cancel()
        for actor in actors:
            ray.kill(actor)
        if self._started:
            ray.shutdown()
