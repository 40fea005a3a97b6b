"""Still images: header-only size and shape checks, then one decode with OpenCV."""

from __future__ import annotations

from pathlib import Path
from typing import BinaryIO

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import DecodeError, InputError, TooLarge, UnsupportedMedia
from fakescope.io._config import Limits
from fakescope.io._quiet import c_stderr_silenced
from fakescope.types import Frame, MediaInfo

__all__ = ["check_frame_shape", "image_dimensions", "open_image"]

# JPEG start-of-frame markers (SOF0..SOF15 minus DHT, JPG and DAC).
_JPEG_SOF = frozenset(range(0xC0, 0xD0)) - {0xC4, 0xC8, 0xCC}
# Markers without a length field: TEM, RST0..RST7, SOI.
_JPEG_STANDALONE = frozenset({0x01, *range(0xD0, 0xD9)})
_JPEG_MAX_SEGMENTS = 10_000


def open_image(path: Path, fmt: str, limits: Limits) -> tuple[MediaInfo, Frame]:
    """Check the declared size against ``limits``, then decode ``path`` to an RGB frame
    whose longer side is at most ``limits.decode_max_side``."""
    width, height = image_dimensions(path, fmt)
    check_frame_shape(width, height, limits, "image")
    try:
        data = np.fromfile(path, dtype=np.uint8)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    reduce = _reduction(width, height, limits.decode_max_side)
    with c_stderr_silenced():  # libpng / libjpeg print their complaints from C
        decoded = cv2.imdecode(data, _REDUCED_FLAGS[reduce])
    del data
    if decoded is None or decoded.ndim != 3 or decoded.shape[2] != 3 or decoded.size == 0:
        raise DecodeError(f"truncated or corrupt {fmt} image")
    bgr: npt.NDArray[np.uint8] = np.asarray(decoded, dtype=np.uint8)
    decoded_h, decoded_w = bgr.shape[:2]
    bgr = _fit(bgr, limits.decode_max_side)
    rgb: npt.NDArray[np.uint8] = np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    if reduce == 1:  # the decoded size is the image's own (EXIF orientation applied)
        full_w, full_h = decoded_w, decoded_h
    else:  # the header's size, turned like the decoded picture by its EXIF orientation
        aspect = decoded_w / decoded_h
        turned = abs(aspect - height / width) < abs(aspect - width / height)
        full_w, full_h = (height, width) if turned else (width, height)
    scale = min(1.0, rgb.shape[1] / full_w)
    info = MediaInfo(kind="image", format=fmt, width=full_w, height=full_h, frame_scale=scale)
    return info, Frame(index=0, time_s=0.0, image=rgb)


# OpenCV decodes at 1/2, 1/4 or 1/8 of the size when asked (JPEG by scaling its DCT, so
# the full-size picture is never held; other formats are decoded, then shrunk).
_REDUCED_FLAGS = {
    1: cv2.IMREAD_COLOR,
    2: cv2.IMREAD_REDUCED_COLOR_2,
    4: cv2.IMREAD_REDUCED_COLOR_4,
    8: cv2.IMREAD_REDUCED_COLOR_8,
}


def _reduction(width: int, height: int, max_side: int) -> int:
    """The largest of 1, 2, 4 and 8 that keeps the longer side at least ``max_side``."""
    longest = max(width, height)
    factor = 1
    while factor < 8 and longest // (factor * 2) >= max_side:
        factor *= 2
    return factor


def _fit(image: npt.NDArray[np.uint8], max_side: int) -> npt.NDArray[np.uint8]:
    """``image`` scaled down (area averaging) so its longer side is at most ``max_side``."""
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


def check_frame_shape(width: int, height: int, limits: Limits, what: str) -> None:
    """:class:`TooLarge` beyond ``max_pixels``; :class:`UnsupportedMedia` for a frame longer
    than ``max_aspect_ratio`` times its other side (no face fits, and scaling it for the face
    search would leave a side of zero pixels)."""
    if width * height > limits.max_pixels:
        raise TooLarge(
            f"{what} is {width}x{height} pixels, over the max_pixels limit of {limits.max_pixels}"
        )
    long_side, short_side = max(width, height), min(width, height)
    if short_side > 0 and long_side / short_side > limits.max_aspect_ratio:
        raise UnsupportedMedia(
            f"{what} is {width}x{height} pixels: aspect ratio {_ratio(width, height)} is "
            f"beyond the "
            f"{limits.max_aspect_ratio:g}:1 limit (max_aspect_ratio)"
        )


