"""Turn command-line arguments (files, directories, glob patterns) into file paths."""

from __future__ import annotations

import glob
import os
import stat
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakescope.errors import InputError
from fakescope.io._files import visible_name

__all__ = ["expand_inputs"]


def expand_inputs(args: Sequence[str]) -> list[Path]:
    """The inputs named by ``args``, de-duplicated, in argument order.

    Each argument is a file, a directory (searched recursively, sorted, skipping hidden
    files and directories) or a glob pattern (``**`` recurses). Anything that exists but is
    not a regular file (a FIFO, a device, a socket, a dangling symbolic link or a link loop)
    is kept, so that the scan can give it its own ``unsupported`` verdict instead of
    stopping the batch; nothing is opened here. A folder with nothing to scan is kept as
    itself for the same reason. Raises :class:`InputError` only for an argument that names
    nothing at all.
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
            yield from _walk_or_self(found) if _is_dir(found) else (found,)
    else:
        raise InputError(f"no such file or directory: {arg}")


def _walk_or_self(root: Path) -> list[Path]:
    """The files of ``root``, or ``[root]`` when it has none (its verdict says so)."""
    return _walk(root) or [root]


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if visible_name(d)]
        # os.walk lists links to folders with the folders (not followed), and everything
        # else, FIFOs, devices and broken links included, with the files.
        files.extend(Path(dirpath, name) for name in filenames if visible_name(name))
    return sorted(files)
