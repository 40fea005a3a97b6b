"""Spurious-face filtering and linking faces across sampled frames into per-person tracks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from fakescope.faces._detect import iou
from fakescope.types import FaceBox, Track

__all__ = ["filter_faces", "link_tracks"]


def filter_faces(faces: Sequence[FaceBox], min_size: float = 40.0) -> list[FaceBox]:
    """Drop faces that are noise next to the largest face of the frame, or too small.

    A face is ignored when ``(max_w + max_h) / sqrt(3) > w + h`` where ``max_w, max_h`` are the
    sides of the frame's largest face (the MTCNN noise rule of the SKKU DFDC detector), or when
    its height is below ``min_size`` pixels.
    """
    if not faces:
        return []
    largest = max(faces, key=lambda f: f.width * f.height)
    limit = (largest.width + largest.height) / math.sqrt(3)
    return [f for f in faces if f.width + f.height >= limit and f.height >= min_size]


@dataclass
class _Open:
    track_id: int
    faces: list[FaceBox] = field(default_factory=list)
    missed: int = 0


def _affinity(a: FaceBox, b: FaceBox, reach: float = 2.0) -> float:
    """IoU; or, when the boxes do not overlap (faces move between sparse samples), a small
    score for centres within ``reach`` face heights and similar sizes."""
    overlap = iou(a.box, b.box)
    if overlap > 0:
        return overlap
    ca = ((a.box[0] + a.box[2]) / 2, (a.box[1] + a.box[3]) / 2)
    cb = ((b.box[0] + b.box[2]) / 2, (b.box[1] + b.box[3]) / 2)
    size = max(a.height, b.height, 1.0)
    dist = math.dist(ca, cb) / size
    ratio = min(a.height, b.height) / size
    return 0.1 * (1.0 - dist / reach) if dist < reach and ratio > 0.6 else 0.0


def link_tracks(
    faces_per_frame: Sequence[Sequence[FaceBox]],
    max_gap: int = 4,
    min_fraction: float = 0.2,
) -> list[Track]:
    """Greedy frame-to-frame association of faces into tracks.

    A track stays open for ``max_gap`` sampled frames without a match. Tracks shorter than
    ``min_fraction`` of the longest track are dropped as spurious (the longest always stays).
    Nothing found gives an empty list.
    """
    open_tracks: list[_Open] = []
    closed: list[_Open] = []
    next_id = 0
    for faces in faces_per_frame:
        pairs = sorted(
            (
                (_affinity(t.faces[-1], f), ti, fi)
                for ti, t in enumerate(open_tracks)
                for fi, f in enumerate(faces)
            ),
            reverse=True,
        )
        used_t: set[int] = set()
        used_f: set[int] = set()
        for score, ti, fi in pairs:
            if score <= 0 or ti in used_t or fi in used_f:
                continue
            open_tracks[ti].faces.append(faces[fi])
            open_tracks[ti].missed = 0
            used_t.add(ti)
            used_f.add(fi)
        still: list[_Open] = []
        for ti, t in enumerate(open_tracks):
            if ti not in used_t:
                t.missed += 1
            (closed if t.missed > max_gap else still).append(t)
        for fi, f in enumerate(faces):
            if fi not in used_f:
                still.append(_Open(next_id, [f]))
                next_id += 1
        open_tracks = still
    every = sorted(closed + open_tracks, key=lambda t: t.track_id)
    if not every:
        return []
    longest = max(len(t.faces) for t in every)
    kept = [t for t in every if len(t.faces) >= min_fraction * longest]
    return [Track(track_id=i, faces=tuple(t.faces)) for i, t in enumerate(kept)]
