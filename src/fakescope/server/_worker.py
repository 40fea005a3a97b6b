"""Scan workers: separate processes ("spawn") that take jobs from the queue one at a time.

Each worker builds one :class:`~fakescope.inference.Scanner` and reuses it for every job,
reports progress into the queue and writes its outputs (heatmaps, thumbnails) to
``<data_dir>/jobs/<id>/``. A worker exits by itself within about half a second when the server
process dies (a watchdog thread compares ``os.getppid()`` with the server's pid), so killing
the server never leaves scanning orphans behind. The server-side :class:`WorkerPool` starts
them, restarts a worker that died, puts its job back in the queue (or fails it, and deletes its
upload, when workers crashed on it ``max_attempts`` times) and stops them on shutdown.

Like ``fakescope batch`` (whose memory probe it reuses), the pool enforces a per-scan deadline
(``scan_timeout_s``) and a memory cap (``max_memory_mb``): a worker that overruns either is
killed and replaced, and its job fails with a reason in plain words. A finished verdict is
never thrown away for an extra: the scanner notes an optional stage that failed (identity,
evidence, heatmaps, thumbnails...), and when the job's folder for face previews and heatmaps
cannot be made the worker scans without them and adds its own note (``result["notes"]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from multiprocessing.context import SpawnProcess
from pathlib import Path
from typing import Any, Protocol

from fakescope.config import ScanConfig
from fakescope.server._files import PRIVATE_UMASK, private_dir
from fakescope.server._jobs import JOB_ID, Claim, Job, JobStore
from fakescope.server._settings import ServerSettings
from fakescope.types import Verdict

__all__ = [
    "JobCancelled",
    "JobRunner",
    "ScannerLike",
    "WorkerPool",
    "read_provenance_dict",
    "remove_job_files",
]

log = logging.getLogger("fakescope.server")

_CTX = multiprocessing.get_context("spawn")
_UPLOAD_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{2,5}")


def remove_job_files(settings: ServerSettings, job: Job) -> None:
    """Delete a job's upload (if still there) and its output folder."""
    if _UPLOAD_NAME.fullmatch(job.upload):
        (settings.uploads_dir / job.upload).unlink(missing_ok=True)
    if JOB_ID.fullmatch(job.id):
        shutil.rmtree(settings.jobs_dir / job.id, ignore_errors=True)


class ScannerLike(Protocol):
    """What a worker needs from :class:`fakescope.inference.Scanner` (tests pass fakes)."""

    config: ScanConfig

    def scan(
        self, path: Path | str, progress: Callable[[int, int], None] | None = None
    ) -> Verdict: ...


class StopSignal(Protocol):
    """``threading.Event`` or :class:`PipeStop`: when to stop taking jobs."""

    def is_set(self) -> bool: ...

    def wait(self, timeout: float | None = None) -> bool: ...


class PipeStop:
    """The stop signal of a worker process: the server writes to (or closes) its end of a
    pipe. Unlike a multiprocessing Event it needs no semaphore, and it also fires when the
    server dies (end of file)."""

    def __init__(self, reader: Connection) -> None:
        self.reader = reader
        self._set = False

    def is_set(self) -> bool:
        return self.wait(0.0)

    def wait(self, timeout: float | None = None) -> bool:
        if not self._set:
            try:
                self._set = self.reader.poll(timeout)
            except OSError:
                self._set = True
        return self._set


class JobCancelled(Exception):
    """Raised from the progress callback when the job is no longer ours (deleted or
    requeued): the scanner turns it into an error verdict, which is then discarded."""


def read_provenance_dict(path: Path) -> dict[str, Any] | None:
    """The C2PA provenance of ``path`` as a JSON object, or None when unavailable."""
    try:
        # fakescope.provenance (C2PA manifests, `read_provenance(path) -> Provenance` with
        # `.to_dict()`) was developed separately from the server; without it scans simply
        # carry no provenance. Imported by name so the type checker does not need it either.
        module = importlib.import_module("fakescope.provenance")
    except ImportError:
        return None
    try:
        data = module.read_provenance(path).to_dict()
    except Exception as exc:  # provenance is extra information: never fail a scan for it
        log.warning("could not read the provenance of %s: %s: %s", path, type(exc).__name__, exc)
        return None
    return dict(data) if isinstance(data, dict) else None


