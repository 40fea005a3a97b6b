"""A generic ``real/`` + ``fake/`` folder of videos and/or images."""

from __future__ import annotations

from pathlib import Path

from fakescope.data._items import MediaItem, kind_of, media_files, require_dir
from fakescope.data._registry import register_adapter
from fakescope.errors import InputError


@register_adapter("folder")
def load_folder(root: Path, *, dataset: str = "folder") -> list[MediaItem]:
    """Media under ``real/`` and ``fake/`` (recursive; mp4 mov mkv avi webm jpg jpeg png webp bmp).

    ``kind`` follows the extension; a fake's method is its first folder under ``fake/``
    (``fake/FaceSwap/a/b.mp4`` -> ``"FaceSwap"``) or ``"fake"``; identity is the file stem.
    ``dataset`` names the dataset and prefixes ``media_id`` (``<dataset>/<label>/<relative path>``).
    """
    root = require_dir(root, "folder")
    if not (root / "real").is_dir() and not (root / "fake").is_dir():
        raise InputError(f"folder: neither real/ nor fake/ in {root}")
    items: list[MediaItem] = []
    for label in ("real", "fake"):
        base = root / label
        if not base.is_dir():
            continue
        for path in media_files(base):
            rel = path.relative_to(base)
            method = "real" if label == "real" else (rel.parts[0] if len(rel.parts) > 1 else "fake")
            items.append(
                MediaItem(
                    media_id=f"{dataset}/{label}/{rel.as_posix()}",
                    path=path,
                    label=label,
                    dataset=dataset,
                    method=method,
                    identities=(path.stem,),
                    kind=kind_of(path) or "video",
                )
            )
    return items
