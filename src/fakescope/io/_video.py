"""Videos: probe with PyAV, then decode once, sequentially, keeping only sampled frames."""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Iterator
from fractions import Fraction
from itertools import chain
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from fakescope.errors import DecodeError, TooLarge, UnsupportedMedia
from fakescope.io._config import Limits, Sampling
from fakescope.types import Frame, MediaInfo

__all__ = ["open_video", "plan_indices", "quarter_turns", "rotate_upright"]

# What PyAV raises on unreadable, truncated or corrupt data.
_AV_ERRORS: tuple[type[Exception], ...] = (av.FFmpegError, OSError, ValueError, EOFError)
_TIME_EPS = 1e-6


def quarter_turns(display_rotation: float) -> int:
    """Counter-clockwise quarter turns (0-3) that make a frame upright.

    ``display_rotation`` is PyAV's ``VideoFrame.rotation``: the counter-clockwise angle of
    the stream's display matrix, in [-180, 180]; it is rounded to a multiple of 90.
    """
    if not math.isfinite(display_rotation):
        return 0
    return round(display_rotation / 90.0) % 4


def rotate_upright(image: npt.NDArray[np.uint8], turns: int) -> npt.NDArray[np.uint8]:
    """``image`` rotated ``turns`` quarter turns counter-clockwise, as a contiguous array."""
    if turns % 4 == 0:
        return image
    return np.ascontiguousarray(np.rot90(image, turns % 4))


def plan_indices(total: int, num_frames: int) -> list[int]:
    """``num_frames`` distinct frame indices spread evenly over ``range(total)``.

    The first and the last frame are always included; all frames when there are few.
    """
    if total <= num_frames:
        return list(range(total))
    spread = np.linspace(0, total - 1, num_frames)
    return sorted({round(float(x)) for x in spread})


def _av_reason(exc: BaseException) -> str:
    text = getattr(exc, "strerror", None) or str(exc).strip()
    return str(text) or type(exc).__name__


def _rate(stream: Any) -> float | None:
    for name in ("average_rate", "guessed_rate", "base_rate"):
        value = getattr(stream, name, None)
        if value:
            rate = float(value)
            if math.isfinite(rate) and rate > 0:
                return rate
    return None


def _duration(container: Any, stream: Any) -> float | None:
    if stream.duration and stream.time_base:
        seconds = float(stream.duration * stream.time_base)
        if seconds > 0:
            return seconds
    if container.duration:
        seconds = container.duration / av.time_base
        if seconds > 0:
            return float(seconds)
    return None


def open_video(
    path: Path, fmt: str, sampling: Sampling, limits: Limits
) -> tuple[MediaInfo, Iterator[Frame]]:
    """Probe ``path`` and decode its first frame; return the info and a lazy frame iterator."""
    try:
        container = av.open(str(path), mode="r")
    except _AV_ERRORS as exc:
        raise DecodeError(f"truncated or corrupt video: {_av_reason(exc)}") from None
    try:
        return _probe(container, path, fmt, sampling, limits)
    except BaseException:
        container.close()
        raise


def _probe(
    container: Any, path: Path, fmt: str, sampling: Sampling, limits: Limits
) -> tuple[MediaInfo, Iterator[Frame]]:
    if not container.streams.video:
        raise UnsupportedMedia(f"the {fmt} container has no video stream")
    stream = container.streams.video[0]
    if sampling.decoder_threads != "NONE":
        stream.thread_type = sampling.decoder_threads
    _check_pixels(stream.codec_context.width, stream.codec_context.height, limits)

    duration = _duration(container, stream)
    if duration is not None and duration > limits.max_duration_s:
        raise TooLarge(
            f"video lasts {duration:.0f} s, over the max_duration_s limit of "
            f"{limits.max_duration_s:.0f} s"
        )
    fps = _rate(stream)
    frame_count = int(stream.frames) if stream.frames and stream.frames > 0 else None

    decoded: Iterator[Any] = container.decode(stream)
    try:
        first = next(decoded)
    except StopIteration:
        raise DecodeError("video has no decodable frames") from None
    except _AV_ERRORS as exc:
        raise DecodeError(f"truncated or corrupt video: {_av_reason(exc)}") from None

    _check_pixels(first.width, first.height, limits)
    turns = quarter_turns(float(first.rotation or 0))
    width, height = (first.height, first.width) if turns % 2 else (first.width, first.height)
    info = MediaInfo(
        kind="video",
        format=fmt,
        width=int(width),
        height=int(height),
        codec=str(stream.codec_context.name),
        duration_s=duration,
        fps=fps,
        frame_count=frame_count,
        rotation=(-90 * turns) % 360,
    )

    if frame_count is not None:
        estimate: int | None = frame_count
    elif duration is not None and fps is not None:
        estimate = max(1, round(duration * fps))
    else:
        estimate = None
    if estimate is None and sampling.fps is None:
        # Neither a frame count nor a duration: count the packets in a cheap demux-only
        # pass over a second handle, so the frames can still be spread over the video.
        estimate = _count_packets(path)

    start_s = _start_seconds(stream)
    source = _decoded_frames(container, chain([first], decoded))
    if sampling.fps is not None:
        kept = _sample_by_rate(source, sampling.fps, fps, start_s)
    else:
        kept = _sample_by_count(source, sampling.num_frames, estimate)
    return info, _to_frames(kept, turns, fps, start_s)


