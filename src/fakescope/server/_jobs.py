"""The job queue: one SQLite table shared by the server and its worker processes.

Every process (and every thread) opens its own connection (WAL journal, ``busy_timeout``).
A worker claims a job atomically (``UPDATE ... RETURNING``) and gets a fresh claim token;
its later writes (progress, result, failure) only land while the row still carries that
token and is ``running``, so a job that was deleted, requeued or reclaimed in the meantime
silently drops a stale worker's late writes.

``attempts`` counts how many times a job was started, ``crashes`` how many times its worker
died under it while the server was alive. Only crashes make a job fail: a server that was
killed or restarted requeues its jobs without counting them (its workers exit by design when
it dies, so their death says nothing about the file).
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from fakescope.server._files import private_dir, private_file

__all__ = [
    "JOB_ID",
    "Claim",
    "DataDirBusy",
    "DataDirLock",
    "Job",
    "JobStatus",
    "JobStore",
    "iso_utc",
    "new_job_id",
]

JobStatus = Literal["queued", "running", "done", "failed"]
JOB_ID = re.compile(r"[0-9a-f]{32}")
"""What a job id looks like: 32 lowercase hex digits (128 random bits)."""

_SCHEMA = """
CREATE TABLE IF NOT EXISTS jobs (
    id TEXT PRIMARY KEY,
    status TEXT NOT NULL CHECK (status IN ('queued', 'running', 'done', 'failed')),
    progress REAL NOT NULL DEFAULT 0,
    filename TEXT NOT NULL,
    upload TEXT NOT NULL,
    created_at REAL NOT NULL,
    updated_at REAL NOT NULL,
    attempts INTEGER NOT NULL DEFAULT 0,
    crashes INTEGER NOT NULL DEFAULT 0,
    worker TEXT,
    claim TEXT,
    error TEXT,
    result TEXT,
    provenance TEXT,
    label TEXT,
    fake_probability REAL,
    reference TEXT,
    started_at REAL
);
CREATE INDEX IF NOT EXISTS jobs_status_created ON jobs (status, created_at);
CREATE INDEX IF NOT EXISTS jobs_created ON jobs (created_at);
"""

_COLUMNS = (
    "id, status, progress, filename, upload, created_at, updated_at, attempts, crashes, "
    "worker, error, result, provenance, label, fake_probability, reference, started_at"
)


def new_job_id() -> str:
    """A fresh random job id (32 lowercase hex digits)."""
    return secrets.token_hex(16)


def iso_utc(ts: float) -> str:
    """``ts`` (seconds since the epoch) as ISO 8601 UTC with milliseconds and a ``Z``."""
    text = datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds")
    return text.replace("+00:00", "Z")


@dataclass(frozen=True)
class Job:
    """One row of the queue. ``result`` and ``provenance`` are decoded JSON objects."""

    id: str
    status: JobStatus
    progress: float
    filename: str
    upload: str
    """File name of the upload inside ``<data_dir>/uploads`` (``<id>.<ext>``)."""
    created_at: float
    updated_at: float
    attempts: int
    """How many times a worker started scanning it."""
    crashes: int
    """How many times its worker died while scanning it (with the server alive)."""
    worker: str | None
    error: str | None
    result: dict[str, Any] | None
    provenance: dict[str, Any] | None
    label: str | None
    fake_probability: float | None
    reference: str | None = None
    """The gallery person the upload's faces are checked against (``reference`` field)."""
    started_at: float | None = None
    """When a worker last took it (None while it never ran): the per-scan deadline's start."""

    @classmethod
    def from_row(cls, row: sqlite3.Row) -> Job:
        """A row of :data:`_COLUMNS` (the times and progress as floats: ``RETURNING`` gives
        a value set to 0 as an int)."""
        data = dict(zip(row.keys(), row, strict=True))
        for key in ("progress", "created_at", "updated_at", "started_at"):
            data[key] = None if data[key] is None else float(data[key])
        for key in ("result", "provenance"):
            data[key] = None if data[key] is None else json.loads(data[key])
        return cls(**data)


@dataclass(frozen=True)
class Claim:
    """A job handed to a worker: ``token`` must accompany every write about it."""

    job: Job
    token: str


