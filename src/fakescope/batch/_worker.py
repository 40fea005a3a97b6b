"""Local scan workers for a batch: "spawn" processes, each with one scanner it reuses.

The processes, their limits and their replacement are :class:`fakescope._supervisor.Supervisor`'s
(shared with the Ray backend and the server): one :class:`~fakescope.inference.Scanner` per
process built once, a watchdog that ends a worker when its parent dies, the per-item deadline
and memory ceiling (a worker over either is killed and replaced, its item reported ``timeout``
or ``memory``), and a worker that dies by itself (a segfault, the OOM killer, ``kill -9``)
replaced with its item reported ``crash``. Unlike the server there is no job queue on disk: the
parent hands each worker one item at a time over its pipe and is the only writer of results.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from multiprocessing.connection import Connection, wait
from pathlib import Path
from typing import Any

from fakescope._supervisor import (
    Lost,
    Policy,
    ProcessBackend,
    ProcessWorker,
    Supervisor,
    worker_process_init,
)
from fakescope.batch._inputs import BatchItem, is_url, open_url
from fakescope.config import ScanConfig, ScannerLike
from fakescope.errors import ModelError
from fakescope.types import Verdict

__all__ = [
    "Event",
    "Job",
    "LocalPool",
    "ScannerFactory",
    "ScannerLike",
    "lost_events",
    "scan_payload",
    "scanner_identity",
]


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
            compression=item.compression or None,
            kind=item.kind if verdict.media is None else verdict.media.kind,
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


def lost_events(lost: Iterable[Lost[Job]]) -> list[Event]:
    """The supervisor's lost workers as ``lost`` events, for those that held a job."""
    return [
        Event("lost", item.worker, job=item.task, status=item.status, reason=item.reason)
        for item in lost
        if item.task is not None
    ]


# -- the worker process -----------------------------------------------------------------------
def worker_main(
    config: ScanConfig,
    factory: ScannerFactory | None,
    name: str,
    parent_pid: int,
    conn: Connection,
) -> None:
    """Entry point of a worker process: build the scanner, say ``ready``, then scan the jobs
    the parent sends until it sends None or goes away."""
    worker_process_init(parent_pid, config.threads)
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
class LocalPool:
    """``workers`` scan processes on this machine under one :class:`Supervisor`: the pool
    sends each job over the worker's pipe and reads back ``ready``, ``done`` and ``fatal``."""

    def __init__(
        self,
        config: ScanConfig,
        workers: int,
        timeout_s: float,
        max_memory_mb: float | None = None,
        factory: ScannerFactory | None = None,
        start_timeout_s: float = 300.0,
    ) -> None:
        self.workers: Supervisor[ProcessWorker, Job] = Supervisor(
            ProcessBackend(worker_main, (config, factory), "fakescope-batch"),
            workers,
            Policy(
                timeout_s=timeout_s,
                max_memory_bytes=None if not max_memory_mb else int(max_memory_mb * 2**20),
                start_timeout_s=start_timeout_s,
                timeout_reason="no result within {limit:g} s (--timeout): worker killed",
                memory_reason="the worker used {rss_mb:.0f} MB, over the {limit_mb:.0f} MB "
                "limit (--max-memory-mb): worker killed",
            ),
            what="batch workers",
        )

    def start(self) -> None:
        """Start every worker (each loads its models; :meth:`poll` reports ``ready``)."""
        self.workers.start()

    def idle(self) -> list[int]:
        """Slots whose worker is ready and has no job."""
        return self.workers.idle()

    def submit(self, index: int, job: Job) -> None:
        """Hand ``job`` to the idle worker of slot ``index``."""
        self.workers.hand(index, job)
        worker = self.workers.slots[index].worker
        assert worker is not None
        with contextlib.suppress(OSError):  # the worker just died: poll() reports the job lost
            worker.conn.send(job)

    def poll(self, timeout: float) -> list[Event]:
        """Wait up to ``timeout`` seconds for workers; report what happened, replacing dead,
        overdue and oversized workers."""
        handles: list[Any] = []
        for slot in self.workers.slots:
            if slot.worker is not None:
                handles.extend((slot.worker.conn, slot.worker.process.sentinel))
        if handles:
            wait(handles, timeout)
        events: list[Event] = []
        for index in range(len(self.workers.slots)):
            self._drain(index, events)
        # a dead worker's last message (sent just before it ended) is read before its loss
        events += lost_events(self.workers.check(lambda index: self._drain(index, events)))
        return events

    def _drain(self, index: int, events: list[Event]) -> None:
        slot = self.workers.slots[index]
        while slot.worker is not None:
            try:
                if not slot.worker.conn.poll():
                    return
                message = slot.worker.conn.recv()
            except (EOFError, OSError):
                return
            kind = message[0]
            if kind == "ready":
                self.workers.mark_ready(index)
                events.append(Event("ready", slot.name, identity=message[1]))
            elif kind == "fatal":
                raise ModelError(f"batch worker cannot build its scanner: {message[1]}")
            elif kind == "done" and slot.task is not None and slot.task.seq == message[1]:
                events.append(Event("done", slot.name, job=slot.task, payload=message[2]))
                self.workers.release(index)

    def stop(self) -> None:
        """Ask every worker to finish, then kill what is left."""
        self.workers.stop(grace_s=2.0)

    def pids(self) -> list[int]:
        """Process ids of the running workers (for tests and diagnostics)."""
        return self.workers.pids()
