"""A local gallery of known people, stored as face-recognition embeddings only (no photos).

On disk, in the gallery folder: ``gallery.json`` (names, counts, metadata, the model the
embeddings came from) and ``embeddings.npz`` (one float32 (N, 128) array per person, loaded
with ``allow_pickle=False``). Both are written atomically (temporary file, then
``os.replace``); removing a person rewrites ``embeddings.npz`` without their arrays.
"""

from __future__ import annotations

import json
import math
import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import numpy as np
import numpy.typing as npt

from fakescope.errors import InputError
from fakescope.identity._embed import EMBEDDING_DIM, MODEL_FILE, MODEL_SHA256, pool

__all__ = [
    "CALIBRATION_COMMAND",
    "SAME_PERSON_INTERCEPT",
    "SAME_PERSON_SLOPE",
    "SAME_PERSON_THRESHOLD",
    "Gallery",
    "GalleryMatch",
    "fit_same_person_calibration",
    "same_person_probability",
]

GALLERY_VERSION = 1
JSON_NAME = "gallery.json"
NPZ_NAME = "embeddings.npz"

CALIBRATION_COMMAND = "OMP_NUM_THREADS=1 PYTHONPATH=src python3 tools/identity_eval.py"
"""The command that measured the constants below (report: runs/identity_v1/report.json)."""
SAME_PERSON_THRESHOLD = 0.35
"""Euclidean distance between L2-normalised embeddings at or below which two faces are taken as
the same person: where the calibration below crosses 0.5 (0.352). dlib's usual 0.6 is for its
raw descriptors (norm ~1.46); on normalised ones it let 73% of different-person pairs through.
Measured (report.json): pooled probe vs own gallery entry 0.14 mean / 0.29 max (same video) and
0.23-0.27 across two clips of one actor; different people 0.56 mean / 0.33 min."""
SAME_PERSON_INTERCEPT = 22.4075
SAME_PERSON_SLOPE = -63.6249
"""Logistic calibration ``p(same) = 1 / (1 + exp(-(INTERCEPT + SLOPE * distance)))`` fitted
(classes weighted equally) on single probe frames vs gallery entries: 189 same-person, 8505
different-person distances, 48 real FF++/DFD videos (:data:`CALIBRATION_COMMAND`). The
same-person pairs come from the same video as the gallery, so it is optimistic across
sessions."""


def same_person_probability(
    distance: float, intercept: float = SAME_PERSON_INTERCEPT, slope: float = SAME_PERSON_SLOPE
) -> float:
    """The calibrated probability that two embeddings ``distance`` apart show one person."""
    z = intercept + slope * float(distance)
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    ez = math.exp(z)
    return ez / (1.0 + ez)


