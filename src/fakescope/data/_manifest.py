"""Write and read lists of :class:`MediaItem` as a TSV file with a header."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from pathlib import Path

from fakescope.data._items import MediaItem, check_unique
from fakescope.errors import ConfigError, InputError

COLUMNS = (
    "media_id",
    "path",
    "label",
    "dataset",
    "method",
    "identities",
    "split",
    "compression",
    "mask_path",
    "kind",
)
_ID_SEP = "|"


def _store_path(path: Path, folder: Path) -> str:
    """``path`` relative to ``folder`` when it lies inside it, else absolute (posix)."""
    absolute = path if path.is_absolute() else path.absolute()
    try:
        return absolute.relative_to(folder).as_posix()
    except ValueError:
        return absolute.as_posix()


def write_manifest(items: Iterable[MediaItem], path: Path) -> Path:
    """Write ``items`` to ``path`` as TSV (``COLUMNS`` header; ``None`` as an empty cell).

    Paths inside the manifest's folder are stored relative to it, others absolute; identities
    are joined with ``|``. Returns ``path``.
    """
    path = Path(path)
    rows = list(items)
    check_unique(rows)
    folder = path.parent.absolute()
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w", newline="", encoding="utf-8") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(COLUMNS)
        for item in rows:
            if any(_ID_SEP in i or not i for i in item.identities):
                raise ConfigError(f"{item.media_id}: identities must be non-empty and without '|'")
            writer.writerow(
                [
                    item.media_id,
                    _store_path(item.path, folder),
                    item.label,
                    item.dataset,
                    item.method,
                    _ID_SEP.join(item.identities),
                    item.split or "",
                    item.compression or "",
                    "" if item.mask_path is None else _store_path(item.mask_path, folder),
                    item.kind,
                ]
            )
    return path


def read_manifest(path: Path) -> list[MediaItem]:
    """Read a file written by :func:`write_manifest`; relative paths join the manifest's folder."""
    path = Path(path)
    if not path.is_file():
        raise InputError(f"manifest {path} does not exist")
    folder = path.parent
    items: list[MediaItem] = []
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh, delimiter="\t")
        missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
        if missing:
            raise InputError(f"manifest {path}: missing columns {', '.join(missing)}")
        for line, row in enumerate(reader, start=2):
            try:
                items.append(
                    MediaItem(
                        media_id=row["media_id"],
                        path=folder / row["path"],
                        label=row["label"],
                        dataset=row["dataset"],
                        method=row["method"],
                        identities=tuple(i for i in row["identities"].split(_ID_SEP) if i),
                        split=row["split"] or None,
                        compression=row["compression"] or None,
                        mask_path=folder / row["mask_path"] if row["mask_path"] else None,
                        kind=row["kind"],
                    )
                )
            except ConfigError as exc:
                raise InputError(f"manifest {path}, line {line}: {exc}") from exc
    check_unique(items)
    return items
