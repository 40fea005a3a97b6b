"""A cached, versioned, sharded store of face crops for training at scale.

    python -m fakescope.training.store ../shared/data/dfdc_faces ../shared/data/ffpp_c23_videos \\
        ../shared/data/ffpp_face_crops ../shared/data/utkface_real --out cache/faces_v2 --workers 2

Every item of every dataset adapter (:func:`fakescope.data.load_dataset`) goes through
fakescope's own face step (MTCNN full scan + FaceMesh, the scan's noise filter); a video gives
``frames_per_video`` evenly spaced frames (:func:`fakescope.io.open_media`), an image one. Per
frame the largest face is kept as a loose square crop of ``scale`` x its box (border pixels
replicated beyond the image, as :func:`fakescope.faces.align_face` does at scan time) with its
468 FaceMesh points in crop pixels: the training code aligns them with the scan's own 5-point
alignment (:func:`fakescope.training.train_sbi.align`) and self-blending needs the context.

On disk (``out``)::

    index.json                 version, parameters, shard keys in order
    shards/<key>/images.npy    (n, size, size, 3) uint8 RGB, opened memory-mapped
    shards/<key>/landmarks.npy (n, 468, 2) float32
    shards/<key>/rows.json     per crop: media_id, dataset, label, method, group, split, frame

A shard holds ``shard_items`` source items; its key hashes the store version, the parameters
and each item's id, path, size and mtime, so a changed input or setting rebuilds only the
shards it touches. Shards are written to a temporary folder and renamed, so an interrupted
build resumes where it stopped, and a re-run that finds every shard does nothing.
``group`` is the identity group (:func:`fakescope.data.identity_groups`): splits are drawn by
it (:func:`split_groups`), never by file. The FF++ c40 dev set is refused.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import sys
from collections.abc import Iterator, Sequence
from concurrent.futures import ProcessPoolExecutor, as_completed
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.data import DEV_ONLY, MediaItem, identity_groups, load_dataset
from fakescope.errors import ConfigError, FakescopeError, InputError

if TYPE_CHECKING:
    from fakescope.faces import MTCNNFaceDetector

__all__ = [
    "DEV_ONLY",
    "STORE_VERSION",
    "FaceStore",
    "ShardedImages",
    "StoreParams",
    "build_store",
    "grouped_items",
    "split_groups",
]

STORE_VERSION = 1
"""Bump when the crop geometry or the row format changes: every shard key changes with it."""


_U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class StoreParams:
    """How crops are made (part of every shard key)."""

    size: int = 256
    scale: float = 1.6
    min_face: float = 40.0
    frames_per_video: int = 32
    shard_items: int = 400

    def __post_init__(self) -> None:
        if self.size < 32 or self.scale < 1.0 or self.frames_per_video < 1 or self.shard_items < 1:
            raise ConfigError(f"invalid store parameters: {self}")


@dataclass(frozen=True)
class _Source:
    item: MediaItem
    group: str


def _item_key(item: MediaItem) -> list[Any]:
    try:
        stat = item.path.stat()
        return [item.media_id, str(item.path), stat.st_size, stat.st_mtime_ns]
    except OSError:
        return [item.media_id, str(item.path), None, None]


def _shard_key(sources: Sequence[_Source], params: StoreParams) -> str:
    blob = json.dumps(
        [STORE_VERSION, asdict(params), [[*_item_key(s.item), s.group] for s in sources]]
    )
    return hashlib.sha256(blob.encode()).hexdigest()[:20]


# --------------------------------------------------------------------------------------------
# building


_DETECTOR: MTCNNFaceDetector | None = None


def _detector(min_face: float) -> MTCNNFaceDetector:
    global _DETECTOR
    if _DETECTOR is None:
        from fakescope.faces import MTCNNFaceDetector

        _DETECTOR = MTCNNFaceDetector(min_face_px=min_face)
    return _DETECTOR


def _crops_of(
    item: MediaItem, params: StoreParams
) -> Iterator[tuple[int, _U8, npt.NDArray[np.float32]]]:
    """``(frame index, loose crop, landmarks)`` for the largest confirmed face of each sampled
    frame of ``item`` (nothing for frames without one, or media that cannot be read)."""
    from fakescope.faces import filter_faces
    from fakescope.io import Sampling, open_media
    from fakescope.training.prepare_sbi import crop_face

    detector = _detector(params.min_face)
    try:
        _, frames = open_media(item.path, Sampling(num_frames=params.frames_per_video))
        for frame in frames:
            faces = [
                f
                for f in filter_faces(detector.detect(frame.image, frame.index), params.min_face)
                if f.mesh is not None
            ]
            if not faces:
                continue
            face = max(faces, key=lambda f: f.width * f.height)
            assert face.mesh is not None  # the filter above kept faces with a mesh only
            crop, points = crop_face(frame.image, face.box, face.mesh, params.size, params.scale)
            yield frame.index, crop, points
    except FakescopeError:
        return


def _build_shard(sources: list[_Source], params: StoreParams, folder: str) -> tuple[int, int]:
    """Write one shard; returns ``(crops, items without a face)``."""
    import cv2

    cv2.setNumThreads(1)
    images: list[_U8] = []
    landmarks: list[Any] = []
    rows: list[dict[str, Any]] = []
    missed = 0
    for source in sources:
        item = source.item
        found = 0
        for index, crop, points in _crops_of(item, params):
            images.append(crop)
            landmarks.append(points)
            rows.append(
                {
                    "media_id": item.media_id,
                    "dataset": item.dataset,
                    "label": item.label,
                    "method": item.method,
                    "group": source.group,
                    "split": item.split or "",
                    "frame": index,
                }
            )
            found += 1
        missed += found == 0
    final = Path(folder)
    tmp = final.with_name(final.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    side = params.size
    np.save(
        tmp / "images.npy", np.stack(images) if images else np.zeros((0, side, side, 3), np.uint8)
    )
    np.save(
        tmp / "landmarks.npy",
        np.stack(landmarks).astype(np.float32) if landmarks else np.zeros((0, 468, 2), np.float32),
    )
    (tmp / "rows.json").write_text(json.dumps({"rows": rows, "missed": missed}), encoding="utf-8")
    os.replace(tmp, final)
    return len(rows), missed


def grouped_items(
    roots: Sequence[Path], refusal: str = "it is never trained on"
) -> tuple[list[MediaItem], list[str]]:
    """The media of ``roots`` and the identity group of each (over all of them); a root that
    is the development set is a :class:`ConfigError` ending in ``refusal``."""
    items: list[MediaItem] = []
    for root in roots:
        found = load_dataset("auto", root)
        dev = sorted({i.dataset for i in found} & DEV_ONLY)
        if dev or Path(root).name in DEV_ONLY:
            raise ConfigError(f"{root} is the development set {dev or Path(root).name}: {refusal}")
        items.extend(found)
    return items, identity_groups(items)


def _sources(roots: Sequence[Path]) -> list[_Source]:
    items, groups = grouped_items(roots)
    return [_Source(item, group) for item, group in zip(items, groups, strict=True)]


def build_store(
    roots: Sequence[Path], out: Path, params: StoreParams | None = None, workers: int = 1
) -> FaceStore:
    """Build (or bring up to date) the store of ``roots`` in ``out`` and open it.

    Shards already on disk with the same key are kept; missing ones are built, ``workers``
    processes at a time (each loads the face models once). A rich progress bar counts
    source items."""
    from rich.progress import Progress

    params = params or StoreParams()
    sources = _sources(roots)
    chunks = [
        sources[i : i + params.shard_items] for i in range(0, len(sources), params.shard_items)
    ]
    keys = [_shard_key(chunk, params) for chunk in chunks]
    shard_dir = out / "shards"
    shard_dir.mkdir(parents=True, exist_ok=True)
    todo = [i for i, key in enumerate(keys) if not (shard_dir / key / "rows.json").is_file()]
    if todo:
        total = sum(len(chunks[i]) for i in todo)
        with Progress() as progress:
            task = progress.add_task("faces", total=total)
            if workers <= 1:
                for i in todo:
                    _build_shard(chunks[i], params, str(shard_dir / keys[i]))
                    progress.advance(task, len(chunks[i]))
            else:
                with ProcessPoolExecutor(workers) as pool:
                    futures = {
                        pool.submit(_build_shard, chunks[i], params, str(shard_dir / keys[i])): i
                        for i in todo
                    }
                    for future in as_completed(futures):
                        future.result()
                        progress.advance(task, len(chunks[futures[future]]))
    index = {"version": STORE_VERSION, "params": asdict(params), "shards": keys}
    tmp = out / "index.json.tmp"
    tmp.write_text(json.dumps(index, indent=1), encoding="utf-8")
    os.replace(tmp, out / "index.json")
    store = FaceStore.open(out)
    print(
        f"{out}: {len(store)} crops from {len(sources)} items in {len(keys)} shards "
        f"({len(todo)} built, {len(keys) - len(todo)} up to date); {store.missed} items "
        "without a usable face",
        file=sys.stderr,
    )
    return store


# --------------------------------------------------------------------------------------------
# reading


class ShardedImages:
    """The crops of all shards as one read-only array-like (memory-mapped, int indexing)."""

    def __init__(self, parts: Sequence[_U8]) -> None:
        self._parts = list(parts)
        self._starts = np.cumsum([0] + [len(p) for p in self._parts])
        side = self._parts[0].shape[1:] if self._parts else (0, 0, 3)
        self.shape: tuple[int, ...] = (int(self._starts[-1]), *side)
        self.dtype = np.dtype(np.uint8)

    def __len__(self) -> int:
        return self.shape[0]

    def __getitem__(self, index: int | np.integer[Any]) -> _U8:
        i = int(index)
        if i < 0:
            i += len(self)
        if not 0 <= i < len(self):
            raise IndexError(index)
        part = int(np.searchsorted(self._starts, i, side="right")) - 1
        return np.asarray(self._parts[part][i - self._starts[part]])

    def take(self, indices: Sequence[int] | npt.NDArray[np.integer[Any]]) -> _U8:
        """The crops at ``indices``, copied into memory."""
        side = self.shape[1:]
        out = np.empty((len(indices), *side), np.uint8)
        for k, i in enumerate(indices):
            out[k] = self[int(i)]
        return out


@dataclass(frozen=True)
class FaceStore:
    """A built store: crops (memory-mapped), landmarks and one row of metadata per crop."""

    root: Path
    params: StoreParams
    images: ShardedImages
    landmarks: npt.NDArray[np.float32]
    rows: list[dict[str, Any]]
    missed: int

    def __len__(self) -> int:
        return len(self.rows)

    def column(self, name: str) -> npt.NDArray[Any]:
        """One metadata column as an array (``labels`` is 0/1)."""
        if name == "labels":
            return np.array([r["label"] == "fake" for r in self.rows], np.int64)
        return np.array([r[name] for r in self.rows])

    @classmethod
    def open(cls, root: Path) -> FaceStore:
        root = Path(root)
        try:
            index = json.loads((root / "index.json").read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise InputError(f"{root} is not a built face store: {exc}") from exc
        if index.get("version") != STORE_VERSION:
            raise InputError(
                f"{root} was built by store version {index.get('version')}, this is "
                f"{STORE_VERSION}: rebuild it"
            )
        images, landmarks, rows, missed = [], [], [], 0
        for key in index["shards"]:
            shard = root / "shards" / key
            images.append(np.load(shard / "images.npy", mmap_mode="r"))
            landmarks.append(np.load(shard / "landmarks.npy"))
            meta = json.loads((shard / "rows.json").read_text(encoding="utf-8"))
            rows.extend(meta["rows"])
            missed += int(meta["missed"])
        parts = [p for p in images if len(p)]
        marks = [m for m in landmarks if len(m)]
        return cls(
            root=root,
            params=StoreParams(**index["params"]),
            images=ShardedImages(parts),
            landmarks=np.concatenate(marks) if marks else np.zeros((0, 468, 2), np.float32),
            rows=rows,
            missed=missed,
        )


# --------------------------------------------------------------------------------------------
# splits


def split_groups(
    rows: Sequence[dict[str, Any]],
    ratios: tuple[float, float, float] = (0.7, 0.15, 0.15),
    seed: int = 0,
) -> dict[str, str]:
    """Assign every identity group to ``train``, ``val`` or ``calib`` -> ``{group: split}``.

    Groups are shuffled with ``seed`` and dealt, within each dataset separately, to the split
    furthest below its share of that dataset's crops, so every set is represented in every
    split. A dataset's own held-out split (``ffpp_face_crops``' ``test_`` files) becomes
    ``test``: never trained, validated or calibrated on."""
    if len(ratios) != 3 or min(ratios) < 0 or sum(ratios) <= 0:
        raise ConfigError(f"split ratios must be 3 non-negative numbers, got {ratios}")
    names = ("train", "val", "calib")
    sizes: dict[str, dict[str, int]] = {}
    out: dict[str, str] = {}
    for row in rows:
        if row["split"] == "test":
            out[row["group"]] = "test"
            continue
        by_group = sizes.setdefault(row["dataset"], {})
        by_group[row["group"]] = by_group.get(row["group"], 0) + 1
    rng = np.random.default_rng(seed)
    total_ratio = float(sum(ratios))
    for dataset in sorted(sizes):
        groups = sorted(g for g in sizes[dataset] if g not in out)
        n = sum(sizes[dataset][g] for g in groups)
        targets = [r / total_ratio * n for r in ratios]
        counts = [0.0, 0.0, 0.0]
        allowed = [i for i, r in enumerate(ratios) if r > 0]
        for g in rng.permutation(len(groups)):
            group = groups[int(g)]
            best = max(allowed, key=lambda s: (targets[s] - counts[s], -s))
            counts[best] += sizes[dataset][group]
            out[group] = names[best]
    return out


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="dataset folders or manifests")
    parser.add_argument("--out", type=Path, required=True, help="store folder")
    parser.add_argument("--size", type=int, default=StoreParams.size)
    parser.add_argument("--scale", type=float, default=StoreParams.scale)
    parser.add_argument("--min-face", type=float, default=StoreParams.min_face)
    parser.add_argument("--frames-per-video", type=int, default=StoreParams.frames_per_video)
    parser.add_argument("--shard-items", type=int, default=StoreParams.shard_items)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args(argv)
    params = StoreParams(
        args.size, args.scale, args.min_face, args.frames_per_video, args.shard_items
    )
    build_store(args.sources, args.out, params, args.workers)


if __name__ == "__main__":
    main()
