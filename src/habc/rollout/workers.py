"""Worker pools that survive losing a worker: local processes here, Ray workers in ray_workers.

Rollouts, evaluation trials and an experiment's jobs run in workers that keep their state
between items (an environment and a policy, set up once by an ``init`` function). A
``Dispatcher`` takes items while it runs and hands each to the next idle worker, with its
argument made at that moment (``prepare``: Hi-ORS's asynchronous rollouts take the newest
published policy there).

A worker whose process dies mid-item (a crash in the simulator, the kernel's out-of-memory
killer, a preempted or removed machine) is replaced, and its item goes back to the front of the
queue for the next idle worker (which calls ``prepare`` for it again): items are pure functions
of their arguments (an episode of its seed and policy), and a job resumes from what it has
written, so a rerun returns what the lost run would have. Each rerun warns
(``RuntimeWarning``), and an item whose worker is lost ``MAX_ATTEMPTS`` times fails with
``WorkerLostError``. A replacement takes items once it is up; until then the surviving workers
do. A replacement lost on its way up is not replaced again, and once every worker is lost the
queued items, and any submitted later, fail. An exception raised by the item's function, or by
the worker's ``init`` (on each item), is the item's result and is not retried: a rerun would
raise it again.

``LocalDispatcher`` runs the workers as spawned processes of this machine; ``local_map`` runs
a fixed list of items on them.
"""

from __future__ import annotations

import functools
import multiprocessing as mp
import signal
import threading
import warnings
from abc import ABC, abstractmethod
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, as_completed
from dataclasses import dataclass
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import Any, Generic, Self, TypeVar

from habc.errors import WorkerLostError

MAX_ATTEMPTS = 3
"""Runs of one item before the loss of its worker fails it."""

W = TypeVar("W")

Done = Callable[[Any, BaseException | None, bool], None]
"""``done(result, error, lost)``: how a worker's run ended (``lost``: its worker went away)."""


