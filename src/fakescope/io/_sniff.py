"""Identify media by its content (magic bytes), never by its file name."""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from fakescope.errors import DecodeError, FakescopeError, InputError, UnsupportedMedia

__all__ = [
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "describe_mode",
    "read_head",
    "sniff",
    "sniff_bytes",
    "worth_scanning",
]

# The usual file-name extensions of the formats below (the name never decides a type; it only
# says which files a folder walk or a dataset adapter takes for media).
VIDEO_EXTENSIONS = frozenset({".mp4", ".mov", ".mkv", ".avi", ".webm"})
IMAGE_EXTENSIONS = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp"})
MEDIA_EXTENSIONS = VIDEO_EXTENSIONS | IMAGE_EXTENSIONS

_HEAD_SIZE = 64
# Every format above is told apart within its first 12 bytes; a shorter binary file is a
# cut-off piece of something.
_MIN_IDENTIFIABLE = 12

_BMP_DIB_SIZES = frozenset({12, 40, 52, 56, 64, 108, 124})
_QUICKTIME_ATOMS = frozenset({b"moov", b"mdat", b"wide", b"free", b"skip", b"pnot"})
_HEIF_BRANDS = frozenset({b"heic", b"heix", b"hevc", b"heim", b"heis", b"mif1", b"msf1"})
_AVIF_BRANDS = frozenset({b"avif", b"avis"})

# Recognised but unsupported formats, for a helpful reason.
_OTHER_MAGIC: tuple[tuple[bytes, str], ...] = (
    (b"GIF87a", "a GIF image"),
    (b"GIF89a", "a GIF image"),
    (b"II*\x00", "a TIFF image"),
    (b"MM\x00*", "a TIFF image"),
    (b"%PDF", "a PDF document"),
    (b"PK\x03\x04", "a ZIP archive"),
    (b"\x1f\x8b", "a gzip archive"),
    (b"7z\xbc\xaf\x27\x1c", "a 7-Zip archive"),
    (b"FLV\x01", "an FLV video, which is not supported"),
    (b"OggS", "an Ogg file, which is not supported"),
    (b"ID3", "an MP3 audio file"),
    (b"fLaC", "a FLAC audio file"),
    (b"\x00\x00\x01\xba", "an MPEG program stream, which is not supported"),
    (b"\x7fELF", "an executable"),
    (b"\x00\x00\x00\x0cjP  ", "a JPEG 2000 image"),
)


def describe_mode(mode: int) -> str:
    """``"a FIFO / named pipe"``, ``"a character device"``... for a non-regular ``st_mode``."""
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO / named pipe"
    if stat.S_ISCHR(mode):
        return "a character device"
    if stat.S_ISBLK(mode):
        return "a block device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def worth_scanning(name: str, head: Callable[[], bytes]) -> bool:
    """Whether a file that a folder or a glob found is scanned (``fakescope scan`` and
    ``fakescope batch`` alike): when its name has a media extension (a ``.mp4`` that is text
    gets its own ``unsupported`` verdict) or its first bytes, ``head()``, are a video or image
    fakescope reads (a JPEG named ``.dat``). ``head`` is called only when the name does not
    tell; when it fails (not a regular file, unreadable) the file is kept, for the scan to say
    why. Anything else, text, documents, archives, formats fakescope does not read, is left
    out; a file named on the command line is always scanned."""
    if Path(name).suffix.lower() in MEDIA_EXTENSIONS:
        return True
    try:
        data = head()
    except (OSError, FakescopeError):
        return True
    try:
        sniff_bytes(data)
    except FakescopeError:
        return False
    return True


