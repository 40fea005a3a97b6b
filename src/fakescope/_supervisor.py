"""One supervisor for every pool of scan workers: ``fakescope batch`` (local processes or Ray
actors) and the web server's workers.

A :class:`Supervisor` keeps ``workers`` slots, each with one worker that loads its models once
and scans one item at a time, and owns what the pools share:

- **slots**: which worker is ready, idle or busy with which item, and since when;
- **limits** (:class:`Policy`): a worker over the per-item deadline or over the resident-memory
  cap while it holds an item is killed (SIGKILL) and replaced; the item is reported lost as
  ``timeout`` or ``memory`` with a reason in the pool's words;
- **crash accounting**: a worker that dies by itself (a segfault, the OOM killer, ``kill -9``,
  a lost Ray node) is replaced and its item reported lost as ``crash``; the pool's owner
  decides what a lost item becomes (``fakescope batch`` records the attempt and retries it up
  to ``--retries`` times; the server requeues it and, after ``max_attempts``, fails it: "the
  worker died 3 times while scanning this file"), and the batch or queue goes on. Workers
  that die before they are ready (*quick deaths*) cannot start: after ``max_quick_deaths`` in
  a row :class:`~fakescope.errors.ModelError` stops a batch with the reason; the server
  instead waits ``restart_backoff_s`` before each further restart;
- **parent watch** (:func:`worker_process_init`, first thing in a worker process): SIGINT is
  ignored (Ctrl-C reaches the whole process group; the parent decides) and a watchdog thread
  ends the worker within half a second of its parent's death, so a killed batch or server
  leaves no scanning orphans.

Where workers run is a :class:`Backend`: :class:`ProcessBackend` ("spawn" processes, one pipe
each) or the Ray actors of :mod:`fakescope.batch._ray`. The pool moves the items: it hands
one to an idle slot (:meth:`Supervisor.hand`), says when it is done
(:meth:`Supervisor.release`) and calls :meth:`Supervisor.check` regularly.

Not a pool library: pebble's ``ProcessPool`` (per-task timeouts) and loky's reusable executor
do not fit. The server's workers are handed no tasks: each claims its jobs from the SQLite
queue and writes progress and results there itself. A batch needs each worker's ``ready``
message (the identity of the models it loaded is part of every resume key) before it plans.
The memory cap must kill the process holding a given item, and neither library tells which
process runs which task (loky has no per-task timeout at all); Ray actors are no processes of
ours; neither library watches its parent. Resident memory comes from
:func:`fakescope._runtime.rss_bytes` (``/proc`` on Linux, psutil where installed; psutil is no
dependency). The cap is on RSS, read from the parent, not ``RLIMIT_AS`` in the child: address
space is mostly reserved, not used (a scanner after one scan of ``examples/astronaut.mp4``
with one thread: VmSize 1,768 MB, VmRSS 453 MB; ``/proc/self/status`` read after
``Scanner(ScanConfig(threads=1)).scan(...)``).
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import signal
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from typing import Any, Generic, Protocol, TypeVar

from fakescope._runtime import rss_bytes
from fakescope.errors import ModelError

__all__ = [
    "Backend",
    "Lost",
    "Policy",
    "ProcessBackend",
    "ProcessWorker",
    "Slot",
    "Supervisor",
    "exit_reason",
    "limit_threads",
    "worker_process_init",
]

W = TypeVar("W")
"""A backend's worker handle."""
T = TypeVar("T")
"""What a worker holds: a batch's job, a server job's id."""

_SPAWN = multiprocessing.get_context("spawn")


# -- in the worker ----------------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def limit_threads(threads: int) -> None:
    """Keep OpenCV to the worker's share of the cores (onnxruntime gets ``config.threads``);
    ``threads <= 0`` leaves it alone."""
    if threads <= 0:
        return
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception:  # OpenCV missing or without thread control: nothing to limit
        pass


