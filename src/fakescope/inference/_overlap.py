"""Scoring beside the face search: a video's aligned face crops, and the frames the synthesis
detector picked, are scored on one worker thread while the scan's own thread searches the
next sampled frames (``ScanConfig.overlap``).

onnxruntime releases the GIL while a network runs (as do OpenCV, PyAV and LiteRT), so on two
cores the search of frame k+1 and the scoring of frame k's crops proceed side by side. The
worker takes jobs in the order they were handed over, through a bounded queue (the search
waits when the worker is ``depth`` jobs behind); the crops of jobs already queued when it
wakes are scored in one call (up to ``batch`` crops).

Scores are the same numbers as scoring every crop at the end: the detectors score each crop
on its own, whatever the batch size or thread count (``tests/test_overlap.py`` checks both).
A failure in the worker is never raised there: :class:`ScoreAhead` only remembers that it
failed, and the scan then scores every crop after the search, as without overlap, so it
meets the same error as before at the same stage.
"""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
import numpy.typing as npt

from fakescope.config import ScanConfig
from fakescope.inference._found import _Clock
from fakescope.models import Detector
from fakescope.types import FaceBox, FaceCrop

__all__ = ["BATCH", "DEPTH", "OVERLAP_THREADS", "ScoreAhead", "Scored", "scoring_threads"]

BATCH = 4
"""At most this many queued crops are scored in one network call (``fused-v4-int8`` on one
thread: 7.2 ms a crop at 4 against 8.0 ms at 1 and 7.8-8.0 ms at 8 or 16; README)."""
DEPTH = 16
"""Jobs the worker may fall behind by before the search waits for it."""

OVERLAP_THREADS = 1
"""onnxruntime threads of the face-crop detector when it scores beside the face search
(``ScanConfig.overlap`` with ``threads`` 0): the search keeps the other core."""


def scoring_threads(config: ScanConfig) -> int:
    """The face-crop detector's onnxruntime threads: ``config.threads``, or with 0 (every
    core) and ``overlap`` on, :data:`OVERLAP_THREADS`."""
    if config.threads or not config.overlap:
        return config.threads
    return OVERLAP_THREADS


_DONE = object()
_Crops = list[tuple[int, npt.NDArray[np.uint8]]]  # (id(FaceBox), crop image)


@dataclass
class Scored:
    """What the worker scored: raw detector outputs (and pixel maps, when asked for) by
    ``id(FaceBox)``; ``failed`` when a network call raised or gave the wrong number of
    outputs (the scan then scores every crop itself)."""

    raw: dict[int, np.float64] = field(default_factory=dict)
    maps: dict[int, npt.NDArray[np.float64]] = field(default_factory=dict)
    failed: bool = False

    def covers(self, keys: Sequence[int], maps: bool) -> bool:
        """Whether every crop in ``keys`` was scored (with its map when ``maps``)."""
        if self.failed:
            return False
        return all(k in self.raw and (not maps or k in self.maps) for k in keys)


class ScoreAhead:
    """One worker thread scoring face crops with ``detector`` (``predict_maps`` when
    ``maps``) and running other jobs, in the order they are handed over. Use it as a context
    manager, or call :meth:`finish` (wait for every job) or :meth:`close` (skip the jobs not
    started yet); either joins the thread."""

    def __init__(
        self, detector: Detector, maps: bool = False, *, batch: int = BATCH, depth: int = DEPTH
    ) -> None:
        self._detector = detector
        self._maps = maps
        self._batch = max(1, batch)
        self._queue: queue.Queue[object] = queue.Queue(maxsize=max(1, depth))
        self._stop = threading.Event()
        self._error: BaseException | None = None
        self.scored = Scored()
        self.clock = _Clock()
        """Time the worker spent per stage (``classify``, and what jobs add)."""
        self._thread = threading.Thread(target=self._work, name="fakescope-classify", daemon=True)
        self._thread.start()

    def __enter__(self) -> ScoreAhead:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the scan's side ---------------------------------------------------------------------
    def crops(self, faces: Sequence[FaceBox], crops: Mapping[int, FaceCrop]) -> None:
        """Queue ``faces`` (their aligned crops are ``crops[id(face)]``) for scoring."""
        if faces:
            self._put([(id(f), crops[id(f)].image) for f in faces])

    def job(self, run: Callable[[_Clock], None]) -> None:
        """Queue ``run(clock)`` (it times itself on the worker's :attr:`clock`). A job
        should not raise: an exception is re-raised by :meth:`finish`."""
        self._put(run)

    def finish(self) -> Scored:
        """Wait for every job handed over, then stop the thread; re-raises a job's
        exception."""
        self._put(_DONE)
        self._thread.join()
        if self._error is not None:
            raise self._error
        return self.scored

    def close(self) -> None:
        """Stop the thread once the job it is running (if any) ends; jobs not started are
        dropped. Safe to call more than once, and after :meth:`finish`."""
        self._stop.set()
        if self._thread.is_alive():
            self._put(_DONE)
            self._thread.join()

    def _put(self, item: object) -> None:
        while self._thread.is_alive():  # never wait on a worker that is gone
            try:
                self._queue.put(item, timeout=0.1)
                return
            except queue.Full:
                continue

    # -- the worker's side -------------------------------------------------------------------
    def _work(self) -> None:
        done = False
        while not done:
            items: list[object] = []
            item = self._queue.get()
            count = 0
            while True:
                if item is _DONE:
                    done = True
                    break
                items.append(item)
                count += _count(item)
                if count >= self._batch:
                    break
                try:  # what is queued already joins the same network call
                    item = self._queue.get_nowait()
                except queue.Empty:
                    break
            self._run(items)

    def _run(self, items: Sequence[object]) -> None:
        pending: _Crops = []
        for item in items:
            if isinstance(item, list):
                pending.extend(item)
                continue
            self._score(pending)
            pending = []
            if not self._stop.is_set() and self._error is None and callable(item):
                try:
                    item(self.clock)
                except BaseException as exc:  # handed to finish(), never lost
                    self._error = exc
        self._score(pending)

    def _score(self, pending: _Crops) -> None:
        if not pending or self._stop.is_set() or self.scored.failed:
            return
        start = time.perf_counter()
        try:
            batch = np.stack([image for _, image in pending])
            if self._maps:
                raw, maps = self._detector.predict_maps(batch)
            else:
                raw, maps = self._detector.predict(batch), None
            values = np.asarray(raw, dtype=np.float64).reshape(-1)
            if values.shape != (len(pending),):
                raise ValueError("wrong number of scores")
            for (key, _), value in zip(pending, values, strict=True):
                self.scored.raw[key] = value
            if maps is not None:
                for (key, _), crop_map in zip(pending, maps, strict=True):
                    self.scored.maps[key] = crop_map
        except Exception:  # the scan scores every crop itself and meets the error there
            self.scored.failed = True
        self.clock.add("classify", start)


def _count(item: object) -> int:
    return len(item) if isinstance(item, list) else 0
