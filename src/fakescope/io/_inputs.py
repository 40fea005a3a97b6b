"""Turn command-line arguments (files, directories, glob patterns) into file paths: what
``fakescope scan`` scans, and what ``fakescope batch`` makes of its folders and globs."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakescope.errors import InputError
from fakescope.io._files import media_walk, wanted

__all__ = ["expand_inputs"]


def expand_inputs(args: Sequence[str]) -> list[Path]:
    """The inputs named by ``args``, de-duplicated, in argument order.

    Each argument is a file, a directory (searched recursively, sorted, skipping hidden
    files and directories) or a glob pattern (``**`` recurses). A file named by an argument
    is always kept; of the files a directory or a glob finds, those with a media extension or
    whose first bytes are a video or image (:func:`~fakescope.io._files.wanted`; text,
    documents, archives are left out). Anything that exists but is not a regular file (a
    FIFO, a device, a socket, a dangling symbolic link or a link loop) is kept, so that the
    scan can give it its own ``unsupported`` verdict instead of stopping the batch; such an
    entry is never opened here. A folder with nothing to scan is kept as itself for the same
    reason. Raises :class:`InputError` only for an argument that names nothing at all.
    """
    seen: set[str] = set()
    out: list[Path] = []
    for arg in args:
        for path in _expand_one(arg):
            key = os.path.abspath(path)
            if key not in seen:
                seen.add(key)
                out.append(path)
    return out


def _exists(path: Path) -> bool:
    """``path`` is an entry of its folder, even a link to nothing (``lstat`` succeeds)."""
    try:
        os.lstat(path)
    except OSError:
        return False
    return True


def _is_dir(path: Path) -> bool:
    try:
        return stat.S_ISDIR(os.stat(path).st_mode)
    except OSError:  # missing, dangling link, link loop, no permission
        return False


def _expand_one(arg: str) -> Iterator[Path]:
    path = Path(arg)
    if _is_dir(path):
        yield from _walk_or_self(path)
    elif _exists(path):
        yield path  # a file, or something the scan will explain (never opened here)
    elif glob.has_magic(arg) and (matches := sorted(glob.glob(arg, recursive=True))):
        for match in matches:
            found = Path(match)
            if _is_dir(found):
                yield from _walk_or_self(found)
            elif wanted(found):
                yield found
    else:
        raise InputError(f"no such file or directory: {arg}")


def _walk_or_self(root: Path) -> list[Path]:
    """The files of ``root`` to scan, or ``[root]`` when it has none (its verdict says so)."""
    return media_walk(root) or [root]