def read_head(path: Path, size: int = _HEAD_SIZE) -> bytes:
    """The first ``size`` bytes of ``path`` (fewer if the file is shorter).

    Opened without blocking and checked to be a regular file before reading, so a FIFO or a
    device swapped in for the file raises :class:`UnsupportedMedia` instead of hanging.
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise InputError(f"no such file: {path}") from None
    except IsADirectoryError:
        raise InputError(f"is a directory: {path}") from None
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    try:
        mode = os.fstat(fd).st_mode
        if not stat.S_ISREG(mode):
            raise UnsupportedMedia(f"is {describe_mode(mode)}, not a regular file")
        chunks: list[bytes] = []
        left = size
        while left > 0:
            chunk = os.read(fd, left)
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)
    except OSError as exc:
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    finally:
        os.close(fd)


def sniff(path: Path) -> tuple[str, str]:
    """``(kind, format)`` of ``path`` from its content: kind is ``"video"`` or ``"image"``.

    Raises :class:`DecodeError` for an empty file and :class:`UnsupportedMedia` for
    anything that is not one of the supported containers or image formats.
    """
    return sniff_bytes(read_head(path))


def sniff_bytes(head: bytes) -> tuple[str, str]:
    """:func:`sniff` on the first bytes of a file (64 are enough)."""
    if not head:
        raise DecodeError("empty file")
    if head.startswith(b"\xff\xd8\xff"):
        return "image", "jpeg"
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return "image", "png"
    if head.startswith(b"RIFF") and len(head) >= 12:
        riff_type = head[8:12]
        if riff_type == b"WEBP":
            return "image", "webp"
        if riff_type == b"AVI ":
            return "video", "avi"
        raise UnsupportedMedia(
            f"content is not a video or image (RIFF container of type {riff_type!r})"
        )
    if _is_bmp(head):
        return "image", "bmp"
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return "video", "webm" if b"webm" in head else "mkv"
    box_type = head[4:8]
    if box_type == b"ftyp":
        brand = head[8:12]
        if brand in _HEIF_BRANDS:
            raise UnsupportedMedia("HEIF/HEIC images are not supported")
        if brand in _AVIF_BRANDS:
            raise UnsupportedMedia("AVIF images are not supported")
        return "video", "mov" if brand == b"qt  " else "mp4"
    if box_type in _QUICKTIME_ATOMS and int.from_bytes(head[:4], "big") >= 8:
        return "video", "mov"
    known = any(head.startswith(magic) for magic, _ in _OTHER_MAGIC)
    if len(head) < _MIN_IDENTIFIABLE and not known and not _looks_like_text(head):
        what = _prefix_of(head)
        raise DecodeError(
            f"truncated or corrupt file: only {len(head)} byte{'s' if len(head) != 1 else ''}"
            f"{what}, too short to be a video or image"
        )
    raise UnsupportedMedia(f"content is not a video or image ({_describe(head)})")


# Magic numbers a cut-off file may start with, for the reason of a too-short file.
_MAGIC_PREFIXES: tuple[tuple[bytes, str], ...] = (
    (b"\xff\xd8\xff", "jpeg"),
    (b"\x89PNG\r\n\x1a\n", "png"),
    (b"RIFF", "RIFF (webp/avi)"),
    (b"\x1a\x45\xdf\xa3", "matroska/webm"),
    (b"BM", "bmp"),
)


def _prefix_of(head: bytes) -> str:
    for magic, name in _MAGIC_PREFIXES:
        if magic.startswith(head) or head.startswith(magic):
            return f" (the start of a {name} file)"
    return ""


def _is_bmp(head: bytes) -> bool:
    if not head.startswith(b"BM") or len(head) < 18:
        return False
    reserved = head[6:10]
    dib_size = int.from_bytes(head[14:18], "little")
    return reserved == b"\x00\x00\x00\x00" and dib_size in _BMP_DIB_SIZES


def _describe(head: bytes) -> str:
    for magic, what in _OTHER_MAGIC:
        if head.startswith(magic):
            return f"looks like {what}"
    if _looks_like_text(head):
        return "looks like text"
    return "unrecognised binary data"


def _looks_like_text(head: bytes) -> bool:
    """``head`` is non-empty printable UTF-8 (a multi-byte character cut off at the end of a
    full head, and only there, is allowed)."""
    try:
        text = head.decode("utf-8")
    except UnicodeDecodeError as exc:
        cut_at_end = exc.reason == "unexpected end of data" and exc.start >= len(head) - 3
        if not (cut_at_end and len(head) >= _HEAD_SIZE):
            return False
        text = head[: exc.start].decode("utf-8")
    return bool(text) and all(ch.isprintable() or ch in "\t\r\n\f" for ch in text)