def _ratio(width: int, height: int) -> str:
    """``"2000:1"``-style ratio, the shorter side as 1."""
    value = max(width, height) / min(width, height)
    text = f"{value:.0f}" if value >= 100 else f"{value:.3g}"
    return f"{text}:1" if width >= height else f"1:{text}"


def image_dimensions(path: Path, fmt: str) -> tuple[int, int]:
    """``(width, height)`` declared by the image header, read without decoding pixels."""
    try:
        with path.open("rb") as fh:
            if fmt == "png":
                dims = _png_dimensions(fh)
            elif fmt == "jpeg":
                dims = _jpeg_dimensions(fh)
            elif fmt == "bmp":
                dims = _bmp_dimensions(fh)
            elif fmt == "webp":
                dims = _webp_dimensions(fh)
            else:  # pragma: no cover - sniff() only returns the formats above
                raise DecodeError(f"no header parser for image format {fmt!r}")
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    width, height = dims
    if width <= 0 or height <= 0:
        raise DecodeError(f"corrupt {fmt} header: image is {width}x{height} pixels")
    return dims


def _read_exact(fh: BinaryIO, size: int, fmt: str) -> bytes:
    data = fh.read(size)
    if len(data) != size:
        raise DecodeError(f"truncated or corrupt {fmt} image: header ends early")
    return data


def _png_dimensions(fh: BinaryIO) -> tuple[int, int]:
    head = _read_exact(fh, 24, "png")
    if head[12:16] != b"IHDR":
        raise DecodeError("corrupt png image: first chunk is not IHDR")
    return int.from_bytes(head[16:20], "big"), int.from_bytes(head[20:24], "big")


def _jpeg_dimensions(fh: BinaryIO) -> tuple[int, int]:
    _read_exact(fh, 2, "jpeg")  # SOI
    for _ in range(_JPEG_MAX_SEGMENTS):
        byte = _read_exact(fh, 1, "jpeg")
        if byte != b"\xff":
            raise DecodeError("corrupt jpeg image: bad marker")
        marker = _read_exact(fh, 1, "jpeg")[0]
        while marker == 0xFF:  # fill bytes
            marker = _read_exact(fh, 1, "jpeg")[0]
        if marker in _JPEG_STANDALONE:
            continue
        if marker in (0xD9, 0xDA):  # EOI or SOS before any frame header
            raise DecodeError("corrupt jpeg image: no frame header")
        length = int.from_bytes(_read_exact(fh, 2, "jpeg"), "big")
        if length < 2:
            raise DecodeError("corrupt jpeg image: bad segment length")
        if marker in _JPEG_SOF:
            sof = _read_exact(fh, 5, "jpeg")
            return int.from_bytes(sof[3:5], "big"), int.from_bytes(sof[1:3], "big")
        fh.seek(length - 2, 1)
    raise DecodeError("corrupt jpeg image: no frame header")


def _bmp_dimensions(fh: BinaryIO) -> tuple[int, int]:
    head = _read_exact(fh, 26, "bmp")
    if int.from_bytes(head[14:18], "little") == 12:  # OS/2 BITMAPCOREHEADER
        return int.from_bytes(head[18:20], "little"), int.from_bytes(head[20:22], "little")
    width = int.from_bytes(head[18:22], "little", signed=True)
    height = int.from_bytes(head[22:26], "little", signed=True)
    return width, abs(height)  # a negative height means top-down rows


def _webp_dimensions(fh: BinaryIO) -> tuple[int, int]:
    head = _read_exact(fh, 30, "webp")
    chunk = head[12:16]
    if chunk == b"VP8X":
        width = int.from_bytes(head[24:27], "little") + 1
        height = int.from_bytes(head[27:30], "little") + 1
        return width, height
    if chunk == b"VP8L":
        if head[20] != 0x2F:
            raise DecodeError("corrupt webp image: bad lossless signature")
        bits = int.from_bytes(head[21:25], "little")
        return (bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1
    if chunk == b"VP8 ":
        if head[23:26] != b"\x9d\x01\x2a":
            raise DecodeError("corrupt webp image: bad key frame start code")
        width = int.from_bytes(head[26:28], "little") & 0x3FFF
        height = int.from_bytes(head[28:30], "little") & 0x3FFF
        return width, height
    raise DecodeError(f"corrupt webp image: unknown chunk {chunk!r}")
