"""Local scan workers for a batch: "spawn" processes, each with one scanner it reuses.

The design follows the server's workers (:mod:`fakescope.server`): one
:class:`~fakescope.inference.Scanner` per process built once, SIGINT ignored in the workers (the
parent decides), and a watchdog thread that ends a worker within half a second of its parent's
death, so a killed batch leaves no scanning orphans. Unlike the server there is no job queue on
disk: the parent hands each worker one item at a time over a pipe and is the only writer of
results. The parent also enforces the per-item deadline and the memory ceiling: a worker that
overruns either is killed (SIGKILL) and replaced, and its item is reported ``timeout`` or
``memory``; a worker that dies by itself (a segfault, the OOM killer, ``kill -9``) is replaced
and its item reported ``crash``.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

from fakescope._runtime import rss_bytes
from fakescope.batch._inputs import BatchItem, is_url, open_url
from fakescope.config import ScanConfig
from fakescope.errors import ModelError
from fakescope.types import Verdict

__all__ = [
    "Event",
    "Job",
    "LocalPool",
    "ScannerFactory",
    "ScannerLike",
    "scan_payload",
    "scanner_identity",
]

_CTX = multiprocessing.get_context("spawn")


class ScannerLike(Protocol):
    """What a worker needs from :class:`fakescope.inference.Scanner` (tests pass fakes)."""

    config: ScanConfig

    def scan(
        self, path: Path | str, progress: Callable[[int, int], None] | None = None
    ) -> Verdict: ...


ScannerFactory = Callable[[ScanConfig], ScannerLike]
"""Builds a worker's scanner from the batch's config; must be picklable (a module-level
function or class) since workers are spawned. The default is ``Scanner`` itself."""


@dataclass(frozen=True)
class Job:
    """One attempt at one item, as sent to a worker."""

    seq: int
    item: BatchItem


@dataclass
class Event:
    """What a pool reports from :meth:`LocalPool.poll`.

    ``kind`` is ``"ready"`` (a worker loaded its models: ``identity``), ``"done"`` (a scan
    finished: ``payload``) or ``"lost"`` (the worker died or was killed with ``job`` in hand:
    ``status`` ``crash``/``timeout``/``memory`` and ``reason``).
    """

    kind: str
    worker: str
    job: Job | None = None
    payload: dict[str, Any] = field(default_factory=dict)
    identity: dict[str, Any] = field(default_factory=dict)
    status: str = ""
    reason: str = ""


def _fakescope_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("fakescope")
    except PackageNotFoundError:
        return "unknown"


def scanner_identity(scanner: Any) -> dict[str, Any]:
    """The models behind a scanner's verdicts (name, sha256, version of the face detector
    weight and of the synthesis detector) and the fakescope version: part of every item key,
    so results of other weights are never mistaken for done."""

    def info(model: Any) -> dict[str, Any] | None:
        found = getattr(model, "info", None)
        return None if found is None else dict(found.to_dict())

    return {
        "detector": info(getattr(scanner, "detector", None)),
        "synthesis": info(getattr(scanner, "synthesis", None)),
        "fakescope": _fakescope_version(),
    }


def scan_payload(scanner: ScannerLike, item: BatchItem) -> dict[str, Any]:
    """Scan one item: its verdict as a JSON object and its ScoreTable rows (the item-level
    row, one per scored crop, one per evidence model and the synthesis row, as ``fakescope
    eval`` makes them), as JSON-safe lists. An exception becomes an ``error`` payload."""
    from fakescope.batch._store import row_values
    from fakescope.data import MediaItem
    from fakescope.evaluation import evidence_rows, overall_row, synthesis_row, verdict_rows

    start, cpu = time.perf_counter(), time.process_time()
    config = scanner.config
    try:
        verdict = _scan_url(scanner, item.path) if is_url(item.path) else scanner.scan(item.path)
        media = MediaItem(
            media_id=item.media_id,
            path=Path(item.path),
            label=item.label or "real",
            dataset=item.dataset,
            method=item.method if item.label else "real",
            identities=(),
            split=None,
            compression=item.compression or None,
            kind=item.kind,
        )
        rows = verdict_rows(media, config.detector, verdict)
        rows.extend(evidence_rows(media, verdict, config.evidence))
        synth = synthesis_row(media, verdict)
        rows.extend([] if synth is None else [synth])
        whole = overall_row(media, config.detector, verdict)
        rows.extend([] if whole is None else [whole])
        if item.label is None:  # unknown: the row says so (eval skips label -1)
            rows = [replace(r, label=-1, method="") for r in rows]
        data = verdict.to_dict()
        status = str(verdict.status)
    except Exception as exc:  # one bad item never stops the worker
        return {
            "status": "error",
            "reason": f"{type(exc).__name__}: {exc}",
            "elapsed_s": time.perf_counter() - start,
        }
    return {
        "status": status,
        "verdict": data,
        "rows": [row_values(r) for r in rows],
        "elapsed_s": time.perf_counter() - start,
        "cpu_s": time.process_time() - cpu,
    }


def _scan_url(scanner: ScannerLike, url: str) -> Verdict:
    """Scan a copy of ``url`` (fsspec) in a temporary file; the verdict names the URL."""
    suffix = Path(url.split("?", 1)[0]).suffix[:8]
    with tempfile.TemporaryDirectory(prefix="fakescope-batch-") as folder:
        local = Path(folder) / f"input{suffix}"
        with open_url(url) as src, open(local, "wb") as dst:
            shutil.copyfileobj(src, dst, 1 << 20)
        verdict = scanner.scan(local)
    return replace(verdict, path=url, reason=verdict.reason.replace(str(local), url))


# -- the worker process -----------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def _limit_threads(threads: int) -> None:
    """Keep OpenCV to the worker's share of the cores (onnxruntime gets ``config.threads``)."""
    if threads <= 0:
        return
    try:
        import cv2

        cv2.setNumThreads(threads)
    except Exception:  # OpenCV missing or without thread control: nothing to limit
        pass


