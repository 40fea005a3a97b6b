"""Spurious-face filtering and linking faces across sampled frames into per-person tracks."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field

from fakescope.faces._detect import iou
from fakescope.types import FaceBox, Track

__all__ = ["FaceFilter", "filter_faces", "link_tracks", "split_faces"]


@dataclass(frozen=True)
class FaceFilter:
    """What :func:`split_faces` kept and why it dropped the rest (counts by reason)."""

    kept: list[FaceBox]
    too_small: int = 0
    noise: int = 0


def split_faces(
    faces: Sequence[FaceBox], min_size: float = 40.0, confirm_presence: float = 0.9
) -> FaceFilter:
    """Keep every face at least ``min_size`` pixels high that is either a confirmed face
    (FaceMesh presence ``score >= confirm_presence``) or passes the noise rule.

    The noise rule (the MTCNN rule of the SKKU DFDC detector) treats a low-confidence face as a
    false detection when ``(max_w + max_h) / sqrt(3) > w + h``, where ``max_w, max_h`` are the
    sides of the frame's largest face. A confirmed face is never dropped for being smaller than
    another one: a second person further from the camera is scored and reported.
    """
    if not faces:
        return FaceFilter([])
    largest = max(faces, key=lambda f: f.width * f.height)
    limit = (largest.width + largest.height) / math.sqrt(3)
    kept: list[FaceBox] = []
    too_small = noise = 0
    for f in faces:
        if f.height < min_size:
            too_small += 1
        elif f.score >= confirm_presence or f.width + f.height >= limit:
            kept.append(f)
        else:
            noise += 1
    return FaceFilter(kept, too_small, noise)


def filter_faces(
    faces: Sequence[FaceBox], min_size: float = 40.0, confirm_presence: float = 0.9
) -> list[FaceBox]:
    """The faces :func:`split_faces` keeps (an empty list when none)."""
    return split_faces(faces, min_size, confirm_presence).kept


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


def link_tracks(faces_per_frame: Sequence[Sequence[FaceBox]], max_gap: int = 4) -> list[Track]:
    """Greedy frame-to-frame association of faces into tracks, in frame order.

    A track stays open for ``max_gap`` sampled frames without a match. Every face ends in
    exactly one track: a brief track (a person seen in a few frames) is kept, never dropped
    for being short. Nothing found gives an empty list.
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
    return [Track(track_id=i, faces=tuple(t.faces)) for i, t in enumerate(every)]
