"""Turn command-line arguments (files, directories, glob patterns) into file paths."""

from __future__ import annotations

import glob
import os
from collections.abc import Iterator, Sequence
from pathlib import Path

from fakescope.errors import InputError

__all__ = ["expand_inputs"]


def expand_inputs(args: Sequence[str]) -> list[Path]:
    """The files named by ``args``, de-duplicated, in argument order.

    Each argument is a file, a directory (searched recursively, sorted, skipping hidden
    files and directories) or a glob pattern (``**`` recurses). Raises
    :class:`InputError` for an argument that names nothing.
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


def _expand_one(arg: str) -> Iterator[Path]:
    path = Path(arg)
    if path.is_file():
        yield path
    elif path.is_dir():
        yield from _walk(path)
    elif path.exists():
        raise InputError(f"not a regular file or directory: {arg}")
    elif glob.has_magic(arg) and (matches := sorted(glob.glob(arg, recursive=True))):
        for match in matches:
            found = Path(match)
            if found.is_file():
                yield found
            elif found.is_dir():
                yield from _walk(found)
    else:
        raise InputError(f"no such file or directory: {arg}")


def _walk(root: Path) -> list[Path]:
    files: list[Path] = []
    for dirpath, dirnames, filenames in os.walk(root):
        dirnames[:] = [d for d in dirnames if not d.startswith(".")]
        for name in filenames:
            if name.startswith("."):
                continue
            candidate = Path(dirpath, name)
            if candidate.is_file():
                files.append(candidate)
    return sorted(files)
