"""The ingest entry point: one path in, media info and a lazy frame iterator out."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

from fakescope.errors import TooLarge
from fakescope.io._config import DecodeReport, Limits, Sampling
from fakescope.io._files import regular_file_stat
from fakescope.io._image import open_image
from fakescope.io._sniff import sniff
from fakescope.types import Frame, MediaInfo

__all__ = ["open_media"]

# Frozen, so one shared instance is a safe default.
_DEFAULT_SAMPLING = Sampling()
_DEFAULT_LIMITS = Limits()


def open_media(
    path: Path,
    sampling: Sampling = _DEFAULT_SAMPLING,
    limits: Limits = _DEFAULT_LIMITS,
    report: DecodeReport | None = None,
) -> tuple[MediaInfo, Iterator[Frame]]:
    """Identify, probe and start decoding ``path``.

    Returns the :class:`MediaInfo` and a lazy iterator of upright RGB :class:`Frame` s:
    the sampled frames of a video (decoded once, in order) or the single frame of an
    image. Raises :class:`InputError` (missing file), :class:`TooLarge` (over ``limits``),
    :class:`UnsupportedMedia` (not a regular file, not a known video/image, or an extreme
    aspect ratio) or :class:`DecodeError` (truncated or corrupt).
    A video damaged part-way yields the frames decoded before the damage, then stops; a
    ``report`` given here learns where and why (see :class:`DecodeReport`).
    """
    path = Path(path)
    stat = regular_file_stat(path)  # before any open: a FIFO would block, a device not end
    if stat.st_size > limits.max_bytes:
        raise TooLarge(
            f"file is {stat.st_size} bytes, over the max_bytes limit of {limits.max_bytes}"
        )
    kind, fmt = sniff(path)
    if kind == "image":
        info, frame = open_image(path, fmt, limits)
        return info, iter((frame,))
    from fakescope.io._video import open_video  # PyAV: imported for the first video only

    return open_video(path, fmt, sampling, limits, report)