def worker_process_init(parent_pid: int, threads: int = 0) -> None:
    """First thing in a worker process: ignore SIGINT (the parent decides), exit within half
    a second of the parent's death (a watchdog thread), and limit OpenCV to ``threads``."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    limit_threads(threads)


# -- backends ---------------------------------------------------------------------------------
class Backend(Protocol[W]):
    """Where workers run: starts, inspects and ends them."""

    def start(self, name: str) -> W: ...

    def pid(self, worker: W) -> int | None:
        """The worker's process id, when known (for the memory cap)."""
        ...

    def exit_reason(self, worker: W) -> str | None:
        """None while the worker runs, else why it ended (``"killed by SIGKILL"``)."""
        ...

    def kill(self, worker: W) -> None:
        """End the worker at once and release what it holds."""
        ...

    def stop(self, workers: Sequence[W], grace_s: float) -> None:
        """Ask ``workers`` to finish, give them ``grace_s`` seconds, then end them."""
        ...


def exit_reason(code: int | None) -> str:
    """A process's exit code in words: ``"killed by SIGKILL"``, ``"exit code 70"``."""
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


@dataclass
class ProcessWorker:
    """A worker process and the parent's end of its pipe."""

    process: SpawnProcess
    conn: Connection


class ProcessBackend:
    """Workers as "spawn" processes running ``target(*args, name, parent_pid, conn)``, where
    ``conn`` is the worker's end of a duplex pipe (jobs and results for a batch; for the
    server, a stop signal only). Stopping sends ``None`` over the pipe and closes it (end of
    file), waits, then terminates and kills what is left. ``target`` must be picklable (a
    module-level function)."""

    def __init__(
        self,
        target: Callable[..., None],
        args: tuple[Any, ...],
        prefix: str,
        log: logging.Logger | None = None,
    ) -> None:
        self.target = target
        self.args = args
        self.prefix = prefix
        self.log = log

    def start(self, name: str) -> ProcessWorker:
        parent_end, child_end = _SPAWN.Pipe(duplex=True)
        process = _SPAWN.Process(
            target=self.target,
            args=(*self.args, name, os.getpid(), child_end),
            name=f"{self.prefix}-{name}",
            daemon=True,
        )
        process.start()
        child_end.close()  # the child has its own copy
        return ProcessWorker(process, parent_end)

    def pid(self, worker: ProcessWorker) -> int | None:
        return worker.process.pid

    def exit_reason(self, worker: ProcessWorker) -> str | None:
        code = worker.process.exitcode
        return None if code is None else exit_reason(code)

    def kill(self, worker: ProcessWorker) -> None:
        process = worker.process
        if process.exitcode is None:
            process.kill()
            process.join(5.0)
        _release(worker)

    def stop(self, workers: Sequence[ProcessWorker], grace_s: float) -> None:
        for worker in workers:
            with contextlib.suppress(OSError):  # already gone
                worker.conn.send(None)
            worker.conn.close()  # the worker sees end of file: it stops after this item
        deadline = time.monotonic() + grace_s
        for worker in workers:
            worker.process.join(max(0.0, deadline - time.monotonic()))
        for worker in workers:
            process = worker.process
            if process.exitcode is None:
                if self.log is not None:
                    self.log.warning("worker pid %s did not stop in time: ending it", process.pid)
                process.terminate()
                process.join(5.0)
            if process.exitcode is None:
                process.kill()
                process.join(5.0)
            _release(worker)


def _release(worker: ProcessWorker) -> None:
    worker.conn.close()
    if worker.process.exitcode is not None:  # a process that will not die keeps its handle
        worker.process.close()


