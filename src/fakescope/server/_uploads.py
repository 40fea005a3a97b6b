"""Uploads: a multipart body streamed to disk with the size limit enforced while it arrives,
the media type sniffed from the content, deadlines on the body (:func:`timed_stream`), a cap
on the uploads each client has in progress (:class:`UploadSlots`) and a per-client
token-bucket rate limit.

The client's file name is never used as a path: the file is written to
``<data_dir>/uploads/<id>.<ext>`` (``ext`` from the sniffed type) and the name is kept only as
a sanitised display string.
"""

from __future__ import annotations

import asyncio
import math
import os
import threading
import time
import unicodedata
from collections.abc import AsyncGenerator, AsyncIterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from python_multipart.exceptions import FormParserError
from python_multipart.multipart import MultipartParser, parse_options_header
from starlette.requests import ClientDisconnect

from fakescope.errors import DecodeError, UnsupportedMedia
from fakescope.io import sniff_bytes

__all__ = [
    "EXTENSIONS",
    "FILE_FIELD",
    "TEXT_FIELDS",
    "RateLimiter",
    "SavedUpload",
    "UploadError",
    "UploadSlots",
    "display_name",
    "receive_upload",
    "timed_stream",
]

FILE_FIELD = b"file"
TEXT_FIELDS = frozenset({"reference"})
"""The small text fields a scan upload may carry besides ``file`` (others are dropped)."""
_MAX_TEXT_FIELD = 1024
EXTENSIONS = {
    "jpeg": "jpg",
    "png": "png",
    "webp": "webp",
    "bmp": "bmp",
    "mp4": "mp4",
    "mov": "mov",
    "mkv": "mkv",
    "webm": "webm",
    "avi": "avi",
}
"""Sniffed format -> the extension the upload is stored with."""

_SNIFF_BYTES = 64
_MAX_NAME = 120
_FORM_OVERHEAD = 64 * 1024
"""Bytes a multipart body may carry besides the file: boundaries, part headers, small fields."""
_DRAIN_BYTES = 1024 * 1024
"""After refusing an upload, read (and drop) at most this much more of the body: a client
that is still sending when the connection closes may see a reset instead of the error."""


class UploadError(Exception):
    """An upload refused with an HTTP ``status`` and a one-line ``detail``."""

    def __init__(self, status: int, detail: str) -> None:
        super().__init__(detail)
        self.status = status
        self.detail = detail


@dataclass(frozen=True)
class SavedUpload:
    path: Path
    filename: str
    kind: str
    format: str
    size: int
    fields: Mapping[str, str] = field(default_factory=dict)
    """The :data:`TEXT_FIELDS` the form carried (stripped; empty ones left out)."""


def display_name(raw: bytes | str | None, fallback: str = "upload") -> str:
    """A client-supplied file name made safe to show: the last path component only, no
    control or formatting characters, whitespace collapsed, at most 120 characters."""
    text = raw.decode("utf-8", "replace") if isinstance(raw, bytes) else (raw or "")
    text = text.replace("\\", "/").rsplit("/", 1)[-1]
    kept = []
    for ch in text:
        category = unicodedata.category(ch)
        if ch.isspace() or category.startswith("Z"):
            kept.append(" ")
        elif not category.startswith("C"):  # control, format, surrogate, private, unassigned
            kept.append(ch)
    text = " ".join("".join(kept).split())
    if len(text) > _MAX_NAME:
        stem, dot, ext = text.rpartition(".")
        keep = f".{ext}" if dot and stem and len(ext) <= 10 else ""
        text = text[: _MAX_NAME - len(keep) - 1] + "…" + keep
    return text or fallback


def _mb(n: int) -> str:
    return f"{n / 1024 / 1024:g} MB" if n >= 1024 * 1024 else f"{n} bytes"


