"""Is a video file cut short? Its container's own size fields say so, read without decoding.

FFmpeg reports a cut-off file in many ways ("Invalid data found", "End of file",
"Input/output error", or a container that seems to have no video stream); these checks give
the one reason that is true: the file ends before its structure does.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import BinaryIO

__all__ = ["truncation"]

_MAX_BOXES = 100_000
_EBML_HEADER = 0x1A45DFA3
_MKV_SEGMENT = 0x18538067


def truncation(path: Path, fmt: str) -> str | None:
    """Where ``path`` (a ``fmt`` video: mp4, mov, mkv, webm, avi) is cut short, in words,
    or None when its top-level structure is complete (or cannot tell)."""
    try:
        size = os.path.getsize(path)
        with open(path, "rb") as fh:
            if fmt in {"mp4", "mov"}:
                return _bmff(fh, size)
            if fmt in {"mkv", "webm"}:
                return _matroska(fh, size)
            if fmt == "avi":
                return _riff(fh, size)
    except OSError:
        return None
    return None


def _ends(size: int, what: str, needed: int) -> str:
    return f"the file ends at byte {size}, inside its {what} (which needs {needed} bytes)"


def _box_name(kind: bytes) -> str:
    text = kind.decode("latin-1")
    return f"'{text}' box" if text.isprintable() else "top-level box"


def _bmff(fh: BinaryIO, size: int) -> str | None:
    """ISO base media (mp4, mov): top-level boxes must tile the file exactly."""
    pos = 0
    for _ in range(_MAX_BOXES):
        if pos >= size:
            return None
        fh.seek(pos)
        head = fh.read(16)
        if len(head) < 8:
            return _ends(size, "last box header", pos + 8)
        length = int.from_bytes(head[:4], "big")
        kind = head[4:8]
        if length == 1:  # 64-bit size follows the type
            if len(head) < 16:
                return _ends(size, f"{_box_name(kind)} header", pos + 16)
            length = int.from_bytes(head[8:16], "big")
        elif length == 0:  # the box runs to the end of the file
            return None
        if length < 8:
            return None  # corrupt rather than cut short
        if pos + length > size:
            return _ends(size, _box_name(kind), pos + length)
        pos += length
    return None


def _vint(fh: BinaryIO, keep_marker: bool) -> tuple[int, int, bool] | None:
    """An EBML variable-length integer: ``(value, length, all value bits set)``."""
    first = fh.read(1)
    if not first:
        return None
    lead = first[0]
    length = 1
    while length <= 8 and not lead & (0x80 >> (length - 1)):
        length += 1
    if length > 8:
        return None
    rest = fh.read(length - 1)
    if len(rest) != length - 1:
        return None
    value = lead if keep_marker else lead & (0xFF >> length)
    for byte in rest:
        value = (value << 8) | byte
    unknown = not keep_marker and value == (1 << (7 * length)) - 1
    return value, length, unknown


def _matroska(fh: BinaryIO, size: int) -> str | None:
    """Matroska / WebM: the EBML header, then a Segment whose size is declared (when the
    writer knew it)."""
    pos = 0
    for _ in range(2):
        element = _vint(fh, keep_marker=True)
        length = _vint(fh, keep_marker=False)
        if element is None or length is None:
            return _ends(size, "EBML header" if pos == 0 else "Segment header", pos + 12)
        value, unknown = length[0], length[2]
        body = pos + element[1] + length[1]
        if element[0] == _MKV_SEGMENT:
            if unknown:
                return None
            return _ends(size, "Segment", body + value) if body + value > size else None
        if element[0] != _EBML_HEADER or unknown:
            return None
        if body + value > size:
            return _ends(size, "EBML header", body + value)
        pos = body + value
        fh.seek(pos)
    return None


def _riff(fh: BinaryIO, size: int) -> str | None:
    """AVI: the RIFF chunk's declared size."""
    head = fh.read(8)
    if len(head) < 8:
        return _ends(size, "RIFF header", 8)
    needed = 8 + int.from_bytes(head[4:8], "little")
    return _ends(size, "RIFF chunk", needed) if needed > size else None