# -- the supervisor ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Policy:
    """The limits of a pool and how it replaces its workers.

    ``timeout_s``, ``max_memory_bytes``: the per-item deadline and the RSS cap of a worker
    holding an item (None: none). ``start_timeout_s``: a worker not ready that long after its
    start is replaced (a quick death). ``ready_after_s``: a worker alive that long counts as
    ready (for workers that send no ``ready`` of their own). ``max_quick_deaths``: raise
    :class:`ModelError` after that many quick deaths in a row of one slot (None: never); from
    the second in a row on, a restart waits ``restart_backoff_s``. ``timeout_reason`` is
    formatted with ``limit`` (seconds), ``memory_reason`` with ``rss_mb`` and ``limit_mb``.
    """

    timeout_s: float | None = None
    max_memory_bytes: int | None = None
    start_timeout_s: float | None = None
    ready_after_s: float | None = None
    max_quick_deaths: int | None = 3
    restart_backoff_s: float = 0.0
    timeout_reason: str = "no result within {limit:g} s: worker killed"
    memory_reason: str = "the worker used {rss_mb:.0f} MB, over the {limit_mb:.0f} MB limit"


@dataclass
class Slot(Generic[W, T]):
    """One place for a worker."""

    name: str = ""
    worker: W | None = None
    ready: bool = False
    task: T | None = None
    since: float = 0.0
    """Monotonic time the task was handed over (or the worker started, while it loads)."""
    started: float = 0.0
    quick_deaths: int = 0
    """Deaths in a row of this slot's workers before they were ready."""
    restart_at: float = 0.0


@dataclass(frozen=True)
class Lost(Generic[T]):
    """A worker that died or was killed; ``task`` is what it held (None when it held
    nothing), ``status`` is ``crash``, ``timeout`` or ``memory``."""

    index: int
    worker: str
    task: T | None
    status: str
    reason: str