def _start_seconds(stream: Any) -> float:
    """The stream's start time in seconds (0.0 when unknown): MPEG-TS and offset outputs
    start well after 0, and frame times are reported from the start of the video."""
    start = stream.start_time
    time_base: Fraction | None = stream.time_base
    if start is None or not time_base:
        return 0.0
    seconds = float(start * time_base)
    return seconds if math.isfinite(seconds) else 0.0


def _count_packets(path: Path) -> int | None:
    """Packets of the first video stream of ``path``, found by demuxing only (nothing is
    decoded); ``None`` when there are none. Damage just ends the count, as in decoding."""
    try:
        container = av.open(str(path), mode="r")
    except _AV_ERRORS:
        return None
    count = 0
    try:
        if not container.streams.video:
            return None
        packets = container.demux(container.streams.video[0])
        while True:
            try:
                packet = next(packets)
            except StopIteration:
                break
            except _AV_ERRORS:
                break  # count what demuxed before the damage
            # The demuxer ends with an empty flush packet (no pts, size 0): not a frame.
            if packet.size > 0:
                count += 1
    finally:
        container.close()
    return count or None


def _check_pixels(width: int, height: int, limits: Limits) -> None:
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"video is {width}x{height} pixels, over the max_pixels limit of {limits.max_pixels}"
        )


def _decoded_frames(container: Any, frames: Iterator[Any]) -> Iterator[tuple[int, Any]]:
    """``(index, av.VideoFrame)`` in decode order; a corrupt tail just ends the stream."""
    try:
        index = 0
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                return
            except _AV_ERRORS:
                return  # keep what decoded before the damage
            yield index, frame
            index += 1
    finally:
        container.close()


def _sample_by_count(
    source: Iterator[tuple[int, Any]], num_frames: int, estimate: int | None
) -> Iterator[tuple[int, Any]]:
    """Keep ``num_frames`` frames spread over the estimated length.

    When the estimate is too high some planned indices never come; the frames decoded
    after the last kept one are then used instead, so no fewer than ``num_frames``
    (or all available) frames are kept.
    """
    if estimate is None:
        for item in source:
            yield item
            if item[0] + 1 >= num_frames:
                return
        return
    targets = plan_indices(estimate, num_frames)
    next_target = 0
    kept = 0
    tail: deque[tuple[int, Any]] = deque(maxlen=num_frames)
    for index, frame in source:
        if next_target < len(targets):
            if index == targets[next_target]:
                next_target += 1
                kept += 1
                tail = deque(maxlen=num_frames - kept)
                yield index, frame
            elif tail.maxlen:
                tail.append((index, frame))
        else:  # every planned index came: the estimate was too low or exact
            kept += 1
            yield index, frame
        if kept >= num_frames:
            return
    yield from tail


def _sample_by_rate(
    source: Iterator[tuple[int, Any]],
    rate: float,
    stream_fps: float | None,
    start_s: float = 0.0,
) -> Iterator[tuple[int, Any]]:
    """Keep the first frame at or after each tick of a ``rate`` Hz clock."""
    step = 1.0 / rate
    next_time: float | None = None
    for index, frame in source:
        t = _frame_time(frame, index, stream_fps, start_s)
        if next_time is None or t >= next_time - _TIME_EPS:
            next_time = t + step if next_time is None else next_time + step
            while next_time <= t + _TIME_EPS:
                next_time += step
            yield index, frame


def _frame_time(frame: Any, index: int, fps: float | None, start_s: float = 0.0) -> float:
    """Seconds since the start of the video: the frame's pts less the stream's start time,
    or ``index / fps`` when the frame has no pts."""
    pts = frame.pts
    time_base: Fraction | None = frame.time_base
    if pts is not None and time_base:
        return max(0.0, float(pts * time_base) - start_s)
    return index / fps if fps else 0.0


def _to_frames(
    kept: Iterator[tuple[int, Any]], turns: int, fps: float | None, start_s: float = 0.0
) -> Iterator[Frame]:
    for index, frame in kept:
        try:
            rgb: npt.NDArray[np.uint8] = frame.to_ndarray(format="rgb24")
        except _AV_ERRORS:
            return
        yield Frame(
            index=index,
            time_s=_frame_time(frame, index, fps, start_s),
            image=rotate_upright(rgb, turns),
        )
