"""Private files: the data folder holds other people's uploads and verdicts, so the server
makes its folders 0700 and its files 0600 whatever the umask.

Modes are set explicitly (``mkdir``/``os.open`` modes, then ``chmod``) rather than through the
process umask, because :func:`fakescope.server.create_app` also runs inside other programs
(tests, an embedding application) whose umask is not ours to change. The dedicated processes
(``fakescope serve`` and its workers) additionally set a 077 umask, which covers the files that
other modules write for them (face thumbnails, heatmaps).
"""

from __future__ import annotations

import contextlib
import os
import stat
from pathlib import Path

__all__ = ["PRIVATE_UMASK", "private_dir", "private_file", "tighten"]

PRIVATE_UMASK = 0o077
"""The umask of the server's own processes: new files 0600, new folders 0700."""

_SQLITE_SIDE_FILES = ("-wal", "-shm", "-journal")


def tighten(path: Path, mode: int) -> None:
    """``chmod`` ``path`` to ``mode`` when its permission bits differ (not following a
    symlink's target; a file owned by another user is left alone)."""
    with contextlib.suppress(FileNotFoundError, PermissionError):
        info = path.lstat()
        if stat.S_ISLNK(info.st_mode) or stat.S_IMODE(info.st_mode) == mode:
            return
        path.chmod(mode)


def private_dir(path: Path, *, existing: bool = True) -> bool:
    """Make sure the folder ``path`` exists with mode 0700 (missing parents are created with
    the default mode). A folder that already existed is tightened to 0700 too unless
    ``existing=False`` (for a folder the user chose, which may be shared on purpose).
    Returns True when this call created it."""
    try:
        path.mkdir(parents=True, mode=0o700)
    except FileExistsError:
        if not path.is_dir():
            raise
        if existing:
            tighten(path, 0o700)
        return False
    tighten(path, 0o700)  # mkdir's mode went through the umask: make it exact
    return True


def private_file(path: Path) -> None:
    """Create ``path`` if missing, and make it (and the side files SQLite keeps next to a
    database: ``-wal``, ``-shm``, ``-journal``) mode 0600. SQLite gives the side files it
    creates the mode of the database file, so a 0600 database keeps them 0600 as well."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o600)
    os.close(fd)
    tighten(path, 0o600)
    for suffix in _SQLITE_SIDE_FILES:
        tighten(path.with_name(path.name + suffix), 0o600)
