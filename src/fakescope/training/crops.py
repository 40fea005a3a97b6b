"""Aligned face crops of the trainers and their augmentation (numpy/OpenCV, no torch).

:func:`align` warps a loose face (a face store's or a face cache's 256 px crop) to the aligned
crop a detector sees, with the 5-point similarity alignment of the scan; :func:`aligned_crops`
does it for many store crops; :func:`augment` applies the real-world degradations of training
(flip, shift, colour, blur, noise, JPEG re-compression) and :func:`augment_with_mask` replays
its geometry on a blend mask.
"""

from __future__ import annotations

import copy
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.faces import alignment_matrix, five_points
from fakescope.training.degrade import jpeg_roundtrip

if TYPE_CHECKING:
    from fakescope.training.store import FaceStore

__all__ = ["align", "aligned_crops", "augment", "augment_with_mask"]

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]


def align(
    image: _U8, landmarks: _F32, size: int, margin: float, mask: _F32 | None = None
) -> tuple[_U8, _F32 | None]:
    """Warp ``image`` (and ``mask``, same matrix) to the ``size`` aligned face crop."""
    matrix = alignment_matrix(five_points(landmarks), size, margin)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    if mask is not None:
        mask = np.asarray(
            cv2.warpAffine(
                mask, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
            ),
            np.float32,
        )
    return np.asarray(crop, np.uint8), mask


def aligned_crops(
    store: FaceStore, indices: Sequence[int] | npt.NDArray[np.integer], size: int, margin: float
) -> _U8:
    """``(N, size, size, 3)`` uint8 RGB crops of ``store`` at ``indices`` (in that order),
    aligned as training and scanning align them."""
    out = np.empty((len(indices), size, size, 3), np.uint8)
    for k, i in enumerate(indices):
        out[k] = align(store.images[int(i)], store.landmarks[int(i)], size, margin)[0]
    return out


def _geometry(rng: np.random.Generator, size: int) -> tuple[bool, npt.NDArray[np.float64] | None]:
    """:func:`augment`'s geometric draws, in its order: a horizontal flip, and a shift/rotation/
    scale warp matrix (None when not drawn)."""
    flip = bool(rng.random() < 0.5)
    if rng.random() >= 0.5:
        return flip, None
    dx, dy = rng.integers(-6, 7, size=2)
    scale = rng.uniform(0.92, 1.08)
    m = cv2.getRotationMatrix2D((size / 2, size / 2), rng.uniform(-6, 6), scale)
    m[:, 2] += (dx, dy)
    return flip, np.asarray(m, np.float64)


def _warp(img: npt.NDArray[Any], m: npt.NDArray[np.float64]) -> npt.NDArray[Any]:
    size = img.shape[0]
    return np.asarray(
        cv2.warpAffine(np.ascontiguousarray(img), m, (size, size), borderMode=cv2.BORDER_REPLICATE),
        img.dtype,
    )


def augment(img: _U8, rng: np.random.Generator) -> _U8:
    """Real-world degradations: flip, shift, colour, blur, noise, JPEG re-compression."""
    size = img.shape[0]
    flip, m = _geometry(rng, size)
    if flip:
        img = img[:, ::-1]
    if m is not None:
        img = _warp(img, m)
    work: npt.NDArray[np.floating[Any]] = img.astype(np.float32)
    if rng.random() < 0.6:
        work = work * rng.uniform(0.8, 1.2) + rng.uniform(-20, 20)
    if rng.random() < 0.2:
        work = np.asarray(cv2.GaussianBlur(work, (0, 0), rng.uniform(0.3, 1.2)))
    if rng.random() < 0.2:
        work = np.asarray(cv2.resize(cv2.resize(work, (size // 2, size // 2)), (size, size)))
    if rng.random() < 0.2:
        work = work + rng.normal(0, rng.uniform(1, 6), work.shape)
    out: _U8 = np.clip(work, 0, 255).astype(np.uint8)
    if rng.random() < 0.6:  # RGB in, RGB out (cv2's codec itself is BGR)
        out = jpeg_roundtrip(out, int(rng.integers(30, 96)))
    return out


def augment_with_mask(img: _U8, mask: _F32, rng: np.random.Generator) -> tuple[_U8, _F32]:
    """:func:`augment` on ``img``; its geometric part (the horizontal flip and the
    shift/rotation/scale warp) is replayed on ``mask`` from a copy of ``rng`` taken before the
    call, so image and target stay registered. Mirrors augment's first random draws (guarded
    by ``tests/test_training.py::test_augment_with_mask_keeps_registration``)."""
    probe = copy.deepcopy(rng)
    out = augment(img, rng)
    flip, m = _geometry(probe, img.shape[0])
    if flip:
        mask = mask[:, ::-1]
    if m is not None:
        mask = _warp(mask, m)
    return out, np.ascontiguousarray(mask, dtype=np.float32)
