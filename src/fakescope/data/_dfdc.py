"""DFDC (Kaggle Deepfake Detection Challenge) parts: folders holding ``metadata.json``."""

from __future__ import annotations

import json
from pathlib import Path

from fakescope.data._items import MediaItem, require_dir, warn_entries
from fakescope.data._registry import register_adapter
from fakescope.errors import InputError

_SPLITS = {"train": "train", "val": "val", "validation": "val", "test": "test"}


def _part_folders(root: Path) -> list[Path]:
    """``root`` (when it has metadata.json) and every ``dfdc_train_part_*`` folder below it."""
    found = [root] if (root / "metadata.json").is_file() else []
    for sub in sorted(root.iterdir()):
        if sub.is_dir() and sub.name.startswith("dfdc_train_part_"):
            found.extend(_part_folders(sub))
    return found


def _read_metadata(path: Path) -> dict[str, dict[str, object]]:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputError(f"{path}: not valid JSON ({exc})") from exc
    if not isinstance(data, dict) or not all(isinstance(v, dict) for v in data.values()):
        raise InputError(f'{path}: expected {{"<file>.mp4": {{"label": ...}}, ...}}')
    return data


@register_adapter("dfdc")
def load_dfdc(root: Path) -> list[MediaItem]:
    """DFDC items from every ``metadata.json`` in ``root`` and its ``dfdc_train_part_*`` folders.

    A fake's identity is the stem of its ``original`` (so a real and its fakes share one); a
    real's is its own stem. Entries whose file is missing are skipped and reported in one
    :class:`DatasetWarning` (count and first names).
    """
    root = require_dir(root, "dfdc")
    parts = _part_folders(root)
    if not parts:
        raise InputError(f"dfdc: no metadata.json in {root} or its dfdc_train_part_* folders")
    items: list[MediaItem] = []
    skipped: list[str] = []
    for part in parts:
        meta_path = part / "metadata.json"
        rel = part.relative_to(root).as_posix()
        prefix = "dfdc" if rel == "." else f"dfdc/{rel}"
        for name, entry in sorted(_read_metadata(meta_path).items()):
            label = str(entry.get("label", "")).lower()
            if label not in {"real", "fake"}:
                raise InputError(f"{meta_path}: {name}: label must be REAL or FAKE")
            path = part / name
            if not path.is_file():
                skipped.append(name if rel == "." else f"{rel}/{name}")
                continue
            stem = Path(name).stem
            original = entry.get("original")
            identity = (
                Path(original).stem if label == "fake" and isinstance(original, str) else stem
            )
            items.append(
                MediaItem(
                    media_id=f"{prefix}/{stem}",
                    path=path,
                    label=label,
                    dataset="dfdc",
                    method="real" if label == "real" else "DFDC",
                    identities=(identity,),
                    split=_SPLITS.get(str(entry.get("split", "")).lower()),
                )
            )
    warn_entries("dfdc", "metadata.json entr(ies) skipped, file missing on disk", skipped)
    return items
