"""Scan workers: separate processes ("spawn") that take jobs from the queue one at a time.

Each worker builds one :class:`~fakescope.inference.Scanner` and reuses it for every job,
reports progress into the queue and writes its outputs (heatmaps, thumbnails) to
``<data_dir>/jobs/<id>/``. A worker exits by itself within about half a second when the server
process dies (a watchdog thread compares ``os.getppid()`` with the server's pid), so killing
the server never leaves scanning orphans behind. The server-side :class:`WorkerPool` starts
them, restarts a worker that died, puts its job back in the queue (or fails it, and deletes its
upload, when workers crashed on it ``max_attempts`` times) and stops them on shutdown.

The processes, their restarts, the per-scan deadline (``scan_timeout_s``) and the memory cap
(``max_memory_mb``) are :class:`fakescope._supervisor.Supervisor`'s, as in ``fakescope batch``:
a worker that overruns either is killed and replaced, and its job fails with a reason in plain
words. A finished verdict is never thrown away for an extra: the scanner notes an optional
stage that failed (identity, evidence, heatmaps, thumbnails...), and when the job's folder for
face previews and heatmaps cannot be made the worker scans without them and adds its own note
(``result["notes"]``).
"""

from __future__ import annotations

import contextlib
import dataclasses
import importlib
import logging
import os
import re
import secrets
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Protocol

from fakescope._supervisor import (
    Lost,
    Policy,
    ProcessBackend,
    ProcessWorker,
    Supervisor,
    worker_process_init,
)
from fakescope.config import ScannerLike
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
_UPLOAD_NAME = re.compile(r"[0-9a-f]{32}\.[a-z0-9]{2,5}")


def remove_job_files(settings: ServerSettings, job: Job) -> None:
    """Delete a job's upload (if still there) and its output folder."""
    if _UPLOAD_NAME.fullmatch(job.upload):
        (settings.uploads_dir / job.upload).unlink(missing_ok=True)
    if JOB_ID.fullmatch(job.id):
        shutil.rmtree(settings.jobs_dir / job.id, ignore_errors=True)


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
        """Never claim a job for a server that is gone (mid-scan, the watchdog of
        :func:`~fakescope._supervisor.worker_process_init` ends the process)."""
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
            now = time.monotonic()
            if done < total and now - last < self.progress_every_s:
                return
            last = now
            # decoding and detection are most of the work; the rest happens after the last frame
            if not self.store.progress(claim, 0.95 * done / max(total, done, 1)):
                raise JobCancelled(f"job {claim.job.id} was deleted or taken over")

        return report


# -- the worker process -----------------------------------------------------------------------
def worker_main(
    settings: ServerSettings, worker_id: str, parent_pid: int, stop_reader: Connection
) -> None:
    """Entry point of a worker process (``stop_reader``: its end of the pool's pipe, which
    the server writes to or closes when the worker is to stop)."""
    os.umask(PRIVATE_UMASK)  # our own process: thumbnails and heatmaps are written 0600
    worker_process_init(parent_pid)
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
class WorkerPool:
    """``settings.workers`` worker processes under one :class:`Supervisor`, kept alive by
    :meth:`supervise`. The workers claim their jobs from the queue themselves; the pool learns
    from the queue which job each one runs, so the supervisor's deadline and memory cap apply
    to it."""

    restart_backoff_s = 10.0
    """A worker that died within this long of its start a second time in a row (it cannot
    start, say) is restarted only after this long; otherwise at once."""

    def __init__(self, settings: ServerSettings, store: JobStore) -> None:
        self.settings = settings
        self.store = store
        self.stopping = False
        self._lock = threading.Lock()
        self.workers: Supervisor[ProcessWorker, str] = Supervisor(
            ProcessBackend(worker_main, (settings,), "fakescope-worker", log),
            settings.workers,
            Policy(
                timeout_s=settings.scan_timeout_s,
                max_memory_bytes=settings.max_memory_bytes,
                ready_after_s=self.restart_backoff_s,
                max_quick_deaths=None,
                restart_backoff_s=self.restart_backoff_s,
                timeout_reason="The scan took longer than {limit:g} s, this server's limit "
                "per file, and was stopped.",
                memory_reason="The scan needed more memory than this server allows "
                "({rss_mb:.0f} MB, limit {limit_mb:.0f} MB) and was stopped.",
            ),
            what="server workers",
            names=lambda index, serial: f"w{index}-{secrets.token_hex(4)}",
            log=log,
        )

    def start(self) -> None:
        with self._lock:
            self.workers.start()

    def alive(self) -> list[str]:
        """Ids of the workers whose process is running."""
        return self.workers.alive()

    def pids(self) -> list[int]:
        return self.workers.pids()

    def supervise(self) -> None:
        """Restart dead workers, stop the scans over a limit (their job fails with the reason;
        the worker is replaced) and requeue the jobs of workers that are gone (blocking)."""
        with self._lock:
            if self.stopping:
                return
            self._follow_jobs()
            lost = self.workers.check(confirm=self._stop_job)
            # the server is alive, so these workers crashed (they did not exit because we died)
            requeued, failed = self.store.requeue_running(
                self.settings.max_attempts, keep=self.alive(), crashed=True
            )
        stopped = [item.task for item in lost if item.status != "crash" and item.task]
        for job_id in stopped:
            log.error("job %s stopped", job_id)
        for job_id in requeued:
            log.warning("job %s requeued: its worker is gone", job_id)
        for job_id in failed:
            log.error("job %s failed: its worker died too many times", job_id)
        for job_id in [*stopped, *failed]:
            job = self.store.get(job_id)
            if job is not None:
                remove_job_files(self.settings, job)  # the media is not kept once it is done

    def _follow_jobs(self) -> None:
        """Tell the supervisor which job each worker runs, and since when."""
        running = {job.worker: job for job in self.store.running()}
        wall, now = time.time(), time.monotonic()
        for index, slot in enumerate(self.workers.slots):
            job = running.get(slot.name)
            if job is None:
                self.workers.release(index)
            elif slot.task != job.id:
                started = wall if job.started_at is None else job.started_at
                self.workers.hand(index, job.id, since=now - (wall - started))

    def _stop_job(self, lost: Lost[str]) -> bool:
        """Fail the job of a worker about to be killed for a limit; False when the job is no
        longer that worker's (it finished meanwhile: nothing to kill)."""
        return lost.task is not None and self.store.stop_running(
            lost.task, lost.worker, lost.reason
        )

    def stop(self) -> None:
        """Ask every worker to stop, give it ``shutdown_grace_s`` to finish its scan, then
        terminate it; interrupted jobs go back to the queue without counting the attempt."""
        with self._lock:
            self.stopping = True
            if self.workers.stop(self.settings.shutdown_grace_s):
                self.store.requeue_running(self.settings.max_attempts, refund=True)
