"""The track table of the cue SVM's trainer (:mod:`fakescope.training.cues`): one row per video
track of a face store (its crops in frame order), with :func:`fakescope.cues.track_cues`' cue
vector, the missing-cue mask and the track's metadata; cached as ``.npz`` (no pickles) by
:mod:`fakescope.training.cache`."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.cues import CUES_VERSION, FEATURE_NAMES, track_cues
from fakescope.errors import ConfigError, FakescopeError
from fakescope.training.cache import content_key, load_cache, save_cache, store_key
from fakescope.training.engine import log
from fakescope.training.store import DEV_ONLY, FaceStore

__all__ = ["Tracks", "load_tracks"]

_F64 = npt.NDArray[np.float64]
_I64 = npt.NDArray[np.int64]


@dataclass(frozen=True)
class Tracks:
    """One row per track: cue matrix, missing-cue mask and metadata (all numpy arrays)."""

    names: tuple[str, ...]
    x: _F64
    missing: npt.NDArray[np.bool_]
    media_id: npt.NDArray[np.str_]
    dataset: npt.NDArray[np.str_]
    label: _I64
    method: npt.NDArray[np.str_]
    group: npt.NDArray[np.str_]
    frames: _I64
    fps: _F64
    fps_known: npt.NDArray[np.bool_]

    def __len__(self) -> int:
        return len(self.label)


def _media_fps(datasets: Sequence[str], data_root: Path | None) -> dict[str, float]:
    """``{media_id: fps}`` for the videos of ``datasets`` found under ``data_root``."""
    if data_root is None:
        return {}
    from fakescope.data import load_dataset
    from fakescope.io import open_media

    out: dict[str, float] = {}
    for name in datasets:
        root = data_root / name
        if not root.exists():
            log(f"{root} not found: frame times use data.fps")
            continue
        try:
            items = load_dataset("auto", root)
        except FakescopeError as exc:
            log(f"{root}: {exc}; frame times use data.fps")
            continue
        for item in items:
            if item.kind != "video":
                continue
            try:
                info, _ = open_media(item.path)
            except (FakescopeError, OSError):
                continue
            if info.fps and math.isfinite(info.fps) and info.fps > 0:
                out[item.media_id] = float(info.fps)
    return out


def load_tracks(
    store: FaceStore,
    datasets: Sequence[str],
    *,
    cache_dir: Path | None = None,
    data_root: Path | None = None,
    default_fps: float = 25.0,
    min_frames: int = 8,
) -> Tracks:
    """The cue table of every track of ``datasets`` in ``store`` (cached in ``cache_dir``)."""
    dev = sorted(set(datasets) & DEV_ONLY)
    if dev:
        raise ConfigError(f"{dev} is development data: never trained or evaluated on here")
    meta = {
        "store": store_key(store),
        "cues": [CUES_VERSION, list(FEATURE_NAMES)],
        "datasets": sorted(datasets),
        "args": [str(data_root), default_fps, min_frames],
    }
    cache = cache_dir / f"features_{content_key(meta)}.npz" if cache_dir is not None else None
    cached = load_cache(cache, meta) if cache is not None else None
    if cache is not None and cached is not None:
        log(f"{cache.name}: cached cue table")
        return Tracks(**{**cached, "names": tuple(str(n) for n in cached["names"])})
    wanted = set(datasets)
    by_media: dict[str, list[int]] = {}
    for i, row in enumerate(store.rows):
        if row["dataset"] in wanted:
            by_media.setdefault(str(row["media_id"]), []).append(i)
    if not by_media:
        raise ConfigError(f"no rows of {sorted(wanted)} in the store {store.root}")
    fps_of = _media_fps(datasets, data_root)
    rows_out: list[dict[str, Any]] = []
    xs: list[_F64] = []
    masks: list[npt.NDArray[np.bool_]] = []
    dropped = 0
    started = time.perf_counter()
    for media in sorted(by_media):
        idx = sorted(by_media[media], key=lambda i: int(store.rows[i]["frame"]))
        if len(idx) < min_frames:
            dropped += 1
            continue
        first = store.rows[idx[0]]
        fps = fps_of.get(media)
        frames = np.asarray([int(store.rows[i]["frame"]) for i in idx], np.float64)
        cues = track_cues(
            store.images.take(idx), store.landmarks[idx], frames / (fps or default_fps)
        )
        xs.append(cues.vector())
        masks.append(np.asarray([n in cues.missing for n in cues.names], bool))
        rows_out.append(
            {**first, "frames": len(idx), "fps": fps or default_fps, "known": bool(fps)}
        )
    if not rows_out:
        raise ConfigError(f"no track of {sorted(wanted)} has {min_frames} frames")
    elapsed = time.perf_counter() - started
    log(
        f"{len(rows_out)} tracks ({dropped} under {min_frames} frames dropped), cues in "
        f"{elapsed:.1f} s; fps from the media for {sum(r['known'] for r in rows_out)}"
    )

    def col(name: str) -> npt.NDArray[np.str_]:
        return np.asarray([str(r[name]) for r in rows_out], np.str_)

    tracks = Tracks(
        names=FEATURE_NAMES,
        x=np.stack(xs),
        missing=np.stack(masks),
        media_id=col("media_id"),
        dataset=col("dataset"),
        label=np.asarray([r["label"] == "fake" for r in rows_out], np.int64),
        method=col("method"),
        group=col("group"),
        frames=np.asarray([r["frames"] for r in rows_out], np.int64),
        fps=np.asarray([r["fps"] for r in rows_out], np.float64),
        fps_known=np.asarray([r["known"] for r in rows_out], bool),
    )
    if cache is not None:
        cache.parent.mkdir(parents=True, exist_ok=True)
        save_cache(
            cache, meta, {f.name: np.asarray(getattr(tracks, f.name)) for f in fields(tracks)}
        )
    return tracks