def stored_result(
    verdict: Verdict, filename: str, notes: list[str] | None = None
) -> dict[str, Any]:
    """``verdict.to_dict()`` as kept in the queue: ``path`` is the display name, face
    ``heatmap`` and ``thumbnail`` are bare file names inside the job's own folder, and
    ``notes`` adds the server's own (what it could not add) to the scanner's."""
    data = verdict.to_dict()
    data["path"] = filename
    for face in data["faces"]:
        for key in ("heatmap", "thumbnail"):
            face[key] = None if face.get(key) is None else Path(face[key]).name
    data["notes"] = [*data.get("notes", []), *(notes or [])]
    return data


@contextlib.contextmanager
def _swapped(scanner: Any, values: dict[str, Any]) -> Iterator[None]:
    """``scanner`` with the attributes in ``values`` (those it has) replaced, for one scan."""
    saved = {k: getattr(scanner, k) for k in values if hasattr(scanner, k)}
    for key in saved:
        setattr(scanner, key, values[key])
    try:
        yield
    finally:
        for key, value in saved.items():
            setattr(scanner, key, value)


@dataclass
class JobRunner:
    """Runs queued jobs with one scanner, in whichever process or thread calls it."""

    store: JobStore
    settings: ServerSettings
    scanner: ScannerLike
    worker_id: str
    has_maps: bool = False
    """The scanner's detector has a mask head: also write heatmaps."""
    parent_pid: int | None = None
    """Exit the process as soon as this is no longer our parent (the server died)."""
    progress_every_s: float = 0.2

    def run(self, stop: StopSignal) -> None:
        """Take and run jobs until ``stop`` is set."""
        while not stop.is_set():
            self.check_parent()
            if not self.run_once():
                stop.wait(self.settings.poll_interval_s)

    def check_parent(self) -> None:
        if self.parent_pid is not None and os.getppid() != self.parent_pid:
            os._exit(0)  # the server is gone: its next start requeues our job

    def run_once(self) -> bool:
        """Claim and run the oldest queued job; False when the queue was empty."""
        claim = self.store.claim(self.worker_id)
        if claim is None:
            return False
        self.process(claim)
        return True

    def process(self, claim: Claim) -> None:
        job = claim.job
        out_dir = self.settings.jobs_dir / job.id
        upload = self.settings.uploads_dir / job.upload
        log.info("scanning %s (%s), attempt %d", job.id, job.filename, job.attempts)
        try:
            verdict, notes = self.scan(claim, upload, out_dir)
            result = stored_result(verdict, job.filename, notes)
            provenance = read_provenance_dict(upload) if upload.exists() else None
            kept = self.store.finish(claim, result, provenance)
            if kept:
                log.info("done %s: %s, %s", job.id, result["status"], result["label"])
        except Exception as exc:  # the job failed, the worker goes on with the next one
            log.exception("job %s failed", job.id)
            kept = self.store.fail(claim, f"{type(exc).__name__}: {exc}")
        if not kept:  # deleted (or taken over) meanwhile: drop what we wrote
            log.info("discarded the result of %s: the job was deleted or taken over", job.id)
            if self.store.get(job.id) is None:
                shutil.rmtree(out_dir, ignore_errors=True)
            return
        upload.unlink(missing_ok=True)  # the result is stored: the media is not kept

    def scan(self, claim: Claim, upload: Path, out_dir: Path) -> tuple[Verdict, list[str]]:
        """Scan the job's upload with its images written to ``out_dir`` and its faces checked
        against its ``reference`` person; the verdict and the server's own notes on what it
        left out. The images are extras: when their folder cannot be made, the scan runs
        without them (the scanner itself notes an optional stage that fails)."""
        notes: list[str] = []
        try:
            private_dir(out_dir)
            images: Path | None = out_dir
        except OSError as exc:
            log.warning("job %s: no face previews or heatmaps: %s", claim.job.id, exc)
            notes.append(
                "Face previews and heatmaps could not be saved on the server "
                f"({type(exc).__name__}); the verdict does not depend on them."
            )
            images = None
        stages: dict[str, Any] = {}
        reference = claim.job.reference
        if reference is not None:
            stages["identifier"] = self._reference_identifier(reference)
        base = self.scanner.config
        self.scanner.config = dataclasses.replace(
            base,
            heatmaps_dir=str(images) if images is not None and self.has_maps else None,
            thumbnails_dir=None if images is None else str(images),
            reference=reference if reference is not None else base.reference,
        )
        try:
            with _swapped(self.scanner, stages):
                verdict = self.scanner.scan(upload, progress=self._reporter(claim))
        finally:
            self.scanner.config = base
        return verdict, notes

    def _reference_identifier(self, name: str) -> Any:
        """The scanner's identity stage, checking every face against ``name`` (the scanner
        has one whenever the server has a gallery, which an upload's ``reference`` needs)."""
        base = getattr(self.scanner, "identifier", None)
        gallery = self.scanner.config.gallery
        if base is None or gallery is None:
            raise RuntimeError("a reference check needs the server to have a gallery")
        from fakescope.identity import TrackIdentifier

        return TrackIdentifier(
            gallery, threshold=base.threshold, embedder=base.embedder, reference=name
        )

    def _reporter(self, claim: Claim) -> Callable[[int, int], None]:
        last = 0.0

        def report(done: int, total: int) -> None:
            nonlocal last
            self.check_parent()
            now = time.monotonic()
            if done < total and now - last < self.progress_every_s:
                return
            last = now
            # decoding and detection are most of the work; the rest happens after the last frame
            if not self.store.progress(claim, 0.95 * done / max(total, done, 1)):
                raise JobCancelled(f"job {claim.job.id} was deleted or taken over")

        return report


