"""A TSV/CSV manifest (``file``, ``label``, ... ``generator_method``) such as ``MANIFEST.tsv``."""

from __future__ import annotations

import csv
import re
from pathlib import Path, PurePosixPath

from fakescope.data._ffpp import FFPP_METHODS, ffpp_identities
from fakescope.data._items import KINDS, MediaItem, kind_of, warn_entries
from fakescope.data._manifest import COLUMNS, read_manifest
from fakescope.data._registry import register_adapter
from fakescope.errors import InputError

_NAMES = ("MANIFEST.tsv", "MANIFEST.csv")
_FFPP_METHOD = re.compile(r"^FF\+\+\s+(\w+)")
_COMPRESSION = re.compile(r"\b(c0|c23|c40|raw)\b")
_TARGET_SOURCE = re.compile(r"target_source=(\d+)_(\d+)")
_FFPP_REAL = re.compile(r"^(?:youtube|actors)_(.+)$")
_SPLIT_PREFIX = re.compile(r"^(train|val|test)_")
_ORIGINAL = re.compile(r"original=([\w-]+?)(?:\.\w+)?\)?$")


def _locate(root: Path) -> Path:
    if root.is_file():
        return root
    for name in _NAMES:
        if (root / name).is_file():
            return root / name
    raise InputError(f"manifest: {root} is neither a manifest file nor a folder with {_NAMES[0]}")


def _delimiter(path: Path, header: str) -> str:
    suffix = path.suffix.lower()
    if suffix == ".tsv":
        return "\t"
    if suffix == ".csv":
        return ","
    return "\t" if "\t" in header else ","


def parse_generator(text: str) -> tuple[str | None, str | None, tuple[str, ...] | None]:
    """``(method, compression, identities)`` from a ``generator_method`` cell (``None``: unknown).

    ``"FF++ Deepfakes (face-swap), c40; target_source=183_253"`` ->
    ``("Deepfakes", "c40", ("183", "253"))``.
    """
    method = None
    if (match := _FFPP_METHOD.match(text)) and match.group(1) in FFPP_METHODS:
        method = match.group(1)
    compression = match.group(1) if (match := _COMPRESSION.search(text)) else None
    ids = (match.group(1), match.group(2)) if (match := _TARGET_SOURCE.search(text)) else None
    return method, compression, ids


def _fallback_method(text: str) -> str:
    """A non-FF++ fake's method: the generator text up to the first ``(``, ``,`` or ``;``."""
    return re.split(r"[(,;]", text, maxsplit=1)[0].strip() or "fake"


@register_adapter("manifest")
def load_manifest_table(root: Path, *, dataset: str | None = None) -> list[MediaItem]:
    """Items of a manifest file (or a folder holding ``MANIFEST.tsv``/``MANIFEST.csv``).

    Required columns ``file`` and ``label``; optional ``kind``, ``split``, ``generator_method``.
    ``file`` is relative to the manifest's folder. Method/compression/identities come from
    ``generator_method`` when it reads ``"FF++ <Method> ..., c40; target_source=TTT_SSS"``;
    FF++ originals named ``youtube_NNN``/``actors_NN__scene`` get those ids, fakes named
    ``<Method>_TTT_SSS`` their method and both ids; otherwise the identity is the file's stem.
    A DFDC fake's ``original=xxxx.mp4`` names its identity (the source video). The compression
    level falls back to a ``c23``/``c40`` folder in ``original_path``; ``kind`` is the cell's
    first word when that is video/image (``"video (first 5 s)"``), else the file extension's.
    A ``train_``/``val_``/``test_`` file-name prefix (or a ``split`` column) sets the split.
    ``dataset`` (default: the manifest's folder name) is the dataset name and media_id prefix.
    Rows whose file is missing are skipped with a :class:`DatasetWarning`.
    A file written by :func:`~fakescope.data.write_manifest` is read with ``read_manifest``.
    """
    path = _locate(Path(root))
    folder = path.parent
    dataset = dataset or folder.absolute().name
    with path.open(newline="", encoding="utf-8") as fh:
        header = fh.readline()
        fh.seek(0)
        reader = csv.DictReader(fh, delimiter=_delimiter(path, header))
        fields = reader.fieldnames or []
        if set(COLUMNS) <= set(fields) and "\t" in header:
            return read_manifest(path)
        if "file" not in fields or "label" not in fields:
            raise InputError(f"manifest {path}: needs 'file' and 'label' columns (has {fields})")
        rows = list(reader)
    items: list[MediaItem] = []
    missing: list[str] = []
    for line, row in enumerate(rows, start=2):
        file = (row.get("file") or "").strip()
        label = (row.get("label") or "").strip().lower()
        if not file or label not in {"real", "fake"}:
            raise InputError(f"manifest {path}, line {line}: needs a file and label real|fake")
        media = folder / file
        if not media.is_file():
            missing.append(file)
            continue
        rel = PurePosixPath(file.replace("\\", "/"))
        generator = (row.get("generator_method") or "").strip()
        method, compression, ids = parse_generator(generator)
        original = (row.get("original_path") or "").replace("\\", "/")
        if compression is None and (m := _COMPRESSION.search(original)):
            compression = m.group(1)
        stem = rel.with_suffix("").name
        ffpp_source = generator.startswith("FF++") or "original_sequences/" in original
        if ids is None and ffpp_source and (m := _FFPP_REAL.match(stem)):
            ids = ffpp_identities(m.group(1))
        if ids is None and (m := _ORIGINAL.search(generator)):  # a DFDC fake's source video
            ids = (m.group(1),)
        prefix, _, rest = stem.partition("_")  # Deepfakes_044_945: method, then the FF++ ids
        if ids is None and prefix in FFPP_METHODS and rest:
            method = method or prefix
            ids = ffpp_identities(rest)
        split_cell = (row.get("split") or "").strip().lower()
        split_match = _SPLIT_PREFIX.match(rel.name)
        words = (row.get("kind") or "").strip().lower().split()  # "video (first 5 s, ...)"
        cell = words[0] if words else ""
        kind = cell if cell in KINDS else kind_of(media) or cell or "video"
        if kind not in KINDS:
            raise InputError(f"manifest {path}, line {line}: kind must be video or image")
        if label == "real":
            method = "real"
        elif method is None:
            method = _fallback_method(generator)
        items.append(
            MediaItem(
                media_id=f"{dataset}/{rel.with_suffix('').as_posix()}",
                path=media,
                label=label,
                dataset=dataset,
                method=method,
                identities=ids or (stem,),
                split=split_cell or (split_match.group(1) if split_match else None),
                compression=compression,
                kind=kind,
            )
        )
    warn_entries(dataset, "manifest row(s) skipped, file missing on disk", missing)
    return items
