"""What a batch scans: command-line inputs turned into :class:`BatchItem` records, and the
content key each one is resumed by.

An input argument is a media file, a folder or a glob pattern (expanded exactly as ``fakescope
scan`` expands them, :func:`fakescope.io.expand_inputs`: recursively, hidden names skipped,
the files whose name or first bytes say video or image), a manifest (``.csv``, ``.tsv``,
``.jsonl``: a ``path`` column, optional ``label``, ``method``, ``dataset``, ``compression``
and ``media_id``) or a list file (``.txt``/``.lst``/``.list``: one path per line, ``#``
comments). Paths inside a manifest or list file are relative to that file's folder.

An input (or a manifest path) written as a URL (``s3://bucket/dir``, ``gs://...``,
``file:///...``) is read through fsspec (installed with the ``batch`` extra; the protocol's
own package, such as s3fs, too): files, folders and globs alike, a folder's files chosen by
the same rule (a file without a media extension costs one read of its first 64 bytes). A
worker copies such an item to a temporary file, scans it and deletes the copy.
"""

from __future__ import annotations

import csv
import functools
import glob
import hashlib
import importlib
import json
import os
import stat
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope._assets import sha256_file
from fakescope.errors import InputError
from fakescope.io import (
    IMAGE_EXTENSIONS,
    MEDIA_EXTENSIONS,
    VIDEO_EXTENSIONS,
    expand_inputs,
    worth_scanning,
)

__all__ = [
    "IMAGE_EXTENSIONS",
    "LIST_SUFFIXES",
    "MANIFEST_SUFFIXES",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "BatchItem",
    "collect_items",
    "content_sha256",
    "is_url",
    "open_url",
]

MANIFEST_SUFFIXES = frozenset({".csv", ".tsv", ".jsonl"})
LIST_SUFFIXES = frozenset({".txt", ".lst", ".list"})

_PATH_COLUMNS = ("path", "file", "filename")
_METHOD_COLUMNS = ("method", "generator_method")
_CHUNK = 1 << 20


@dataclass(frozen=True)
class BatchItem:
    """One input of a batch: where it is and what a manifest said about it.

    ``label`` is ``"real"``, ``"fake"`` or None (unknown: the score rows get label -1);
    ``method`` is ``"real"`` for a real item, else the manipulation's name (``"unknown"``
    when a manifest labels an item fake without naming the method, ``""`` when unlabelled).
    """

    path: str
    media_id: str
    label: str | None = None
    method: str = ""
    dataset: str = "batch"
    compression: str = ""

    @property
    def kind(self) -> str:
        """``"image"`` or ``"video"`` from the extension (the scanner sniffs the content)."""
        return "image" if Path(self.path).suffix.lower() in IMAGE_EXTENSIONS else "video"


def is_url(path: str | Path) -> bool:
    """``path`` names a file of an fsspec file system (``proto://...``), not a local path."""
    text = str(path)
    return "://" in text and not os.path.exists(text)


def _fsspec() -> Any:
    try:
        return importlib.import_module("fsspec")
    except ImportError:
        raise InputError(
            "URL inputs need fsspec: python3 -m pip install 'fakescope[batch]'"
        ) from None


def open_url(url: str) -> Any:
    """A binary file object for ``url`` (fsspec); InputError when it cannot be opened."""
    try:
        return _fsspec().open(url, "rb").open()
    except (OSError, ValueError, ImportError) as exc:
        raise InputError(f"cannot open {url}: {exc}") from None


def content_sha256(path: str | Path) -> str | None:
    """The sha256 of the bytes of ``path`` (streamed; a URL through fsspec), or None when it
    is not a readable regular file (a FIFO, a device, a folder, a missing or unreadable
    path: never opened, so a FIFO cannot block)."""
    try:
        if not is_url(path):
            return sha256_file(Path(path)) if stat.S_ISREG(os.stat(path).st_mode) else None
        digest = hashlib.sha256()
        with open_url(str(path)) as fh:
            while chunk := fh.read(_CHUNK):
                digest.update(chunk)
        return digest.hexdigest()
    except (OSError, InputError):
        return None


def collect_items(args: Sequence[str]) -> list[BatchItem]:
    """The items named by ``args`` in argument order, one per distinct ``media_id``.

    Raises :class:`InputError` for an argument that names nothing, an unreadable manifest or
    a manifest row without a path. A plain file is kept whatever its type: the scan gives it
    its own verdict (``unsupported``, ``undecodable``...).
    """
    seen: set[str] = set()
    out: list[BatchItem] = []
    for arg in args:
        for item in _expand(arg):
            if item.media_id not in seen:
                seen.add(item.media_id)
                out.append(item)
    return out