def worker_main(
    conn: Connection, config: ScanConfig, factory: ScannerFactory | None, parent_pid: int
) -> None:
    """Entry point of a worker process: build the scanner, say ``ready``, then scan the jobs
    the parent sends until it sends None or goes away."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the parent decides
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    _limit_threads(config.threads)
    try:
        if factory is None:
            from fakescope.inference import Scanner

            scanner: ScannerLike = Scanner(config)
        else:
            scanner = factory(config)
        identity = scanner_identity(scanner)
    except Exception as exc:
        conn.send(("fatal", f"{type(exc).__name__}: {exc}"))
        return
    conn.send(("ready", identity))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return
        if job is None:
            return
        conn.send(("done", job.seq, scan_payload(scanner, job.item)))


# -- the parent's side ------------------------------------------------------------------------
@dataclass
class _Slot:
    name: str = ""
    process: SpawnProcess | None = None
    conn: Connection | None = None
    ready: bool = False
    job: Job | None = None
    since: float = 0.0
    """When the current job was sent (or the process started, while it loads)."""
    quick_deaths: int = 0


def _exit_reason(code: int | None) -> str:
    if code is not None and code < 0:
        try:
            return f"killed by {signal.Signals(-code).name}"
        except ValueError:
            return f"killed by signal {-code}"
    return f"exit code {code}"


class LocalPool:
    """``workers`` scan processes on this machine, kept alive by :meth:`poll`."""

    max_quick_deaths = 3
    """A worker slot whose process dies this many times in a row before it is ready means
    the scanner cannot start here: the batch stops with an error."""

    def __init__(
        self,
        config: ScanConfig,
        workers: int,
        timeout_s: float,
        max_memory_mb: float | None = None,
        factory: ScannerFactory | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        self.config = config
        self.timeout_s = timeout_s
        self.max_rss = None if not max_memory_mb else int(max_memory_mb * 1024 * 1024)
        self.factory = factory
        self.start_timeout_s = start_timeout_s
        self.slots = [_Slot() for _ in range(workers)]
        self._spawned = 0

    def _spawn(self, index: int) -> None:
        slot = self.slots[index]
        self._spawned += 1
        slot.name = f"w{index}.{self._spawned}"
        parent_end, child_end = _CTX.Pipe(duplex=True)
        process = _CTX.Process(
            target=worker_main,
            args=(child_end, self.config, self.factory, os.getpid()),
            name=f"fakescope-batch-{slot.name}",
            daemon=True,
        )
        process.start()
        child_end.close()
        slot.process, slot.conn = process, parent_end
        slot.ready, slot.job, slot.since = False, None, time.monotonic()

    def start(self) -> None:
        """Start every worker (each loads its models; :meth:`poll` reports ``ready``)."""
        for index in range(len(self.slots)):
            self._spawn(index)

    def idle(self) -> list[int]:
        """Slots whose worker is ready and has no job."""
        return [i for i, s in enumerate(self.slots) if s.ready and s.job is None]

    def busy(self) -> int:
        return sum(1 for s in self.slots if s.job is not None)

    def submit(self, index: int, job: Job) -> None:
        """Hand ``job`` to the idle worker of slot ``index``."""
        slot = self.slots[index]
        assert slot.conn is not None and slot.ready and slot.job is None
        slot.job, slot.since = job, time.monotonic()
        with contextlib.suppress(OSError):  # the worker just died: poll() reports the job lost
            slot.conn.send(job)

    def _kill(self, index: int) -> None:
        slot = self.slots[index]
        if slot.process is not None:
            if slot.process.is_alive():
                slot.process.kill()
            slot.process.join(5.0)
            slot.process.close()
        if slot.conn is not None:
            slot.conn.close()
        slot.process, slot.conn, slot.ready, slot.job = None, None, False, None

    def _replace(self, index: int, status: str, reason: str, events: list[Event]) -> None:
        """Kill (if needed) and restart slot ``index``; its job, if any, is ``lost``."""
        slot = self.slots[index]
        job, name, was_ready = slot.job, slot.name, slot.ready
        self._kill(index)
        if job is not None:
            events.append(Event("lost", name, job=job, status=status, reason=reason))
        slot.quick_deaths = 0 if was_ready else slot.quick_deaths + 1
        if slot.quick_deaths >= self.max_quick_deaths:
            raise ModelError(f"batch workers cannot start: worker {name} {reason}")
        self._spawn(index)

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for workers; report what happened, replacing dead,
        overdue and oversized workers."""
        handles: list[Any] = []
        for s in self.slots:
            if s.conn is not None and s.process is not None:
                handles.extend((s.conn, s.process.sentinel))
        if handles:
            wait(handles, timeout)
        events: list[Event] = []
        for index, slot in enumerate(self.slots):
            self._drain(index, events)
            process = slot.process
            if process is not None and not process.is_alive():
                self._drain(index, events)  # a message sent just before it ended
                self._replace(index, "crash", _exit_reason(process.exitcode), events)
        self._enforce(events)
        return events

    def _drain(self, index: int, events: list[Event]) -> None:
        slot = self.slots[index]
        while slot.conn is not None:
            try:
                if not slot.conn.poll():
                    return
                message = slot.conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "ready":
                slot.ready, slot.quick_deaths = True, 0
                events.append(Event("ready", slot.name, identity=message[1]))
            elif kind == "fatal":
                raise ModelError(f"batch worker cannot build its scanner: {message[1]}")
            elif kind == "done" and slot.job is not None and slot.job.seq == message[1]:
                events.append(Event("done", slot.name, job=slot.job, payload=message[2]))
                slot.job = None

    def _enforce(self, events: list[Event]) -> None:
        now = time.monotonic()
        for index, slot in enumerate(self.slots):
            if slot.process is None:
                continue
            if slot.job is None:
                if not slot.ready and now - slot.since > self.start_timeout_s:
                    self._replace(index, "crash", "did not start in time", events)
                continue
            if now - slot.since > self.timeout_s:
                reason = f"no result within {self.timeout_s:g} s (--timeout): worker killed"
                self._replace(index, "timeout", reason, events)
            elif self.max_rss is not None and slot.process.pid is not None:
                rss = rss_bytes(slot.process.pid)
                if rss is not None and rss > self.max_rss:
                    reason = (
                        f"the worker used {rss / 2**20:.0f} MB, over the "
                        f"{self.max_rss / 2**20:.0f} MB limit (--max-memory-mb): worker killed"
                    )
                    self._replace(index, "memory", reason, events)

    def stop(self) -> None:
        """Ask every worker to finish, then kill what is left."""
        for slot in self.slots:
            if slot.conn is not None:
                with contextlib.suppress(OSError):
                    slot.conn.send(None)
        deadline = time.monotonic() + 2.0
        for slot in self.slots:
            if slot.process is not None:
                slot.process.join(max(0.0, deadline - time.monotonic()))
        for index in range(len(self.slots)):
            self._kill(index)

    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return [
            s.process.pid
            for s in self.slots
            if s.process is not None and s.process.pid is not None and s.process.is_alive()
        ]
