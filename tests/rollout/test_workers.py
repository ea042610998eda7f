"""Local worker processes: a lost process is replaced and its item rerun, like a Ray worker."""

import os
import signal
import time
from pathlib import Path

import pytest

from habc.rollout.workers import (
    MAX_ATTEMPTS,
    Dispatcher,
    LocalDispatcher,
    WorkerLostError,
    local_map,
)


def _lines(path: Path) -> list[str]:
    """The lines the workers have logged to ``path`` so far."""
    return path.read_text().splitlines() if path.exists() else []


def _log_pid(root: Path) -> None:
    with (root / "started").open("a") as log:
        log.write(f"{os.getpid()}\n")


def _dies_on_first_run(job: tuple[Path, str]) -> str:
    """Log the run; item 'b' kills its worker process on its first run, 'always' on each."""
    root, item = job
    with (root / f"{item}.runs").open("a") as log:
        log.write(f"{os.getpid()}\n")
    if item == "always" or (item == "b" and len(_lines(root / f"{item}.runs")) == 1):
        os._exit(1)
    return item


def test_a_lost_worker_process_is_replaced_and_its_item_rerun(tmp_path):
    with LocalDispatcher(2, _log_pid, (tmp_path,), _dies_on_first_run) as pool:
        with pytest.warns(RuntimeWarning, match=r"item runs again \(run 2 of at most 3\)"):
            runs = {item: pool.submit((tmp_path, item)) for item in ("a", "b", "c")}
            assert {item: f.result(timeout=60) for item, f in runs.items()} == \
                {"a": "a", "b": "b", "c": "c"}
        assert [len(_lines(tmp_path / f"{item}.runs")) for item in ("a", "b", "c")] == [1, 2, 1]
        first, second = _lines(tmp_path / "b.runs")
        assert first != second  # the rerun was in another process
        with pytest.warns(RuntimeWarning, match=r"item runs again \(run [23] of at most 3\)"), \
                pytest.raises(WorkerLostError, match=f"each of its {MAX_ATTEMPTS} runs"):
            pool.submit((tmp_path, "always")).result(timeout=60)
        assert len(_lines(tmp_path / "always.runs")) == MAX_ATTEMPTS
        assert pool.submit((tmp_path, "d")).result(timeout=60) == "d"  # the pool goes on
        # 2 workers, then a replacement for each of the 1 + 3 lost runs; 'd' may have run
        # before the last replacement came up, so wait for it before the pool stops
        deadline = time.monotonic() + 60
        while len(_lines(tmp_path / "started")) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
    started = _lines(tmp_path / "started")
    assert len(started) == 6 and len(set(started)) == 6
    for pid in map(int, started):  # every process is stopped on exit
        with pytest.raises(ProcessLookupError):
            os.kill(pid, 0)


def _sleep_then_echo(item: tuple[int, int]) -> tuple[int, int]:
    if item[0] < 0:
        raise ValueError("negative item")
    time.sleep(1.0 if item[0] == 0 else 0.0)
    return item


def _no_init() -> None:
    pass


def test_each_items_argument_is_made_when_a_worker_takes_it_and_errors_come_back():
    version = [0]  # what the caller publishes while the items run

    def prepare(item: int) -> tuple[int, int]:
        return item, version[0]

    with LocalDispatcher(1, _no_init, (), _sleep_then_echo, prepare) as pool:
        first, second = pool.submit(0), pool.submit(1)  # one worker: the second one waits
        version[0] = 1  # published while item 0 runs (it takes 1 s)
        assert first.result(timeout=60) == (0, 0) and second.result(timeout=60) == (1, 1)
        with pytest.raises(ValueError, match="negative"):  # an error of fn is not retried
            pool.submit(-1).result(timeout=60)
        assert pool.submit(2).result(timeout=60) == (2, 1)


def _fails_to_start(root: Path) -> None:
    _log_pid(root)
    raise RuntimeError("no simulator here")


def _echo(item: object) -> object:
    return item


def test_an_init_error_fails_each_item_without_losing_the_worker(tmp_path):
    with LocalDispatcher(1, _fails_to_start, (tmp_path,), _echo) as pool:
        for item in (0, 1):
            with pytest.raises(RuntimeError, match="no simulator here"):
                pool.submit(item).result(timeout=60)
    assert len(_lines(tmp_path / "started")) == 1


def _dies_if_marked(root: Path) -> None:
    if (root / "marked").exists():
        os._exit(1)


def _marks_and_dies_on_b(job: tuple[Path, str]) -> str:
    root, item = job
    if item == "b":
        (root / "marked").write_text("")
        os._exit(1)
    return item


def _check_every_worker_lost(pool: Dispatcher, root: Path, lost: str, timeout: float) -> None:
    """Run items 'a'-'d' on a one-worker ``pool`` whose worker ``_marks_and_dies_on_b`` and
    whose replacement ``_dies_if_marked``: 'a' passes, then every item fails with ``lost``."""
    assert pool.submit((root, "a")).result(timeout=timeout) == "a"
    with pytest.warns(RuntimeWarning, match="item runs again"):
        queued = [pool.submit((root, item)) for item in ("b", "c")]
        for future in queued:
            with pytest.raises(WorkerLostError, match=lost):
                future.result(timeout=timeout)
    with pytest.raises(WorkerLostError, match=lost):
        pool.submit((root, "d")).result(timeout=1)


def test_the_items_fail_once_every_worker_process_is_lost(tmp_path):
    """One worker; item 'b' kills it and leaves a marker that kills its replacement on the way
    up. Then no worker is left: the queued items fail, and so does any item submitted later."""
    with LocalDispatcher(1, _dies_if_marked, (tmp_path,), _marks_and_dies_on_b) as pool:
        _check_every_worker_lost(pool, tmp_path, "every worker process was lost", 60)


def _pid(item: int) -> tuple[int, int]:
    return item, os.getpid()


def test_local_map_survives_a_worker_killed_while_idle():
    """The kernel's out-of-memory killer can pick an idle worker: the next item it is given
    runs again on a replacement."""
    with LocalDispatcher(1, _no_init, (), _pid) as pool:
        _, pid = pool.submit(0).result(timeout=60)
        os.kill(pid, signal.SIGKILL)
        time.sleep(0.5)
        with pytest.warns(RuntimeWarning, match="worker process was lost"):
            item, other = pool.submit(1).result(timeout=60)
        assert item == 1 and other != pid
    assert sorted(local_map(2, list(range(5)), _no_init, (), _echo)) == [0, 1, 2, 3, 4]


def _nested(root: Path) -> None:
    """An experiment job's shape: a worker that runs workers of its own (one, which sleeps)."""
    for _ in local_map(1, [root], _no_init, (), _log_and_sleep):
        pass


def _log_and_sleep(root: Path) -> None:
    _log_pid(root)
    time.sleep(60)


def test_stopping_a_worker_stops_the_workers_it_started(tmp_path):
    with LocalDispatcher(1, _no_init, (), _nested) as pool:
        pool.submit(tmp_path)
        deadline = time.monotonic() + 60
        while not _lines(tmp_path / "started") and time.monotonic() < deadline:
            time.sleep(0.1)
    (grandchild,) = map(int, _lines(tmp_path / "started"))
    deadline = time.monotonic() + 20
    while _alive(grandchild) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(grandchild)


def _alive(pid: int) -> bool:
    """Whether process ``pid`` runs (a zombie, ended but not yet reaped, does not)."""
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0] != "Z"
    except FileNotFoundError:
        return False
