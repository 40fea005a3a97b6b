"""Celeb-DF (v2): ``Celeb-real/``, ``YouTube-real/``, ``Celeb-synthesis/`` and the test list."""

from __future__ import annotations

import re
from pathlib import Path

from fakescope.data._items import MediaItem, require_dir, warn_entries
from fakescope.data._registry import register_adapter
from fakescope.errors import InputError

_CELEB_REAL = re.compile(r"^(id\d+)_\d+$")
_SYNTHESIS = re.compile(r"^(id\d+)_(id\d+)_\d+$")
TEST_LIST = "List_of_testing_videos.txt"


def _read_test_list(path: Path) -> dict[str, str]:
    """``{"YouTube-real/00170.mp4": "real", ...}`` from the official list.

    The official list labels **1 = real, 0 = fake** (the inverse of fakescope's convention
    where fake is the positive class).
    """
    listed: dict[str, str] = {}
    for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        parts = line.split()
        if len(parts) != 2 or parts[0] not in {"0", "1"}:
            raise InputError(f"{path}, line {number}: expected '<1|0> <folder>/<file>.mp4'")
        listed[parts[1].replace("\\", "/")] = "real" if parts[0] == "1" else "fake"
    return listed


@register_adapter("celebdf")
def load_celebdf(root: Path) -> list[MediaItem]:
    """Celeb-DF v2 items; split ``"test"`` for videos in ``List_of_testing_videos.txt``,
    ``"train"`` for the rest, ``None`` for all when that list is missing.

    Identities: ``Celeb-real/id0_0000.mp4`` -> ``("id0",)``; ``YouTube-real/00170.mp4`` ->
    ``("00170",)``; ``Celeb-synthesis/id0_id16_0000.mp4`` -> ``("id0", "id16")``. A listed
    label that disagrees with the folder is reported with a :class:`DatasetWarning`.
    """
    root = require_dir(root, "celebdf")
    list_path = root / TEST_LIST
    tested = _read_test_list(list_path) if list_path.is_file() else None
    folders = (
        ("Celeb-real", "real", _CELEB_REAL),
        ("YouTube-real", "real", None),
        ("Celeb-synthesis", "fake", _SYNTHESIS),
    )
    items: list[MediaItem] = []
    disagree: list[str] = []
    if not any((root / name).is_dir() for name, _, _ in folders):
        raise InputError(f"celebdf: none of {', '.join(n for n, _, _ in folders)} in {root}")
    for name, label, pattern in folders:
        folder = root / name
        if not folder.is_dir():
            continue
        for video in sorted(folder.glob("*.mp4")):
            stem = video.stem
            match = pattern.match(stem) if pattern is not None else None
            identities = match.groups() if match else (stem,)
            rel = f"{name}/{video.name}"
            split: str | None = None
            if tested is not None:
                split = "test" if rel in tested else "train"
                if rel in tested and tested[rel] != label:
                    disagree.append(rel)
            items.append(
                MediaItem(
                    media_id=f"celebdf/{name}/{stem}",
                    path=video,
                    label=label,
                    dataset="celebdf",
                    method="real" if label == "real" else "Celeb-DF",
                    identities=tuple(identities),
                    split=split,
                )
            )
    warn_entries("celebdf", f"video(s) whose {TEST_LIST} label disagrees with the folder", disagree)
    return items