# -- the worker process -----------------------------------------------------------------------
def _watch_parent(parent_pid: int) -> None:
    while True:
        if os.getppid() != parent_pid:
            os._exit(0)
        time.sleep(0.5)


def worker_main(
    settings: ServerSettings, worker_id: str, parent_pid: int, stop_reader: Connection
) -> None:
    """Entry point of a worker process."""
    os.umask(PRIVATE_UMASK)  # our own process: thumbnails and heatmaps are written 0600
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C reaches the group: the server decides
    threading.Thread(target=_watch_parent, args=(parent_pid,), daemon=True).start()
    logging.basicConfig(
        level=logging.INFO, format=f"%(asctime)s fakescope worker {worker_id}: %(message)s"
    )
    from fakescope.inference import Scanner

    config = dataclasses.replace(settings.scan, heatmaps_dir=None, thumbnails_dir=None)
    scanner = Scanner(config)
    store = JobStore(settings.db_path)
    runner = JobRunner(
        store,
        settings,
        scanner,
        worker_id,
        has_maps=scanner.detector.has_maps,
        parent_pid=parent_pid,
    )
    log.info("ready (detector %s)", config.detector)
    try:
        runner.run(PipeStop(stop_reader))
    finally:
        store.close()


# -- the server's side ------------------------------------------------------------------------
@dataclass
class _Slot:
    process: SpawnProcess | None = None
    stop_writer: Connection | None = None
    worker_id: str = ""
    started: float = 0.0
    retry_at: float = 0.0
    quick_deaths: int = 0


