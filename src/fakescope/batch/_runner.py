"""Run a batch: hash inputs, skip what the output folder already holds, hand the rest to a
pool of workers (local processes or Ray actors), record every attempt, retry failures.

Each item is keyed by the sha256 of its bytes (streamed; a path that is not a regular file is
keyed by its absolute path), the identity of the models that scan it (weight name, version,
sha256; fakescope's version) and a hash of the scan settings. An item whose key the folder
already holds with a result is skipped; one whose attempts all failed is retried while it has
had fewer than ``1 + retries`` attempts, counted across runs. Items with identical content
are scanned once.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import queue
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

from fakescope.batch._inputs import BatchItem, content_sha256, is_url
from fakescope.batch._options import BatchOptions
from fakescope.batch._store import FAILURE_STATUSES, ResultStore, read_results, row_values
from fakescope.batch._worker import Event, Job, LocalPool
from fakescope.config import ScanConfig
from fakescope.decision import FaceAnswer, combine
from fakescope.evaluation import MEDIA_LEVEL, ScoreRow

__all__ = [
    "BatchProgress",
    "BatchSummary",
    "Pool",
    "config_hash",
    "run_batch",
]

_NOT_KEYED = ("threads", "overlap", "heatmaps_dir", "thumbnails_dir")
"""ScanConfig fields that do not change a verdict: left out of the settings hash."""


class Pool(Protocol):
    """Where scans run: :class:`~fakescope.batch._worker.LocalPool` or the Ray pool."""

    def start(self) -> None: ...

    def idle(self) -> list[int]: ...

    def submit(self, index: int, job: Job) -> None: ...

    def poll(self, timeout: float) -> list[Event]: ...

    def stop(self) -> None: ...


@dataclass
class BatchProgress:
    """Where a batch is, for a progress display (see ``on_progress`` of :func:`run_batch`)."""

    total: int
    """Items named by the inputs."""
    finished: int = 0
    """Items with their final result (earlier runs' included)."""
    skipped: int = 0
    """Items done by an earlier run (or identical in content to another item)."""
    scanned: int = 0
    """Attempts finished in this run (retries included)."""
    retried: int = 0
    in_flight: int = 0
    counts: Counter[str] = field(default_factory=Counter)
    """Items by final status."""
    started: float = field(default_factory=time.monotonic)

    @property
    def elapsed_s(self) -> float:
        return time.monotonic() - self.started

    @property
    def items_per_min(self) -> float:
        """Attempts finished in this run per minute of wall time."""
        return 60.0 * self.scanned / max(self.elapsed_s, 1e-9)


@dataclass
class BatchSummary:
    """The outcome of :func:`run_batch`."""

    out_dir: Path
    progress: BatchProgress
    workers: int
    backend: str

    @property
    def failed(self) -> int:
        """Items left without a result (a failure status after their last attempt)."""
        return sum(n for status, n in self.progress.counts.items() if status in FAILURE_STATUSES)

    @property
    def ok(self) -> bool:
        return self.failed == 0 and self.progress.finished == self.progress.total

    def to_dict(self) -> dict[str, Any]:
        p = self.progress
        return {
            "out": str(self.out_dir),
            "backend": self.backend,
            "workers": self.workers,
            "items": p.total,
            "finished": p.finished,
            "skipped": p.skipped,
            "scanned": p.scanned,
            "retried": p.retried,
            "failed": self.failed,
            "counts": dict(sorted(p.counts.items())),
            "elapsed_s": round(p.elapsed_s, 2),
            "items_per_min": round(p.items_per_min, 2),
        }


def _keyed_config(config: ScanConfig) -> dict[str, Any]:
    data = dataclasses.asdict(config)
    for name in _NOT_KEYED:
        data.pop(name, None)
    return data


def config_hash(config: ScanConfig) -> str:
    """A hash of the settings that change a verdict (threads, overlap and output folders
    excluded)."""
    text = json.dumps(_keyed_config(config), sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def _run_key(config: ScanConfig, identity: Mapping[str, Any]) -> str:
    text = json.dumps({"config": config_hash(config), "models": identity}, sort_keys=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class _Content:
    """An item's content id (sha256 of its bytes, or of its path when it is not a regular
    file) and the file signature it was hashed at."""

    sha256: str | None
    content_id: str
    source: str
    size: int | None
    mtime_ns: int | None


def _hash_item(item: BatchItem, cache: Mapping[str, tuple[int, int, str]]) -> _Content:
    if is_url(item.path):  # no cheap signature: hashed (read) again on every run
        url_sha = content_sha256(item.path)
        url_id = url_sha or "url-" + hashlib.sha256(item.path.encode()).hexdigest()
        return _Content(url_sha, url_id, item.path, None, None)
    source = os.path.abspath(item.path)
    try:
        st = os.stat(item.path)
        size: int | None = st.st_size
        mtime: int | None = st.st_mtime_ns
    except OSError:
        size, mtime = None, None
    known = cache.get(source)
    if known is not None and size is not None and known[:2] == (size, mtime):
        sha: str | None = known[2]
    else:
        sha = content_sha256(item.path)
    if sha is None:
        path_id = hashlib.sha256(os.fsencode(source)).hexdigest()
        return _Content(None, f"path-{path_id}", source, None, None)
    return _Content(sha, sha, source, size, mtime)


def _hasher(
    items: Sequence[BatchItem],
    cache: Mapping[str, tuple[int, int, str]],
    out: queue.Queue[tuple[int, _Content] | None],
    stop: threading.Event,
) -> None:
    """Hash items in order ahead of the scans (hashlib releases the GIL), then send None."""
    for index, item in enumerate(items):
        if stop.is_set():
            return
        out.put((index, _hash_item(item, cache)))
    out.put(None)


def _failure_payload(item: BatchItem, detector: str, status: str, reason: str) -> dict[str, Any]:
    """What a lost attempt records: an abstaining verdict object and one item-level row."""
    nothing = combine(FaceAnswer(status, reason), None).to_dict()
    verdict: dict[str, Any] = {
        "path": item.path,
        "verdict": nothing,
        "status": status,
        "reason": reason,
        "fake_probability": None,
        "raw_score": None,
        "label": "uncertain",
        "faces": [],
        "model": None,
        "media": None,
        "timings_ms": {},
        "decision": None,
        "faces_dropped": {},
        "synthesis": None,
        "notes": [],
    }
    label = -1 if item.label is None else int(item.label == "fake")
    row = ScoreRow(
        item.media_id,
        MEDIA_LEVEL,
        MEDIA_LEVEL,
        detector,
        float("nan"),
        label,
        item.method if item.label else "",
        item.dataset,
        status,
        item.compression,
    )
    return {"status": status, "verdict": verdict, "rows": [row_values(row)]}


def _make_pool(config: ScanConfig, options: BatchOptions) -> tuple[Pool, str]:
    if options.ray is not None:
        from fakescope.batch._ray import RayPool

        return RayPool(config, options), "ray"
    pool = LocalPool(
        worker_config(config, options.workers),
        options.workers,
        options.timeout_s,
        options.max_memory_mb,
        options.scanner_factory,
    )
    return pool, "local"


def worker_config(config: ScanConfig, workers: int, cpus: int | None = None) -> ScanConfig:
    """``config`` with inference threads split between workers when it says "all cores"
    (``threads=0``) and there is more than one worker."""
    if config.threads != 0 or workers <= 1:
        return config
    cores = cpus or os.cpu_count() or 1
    return dataclasses.replace(config, threads=max(1, cores // workers))


class _Run:
    """The scheduler's state: which key each item has, what is queued, what is final."""

    def __init__(
        self,
        items: Sequence[BatchItem],
        config: ScanConfig,
        options: BatchOptions,
        store: ResultStore,
        progress: BatchProgress,
    ) -> None:
        self.items = items
        self.config = config
        self.options = options
        self.store = store
        self.progress = progress
        self.max_attempts = 1 + options.retries
        self.run_key: str | None = None
        self.identity: dict[str, Any] = {}
        self.hashed: list[tuple[int, _Content]] = []
        self.content: dict[str, _Content] = {}
        self.members: dict[str, list[int]] = {}
        """Item key -> the items with that content (the first is the one scanned)."""
        self.queue: deque[str] = deque()
        self.final: dict[str, str] = {}
        self.seq = 0
        self.in_flight: dict[int, str] = {}

    def on_ready(self, identity: Mapping[str, Any]) -> None:
        if self.run_key is None:
            self.run_key = _run_key(self.config, identity)
            self.identity = dict(identity)

    def plan(self) -> None:
        """Key the items hashed so far (once the models are known) and queue what is left."""
        if self.run_key is None:
            return
        for index, content in self.hashed:
            key = f"{content.content_id}.{self.run_key}"
            if key in self.members:  # the same bytes again: one scan serves both
                self.members[key].append(index)
                self.progress.skipped += 1
                if key in self.final:
                    self._finish_items(key, [index])
                continue
            self.members[key] = [index]
            self.content[key] = content
            state = self.store.index.get(key)
            if state is not None and (state.good or state.attempts >= self.max_attempts):
                self.progress.skipped += 1
                self._finalize(key, state.status)
            else:
                self.queue.append(key)
        self.hashed.clear()

    def _finish_items(self, key: str, indices: Sequence[int]) -> None:
        status = self.final[key]
        self.progress.finished += len(indices)
        self.progress.counts[status] += len(indices)

    def _finalize(self, key: str, status: str) -> None:
        self.final[key] = status
        self._finish_items(key, self.members[key])

    def next_job(self) -> Job | None:
        if not self.queue:
            return None
        key = self.queue.popleft()
        self.seq += 1
        self.in_flight[self.seq] = key
        first = self.members[key][0]
        return Job(self.seq, self.items[first])

    def record(self, event: Event) -> None:
        """Write the attempt ``event`` reports; requeue the item or make it final."""
        assert event.job is not None
        key = self.in_flight.pop(event.job.seq)
        item = event.job.item
        payload = event.payload
        if event.kind == "lost":
            payload = _failure_payload(item, self.config.detector, event.status, event.reason)
        elif "verdict" not in payload:  # the worker caught an exception outside the scan
            payload = _failure_payload(item, self.config.detector, "error", payload["reason"])
        status = str(payload["status"])
        failed = status in FAILURE_STATUSES
        content = self.content[key]
        state = self.store.index.get(key)
        attempt = 1 + (state.attempts if state is not None else 0)
        record = dict(payload["verdict"])
        record["batch"] = {
            "media_id": item.media_id,
            "item_key": key,
            "status": status,
            "failed": failed,
            "attempt": attempt,
            "content_sha256": content.sha256,
            "run_key": self.run_key,
            "source": content.source,
            "size": content.size,
            "mtime_ns": content.mtime_ns,
            "label": item.label,
            "method": item.method,
            "dataset": item.dataset,
            "worker": event.worker,
            "elapsed_s": round(float(payload.get("elapsed_s") or 0.0), 3),
            "cpu_s": round(float(payload.get("cpu_s") or 0.0), 3),
            "finished_at": round(time.time(), 3),
            "rows": payload["rows"],
        }
        self.store.add(record)
        self.progress.scanned += 1
        if failed and attempt < self.max_attempts:
            self.progress.retried += 1
            self.queue.append(key)
        else:
            self._finalize(key, status)

    def done(self, hashing_done: bool) -> bool:
        return (
            hashing_done
            and self.run_key is not None
            and not self.hashed
            and not self.queue
            and not self.in_flight
        )


def run_batch(
    items: Sequence[BatchItem],
    config: ScanConfig,
    out_dir: Path | str,
    options: BatchOptions | None = None,
    on_progress: Callable[[BatchProgress], None] | None = None,
) -> BatchSummary:
    """Scan ``items`` into ``out_dir`` (see :mod:`fakescope.batch`), resuming what an earlier
    run with the same settings left there. ``on_progress`` is called after every change, at
    most every ``options.poll_s`` seconds and once at the end. Raises
    :class:`~fakescope.errors.FakescopeError` when the folder is in use or holds other
    settings' results, or when the workers cannot build a scanner; a bad item never raises."""
    options = options or BatchOptions()
    out_dir = Path(out_dir)
    progress = BatchProgress(total=len(items))
    pool, backend = _make_pool(config, options)
    store = ResultStore(out_dir, options.shard_size)
    store.open(
        {
            "config_hash": config_hash(config),
            "config": _keyed_config(config),
            "created_by": f"fakescope batch (workers {options.workers}, ray {options.ray})",
        }
    )
    run = _Run(items, config, options, store, progress)
    hashed: queue.Queue[tuple[int, _Content] | None] = queue.Queue()
    stop_hashing = threading.Event()
    hasher = threading.Thread(
        target=_hasher, args=(items, dict(store.signatures), hashed, stop_hashing), daemon=True
    )
    hashing_done = False
    try:
        hasher.start()
        pool.start()
        while True:
            for event in pool.poll(options.poll_s):
                if event.kind == "ready":
                    run.on_ready(event.identity)
                else:
                    run.record(event)
            while True:
                try:
                    got = hashed.get_nowait()
                except queue.Empty:
                    break
                if got is None:
                    hashing_done = True
                else:
                    run.hashed.append(got)
            run.plan()
            for index in pool.idle():
                job = run.next_job()
                if job is None:
                    break
                pool.submit(index, job)
            progress.in_flight = len(run.in_flight)
            if on_progress is not None:
                on_progress(progress)
            if run.done(hashing_done):
                break
    finally:
        stop_hashing.set()
        pool.stop()
        store.close()
    labelled = read_results(out_dir, labeled_only=True)
    if len(labelled):
        labelled.save(out_dir / "scores.csv")
    return BatchSummary(out_dir, progress, options.workers, backend)