class _FileSink:
    """python-multipart callbacks that write the ``file`` part to disk as it arrives."""

    def __init__(
        self, uploads_dir: Path, job_id: str, max_video_bytes: int, max_image_bytes: int
    ) -> None:
        self.uploads_dir = uploads_dir
        self.job_id = job_id
        self.max_video_bytes = max_video_bytes
        self.max_image_bytes = max_image_bytes
        self.limit = max(max_video_bytes, max_image_bytes)
        self.head = b""
        self.size = 0
        self.kind = self.format = ""
        self.path: Path | None = None
        self.filename: str | None = None
        self.complete = False
        self._fh: BinaryIO | None = None
        self._in_file = False
        self._header_name = b""
        self._header_value = b""
        self._disposition = b""
        self._field_bytes = 0
        self._text: str | None = None  # the TEXT_FIELDS name of the current part
        self._text_value = b""
        self.fields: dict[str, str] = {}

    def callbacks(self) -> dict[str, object]:
        return {
            "on_part_begin": self.on_part_begin,
            "on_part_data": self.on_part_data,
            "on_part_end": self.on_part_end,
            "on_header_field": self.on_header_field,
            "on_header_value": self.on_header_value,
            "on_header_end": self.on_header_end,
            "on_headers_finished": self.on_headers_finished,
        }

    # -- part headers --------------------------------------------------------------------
    def on_part_begin(self) -> None:
        self._disposition = b""
        self._in_file = False
        self._text = None
        self._text_value = b""

    def on_header_field(self, data: bytes, start: int, end: int) -> None:
        self._header_name += data[start:end]

    def on_header_value(self, data: bytes, start: int, end: int) -> None:
        self._header_value += data[start:end]

    def on_header_end(self) -> None:
        if self._header_name.strip().lower() == b"content-disposition":
            self._disposition = self._header_value
        self._header_name = self._header_value = b""

    def on_headers_finished(self) -> None:
        _, options = parse_options_header(self._disposition)
        name = options.get(b"name")
        if name == FILE_FIELD and self.filename is None:
            self._in_file = True
            self.filename = display_name(options.get(b"filename"))
        elif name is not None and name.decode("latin-1") in TEXT_FIELDS:
            self._text = name.decode("latin-1")

    # -- part data -----------------------------------------------------------------------
    def on_part_data(self, data: bytes, start: int, end: int) -> None:
        chunk = data[start:end]
        if not self._in_file:  # other fields are read and dropped, within a small budget
            self._field_bytes += len(chunk)
            if self._field_bytes > _FORM_OVERHEAD:
                raise UploadError(413, "the form fields besides 'file' are too large")
            if self._text is not None:
                self._text_value += chunk
                if len(self._text_value) > _MAX_TEXT_FIELD:
                    raise UploadError(413, f"the form field '{self._text}' is too long")
            return
        self.size += len(chunk)
        if self._fh is None:
            self.head += chunk
            if len(self.head) >= _SNIFF_BYTES:
                self._open()  # checks the size before writing
        else:
            self._check_size()  # before writing: nothing past the limit reaches the disk
            self._fh.write(chunk)

    def on_part_end(self) -> None:
        if self._text is not None:
            value = self._text_value.decode("utf-8", "replace").strip()
            if value:
                self.fields[self._text] = value
            self._text = None
        if not self._in_file:
            return
        self._in_file = False
        if self._fh is None:
            if not self.head:
                raise UploadError(400, "the uploaded file is empty")
            self._open()  # a file shorter than the sniffing window
        assert self._fh is not None
        self._fh.close()
        self._fh = None
        self.complete = True

    def _open(self) -> None:
        """Sniff the first bytes, pick the limit for that kind, open the file, write them."""
        try:
            self.kind, self.format = sniff_bytes(self.head[:_SNIFF_BYTES])
        except UnsupportedMedia as exc:
            raise UploadError(415, f"unsupported file type: {exc}") from None
        except DecodeError as exc:
            raise UploadError(400, f"the uploaded file is unreadable: {exc}") from None
        if self.kind == "image":
            self.limit = self.max_image_bytes
        else:
            self.limit = self.max_video_bytes
        self._check_size()
        self.uploads_dir.mkdir(parents=True, exist_ok=True)
        self.path = self.uploads_dir / f"{self.job_id}.{EXTENSIONS[self.format]}"
        fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        self._fh = os.fdopen(fd, "wb")
        self._fh.write(self.head)
        self.head = self.head[:_SNIFF_BYTES]

    def _check_size(self) -> None:
        if self.size > self.limit:
            what = {"image": "an image", "video": "a video"}.get(self.kind, "a file")
            raise UploadError(
                413, f"the upload is too large: {what} may be at most {_mb(self.limit)}"
            )

    def discard(self) -> None:
        """Close and delete a partial file."""
        if self._fh is not None:
            self._fh.close()
            self._fh = None
        if self.path is not None:
            self.path.unlink(missing_ok=True)
            self.path = None