class Dispatcher(ABC, Generic[W]):
    """Run ``fn(prepare(item))`` on workers for items submitted while it runs.

    ``submit`` queues an item and returns a future of its result; a worker that becomes idle
    takes the oldest queued item, and ``prepare(item)`` makes its argument at that moment, on
    this machine (in whichever thread noticed the idle worker, so it must be cheap and
    thread-safe). A lost worker is replaced and its item rerun (see the module). Use it as a
    context manager: on exit the queued items are cancelled and the workers are stopped.

    Subclasses say how a worker starts (``_start``), runs an argument (``_run``), reports that
    it is up (``_when_up``) and stops (``_stop``).
    """

    worker_name = "worker"
    """What a worker is called in warnings and errors."""

    def __init__(self, workers: int, fn: Callable[[Any], Any],
                 prepare: Callable[[Any], Any]) -> None:
        self._fn, self._prepare = fn, prepare
        self._lock = threading.Lock()
        self._closed = False
        self._lost = 0  # workers lost (they stay in _workers, to be stopped on exit)
        # queued items: (item, its future, runs lost so far)
        self._queue: deque[tuple[Any, Future[Any], int]] = deque()
        self._workers: list[W] = [self._start() for _ in range(workers)]
        self._idle = deque(self._workers)

    @abstractmethod
    def _start(self) -> W:
        """Start a worker (it takes arguments for ``_run`` at once, and runs them once up)."""

    @abstractmethod
    def _run(self, worker: W, arg: Any, done: Done) -> None:
        """Start ``fn(arg)`` on ``worker``; call ``done`` when it ends (from any thread)."""

    @abstractmethod
    def _when_up(self, worker: W, up: Callable[[BaseException | None], None]) -> None:
        """Call ``up(None)`` once ``worker`` is up, or ``up(error)`` if it was lost first."""

    @abstractmethod
    def _stop(self, workers: list[W]) -> None:
        """Stop ``workers`` (on exit; lost ones included)."""

    def submit(self, item: Any) -> Future[Any]:
        """Queue ``item``; its future holds ``fn(prepare(item))``, or ``WorkerLostError``."""
        future: Future[Any] = Future()
        with self._lock:
            if self._lost == len(self._workers):
                future.set_exception(WorkerLostError(f"every {self.worker_name} was lost"))
                return future
            self._queue.append((item, future, 0))
        self._dispatch()
        return future

    def _dispatch(self) -> None:
        """Give queued items to idle workers."""
        while True:
            with self._lock:
                if self._closed or not self._idle or not self._queue:
                    return
                worker, (item, future, lost) = self._idle.popleft(), self._queue.popleft()
            if lost == 0 and not future.set_running_or_notify_cancel():
                with self._lock:
                    self._idle.appendleft(worker)
                continue
            try:
                self._run(worker, self._prepare(item),
                          functools.partial(self._finished, worker, (item, future, lost)))
            except Exception as e:  # the caller sees it through the future
                future.set_exception(e)
                with self._lock:
                    self._idle.append(worker)

    def _finished(self, worker: W, queued: tuple[Any, Future[Any], int], result: Any,
                  error: BaseException | None, lost: bool) -> None:
        """A worker returned: pass its result on (or rerun a lost one), give it the next item."""
        item, future, runs_lost = queued
        if lost:
            with self._lock:
                self._lost += 1
            self._replace()
            if runs_lost + 1 < MAX_ATTEMPTS:
                warnings.warn(f"a {self.worker_name} was lost mid-item; the item runs again "
                              f"(run {runs_lost + 2} of at most {MAX_ATTEMPTS}): {error}",
                              RuntimeWarning, stacklevel=1)
                with self._lock:
                    self._queue.appendleft((item, future, runs_lost + 1))
            else:
                future.set_exception(WorkerLostError(
                    f"the {self.worker_name} running an item was lost on each of its "
                    f"{MAX_ATTEMPTS} runs; the last time: {error}"))
        else:
            if error is None:
                future.set_result(result)
            else:
                future.set_exception(error)
            with self._lock:
                self._idle.append(worker)
        self._dispatch()

    def _replace(self) -> None:
        """Start a worker in place of a lost one; it takes items once it is up."""
        with self._lock:
            if self._closed:
                return
            worker = self._start()
            self._workers.append(worker)
        self._when_up(worker, lambda error: self._joined(worker, error))

    def _joined(self, worker: W, error: BaseException | None) -> None:
        """A replacement worker is up (``error`` None), or was lost on its way up.

        One that is up takes items. One that was lost is not replaced again; once no worker is
        left, the queued items fail.
        """
        with self._lock:
            if self._closed:
                return
            if error is None:
                self._idle.append(worker)
                queued = []
            else:
                self._lost += 1
                queued = list(self._queue) if self._lost == len(self._workers) else []
                if queued:
                    self._queue.clear()
        for _, future, _ in queued:
            if not future.done():  # not cancelled
                future.set_exception(WorkerLostError(
                    f"every {self.worker_name} was lost; the last: {error}"))
        self._dispatch()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc: object) -> None:
        with self._lock:
            self._closed = True  # nothing is dispatched or replaced any more
            queued, self._queue = list(self._queue), deque()
            self._idle.clear()
            workers = list(self._workers)
        for _, future, _ in queued:
            future.cancel()
        self._stop(workers)


# ------------------------------------------------------------------------- local processes
@dataclass(eq=False)
class _Process:
    """A local worker process, and what waits on it (guarded by the dispatcher's lock)."""

    process: BaseProcess
    conn: Connection
    done: Done | None = None  # the running item's
    up: Callable[[BaseException | None], None] | None = None
    is_up: bool = False
    dead: BaseException | None = None  # why it is gone


def _exit_on_sigterm(signum: int, frame: object) -> None:
    """Stop a worker process that its parent stops, as an exception.

    So the worker's own workers (an experiment job's rollout workers) are stopped on the way out.
    """
    raise SystemExit(128 + signum)


