"""What kind of file system entry a path is, found with ``stat`` before anything opens it
(opening a FIFO for reading blocks until a writer comes; a device may never end)."""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from fakescope.errors import InputError, UnsupportedMedia

__all__ = ["describe_mode", "folder_has_files", "regular_file_stat", "visible_name"]


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


def visible_name(name: str) -> bool:
    """A name a folder scan looks at (hidden names, starting with a dot, are skipped)."""
    return not name.startswith(".")


def folder_has_files(path: Path) -> bool:
    """``path`` holds at least one entry a folder scan would look at (recursively)."""
    for _dirpath, dirnames, filenames in os.walk(path):
        dirnames[:] = [d for d in dirnames if visible_name(d)]
        if any(visible_name(n) for n in filenames):
            return True
    return False


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
                f"folder contains no files to scan{note} (hidden files are skipped)"
            )
        raise UnsupportedMedia(
            f"is a folder{note}, not a file: pass it to `fakescope scan`, which scans the "
            "files inside"
        )
    raise UnsupportedMedia(f"is {describe_mode(st.st_mode)}{note}, not a regular file")
