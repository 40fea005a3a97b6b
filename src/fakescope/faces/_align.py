"""Similarity alignment of a face to the 5-point ArcFace template, with a margin."""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import FakescopeError
from fakescope.types import FaceBox, FaceCrop

__all__ = ["ARCFACE_TEMPLATE", "align_face", "alignment_matrix"]

ARCFACE_TEMPLATE = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float64,
)
"""Landmark positions in the 112x112 ArcFace crop (eyes, nose, mouth corners)."""


def _template(size: int, margin: float) -> npt.NDArray[np.float64]:
    """The template for a ``size`` crop that adds ``margin`` (fraction of 112) on every side."""
    unit = ARCFACE_TEMPLATE / 112.0
    return ((unit - 0.5) / (1.0 + 2.0 * margin) + 0.5) * size


def alignment_matrix(
    landmarks: npt.NDArray[np.float32], size: int, margin: float
) -> npt.NDArray[np.float64]:
    """The 2x3 similarity transform mapping frame pixels to crop pixels."""
    dst = _template(size, margin)
    matrix, _ = cv2.estimateAffinePartial2D(landmarks.astype(np.float64), dst, method=cv2.LMEDS)
    if matrix is None:
        raise FakescopeError("landmarks are degenerate; the face cannot be aligned")
    return np.asarray(matrix, dtype=np.float64)


def align_face(
    image: npt.NDArray[np.uint8],
    face: FaceBox,
    size: int,
    margin: float,
    track_id: int = -1,
    time_s: float = 0.0,
) -> FaceCrop:
    """Warp ``face`` out of ``image`` into a ``size`` x ``size`` crop; keeps the affine matrix
    so crop-space results (scores, heatmaps) can be drawn back on the frame."""
    matrix = alignment_matrix(face.landmarks, size, margin)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    return FaceCrop(
        track_id=track_id,
        frame_index=face.frame_index,
        time_s=time_s,
        box=face.box,
        image=np.asarray(crop, dtype=np.uint8),
        matrix=matrix,
    )
