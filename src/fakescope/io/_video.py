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
from fakescope.io._config import DecodeReport, Limits, Sampling
from fakescope.io._image import check_frame_shape
from fakescope.io._quiet import silence_library_logs
from fakescope.io._truncation import truncation
from fakescope.types import Frame, MediaInfo

__all__ = [
    "decoded_size",
    "frame_to_rgb",
    "open_container",
    "open_video",
    "plan_indices",
    "quarter_turns",
    "rotate_upright",
]

# What PyAV raises on unreadable, truncated or corrupt data.
_AV_ERRORS: tuple[type[Exception], ...] = (av.FFmpegError, OSError, ValueError, EOFError)
_TIME_EPS = 1e-6
# Decoded frames set aside (not yet converted to RGB) while sampling, in case the video ends
# before the frames its length promised: at most this many bytes of them.
_HELD_BYTES = 256 * 1024**2


def open_container(path: Path, *, probe_only: bool = False) -> Any:
    """``av.open`` for reading, the one way fakescope opens a video.

    Metadata never decides whether a video is scanned: tags that are not UTF-8 (a Latin-1
    title) are decoded with replacement characters. With ``probe_only`` the stream probe
    inside ``av.open`` decodes no picture (``skip_frame=all``): the container's header is
    read, and the frame size can be checked before anything is decoded; such a handle may
    lack timings found by decoding (a stream's start time), so frames are read from a
    normal one.
    """
    silence_library_logs()
    return av.open(
        str(path),
        mode="r",
        metadata_errors="replace",
        options={"skip_frame": "all"} if probe_only else None,
    )


def decoded_size(width: int, height: int, max_side: int) -> tuple[int, int]:
    """``(width, height)`` scaled down, keeping the shape, so the longer side is at most
    ``max_side``; unchanged when it already is. Never a side of 0."""
    longest = max(width, height)
    if longest <= max_side:
        return width, height
    scale = max_side / longest
    return max(1, round(width * scale)), max(1, round(height * scale))


def frame_to_rgb(frame: Any, max_side: int) -> npt.NDArray[np.uint8]:
    """An ``av.VideoFrame`` as HxWx3 uint8 RGB, scaled down in the same conversion (area
    averaging) when its longer side exceeds ``max_side``: the full-size RGB picture is never
    made."""
    width, height = decoded_size(int(frame.width), int(frame.height), max_side)
    if (width, height) == (frame.width, frame.height):
        rgb = frame.to_ndarray(format="rgb24")
    else:
        rgb = frame.to_ndarray(width=width, height=height, format="rgb24", interpolation="AREA")
    return np.asarray(rgb, dtype=np.uint8)


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
    path: Path,
    fmt: str,
    sampling: Sampling,
    limits: Limits,
    report: DecodeReport | None = None,
) -> tuple[MediaInfo, Iterator[Frame]]:
    """Probe ``path`` and decode its first frame; return the info and a lazy frame iterator.

    Before any picture is decoded: a video stream and a decoder exist, and the frame size,
    shape and duration are within ``limits``; on the first decoded frame (before more are):
    its bit depth and its size in memory.
    """
    _check_header_only(path, fmt, limits)
    try:
        container = open_container(path)
    except _AV_ERRORS as exc:
        raise DecodeError(_corrupt(path, fmt, _av_reason(exc))) from None
    try:
        return _probe(container, path, fmt, sampling, limits, report or DecodeReport())
    except BaseException:
        container.close()
        raise


def _check_header_only(path: Path, fmt: str, limits: Limits) -> None:
    """:func:`_check_header` on a handle whose opening decoded no picture."""
    try:
        container = open_container(path, probe_only=True)
    except _AV_ERRORS as exc:
        raise DecodeError(_corrupt(path, fmt, _av_reason(exc))) from None
    with container:
        _check_header(container, path, fmt, limits)


def _corrupt(path: Path, fmt: str, detail: str) -> str:
    """The reason for a video that does not open or decode: where the file is cut short
    when its structure says so, else what FFmpeg said."""
    cut = truncation(path, fmt)
    if cut is not None:
        return f"truncated or corrupt video: {cut}"
    if detail in {"End of file", "Input/output error"}:
        detail = f"the data ends unexpectedly ({detail})"
    return f"truncated or corrupt video: {detail}"


