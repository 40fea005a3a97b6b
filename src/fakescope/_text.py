"""Text a person reads: file names shown as valid UTF-8, whatever their encoding."""

from __future__ import annotations

__all__ = ["display_path"]


def display_path(path: str) -> tuple[str, bytes | None]:
    """``path`` as valid UTF-8 text and, when it is not (a file name in another encoding,
    held by Python as lone surrogates), its raw bytes; else ``(path, None)``."""
    try:
        path.encode("utf-8")
    except UnicodeEncodeError:
        raw = path.encode("utf-8", "surrogateescape") if _escaped_only(path) else None
        if raw is None:
            return path.encode("utf-8", "replace").decode("utf-8"), None
        return raw.decode("utf-8", "replace"), raw
    return path, None


def _escaped_only(text: str) -> bool:
    """Every surrogate in ``text`` is one Python's file system decoding made (U+DC80-DCFF)."""
    return all(0xDC80 <= ord(ch) <= 0xDCFF for ch in text if 0xD800 <= ord(ch) <= 0xDFFF)