def fit_same_person_calibration(
    same: npt.ArrayLike, different: npt.ArrayLike, iterations: int = 100, ridge: float = 1e-6
) -> tuple[float, float]:
    """``(intercept, slope)`` of a logistic regression of same-person on distance, each class
    weighted equally (so the prior of the measured pairs does not set the 0.5 point)."""
    s = np.asarray(same, dtype=np.float64).ravel()
    d = np.asarray(different, dtype=np.float64).ravel()
    if s.size == 0 or d.size == 0:
        raise ValueError("calibration needs same-person and different-person distances")
    x = np.concatenate([s, d])
    y = np.concatenate([np.ones(s.size), np.zeros(d.size)])
    w = np.concatenate([np.full(s.size, 0.5 / s.size), np.full(d.size, 0.5 / d.size)])
    design = np.stack([np.ones_like(x), x], axis=1)
    beta = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ beta, -50, 50)))
        grad = design.T @ (w * (p - y)) + ridge * beta
        hess = (design * (w * p * (1 - p))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        beta -= step
        if float(np.abs(step).max()) < 1e-10:
            break
    return float(beta[0]), float(beta[1])


@dataclass(frozen=True)
class GalleryMatch:
    """The closest person in a gallery: ``name`` is ``None`` when even the closest is further
    than the threshold (or the gallery is empty); ``closest`` names them anyway."""

    name: str | None
    distance: float
    same_person_probability: float
    closest: str | None


def _atomic_write(path: Path, write: Any) -> None:
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            write(fh)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


class Gallery:
    """Known people as reference embeddings, kept in ``folder`` (created when missing).

    ``match`` compares an embedding with each person's pooled references (:func:`pool`).
    """

    def __init__(self, folder: Path | str, threshold: float = SAME_PERSON_THRESHOLD) -> None:
        self.folder = Path(folder)
        self.threshold = float(threshold)
        self._people: dict[str, dict[str, Any]] = {}
        self._refs: dict[str, npt.NDArray[np.float32]] = {}
        self._centroids: dict[str, npt.NDArray[np.float32]] = {}
        self._load()

    # -- storage -------------------------------------------------------------------------
    def _load(self) -> None:
        meta_path = self.folder / JSON_NAME
        if not meta_path.exists():
            return
        try:
            meta = json.loads(meta_path.read_text(encoding="utf-8"))
            people = meta["people"]
            with np.load(self.folder / NPZ_NAME, allow_pickle=False) as npz:
                arrays = {key: np.asarray(npz[key], dtype=np.float32) for key in npz.files}
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise InputError(f"the gallery at {self.folder} is unreadable: {exc}") from None
        if meta.get("version") != GALLERY_VERSION:
            raise InputError(f"the gallery at {self.folder} has an unknown version")
        for i, person in enumerate(people):
            key = f"p{i}"
            if key not in arrays:
                raise InputError(f"the gallery at {self.folder} lacks embeddings for {key}")
            name = str(person["name"])
            self._people[name] = dict(person)
            self._set_refs(name, arrays[key])

    def _set_refs(self, name: str, refs: npt.NDArray[np.float32]) -> None:
        self._refs[name] = refs
        self._centroids[name] = pool(refs)

    def _save(self, removing: bool) -> None:
        self.folder.mkdir(parents=True, exist_ok=True)
        names = list(self._people)
        arrays = {f"p{i}": self._refs[name] for i, name in enumerate(names)}
        meta = {
            "version": GALLERY_VERSION,
            "model": MODEL_FILE,
            "model_sha256": MODEL_SHA256,
            "embedding_dim": EMBEDDING_DIM,
            "people": [
                {**self._people[name], "name": name, "count": len(self._refs[name])}
                for name in names
            ],
        }
        text = json.dumps(meta, indent=2, ensure_ascii=False).encode("utf-8")

        def write_npz() -> None:
            _atomic_write(
                self.folder / NPZ_NAME, lambda fh: np.savez(fh, **cast(dict[str, Any], arrays))
            )

        def write_json() -> None:
            _atomic_write(self.folder / JSON_NAME, lambda fh: fh.write(text))

        # Person i's array is key p{i}: renumbering on removal means a crash between the
        # two writes could pair names with the wrong arrays, so removal writes the index
        # first and an addition the embeddings first; a reader then finds either the old or
        # the new state, or an index naming fewer people than the arrays hold.
        if removing:
            write_json()
            write_npz()
        else:
            write_npz()
            write_json()

    # -- API -----------------------------------------------------------------------------
    def names(self) -> list[str]:
        """The people in the gallery, in the order they were added."""
        return list(self._people)

    def embeddings(self, name: str) -> npt.NDArray[np.float32]:
        """A copy of ``name``'s reference embeddings (N, 128). Raises ``KeyError``."""
        return self._refs[name].copy()

    def add(
        self,
        name: str,
        embeddings: npt.ArrayLike,
        metadata: Mapping[str, Any] | None = None,
    ) -> None:
        """Add reference embeddings (N, 128) or (128,) for ``name`` (appended when the person
        is already known) and save the gallery. ``metadata`` must be JSON-serialisable."""
        if not isinstance(name, str) or not name.strip():
            raise ValueError("a gallery name must be a non-empty string")
        refs = np.asarray(embeddings, dtype=np.float32)
        if refs.ndim == 1:
            refs = refs[None, :]
        if refs.ndim != 2 or refs.shape[1] != EMBEDDING_DIM or refs.shape[0] == 0:
            raise ValueError(f"embeddings must be (N, {EMBEDDING_DIM}), got {refs.shape}")
        if not np.isfinite(refs).all():
            raise ValueError("embeddings must be finite")
        refs = refs / np.maximum(np.linalg.norm(refs, axis=1, keepdims=True), 1e-12)
        entry = self._people.get(name)
        if entry is None:
            entry = {"name": name, "added": datetime.now(UTC).isoformat(timespec="seconds")}
            self._people[name] = entry
            merged = refs
        else:
            merged = np.concatenate([self._refs[name], refs])
        if metadata:
            json.dumps(dict(metadata))  # fail now, not at save time
            entry["metadata"] = {**entry.get("metadata", {}), **dict(metadata)}
        self._set_refs(name, np.asarray(merged, dtype=np.float32))
        self._save(removing=False)

    def remove(self, name: str) -> None:
        """Forget ``name``: their embeddings are removed from memory and from disk.
        Raises ``KeyError`` when unknown."""
        if name not in self._people:
            raise KeyError(name)
        del self._people[name]
        del self._refs[name]
        del self._centroids[name]
        self._save(removing=True)

    def match(self, embedding: npt.ArrayLike) -> GalleryMatch:
        """The person whose pooled references are closest to ``embedding`` (Euclidean on
        L2-normalised vectors), with the calibrated same-person probability; ``name`` is
        ``None`` when that distance is above :attr:`threshold`."""
        probe = np.asarray(embedding, dtype=np.float64).ravel()
        if probe.shape != (EMBEDDING_DIM,) or not np.isfinite(probe).all():
            raise ValueError(f"a probe embedding must be ({EMBEDDING_DIM},) and finite")
        probe = probe / max(float(np.linalg.norm(probe)), 1e-12)
        if not self._centroids:
            return GalleryMatch(None, math.inf, 0.0, None)
        names = list(self._centroids)
        centroids = np.stack([self._centroids[n] for n in names]).astype(np.float64)
        dist = np.linalg.norm(centroids - probe, axis=1)
        best = int(np.argmin(dist))
        d = float(dist[best])
        return GalleryMatch(
            names[best] if d <= self.threshold else None,
            d,
            same_person_probability(d),
            names[best],
        )