async def receive_upload(
    headers: Mapping[str, str],
    stream: AsyncIterator[bytes],
    *,
    uploads_dir: Path,
    job_id: str,
    max_video_bytes: int,
    max_image_bytes: int,
) -> SavedUpload:
    """Stream a ``multipart/form-data`` body whose ``file`` field holds the media into
    ``uploads_dir/<job_id>.<ext>``. Raises :class:`UploadError` (400, 413, 415) and deletes
    any partial file; stops reading as soon as a limit is passed."""
    get = headers.get  # Starlette Headers are case-insensitive; a dict needs lower-case keys
    limit = max(max_video_bytes, max_image_bytes) + _FORM_OVERHEAD
    length = get("content-length")
    if length is not None:
        try:
            declared = int(length)
        except ValueError:
            raise UploadError(400, "invalid Content-Length header") from None
        if declared > limit:
            raise UploadError(
                413,
                f"the upload is too large: at most {_mb(max(max_video_bytes, max_image_bytes))}",
            )
    mime, params = parse_options_header(get("content-type", ""))
    boundary = params.get(b"boundary")
    if mime != b"multipart/form-data" or not boundary:
        raise UploadError(400, "send the file as multipart/form-data in a field named 'file'")
    sink = _FileSink(uploads_dir, job_id, max_video_bytes, max_image_bytes)
    received = 0
    try:
        parser = MultipartParser(boundary, sink.callbacks())  # type: ignore[arg-type]
        async for chunk in stream:
            parser.write(chunk)  # the file part's own limit is checked in there
            received += len(chunk)
            if received > limit:  # everything else: boundaries, headers, other fields
                raise UploadError(413, "the upload is too large")
        parser.finalize()
        if sink.filename is None:
            raise UploadError(400, "no file: send it in a form field named 'file'")
        if not sink.complete or sink.path is None:
            raise UploadError(400, "the upload ended before the file was complete")
    except UploadError as exc:
        sink.discard()
        if exc.status != 408:  # a client too slow to send is not waited for any longer
            await _drain(stream, _DRAIN_BYTES)
        raise
    except (FormParserError, ValueError) as exc:
        sink.discard()
        raise UploadError(400, f"malformed multipart body: {exc}") from None
    except ClientDisconnect:
        sink.discard()
        raise UploadError(400, "the client disconnected during the upload") from None
    except BaseException:
        sink.discard()
        raise
    return SavedUpload(
        sink.path, sink.filename, sink.kind, sink.format, sink.size, dict(sink.fields)
    )


async def _drain(stream: AsyncIterator[bytes], budget: int) -> None:
    try:
        async for chunk in stream:
            budget -= len(chunk)
            if budget <= 0:
                return
    except (ClientDisconnect, UploadError):  # gone, or too slow (a timed stream's 408)
        return


async def timed_stream(
    stream: AsyncIterator[bytes], *, total_s: float, idle_s: float
) -> AsyncGenerator[bytes, None]:
    """``stream`` with deadlines, against clients that trickle a body to hold a connection and
    an upload slot: :class:`UploadError` 408 when the whole body has not arrived ``total_s``
    seconds after the first read, or when no bytes came for ``idle_s`` seconds."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + total_s
    chunks = aiter(stream)
    while True:
        left = deadline - loop.time()
        try:
            async with asyncio.timeout(max(0.0, min(idle_s, left))):
                chunk = await anext(chunks)
        except StopAsyncIteration:
            return
        except TimeoutError:
            if left <= idle_s:
                detail = f"the upload was too slow: it must arrive within {total_s:g} s"
            else:
                detail = f"the upload stalled: no data for {idle_s:g} s"
            raise UploadError(408, detail) from None
        yield chunk


class UploadSlots:
    """How many uploads each client has in progress: at most ``per_client`` at once
    (0 = no cap), so that one client cannot hold every connection with slow uploads."""

    def __init__(self, per_client: int) -> None:
        self.per_client = per_client
        self._active: dict[str, int] = {}
        self._lock = threading.Lock()

    def acquire(self, key: str) -> bool:
        """Take a slot for ``key``; False when it already has ``per_client`` in progress."""
        with self._lock:
            count = self._active.get(key, 0)
            if self.per_client > 0 and count >= self.per_client:
                return False
            self._active[key] = count + 1
            return True

    def release(self, key: str) -> None:
        with self._lock:
            count = self._active.pop(key, 0) - 1
            if count > 0:
                self._active[key] = count

    def active(self, key: str) -> int:
        with self._lock:
            return self._active.get(key, 0)


class RateLimiter:
    """A token bucket per client: ``per_minute`` uploads a minute, bursts up to that many.
    ``per_minute=0`` means no limit."""

    max_clients = 10_000

    def __init__(self, per_minute: int) -> None:
        self.per_minute = per_minute
        self.rate = per_minute / 60.0
        self._buckets: dict[str, tuple[float, float]] = {}  # key -> (tokens, last time)
        self._lock = threading.Lock()

    def acquire(self, key: str, now: float | None = None) -> float:
        """Take one token for ``key``: 0.0 when allowed, else the seconds until one is free."""
        if self.per_minute <= 0:
            return 0.0
        now = time.monotonic() if now is None else now
        with self._lock:
            tokens, last = self._buckets.get(key, (float(self.per_minute), now))
            tokens = min(float(self.per_minute), tokens + (now - last) * self.rate)
            if tokens >= 1.0:
                self._buckets[key] = (tokens - 1.0, now)
                if len(self._buckets) > self.max_clients:
                    self._prune(now)
                return 0.0
            self._buckets[key] = (tokens, now)
            return (1.0 - tokens) / self.rate

    def _prune(self, now: float) -> None:
        """Forget the clients whose bucket has refilled (they are back to the default)."""
        full = [
            k
            for k, (tokens, last) in self._buckets.items()
            if tokens + (now - last) * self.rate >= self.per_minute
        ]
        for key in full:
            del self._buckets[key]

    @staticmethod
    def retry_after(seconds: float) -> str:
        return str(max(1, math.ceil(seconds)))
