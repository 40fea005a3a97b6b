"""Where a scan looks again: extra frames around face tracks seen in too few sampled frames
(:meth:`~fakescope.inference.Scanner.look_closer` decodes and searches them)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from fakescope.config import ScanConfig
from fakescope.inference._found import _Faces
from fakescope.types import FaceBox, Track

__all__ = ["extra_times", "spread"]


def extra_times(
    config: ScanConfig, tracks: Sequence[Track], faces: _Faces, fps: float | None
) -> dict[float, list[FaceBox]]:
    """Times to look again at, with the faces to look around: for each track seen in fewer
    than ``min_track_frames`` sampled frames (or than the frames sampled, when fewer),
    frames not yet looked at spread over the span where that face may be visible (from the
    last whole-frame search before it was first seen to the next sampled frame after it
    was last seen), at most ``max_extra_frames`` in all. Nothing without a frame rate (frame
    numbers are times x fps)."""
    if not fps:
        return {}
    order = sorted(faces.times)
    budget = config.max_extra_frames
    wanted: dict[float, list[FaceBox]] = {}
    enough = min(config.min_track_frames, faces.frames_seen)
    brief = sorted((t for t in tracks if len(t.faces) < enough), key=_length)
    for track in brief:
        first, last = track.faces[0].frame_index, track.faces[-1].frame_index
        before = [i for i in faces.full_scans if i < first] or [i for i in order if i < first]
        after = [i for i in order if i > last]
        lo = faces.times[before[-1]] if before else faces.times[first]
        hi = faces.times[after[0]] if after else faces.times[last]
        count = min(enough - len(track.faces), budget)
        if hi <= lo or count <= 0:
            continue
        # the frames of the span that were not decoded yet
        lo_n, hi_n = round(lo * fps), round(hi * fps)
        free = [n / fps for n in range(lo_n + 1, hi_n) if n not in faces.per_frame]
        if not free:
            continue
        for k in spread(len(free), min(count, len(free))):
            t = float(free[k])
            nearest = min(track.faces, key=lambda f: abs(faces.times[f.frame_index] - t))
            wanted.setdefault(round(t, 4), []).append(nearest)
            budget -= 1
        if budget <= 0:
            break
    return wanted


def spread(n: int, count: int) -> list[int]:
    """``count`` positions spread evenly over ``range(n)`` (rounded, duplicates merged, in
    order): ``np.unique(np.linspace(0, n - 1, count).round())`` without ``np.unique``, whose
    first call imports ``numpy.ma`` (about 10 ms of a photo scan's start-up)."""
    return sorted({int(k) for k in np.linspace(0, n - 1, count).round()})


def _length(track: Track) -> int:
    return len(track.faces)
