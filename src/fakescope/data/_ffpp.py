"""FaceForensics++ (incl. Google's DeepFakeDetection) in the official download layout.

``original_sequences/{youtube,actors}/<c>/videos/*.mp4`` and
``manipulated_sequences/<Method>/<c>/videos/*.mp4``, optional masks in
``manipulated_sequences/<Method>/masks/videos/<same name>.mp4`` and optional official split
files ``splits/{train,val,test}.json`` (lists of ``[target, source]`` pairs).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from pathlib import Path

from fakescope.data._items import MediaItem, require_dir
from fakescope.data._registry import register_adapter
from fakescope.errors import ConfigError, InputError

FFPP_METHODS = (
    "Deepfakes",
    "Face2Face",
    "FaceSwap",
    "NeuralTextures",
    "FaceShifter",
    "DeepFakeDetection",
)
_SOURCES = ("youtube", "actors")
_PAIR = re.compile(r"^(\d+)_(\d+)$")


def ffpp_identities(stem: str) -> tuple[str, ...]:
    """Person ids in an FF++/DFD file stem.

    ``"000"`` -> ``("000",)``; ``"000_003"`` -> ``("000", "003")`` (target, source);
    ``"01__kitchen_pan"`` -> ``("01",)``; ``"01_02__walking__ABC"`` -> ``("01", "02")``.
    Anything else is its own identity.
    """
    if "__" in stem:
        ids = tuple(i for i in stem.split("__", 1)[0].split("_") if i)
        return ids or (stem,)
    if match := _PAIR.match(stem):
        return match.group(1), match.group(2)
    return (stem,)


def _read_splits(root: Path) -> dict[str, list[tuple[str, str]]]:
    splits: dict[str, list[tuple[str, str]]] = {}
    for split in ("train", "val", "test"):
        path = root / "splits" / f"{split}.json"
        if not path.is_file():
            continue
        try:
            pairs = json.loads(path.read_text(encoding="utf-8"))
            splits[split] = [(str(a), str(b)) for a, b in pairs]
        except (ValueError, TypeError) as exc:
            raise InputError(f"{path}: expected a JSON list of [target, source] pairs") from exc
    return splits


def _compressions(folder: Path, compression: str) -> list[str]:
    """``<c>`` folder names under ``folder`` that hold ``videos/`` and match ``compression``."""
    found = sorted(
        d.name
        for d in folder.iterdir()
        if d.is_dir() and d.name != "masks" and (d / "videos").is_dir()
    )
    return found if compression == "all" else [c for c in found if c == compression]


@register_adapter("ffpp")
def load_ffpp(
    root: Path,
    *,
    compression: str = "all",
    methods: Sequence[str] | None = None,
    include_real: bool = True,
) -> list[MediaItem]:
    """FaceForensics++ items: originals (``method="real"``) and every manipulation method.

    ``compression`` is ``"all"`` by default: every ``<c>`` folder present is read and each item
    keeps its own ``compression`` (so an evaluation can break results down by level); a folder
    name (``"raw"``/``"c0"``, ``"c23"``, ``"c40"``) reads that level only. ``methods``
    restricts the manipulation folders (default: every one present).
    ``mask_path`` is set when the mask video exists, else ``None``. Splits come from
    ``splits/*.json`` when present (a youtube original is in the split whose pairs contain its
    id, a swap ``TTT_SSS`` in the split holding that pair in either order); else ``None``.
    """
    root = require_dir(root, "ffpp")
    if not compression:
        raise ConfigError("ffpp: compression must be a folder name such as 'c23', or 'all'")
    splits = _read_splits(root)
    by_id: dict[str, str] = {}
    by_pair: dict[frozenset[str], str] = {}
    for split, pairs in splits.items():
        for a, b in pairs:
            by_id.setdefault(a, split)
            by_id.setdefault(b, split)
            by_pair.setdefault(frozenset((a, b)), split)

    items: list[MediaItem] = []
    available: set[str] = set()
    seen_any = False
    if include_real:
        for source in _SOURCES:
            folder = root / "original_sequences" / source
            if not folder.is_dir():
                continue
            seen_any = True
            available.update(_compressions(folder, "all"))
            for c in _compressions(folder, compression):
                for video in sorted((folder / c / "videos").glob("*.mp4")):
                    stem = video.stem
                    items.append(
                        MediaItem(
                            media_id=f"ffpp/{source}/{c}/{stem}",
                            path=video,
                            label="real",
                            dataset="ffpp",
                            method="real",
                            identities=ffpp_identities(stem),
                            split=by_id.get(stem) if source == "youtube" else None,
                            compression=c,
                        )
                    )

    manipulated = root / "manipulated_sequences"
    present = (
        sorted(d.name for d in manipulated.iterdir() if d.is_dir()) if manipulated.is_dir() else []
    )
    if methods is not None:
        absent = [m for m in methods if m not in present]
        if absent:
            raise InputError(
                f"ffpp: no manipulated_sequences/{{{','.join(absent)}}} in {root} "
                f"(present: {', '.join(present) or 'none'})"
            )
        present = [m for m in present if m in methods]
    for method in present:
        seen_any = True
        folder = manipulated / method
        masks = folder / "masks" / "videos"
        available.update(_compressions(folder, "all"))
        for c in _compressions(folder, compression):
            for video in sorted((folder / c / "videos").glob("*.mp4")):
                stem = video.stem
                ids = ffpp_identities(stem)
                mask = masks / video.name
                items.append(
                    MediaItem(
                        media_id=f"ffpp/{method}/{c}/{stem}",
                        path=video,
                        label="fake",
                        dataset="ffpp",
                        method=method,
                        identities=ids,
                        split=by_pair.get(frozenset(ids)) if _PAIR.match(stem) else None,
                        compression=c,
                        mask_path=mask if mask.is_file() else None,
                    )
                )
    if not seen_any:
        raise InputError(f"ffpp: no original_sequences/ or manipulated_sequences/ in {root}")
    if not items and available and compression not in available:
        raise InputError(
            f"ffpp: no {compression!r} videos in {root} (compressions present: "
            f"{', '.join(sorted(available))}; or use compression='all')"
        )
    return items
