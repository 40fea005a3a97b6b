"""Extra frames of a video at chosen times (a second, seeking pass used to look closer at a
face seen in only a few of the evenly sampled frames)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from pathlib import Path

from fakescope.errors import DecodeError
from fakescope.io._config import Limits
from fakescope.io._files import regular_file_stat
from fakescope.io._image import check_frame_shape
from fakescope.io._video import (
    _AV_ERRORS,
    _TIME_EPS,
    _rate,
    _start_seconds,
    frame_to_rgb,
    open_container,
    quarter_turns,
    rotate_upright,
)
from fakescope.types import Frame

__all__ = ["read_frames_at"]


def read_frames_at(path: Path, times: Sequence[float], limits: Limits | None = None) -> list[Frame]:
    """For each time in ``times`` (seconds from the start of the video, as ``Frame.time_s``),
    the first frame shown at or after it; duplicates merged, in time order.

    One seek to the key frame before the earliest time, then one forward decode that stops
    after the latest. ``Frame.index`` is the frame number ``round(time_s * fps)`` (the decode
    index of a constant-rate video, as in the evenly sampled pass). A stream whose damage starts
    inside the range gives the frames decoded before it; an unreadable one raises
    :class:`~fakescope.errors.DecodeError`.
    """
    targets = sorted({float(t) for t in times if math.isfinite(t) and t >= 0})
    if not targets:
        return []
    limits = limits or Limits()
    regular_file_stat(Path(path))  # never open a FIFO or a device
    try:
        container = open_container(path)
    except _AV_ERRORS as exc:
        raise DecodeError(f"cannot reopen the video to read more frames: {exc}") from None
    out: list[Frame] = []
    try:
        if not container.streams.video:
            return []
        stream = container.streams.video[0]
        context = stream.codec_context
        if context is None:
            return []
        check_frame_shape(int(context.width), int(context.height), limits, "video")
        fps = _rate(stream)
        start = _start_seconds(stream)
        if fps is None or not stream.time_base:
            return []
        try:
            offset = int((targets[0] + start) / stream.time_base)
            container.seek(max(offset, 0), stream=stream, backward=True, any_frame=False)
        except _AV_ERRORS:
            container.seek(0)
        k = 0
        for frame in container.decode(stream):
            if frame.pts is None:
                continue
            t = float(frame.pts * stream.time_base) - start
            if t < targets[k] - _TIME_EPS:
                continue
            out.append(
                Frame(
                    index=round(t * fps),
                    time_s=t,
                    image=rotate_upright(
                        frame_to_rgb(frame, limits.decode_max_side),
                        quarter_turns(float(frame.rotation or 0)),
                    ),
                )
            )
            while k < len(targets) and targets[k] <= t + _TIME_EPS:
                k += 1
            if k >= len(targets):
                break
    except _AV_ERRORS:
        pass  # keep the frames decoded before the damage
    finally:
        container.close()
    return out
