"""What one scan finds before scoring: per-stage clock, faces and crops, the synthesis
detector's share; and :class:`FaceMemo`, which lets scanners that differ only in how they score
share that work on the same input."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.types import FaceBox, FaceCrop, MediaInfo, Track

__all__ = ["STAGES", "FaceMemo"]

STAGES = (
    "decode",
    "detect",
    "landmarks",
    "align",
    "classify",
    "synthesis",
    "evidence",
    "total",
)


@dataclass
class _Clock:
    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.ms[stage] += (now - start) * 1000.0
        return now


@dataclass
class _Faces:
    """What the per-frame loop collects: faces per frame, their crops, and size facts."""

    per_frame: dict[int, list[FaceBox]] = field(default_factory=dict)  # frame index -> faces
    crops: dict[int, FaceCrop] = field(default_factory=dict)  # id(FaceBox) -> crop
    times: dict[int, float] = field(default_factory=dict)  # frame index -> time_s
    full_scans: list[int] = field(default_factory=list)  # frame indices searched whole
    frames_seen: int = 0
    extra_frames: int = 0
    largest_small: float = 0.0
    dropped: dict[str, int] = field(default_factory=dict)
    images: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)  # for heatmaps
    thumbs: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)  # id(FaceBox) -> RGB
    seen: dict[tuple[int, int], Any] = field(default_factory=dict)  # (model, id(FaceBox)) -> obs
    damage: str | None = None  # "decoded 0-7.3 s of 12.0 s" when the stream broke off early

    def drop(self, reason: str, count: int = 1) -> None:
        if count:
            self.dropped[reason] = self.dropped.get(reason, 0) + count

    def in_order(self) -> list[list[FaceBox]]:
        """Faces per frame, in frame order (frames without faces included)."""
        return [self.per_frame[k] for k in sorted(self.per_frame)]


@dataclass
class _SynthesisRun:
    """The synthesis detector's share of one scan: the raw scores of the sampled frames at
    ``picks`` (positions in the sampled stream), taken as the frames stream past so that no
    frame is kept for it."""

    picks: frozenset[int]
    raw: list[float] = field(default_factory=list)
    family: list[float] = field(default_factory=list)  # mean family logit per scored frame
    too_small: tuple[int, int] | None = None  # (shorter side, min_side) of a frame not scored
    error: str | None = None
    complete: bool = False  # every sampled frame streamed past


@dataclass
class FaceMemo:
    """Face finding done once per input for several scanners.

    Scanners whose configurations differ only in how faces are scored (the detector, its
    threshold and costs, the aggregation, attribution, threads) find the same faces in the
    same input; pass one memo to each ``Scanner.scan`` of an input (``fakescope eval`` does,
    over its detectors) and the first scan's media, faces and tracks serve the others. It
    holds one input at a time; a scanner whose face finding differs, or that does more on the
    way (the synthesis detector, heatmaps, thumbnails, evidence, identity), works on its own.
    """

    key: tuple[str, Any] | None = None
    found: tuple[MediaInfo, _Faces, list[Track]] | None = None

    def get(self, key: tuple[str, Any]) -> tuple[MediaInfo, _Faces, list[Track]] | None:
        return self.found if key == self.key else None

    def put(self, key: tuple[str, Any], found: tuple[MediaInfo, _Faces, list[Track]]) -> None:
        self.key, self.found = key, found