def _check_header(container: Any, path: Path, fmt: str, limits: Limits) -> Any:
    """The first video stream, once the container's own header shows it is within
    ``limits`` (nothing decoded yet)."""
    if not container.streams.video:
        cut = truncation(path, fmt)
        if cut is not None:
            raise DecodeError(f"truncated or corrupt video: {cut}; no video stream is readable")
        raise UnsupportedMedia(f"the {fmt} container has no video stream")
    stream = container.streams.video[0]
    context = stream.codec_context
    if context is None:
        cut = truncation(path, fmt)
        if cut is not None:
            raise DecodeError(f"truncated or corrupt video: {cut}; its codec is not readable")
        raise UnsupportedMedia(f"no decoder for the video codec of this {fmt} file")
    if context.width and context.height:
        check_frame_shape(int(context.width), int(context.height), limits, "video")
    if context.format is not None and context.width and context.height:
        # Declared by the container or found by the probe: check before decoding.
        _check_bit_depth(context.format, limits)
        declared = av.VideoFormat(context.format.name, int(context.width), int(context.height))
        _check_frame_bytes(declared, _format_bytes(declared), limits)
    duration = _duration(container, stream)
    if duration is not None and duration > limits.max_duration_s:
        raise TooLarge(
            f"video lasts {duration:.0f} s, over the max_duration_s limit of "
            f"{limits.max_duration_s:.0f} s"
        )
    return stream


def _bit_depth(pix_fmt: Any) -> int:
    return max((int(c.bits) for c in pix_fmt.components), default=8)


def _check_bit_depth(pix_fmt: Any, limits: Limits) -> None:
    depth = _bit_depth(pix_fmt)
    if depth > limits.max_bit_depth:
        raise TooLarge(
            f"video samples are {depth}-bit ({pix_fmt.name}), over the max_bit_depth limit "
            f"of {limits.max_bit_depth}"
        )


def frame_bytes(frame: Any) -> int:
    """Bytes one decoded ``av.VideoFrame`` holds (all planes, as the decoder keeps them)."""
    return sum(int(plane.buffer_size) for plane in frame.planes)


