"""What kind of file system entry a path is, found with ``stat`` before anything opens it
(opening a FIFO for reading blocks until a writer comes; a device may never end)."""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

from fakescope.errors import InputError, UnsupportedMedia
from fakescope.io._sniff import describe_mode, read_head, worth_scanning

__all__ = ["folder_has_files", "media_walk", "regular_file_stat", "visible_name", "wanted"]


def visible_name(name: str) -> bool:
    """A name a folder scan looks at (hidden names, starting with a dot, are skipped)."""
    return not name.startswith(".")


def _head(path: Path) -> bytes:
    """The first bytes of a regular file; a FIFO, device or socket is never opened."""
    if not stat.S_ISREG(os.stat(path).st_mode):
        raise UnsupportedMedia("not a regular file")
    return read_head(path)


def wanted(path: Path) -> bool:
    """A file a folder walk or a glob found is scanned (see
    :func:`~fakescope.io._sniff.worth_scanning`); links to nothing, link loops and entries
    that are not regular files are kept, never opened, so the scan gives them their own
    ``unsupported`` verdict."""
    return worth_scanning(path.name, lambda: _head(path))


def _walk(root: Path) -> Iterator[Path]:
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if visible_name(d)]
        # os.walk lists links to folders with the folders (not followed), and everything
        # else, FIFOs, devices and broken links included, with the files.
        for name in filenames:
            path = Path(dirpath, name)
            if visible_name(name) and wanted(path):
                yield path


def media_walk(root: Path) -> list[Path]:
    """The files under ``root`` that a folder scan scans (recursive, sorted, hidden names
    skipped, :func:`wanted`)."""
    return sorted(_walk(root))


def folder_has_files(path: Path) -> bool:
    """``path`` holds at least one file a folder scan would scan (recursively)."""
    return next(_walk(path), None) is not None


def _link_target(path: Path) -> str:
    """Where the symbolic link ``path`` points, as valid UTF-8 ("" if unreadable)."""
    try:
        target = os.readlink(path)
    except OSError:
        return ""
    return os.fsencode(target).decode("utf-8", "replace")


def _link_note(path: Path) -> str:
    target = _link_target(path)
    return f" (symbolic link to {target})" if target else ""


def regular_file_stat(path: Path) -> os.stat_result:
    """``os.stat`` of ``path`` when it is (or links to) a regular file; never opens it.

    Raises :class:`InputError` for a missing or unreadable path and
    :class:`UnsupportedMedia` for anything else: a dangling symbolic link, a symbolic link
    loop, a folder, a FIFO, a device or a socket (the reason says which).
    """
    try:
        st = os.stat(path)
    except FileNotFoundError:
        if os.path.islink(path):
            target = _link_target(path)
            to = f" to {target}" if target else ""
            raise UnsupportedMedia(
                f"dangling symbolic link{to}: its target does not exist"
            ) from None
        raise InputError(f"no such file: {path}") from None
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise UnsupportedMedia(
                "symbolic link loop: the link resolves back to itself (too many levels of "
                "symbolic links)"
            ) from None
        raise InputError(f"cannot read {path}: {exc.strerror or exc}") from None
    if stat.S_ISREG(st.st_mode):
        return st
    note = _link_note(path) if os.path.islink(path) else ""
    if stat.S_ISDIR(st.st_mode):
        if not folder_has_files(path):
            raise UnsupportedMedia(
                f"folder contains no files to scan{note} (hidden files, and files that are "
                "neither named nor made like a video or image, are skipped)"
            )
        raise UnsupportedMedia(
            f"is a folder{note}, not a file: pass it to `fakescope scan`, which scans the "
            "files inside"
        )
    raise UnsupportedMedia(f"is {describe_mode(st.st_mode)}{note}, not a regular file")