def _serve(conn: Connection, init: Callable[..., None], init_args: tuple[Any, ...],
           fn: Callable[[Any], Any]) -> None:
    """A worker process: ``init(*init_args)``, say it is up, then answer each argument.

    Answers are ``("ok", fn(arg))`` or ``("error", exception)``; an error of ``init`` answers
    every argument. The parent stops the process (Ctrl-C goes to the parent only, which sends
    SIGTERM); it also ends when the parent's end of the pipe closes.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    failed: Exception | None = None
    try:
        init(*init_args)
    except Exception as e:
        failed = e
    conn.send(("up", None))
    while True:
        try:
            arg = conn.recv()
        except EOFError:
            return
        try:
            if failed is not None:
                raise failed
            answer: tuple[str, Any] = ("ok", fn(arg))
        except Exception as e:
            answer = ("error", e)
        try:
            conn.send(answer)
        except (BrokenPipeError, ConnectionError, EOFError):  # the parent is gone
            return
        except Exception as e:  # the result or its error does not pickle
            conn.send(("error", RuntimeError(f"cannot send the result back: {e!r}")))


class LocalDispatcher(Dispatcher[_Process]):
    """A ``Dispatcher`` whose workers are spawned processes of this machine.

    Each process runs ``init(*init_args)`` once, then ``fn`` on each argument. A thread of
    this process watches the workers' pipes and process handles.
    """

    worker_name = "worker process"

    def __init__(self, workers: int, init: Callable[..., None], init_args: tuple[Any, ...],
                 fn: Callable[[Any], Any],
                 prepare: Callable[[Any], Any] = lambda item: item) -> None:
        self._context = mp.get_context("spawn")
        self._init, self._init_args = init, init_args
        super().__init__(workers, fn, prepare)
        self._watcher = threading.Thread(target=self._watch, name="habc-workers", daemon=True)
        self._watcher.start()

    def _start(self) -> _Process:
        parent, child = self._context.Pipe()
        process = self._context.Process(target=_serve, name="habc-worker",
                                        args=(child, self._init, self._init_args,
                                              self._fn))
        process.start()
        child.close()
        return _Process(process, parent)

    def _run(self, worker: _Process, arg: Any, done: Done) -> None:
        with self._lock:
            dead = worker.dead
            if dead is None:
                worker.done = done
        if dead is None:
            try:
                worker.conn.send(arg)
                return
            except (BrokenPipeError, ConnectionError, EOFError):
                return  # the watcher sees the process end and calls ``done``
            except Exception:  # the argument does not pickle: the worker stays idle
                with self._lock:
                    worker.done = None
                raise
        done(None, dead, True)

    def _when_up(self, worker: _Process, up: Callable[[BaseException | None], None]) -> None:
        with self._lock:
            state = "up" if worker.is_up else "dead" if worker.dead is not None else "starting"
            if state == "starting":
                worker.up = up
        if state != "starting":
            up(None if state == "up" else worker.dead)

    def _watch(self) -> None:
        """Pass the workers' answers on, and notice the processes that end."""
        while not self._closed:
            with self._lock:
                live = [w for w in self._workers if w.dead is None]
            by_handle: dict[Any, _Process] = {}
            for worker in live:
                by_handle[worker.conn] = by_handle[worker.process.sentinel] = worker
            for handle in wait(list(by_handle), timeout=0.2):
                worker = by_handle[handle]
                if worker.dead is not None:  # its pipe and its process both came up
                    continue
                ended = handle is worker.process.sentinel
                try:
                    while worker.conn.poll():  # what it sent before it ended, too
                        self._answer(worker, *worker.conn.recv())
                except (EOFError, OSError):
                    ended = True
                if ended:
                    self._ended(worker)

    def _answer(self, worker: _Process, kind: str, payload: Any) -> None:
        with self._lock:
            if kind == "up":
                worker.is_up, up, worker.up = True, worker.up, None
                done = None
            else:
                done, worker.done = worker.done, None
                up = None
        if up is not None:
            up(None)
        if done is not None and kind == "ok":
            done(payload, None, False)
        elif done is not None:
            done(None, payload, False)

    def _ended(self, worker: _Process) -> None:
        worker.process.join(timeout=5)
        error = WorkerLostError(f"process {worker.process.pid} ended "
                                f"(exit code {worker.process.exitcode})")
        with self._lock:
            worker.dead = error
            done, worker.done = worker.done, None
            up, worker.up = worker.up, None
        if done is not None:
            done(None, error, True)
        elif up is not None:
            up(error)

    def _stop(self, workers: list[_Process]) -> None:
        self._watcher.join()
        for worker in workers:
            if worker.process.is_alive():
                worker.process.terminate()
        for worker in workers:
            worker.process.join(timeout=10)
            worker.conn.close()


def local_map(workers: int, items: Sequence[Any], init: Callable[..., None],
              init_args: tuple[Any, ...], fn: Callable[[Any], Any]) -> Iterator[Any]:
    """Yield ``fn(item)`` for every item, in the order the worker processes finish them.

    Each of ``min(workers, len(items))`` processes first runs ``init(*init_args)``; afterwards
    they are stopped.
    """
    with LocalDispatcher(min(workers, len(items)), init, init_args, fn) as dispatcher:
        for future in as_completed([dispatcher.submit(item) for item in items]):
            yield future.result()