def _format_bytes(pix_fmt: Any) -> int:
    """Bytes of one frame in ``pix_fmt`` (an ``av.VideoFormat`` with a size), unpadded."""
    return sum(int(c.width) * int(c.height) * ((int(c.bits) + 7) // 8) for c in pix_fmt.components)


def _check_frame_bytes(pix_fmt: Any, size: int, limits: Limits) -> None:
    if size > limits.max_frame_bytes:
        raise TooLarge(
            f"decoded video frames are {pix_fmt.width}x{pix_fmt.height} {pix_fmt.name}, "
            f"{_mib(size)} each, over the max_frame_bytes limit of "
            f"{_mib(limits.max_frame_bytes)}"
        )


def _check_first_frame(frame: Any, limits: Limits) -> int:
    """Bit depth and memory of a decoded frame against ``limits``; its size in bytes."""
    check_frame_shape(int(frame.width), int(frame.height), limits, "video")
    _check_bit_depth(frame.format, limits)
    size = frame_bytes(frame)
    _check_frame_bytes(frame.format, size, limits)
    return size


def _mib(size: int) -> str:
    return f"{size / 1024**2:.4g} MiB"


def _probe(
    container: Any,
    path: Path,
    fmt: str,
    sampling: Sampling,
    limits: Limits,
    report: DecodeReport,
) -> tuple[MediaInfo, Iterator[Frame]]:
    stream = _check_header(container, path, fmt, limits)
    if sampling.decoder_threads != "NONE":
        stream.thread_type = sampling.decoder_threads
    duration = _duration(container, stream)
    fps = _rate(stream)
    frame_count = int(stream.frames) if stream.frames and stream.frames > 0 else None

    decoded: Iterator[Any] = container.decode(stream)
    try:
        first = next(decoded)
    except StopIteration:
        cut = truncation(path, fmt)
        detail = f"; {cut}" if cut else ""
        raise DecodeError(f"truncated or corrupt video: no frame decodes{detail}") from None
    except _AV_ERRORS as exc:
        raise DecodeError(_corrupt(path, fmt, _av_reason(exc))) from None

    held_bytes = _check_first_frame(first, limits)
    turns = quarter_turns(float(first.rotation or 0))
    width, height = (first.height, first.width) if turns % 2 else (first.width, first.height)
    out_w, _ = decoded_size(int(width), int(height), limits.decode_max_side)
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
        frame_scale=out_w / int(width),
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
    source = _decoded_frames(container, chain([first], decoded), report, fps, start_s, duration)
    del first  # the iterator holds it until it is sampled or dropped
    if sampling.fps is not None:
        kept = _sample_by_rate(source, sampling.fps, fps, start_s)
    else:
        max_held = max(1, _HELD_BYTES // max(1, held_bytes))
        kept = _sample_by_count(source, sampling.num_frames, estimate, max_held)
    return info, _to_frames(kept, turns, fps, start_s, limits.decode_max_side, report)


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
        container = open_container(path)
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


def _decoded_frames(
    container: Any,
    frames: Iterator[Any],
    report: DecodeReport,
    fps: float | None = None,
    start_s: float = 0.0,
    duration: float | None = None,
) -> Iterator[tuple[int, Any]]:
    """``(index, av.VideoFrame)`` in decode order; a corrupt tail ends the stream, and
    ``report`` says where (the last decoded frame's time) and why. A stream that ends more
    than half a second (and two frames) before the header's ``duration`` is reported as cut
    short."""
    try:
        index = 0
        while True:
            try:
                frame = next(frames)
            except StopIteration:
                until = report.decoded_until_s
                slack = max(0.5, 2.0 / fps) if fps else 0.5
                if duration and until is not None and until < duration - slack:
                    report.damaged = True
                    report.detail = "the stream ends early"
                return
            except _AV_ERRORS as exc:
                report.damaged = True  # keep what decoded before the damage
                report.detail = _av_reason(exc)
                return
            report.frames = index + 1
            report.decoded_until_s = _frame_time(frame, index, fps, start_s)
            yield index, frame
            index += 1
    finally:
        container.close()


def _sample_by_count(
    source: Iterator[tuple[int, Any]],
    num_frames: int,
    estimate: int | None,
    max_held: int | None = None,
) -> Iterator[tuple[int, Any]]:
    """Keep ``num_frames`` frames spread over the estimated length.

    When the estimate is too high some planned indices never come; the frames decoded
    after the last kept one are then used instead, so no fewer than ``num_frames``
    (or all available) frames are kept. Of those, at most ``max_held`` (the newest) are
    held at a time, which bounds the memory of a video whose frames are large.
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
    tail: deque[tuple[int, Any]] = deque(maxlen=_held(num_frames, max_held))
    for index, frame in source:
        if next_target < len(targets):
            if index == targets[next_target]:
                next_target += 1
                kept += 1
                tail = deque(maxlen=_held(num_frames - kept, max_held))
                yield index, frame
            elif tail.maxlen:
                tail.append((index, frame))
        else:  # every planned index came: the estimate was too low or exact
            kept += 1
            yield index, frame
        if kept >= num_frames:
            return
    yield from tail


def _held(wanted: int, max_held: int | None) -> int:
    return wanted if max_held is None else min(wanted, max_held)


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
    kept: Iterator[tuple[int, Any]],
    turns: int,
    fps: float | None,
    start_s: float = 0.0,
    max_side: int = 1 << 30,
    report: DecodeReport | None = None,
) -> Iterator[Frame]:
    for index, frame in kept:
        try:
            rgb = frame_to_rgb(frame, max_side)
        except _AV_ERRORS as exc:
            if report is not None:
                report.damaged = True
                report.detail = _av_reason(exc)
            return
        yield Frame(
            index=index,
            time_s=_frame_time(frame, index, fps, start_s),
            image=rotate_upright(rgb, turns),
        )