class Supervisor(Generic[W, T]):
    """``workers`` slots of ``backend`` workers under ``policy`` (see the module);
    ``names(index, serial)`` names each new worker, ``what`` the pool in an error."""

    def __init__(
        self,
        backend: Backend[W],
        workers: int,
        policy: Policy,
        what: str = "workers",
        names: Callable[[int, int], str] | None = None,
        log: logging.Logger | None = None,
    ) -> None:
        self.backend = backend
        self.policy = policy
        self.what = what
        self.names = names or (lambda index, serial: f"w{index}.{serial}")
        self.log = log
        self.slots: list[Slot[W, T]] = [Slot() for _ in range(workers)]
        self._serial = 0

    # -- the owner's side ------------------------------------------------------------------
    def start(self) -> None:
        """Start a worker in every slot."""
        for index in range(len(self.slots)):
            self._spawn(index)

    def idle(self) -> list[int]:
        """Slots whose worker is ready and holds nothing."""
        return [
            i
            for i, s in enumerate(self.slots)
            if s.worker is not None and s.ready and s.task is None
        ]

    def mark_ready(self, index: int) -> None:
        """The worker of slot ``index`` has loaded its models."""
        slot = self.slots[index]
        slot.ready, slot.quick_deaths = True, 0

    def hand(self, index: int, task: T, since: float | None = None) -> None:
        """Slot ``index``'s worker now holds ``task`` (its deadline runs from ``since``, a
        ``time.monotonic()`` value, default now)."""
        slot = self.slots[index]
        slot.task, slot.since = task, time.monotonic() if since is None else since

    def release(self, index: int) -> T | None:
        """Slot ``index``'s worker is done with its task (returned)."""
        slot = self.slots[index]
        task, slot.task = slot.task, None
        return task

    def lose(self, index: int, status: str, reason: str) -> Lost[T]:
        """The owner saw slot ``index``'s worker die (a Ray actor's error): replace it."""
        return self._lose(index, status, reason, time.monotonic())

    def check(
        self,
        before_loss: Callable[[int], None] | None = None,
        confirm: Callable[[Lost[T]], bool] | None = None,
    ) -> list[Lost[T]]:
        """Replace workers that died, that overran the deadline or the memory cap with a task
        in hand, or that did not start in time; start those whose restart was put off. Each
        worker lost is reported. ``before_loss(index)`` runs before a dead worker is
        reported (to read its last messages); ``confirm(lost)`` before a limit kill (False:
        the task just ended, the worker lives)."""
        now = time.monotonic()
        lost: list[Lost[T]] = []
        for index, slot in enumerate(self.slots):
            worker = slot.worker
            if worker is None:
                if now >= slot.restart_at:
                    self._spawn(index)
                continue
            ended = self.backend.exit_reason(worker)
            if ended is not None:
                if before_loss is not None:
                    before_loss(index)
                lost.append(self._lose(index, "crash", ended, now))
                continue
            over = self._over_limit(slot, now)
            if over is None:
                continue
            found = Lost(index, slot.name, slot.task, *over)
            if slot.task is None or confirm is None or confirm(found):
                lost.append(self._lose(index, over[0], over[1], now))
        return lost

    def stop(self, grace_s: float) -> int:
        """Ask every worker to finish within ``grace_s`` seconds, then end it; the number of
        workers there were."""
        workers = [s.worker for s in self.slots if s.worker is not None]
        self.backend.stop(workers, grace_s)
        for slot in self.slots:
            slot.worker, slot.ready, slot.task = None, False, None
        return len(workers)

    def alive(self) -> list[str]:
        """Names of the workers that run."""
        return [s.name for s in self.slots if s.worker is not None and self._runs(s.worker)]

    def pids(self, busy_only: bool = False) -> list[int]:
        """Process ids of the workers that run (or only of those holding a task)."""
        out = []
        for slot in self.slots:
            if slot.worker is None or (busy_only and slot.task is None):
                continue
            pid = self.backend.pid(slot.worker)
            if pid is not None and self._runs(slot.worker):
                out.append(pid)
        return out

    # -- inside ----------------------------------------------------------------------------
    def _runs(self, worker: W) -> bool:
        return self.backend.exit_reason(worker) is None

    def _spawn(self, index: int) -> None:
        slot = self.slots[index]
        self._serial += 1
        slot.name = self.names(index, self._serial)
        slot.worker = self.backend.start(slot.name)
        slot.ready, slot.task = False, None
        slot.started = slot.since = time.monotonic()
        if self.log is not None:
            self.log.info("started worker %s (pid %s)", slot.name, self.backend.pid(slot.worker))

    def _over_limit(self, slot: Slot[W, T], now: float) -> tuple[str, str] | None:
        """``(status, reason)`` when ``slot``'s worker must be killed, else None."""
        policy = self.policy
        if slot.task is None:
            if policy.ready_after_s is not None and now - slot.started >= policy.ready_after_s:
                slot.ready = True
            wait = policy.start_timeout_s
            late = not slot.ready and wait is not None and now - slot.started > wait
            return ("crash", "did not start in time") if late else None
        if policy.timeout_s is not None and now - slot.since > policy.timeout_s:
            return "timeout", policy.timeout_reason.format(limit=policy.timeout_s)
        cap = policy.max_memory_bytes
        pid = None if cap is None or slot.worker is None else self.backend.pid(slot.worker)
        rss = None if pid is None else rss_bytes(pid)
        if cap is not None and rss is not None and rss > cap:
            return "memory", policy.memory_reason.format(rss_mb=rss / 2**20, limit_mb=cap / 2**20)
        return None

    def _lose(self, index: int, status: str, reason: str, now: float) -> Lost[T]:
        """Kill (if needed) and replace slot ``index``'s worker: now, or after the backoff."""
        slot, policy = self.slots[index], self.policy
        found = Lost(index, slot.name, slot.task, status, reason)
        after = policy.ready_after_s
        ready = slot.ready or (after is not None and now - slot.started >= after)
        if self.log is not None:
            self.log.warning("worker %s ended (%s): %s", slot.name, status, reason)
        if slot.worker is not None:
            self.backend.kill(slot.worker)
        slot.worker, slot.ready, slot.task = None, False, None
        deliberate = status != "crash" and found.task is not None
        slot.quick_deaths = 0 if ready or deliberate else slot.quick_deaths + 1
        limit = policy.max_quick_deaths
        if limit is not None and slot.quick_deaths >= limit:
            raise ModelError(f"{self.what} cannot start: {found.worker} {reason}")
        slot.restart_at = now + (policy.restart_backoff_s if slot.quick_deaths > 1 else 0.0)
        if slot.restart_at <= now:
            self._spawn(index)
        return found