def _plain(path: Path) -> BatchItem:
    return BatchItem(path=str(path), media_id=str(path))


def _is_file(path: Path) -> bool:
    try:
        return stat.S_ISREG(os.stat(path).st_mode)
    except OSError:
        return False


def _expand_url(arg: str) -> Iterator[BatchItem]:
    fs, root = _fsspec().core.url_to_fs(arg)
    if glob.has_magic(root):
        found = sorted(fs.glob(root))
    elif fs.isdir(root):
        found = sorted(fs.find(root))
    elif fs.exists(root):
        found = [root]
    else:
        raise InputError(f"no such file or directory: {arg}")
    for entry in found:
        name = entry.rstrip("/").rsplit("/", 1)[-1]
        if fs.isdir(entry) or name.startswith("."):
            continue
        if len(found) > 1 and not worth_scanning(name, functools.partial(_url_head, fs, entry)):
            continue
        url = fs.unstrip_protocol(entry)
        yield BatchItem(path=url, media_id=url)


def _url_head(fs: Any, entry: str) -> bytes:
    return bytes(fs.cat_file(entry, start=0, end=64))


def _expand(arg: str) -> Iterator[BatchItem]:
    if is_url(arg):
        yield from _expand_url(arg)
        return
    path = Path(arg)
    suffix = path.suffix.lower()
    if suffix in MANIFEST_SUFFIXES | LIST_SUFFIXES and _is_file(path):
        yield from _read_manifest(path) if suffix in MANIFEST_SUFFIXES else _read_list(path)
    else:  # a file, a folder or a glob: as `fakescope scan` has it
        yield from (_plain(p) for p in expand_inputs([arg]))


def _read_list(path: Path) -> Iterator[BatchItem]:
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(f"cannot read list file {path}: {exc}") from None
    for line in lines:
        entry = line.strip()
        if entry and not entry.startswith("#"):
            yield BatchItem(entry, entry) if is_url(entry) else _plain(path.parent / entry)


def _rows(path: Path) -> list[dict[str, str]]:
    try:
        with path.open(newline="", encoding="utf-8") as fh:
            if path.suffix.lower() == ".jsonl":
                rows: list[dict[str, str]] = []
                for number, line in enumerate(fh, start=1):
                    if not line.strip():
                        continue
                    record = json.loads(line)
                    if not isinstance(record, dict):
                        raise InputError(f"manifest {path}, line {number}: not a JSON object")
                    rows.append({k: "" if v is None else str(v) for k, v in record.items()})
                return rows
            delimiter = "\t" if path.suffix.lower() == ".tsv" else ","
            return list(csv.DictReader(fh, delimiter=delimiter))
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise InputError(f"cannot read manifest {path}: {exc}") from None


def _first(row: Mapping[str, str | None], names: Sequence[str]) -> str:
    for name in names:
        value = row.get(name)
        if value:
            return value.strip()
    return ""


def _read_manifest(path: Path) -> Iterator[BatchItem]:
    """Rows of a CSV/TSV/JSONL manifest. ``path`` (or ``file``) is required; ``label``
    (real/fake, also 0/1), ``method`` (or ``generator_method``), ``dataset`` (default: the
    manifest's folder name), ``compression`` and ``media_id`` (default: the path as written)
    are optional and carried into the score rows."""
    folder = path.parent
    dataset_default = path.resolve().parent.name or "batch"
    for number, row in enumerate(_rows(path), start=2 if path.suffix != ".jsonl" else 1):
        where = _first(row, _PATH_COLUMNS)
        if not where:
            raise InputError(f"manifest {path}, row {number}: no 'path' value")
        label = _label(_first(row, ("label",)), path, number)
        method = _first(row, _METHOD_COLUMNS)
        if label == "real":
            method = "real"
        elif label == "fake":
            method = method if method and method != "real" else "unknown"
        else:
            method = ""
        full = where if is_url(where) else str(folder / where)
        yield BatchItem(
            path=full,
            media_id=_first(row, ("media_id",)) or full,
            label=label,
            method=method,
            dataset=_first(row, ("dataset",)) or dataset_default,
            compression=_first(row, ("compression",)),
        )


def _label(text: str, path: Path, number: int) -> str | None:
    value = text.lower()
    if not value:
        return None
    if value in ("fake", "1"):
        return "fake"
    if value in ("real", "0"):
        return "real"
    raise InputError(f"manifest {path}, row {number}: label must be real or fake, not {text!r}")