class WorkerPool:
    """``settings.workers`` worker processes, kept alive by :meth:`supervise`."""

    restart_backoff_s = 10.0
    """A worker that died within this long of its start a second time in a row (it cannot
    start, say) is restarted only after this long; otherwise at once."""

    def __init__(self, settings: ServerSettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.stopping = False
        self.slots = [_Slot() for _ in range(settings.workers)]
        self._lock = threading.Lock()

    def _spawn(self, index: int) -> None:
        slot = self.slots[index]
        slot.worker_id = f"w{index}-{secrets.token_hex(4)}"
        reader, writer = _CTX.Pipe(duplex=False)
        process = _CTX.Process(
            target=worker_main,
            args=(self.settings, slot.worker_id, os.getpid(), reader),
            name=f"fakescope-worker-{slot.worker_id}",
            daemon=True,
        )
        process.start()
        reader.close()  # the child has its own copy
        slot.process, slot.stop_writer, slot.started = process, writer, time.monotonic()
        log.info("started worker %s (pid %s)", slot.worker_id, process.pid)

    def start(self) -> None:
        with self._lock:
            for index in range(len(self.slots)):
                self._spawn(index)

    def alive(self) -> list[str]:
        """Ids of the workers whose process is running."""
        return [s.worker_id for s in self.slots if s.process is not None and s.process.is_alive()]

    def pids(self) -> list[int]:
        return [
            s.process.pid
            for s in self.slots
            if s.process is not None and s.process.pid is not None and s.process.is_alive()
        ]

    def supervise(self) -> None:
        """Restart dead workers and requeue the jobs of workers that are gone (blocking)."""
        with self._lock:
            if self.stopping:
                return
            now = time.monotonic()
            for index, slot in enumerate(self.slots):
                process = slot.process
                if process is not None and process.exitcode is not None:
                    log.warning("worker %s exited with code %s", slot.worker_id, process.exitcode)
                    process.close()
                    self._close_pipe(slot)
                    slot.process = None
                    early = now - slot.started < self.restart_backoff_s
                    slot.quick_deaths = slot.quick_deaths + 1 if early else 0
                    backoff = self.restart_backoff_s if slot.quick_deaths > 1 else 0.0
                    slot.retry_at = now + backoff
                if slot.process is None and now >= slot.retry_at:
                    self._spawn(index)
            stopped = self._enforce_limits()
            # the server is alive, so these workers crashed (they did not exit because we died)
            requeued, failed = self.store.requeue_running(
                self.settings.max_attempts, keep=self.alive(), crashed=True
            )
        for job_id, reason in stopped:
            log.error("job %s stopped: %s", job_id, reason)
            job = self.store.get(job_id)
            if job is not None:
                remove_job_files(self.settings, job)
        for job_id in requeued:
            log.warning("job %s requeued: its worker is gone", job_id)
        for job_id in failed:
            log.error("job %s failed: its worker died too many times", job_id)
            job = self.store.get(job_id)
            if job is not None:
                remove_job_files(self.settings, job)  # the media is not kept once it is done

    def _enforce_limits(self) -> list[tuple[str, str]]:
        """Stop the scans that overran ``scan_timeout_s`` or whose worker's resident memory
        passed ``max_memory_mb`` (called with the lock held): each such job fails with the
        reason, then its worker is killed and replaced at once (a deliberate kill is no crash).
        Returns the stopped ``(job id, reason)``s."""
        limit = self.settings.scan_timeout_s
        cap = self.settings.max_memory_bytes
        slots = {s.worker_id: (i, s) for i, s in enumerate(self.slots) if s.process is not None}
        stopped: list[tuple[str, str]] = []
        now = time.time()
        for job in self.store.running():
            if job.worker not in slots:
                continue
            index, slot = slots[job.worker]
            if slot.process is None or not slot.process.is_alive():
                continue  # a dead worker's job: requeued (a crash) by supervise
            reason = None
            if job.started_at is not None and now - job.started_at > limit:
                reason = (
                    f"The scan took longer than {limit:g} s, this server's limit per file, "
                    "and was stopped."
                )
            elif cap is not None and slot.process.pid is not None:
                from fakescope._runtime import rss_bytes

                rss = rss_bytes(slot.process.pid)
                if rss is not None and rss > cap:
                    reason = (
                        f"The scan needed more memory than this server allows "
                        f"({rss / 2**20:.0f} MB, limit {cap / 2**20:.0f} MB) and was stopped."
                    )
            if reason is None or not self.store.stop_running(job.id, slot.worker_id, reason):
                continue
            stopped.append((job.id, reason))
            log.warning("killing worker %s: %s", slot.worker_id, reason)
            slot.process.kill()
            slot.process.join(5.0)
            if slot.process.is_alive():
                continue  # not gone yet: supervise restarts it once it has exited
            slot.process.close()
            self._close_pipe(slot)
            slot.process, slot.quick_deaths, slot.retry_at = None, 0, 0.0
            self._spawn(index)
        return stopped

    def stop(self) -> None:
        """Ask every worker to stop, give it ``shutdown_grace_s`` to finish its scan, then
        terminate it; interrupted jobs go back to the queue without counting the attempt."""
        with self._lock:
            self.stopping = True
            for slot in self.slots:
                self._close_pipe(slot)  # the worker sees end of file: stop after this job
            deadline = time.monotonic() + self.settings.shutdown_grace_s
            processes = [s.process for s in self.slots if s.process is not None]
            for process in processes:
                process.join(max(0.0, deadline - time.monotonic()))
            for process in processes:
                if process.is_alive():
                    log.warning("worker pid %s did not stop in time: terminating it", process.pid)
                    process.terminate()
                    process.join(5.0)
                if process.is_alive():
                    process.kill()
                    process.join(5.0)
                if not process.is_alive():
                    process.close()
            for slot in self.slots:
                slot.process = None
            if processes:
                self.store.requeue_running(self.settings.max_attempts, refund=True)

    @staticmethod
    def _close_pipe(slot: _Slot) -> None:
        if slot.stop_writer is not None:
            slot.stop_writer.close()
            slot.stop_writer = None