class JobStore:
    """The queue in ``path`` (created on first use). Safe to share between threads: each
    thread lazily opens its own connection. Do not share an instance across processes:
    build one in each process instead."""

    def __init__(self, path: Path, busy_timeout_s: float = 30.0) -> None:
        self.path = Path(path)
        self.busy_timeout_s = busy_timeout_s
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        private_dir(self.path.parent, existing=False)
        private_file(self.path)  # before SQLite creates it 0644 (its -wal/-shm copy the mode)
        self._connection().executescript(_SCHEMA)  # idempotent; runs in its own transaction
        self._migrate()

    # -- connections ---------------------------------------------------------------------
    def _connection(self) -> sqlite3.Connection:
        db: sqlite3.Connection | None = getattr(self._local, "db", None)
        if db is None:
            # used by this thread only; check_same_thread=False lets close() run elsewhere
            db = sqlite3.connect(
                self.path,
                timeout=self.busy_timeout_s,
                isolation_level=None,
                check_same_thread=False,
            )
            db.row_factory = sqlite3.Row
            db.execute(f"PRAGMA busy_timeout = {int(self.busy_timeout_s * 1000)}")
            db.execute("PRAGMA journal_mode = WAL")
            db.execute("PRAGMA synchronous = NORMAL")
            self._local.db = db
            with self._lock:
                self._all.append(db)
        return db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction (``BEGIN IMMEDIATE``: the write lock is taken up front)."""
        db = self._connection()
        db.execute("BEGIN IMMEDIATE")
        try:
            yield db
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")

    def _migrate(self) -> None:
        """Add the columns a queue written by an older version lacks."""
        with self._tx() as db:
            columns = {row[1] for row in db.execute("PRAGMA table_info(jobs)")}
            if "crashes" not in columns:
                db.execute("ALTER TABLE jobs ADD COLUMN crashes INTEGER NOT NULL DEFAULT 0")
            for name, kind in (("reference", "TEXT"), ("started_at", "REAL")):
                if name not in columns:
                    db.execute(f"ALTER TABLE jobs ADD COLUMN {name} {kind}")

    def close(self) -> None:
        """Close every connection this instance opened (call once no thread uses it)."""
        with self._lock:
            for db in self._all:
                db.close()
            self._all.clear()
        self._local = threading.local()

    # -- the server's side ---------------------------------------------------------------
    def create(self, job_id: str, filename: str, upload: str, reference: str | None = None) -> Job:
        """Queue a new job for the file ``uploads/<upload>``, shown as ``filename``; its faces
        are checked against the gallery person ``reference`` when given."""
        now = time.time()
        with self._tx() as db:
            db.execute(
                "INSERT INTO jobs (id, status, filename, upload, created_at, updated_at, "
                "reference) VALUES (?, 'queued', ?, ?, ?, ?, ?)",
                (job_id, filename, upload, now, now, reference),
            )
        job = self.get(job_id)
        assert job is not None
        return job

    def get(self, job_id: str) -> Job | None:
        row = (
            self._connection()
            .execute(f"SELECT {_COLUMNS} FROM jobs WHERE id = ?", (job_id,))
            .fetchone()
        )
        return None if row is None else Job.from_row(row)

    def recent(self, limit: int = 20) -> list[Job]:
        """The newest ``limit`` jobs, newest first."""
        rows = (
            self._connection()
            .execute(
                f"SELECT {_COLUMNS} FROM jobs ORDER BY created_at DESC, rowid DESC LIMIT ?",
                (limit,),
            )
            .fetchall()
        )
        return [Job.from_row(r) for r in rows]

    def counts(self) -> dict[str, int]:
        """How many jobs are in each status (all four keys always present)."""
        out = dict.fromkeys(("queued", "running", "done", "failed"), 0)
        for row in self._connection().execute("SELECT status, COUNT(*) FROM jobs GROUP BY status"):
            out[row[0]] = int(row[1])
        return out

    def delete(self, job_id: str) -> Job | None:
        """Remove the row; returns what it was (None when unknown). Files are the caller's."""
        with self._tx() as db:
            row = db.execute(
                f"DELETE FROM jobs WHERE id = ? RETURNING {_COLUMNS}", (job_id,)
            ).fetchone()
        return None if row is None else Job.from_row(row)

    def expired(self, before: float) -> list[str]:
        """Ids of the jobs created before ``before`` (seconds since the epoch)."""
        rows = self._connection().execute("SELECT id FROM jobs WHERE created_at < ?", (before,))
        return [r[0] for r in rows]

    def ids(self) -> set[str]:
        return {r[0] for r in self._connection().execute("SELECT id FROM jobs")}

    def running(self) -> list[Job]:
        """The jobs being scanned now (their ``worker`` and ``started_at`` say by whom and
        since when)."""
        rows = self._connection().execute(
            f"SELECT {_COLUMNS} FROM jobs WHERE status = 'running' ORDER BY started_at"
        )
        return [Job.from_row(r) for r in rows]

    def stop_running(self, job_id: str, worker: str, error: str) -> bool:
        """Mark the job that ``worker`` is scanning failed with ``error`` (the server stops it:
        a deadline or the memory cap); its worker's claim dies with it. False when the job is
        no longer that worker's (it finished, or was deleted or requeued meanwhile)."""
        with self._tx() as db:
            cur = db.execute(
                "UPDATE jobs SET status = 'failed', claim = NULL, error = ?, updated_at = ? "
                "WHERE id = ? AND worker = ? AND status = 'running'",
                (error, time.time(), job_id, worker),
            )
            return cur.rowcount == 1

    def requeue_running(
        self,
        max_attempts: int,
        keep: Iterable[str] = (),
        refund: bool = False,
        crashed: bool = False,
    ) -> tuple[list[str], list[str]]:
        """Put ``running`` jobs whose worker is not in ``keep`` back in the queue.

        ``crashed``: their worker died while the server was alive (the supervisor's call);
        the death counts as a crash, and a job whose worker crashed ``max_attempts`` times is
        marked failed instead (its files are the caller's to delete). Otherwise the server
        restarted (or is stopping) and nothing is counted against the job. ``refund`` also
        takes back the interrupted attempt (a graceful shutdown stopped it).
        Returns ``(requeued ids, failed ids)``."""
        keep = list(keep)
        marks = ",".join("?" * len(keep))
        where = "status = 'running'" + (f" AND worker NOT IN ({marks})" if keep else "")
        now = time.time()
        with self._tx() as db:
            if refund:
                db.execute(f"UPDATE jobs SET attempts = MAX(0, attempts - 1) WHERE {where}", keep)
            if crashed:
                db.execute(f"UPDATE jobs SET crashes = crashes + 1 WHERE {where}", keep)
            failed = db.execute(
                "UPDATE jobs SET status = 'failed', claim = NULL, updated_at = ?, "
                "error = 'the worker died ' || crashes || ' times while scanning this file' "
                f"WHERE {where} AND crashes >= ? RETURNING id",
                (now, *keep, max_attempts),
            ).fetchall()
            queued = db.execute(
                "UPDATE jobs SET status = 'queued', claim = NULL, worker = NULL, "
                f"progress = 0, updated_at = ? WHERE {where} RETURNING id",
                (now, *keep),
            ).fetchall()
        return [r[0] for r in queued], [r[0] for r in failed]

    # -- the worker's side ---------------------------------------------------------------
    def claim(self, worker: str) -> Claim | None:
        """Atomically take the oldest queued job for ``worker`` (None when the queue is
        empty); it becomes ``running`` and its attempt count goes up by one."""
        token = secrets.token_hex(16)
        now = time.time()
        with self._tx() as db:
            row = db.execute(
                "UPDATE jobs SET status = 'running', claim = ?, worker = ?, "
                "attempts = attempts + 1, progress = 0, updated_at = ?, started_at = ? "
                "WHERE id = (SELECT id FROM jobs WHERE status = 'queued' "
                "ORDER BY created_at, rowid LIMIT 1) "
                f"RETURNING {_COLUMNS}",
                (token, worker, now, now),
            ).fetchone()
        return None if row is None else Claim(Job.from_row(row), token)

    def _write(self, sql: str, params: tuple[Any, ...], claim: Claim) -> bool:
        with self._tx() as db:
            cur = db.execute(
                f"UPDATE jobs SET {sql}, updated_at = ? "
                "WHERE id = ? AND claim = ? AND status = 'running'",
                (*params, time.time(), claim.job.id, claim.token),
            )
            return cur.rowcount == 1

    def progress(self, claim: Claim, fraction: float) -> bool:
        """Record progress; False when the job is no longer this claim's (stop scanning)."""
        return self._write("progress = ?", (min(1.0, max(0.0, fraction)),), claim)

    def finish(
        self,
        claim: Claim,
        result: dict[str, Any],
        provenance: dict[str, Any] | None,
    ) -> bool:
        """Store the result (``done``); False when the job is no longer this claim's."""
        prob = result.get("fake_probability")
        return self._write(
            "status = 'done', progress = 1, claim = NULL, error = NULL, result = ?, "
            "provenance = ?, label = ?, fake_probability = ?",
            (
                json.dumps(result),
                None if provenance is None else json.dumps(provenance),
                result.get("label"),
                None if prob is None else float(prob),
            ),
            claim,
        )

    def fail(self, claim: Claim, error: str) -> bool:
        """Mark the job failed with ``error``; False when it is no longer this claim's."""
        return self._write("status = 'failed', claim = NULL, error = ?", (error,), claim)


class DataDirBusy(RuntimeError):
    """Another server already uses this data folder."""


class DataDirLock:
    """An exclusive ``flock`` on ``<data_dir>/server.lock`` for the server's lifetime, so two
    servers never share one queue. The kernel drops it when the process dies, even by
    SIGKILL; the file itself stays and holds the last owner's pid."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._fd: int | None = None

    def acquire(self) -> None:
        private_dir(self.path.parent, existing=False)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            owner = os.read(fd, 32).decode("ascii", "replace").strip() or "?"
            os.close(fd)
            raise DataDirBusy(
                f"another fakescope server (pid {owner}) is using {self.path.parent}"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        if self._fd is not None:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        return self._fd is not None
