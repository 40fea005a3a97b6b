"""The worker supervisor (:mod:`fakescope._supervisor`) on real "spawn" processes: a task over
the deadline or the memory cap kills only its worker, a crash is counted and the next task
runs, workers that cannot start stop the pool (or wait out a backoff), a worker outlives
neither a limit kill nor its parent.

The workers run :func:`task_worker` (spawned children import it from this module): it says
``ready`` and then runs each task it is sent, named by what it does: ``ok``, ``hang`` (never
returns), ``crash`` (kill -9 of itself), ``mem`` (holds 300 MB).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from collections.abc import Callable
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

import pytest

from fakescope._supervisor import (
    Lost,
    Policy,
    ProcessBackend,
    ProcessWorker,
    Supervisor,
    exit_reason,
    worker_process_init,
)
from fakescope.errors import ModelError


def task_worker(name: str, parent_pid: int, conn: Connection) -> None:
    worker_process_init(parent_pid)
    conn.send("ready")
    hog = b""
    while True:
        try:
            task = conn.recv()
        except (EOFError, OSError):
            return
        if task is None:
            return
        if task == "hang":
            time.sleep(3600)
        elif task == "crash":
            os.kill(os.getpid(), signal.SIGKILL)
        elif task == "mem":
            hog = b"\x01" * (300 * 2**20)  # written, so resident
            time.sleep(3600)
        conn.send(("done", task, len(hog)))


def dead_worker(name: str, parent_pid: int, conn: Connection) -> None:
    """A worker that cannot start: it exits before it is ready."""
    os._exit(3)


Pool = Supervisor[ProcessWorker, str]


class Owner:
    """What a pool does around a supervisor: hands out tasks, reads results."""

    def __init__(self, supervisor: Pool, tasks: list[str]) -> None:
        self.supervisor = supervisor
        self.tasks = list(tasks)
        self.done: list[tuple[str, str]] = []  # (worker, task)
        self.lost: list[Lost[str]] = []
        self.confirm: Callable[[Lost[str]], bool] | None = None

    def drain(self, index: int) -> None:
        slot = self.supervisor.slots[index]
        while slot.worker is not None:
            try:
                if not slot.worker.conn.poll():
                    return
                message = slot.worker.conn.recv()
            except (EOFError, OSError):
                return
            if message == "ready":
                self.supervisor.mark_ready(index)
            else:
                task = self.supervisor.release(index)
                assert task == message[1]
                self.done.append((slot.name, message[1]))

    def step(self) -> None:
        for index in range(len(self.supervisor.slots)):
            self.drain(index)
        self.lost += self.supervisor.check(before_loss=self.drain, confirm=self.confirm)
        for index in self.supervisor.idle():
            if not self.tasks:
                break
            task = self.tasks.pop(0)
            self.supervisor.hand(index, task)
            worker = self.supervisor.slots[index].worker
            assert worker is not None
            worker.conn.send(task)

    def run_until(self, finished: Callable[[], bool], timeout: float = 60.0) -> None:
        deadline = time.monotonic() + timeout
        while not finished():
            assert time.monotonic() < deadline, (self.done, self.lost)
            self.step()
            time.sleep(0.05)


def _supervisor(
    workers: int = 1,
    target: Callable[..., None] = task_worker,
    what: str = "workers",
    **policy: Any,
) -> Pool:
    backend = ProcessBackend(target, (), "fakescope-test")
    return Supervisor(backend, workers, Policy(start_timeout_s=120.0, **policy), what=what)


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # a zombie has exited: only its parent has not reaped it yet
    status = Path(f"/proc/{pid}/stat")
    return not (status.exists() and status.read_text().split(")")[-1].split()[0] == "Z")


def test_a_task_over_the_deadline_kills_only_its_worker() -> None:
    supervisor = _supervisor(2, timeout_s=2.0, timeout_reason="over {limit:g} s (--timeout)")
    owner = Owner(supervisor, [])
    supervisor.start()
    try:
        owner.run_until(lambda: len(supervisor.idle()) == 2)  # both loaded
        pids = supervisor.pids()
        owner.tasks = ["hang", "ok", "ok", "ok"]
        owner.run_until(lambda: len(owner.done) == 3 and len(owner.lost) == 1)
        (lost,) = owner.lost
        assert (lost.task, lost.status, lost.reason) == ("hang", "timeout", "over 2 s (--timeout)")
        assert lost.worker not in {worker for worker, _ in owner.done}  # the others went on
        survivor = [p for p in supervisor.pids() if p in pids]
        assert len(survivor) == 1, "the worker without the overdue task was replaced"
        assert [p for p in pids if p not in survivor and _running(p)] == []
        assert len(supervisor.pids()) == 2  # the killed one was replaced
        owner.tasks = ["ok", "ok"]  # the replacement works
        owner.run_until(lambda: len(owner.done) == 5)
        assert supervisor.slots[lost.index].quick_deaths == 0  # a limit kill is no quick death
    finally:
        supervisor.stop(grace_s=2.0)
    assert supervisor.pids() == []


def test_a_crashing_task_is_counted_and_the_next_task_runs() -> None:
    supervisor = _supervisor(1, timeout_s=60.0)
    owner = Owner(supervisor, ["crash", "ok", "crash", "ok"])
    supervisor.start()
    try:
        owner.run_until(lambda: len(owner.done) + len(owner.lost) == 4)
    finally:
        supervisor.stop(grace_s=2.0)
    assert [(lost.task, lost.status, lost.reason) for lost in owner.lost] == [
        ("crash", "crash", "killed by SIGKILL"),
        ("crash", "crash", "killed by SIGKILL"),
    ]
    assert [task for _, task in owner.done] == ["ok", "ok"]
    assert len({worker for worker, _ in owner.done}) == 2  # each on a new worker
    assert supervisor.slots[0].quick_deaths == 0  # the workers were ready: no quick deaths


def test_a_task_over_the_memory_cap_is_stopped() -> None:
    cap = 200 * 2**20
    supervisor = _supervisor(
        1,
        timeout_s=60.0,
        max_memory_bytes=cap,
        memory_reason="used {rss_mb:.0f} MB, over {limit_mb:.0f} MB",
    )
    owner = Owner(supervisor, ["ok", "mem", "ok"])
    supervisor.start()
    try:
        owner.run_until(lambda: len(owner.done) + len(owner.lost) == 3)
    finally:
        supervisor.stop(grace_s=2.0)
    (lost,) = owner.lost
    assert (lost.task, lost.status) == ("mem", "memory")
    used = int(lost.reason.split()[1])
    assert used > 200 and lost.reason.endswith("over 200 MB"), lost.reason
    assert [task for _, task in owner.done] == ["ok", "ok"]


def test_a_kill_the_owner_does_not_confirm_does_not_happen() -> None:
    supervisor = _supervisor(1, timeout_s=1.0)
    owner = Owner(supervisor, ["hang"])
    asked: list[Lost[str]] = []

    def refuse(lost: Lost[str]) -> bool:
        asked.append(lost)
        return False

    owner.confirm = refuse
    supervisor.start()
    try:
        owner.run_until(lambda: len(asked) >= 2)
        assert owner.lost == [] and supervisor.slots[0].task == "hang"
        assert asked[0].status == "timeout" and len(supervisor.pids()) == 1
    finally:
        supervisor.stop(grace_s=0.5)


def test_workers_that_cannot_start_stop_the_pool() -> None:
    supervisor = _supervisor(1, target=dead_worker, what="test workers")
    owner = Owner(supervisor, [])
    supervisor.start()
    with pytest.raises(ModelError, match=r"test workers cannot start: w0\.3 exit code 3"):
        owner.run_until(lambda: False)
    supervisor.stop(grace_s=0.5)


def test_without_a_quick_death_limit_restarts_back_off() -> None:
    supervisor = _supervisor(1, target=dead_worker, max_quick_deaths=None, restart_backoff_s=30.0)
    owner = Owner(supervisor, [])
    supervisor.start()
    try:
        owner.run_until(lambda: len(owner.lost) == 2)  # the second quick death in a row
        slot = supervisor.slots[0]
        assert slot.quick_deaths == 2 and slot.worker is None
        assert slot.restart_at - time.monotonic() > 20  # put off, not restarted at once
        owner.step()
        assert slot.worker is None and len(owner.lost) == 2
    finally:
        supervisor.stop(grace_s=0.5)


_ORPHAN = """
import sys, time
sys.path[:0] = {paths!r}
from test_supervisor import task_worker
from fakescope._supervisor import ProcessBackend
if __name__ == "__main__":
    worker = ProcessBackend(task_worker, (), "fakescope-test").start("w0")
    assert worker.conn.recv() == "ready"
    print(worker.process.pid, flush=True)
    time.sleep(3600)
"""


def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    script = tmp_path / "parent.py"
    paths = [str(Path(__file__).parent), *sys.path]
    script.write_text(textwrap.dedent(_ORPHAN.format(paths=paths)))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    try:
        assert parent.stdout is not None
        pid = int(parent.stdout.readline())
        assert _running(pid)
    finally:
        parent.kill()
        parent.wait()
    deadline = time.monotonic() + 10
    while _running(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _running(pid), "the worker outlived its parent"


def test_exit_codes_in_words() -> None:
    assert exit_reason(-9) == "killed by SIGKILL"
    assert exit_reason(70) == "exit code 70"
    assert exit_reason(-200) == "killed by signal 200"
