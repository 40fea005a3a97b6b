"""Similarity alignment of a face to a 5-point template (ArcFace's), with a margin.

Each detector weight names its alignment (``WeightConfig.alignment``); :data:`ALIGNMENTS`
lists the ones this version knows, so a weight asking for another one fails at load time.
"""

from __future__ import annotations

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import AlignmentError, ConfigError
from fakescope.types import FaceBox, FaceCrop

__all__ = ["ALIGNMENTS", "ARCFACE_TEMPLATE", "align_face", "alignment_matrix"]

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

ALIGNMENTS: dict[str, npt.NDArray[np.float64]] = {"arcface5": ARCFACE_TEMPLATE / 112.0}
"""Alignment name -> 5-point template in unit crop coordinates."""

_MIN_EYE_DISTANCE = 1.0  # pixels; closer eyes cannot define a similarity transform


def _template(size: int, margin: float, alignment: str) -> npt.NDArray[np.float64]:
    """The template for a ``size`` crop that adds ``margin`` (fraction of the crop) on every
    side."""
    try:
        unit = ALIGNMENTS[alignment]
    except KeyError:
        raise ConfigError(
            f"unknown alignment {alignment!r}: this version knows {', '.join(sorted(ALIGNMENTS))}"
        ) from None
    return ((unit - 0.5) / (1.0 + 2.0 * margin) + 0.5) * size


def alignment_matrix(
    landmarks: npt.NDArray[np.float32], size: int, margin: float, alignment: str = "arcface5"
) -> npt.NDArray[np.float64]:
    """The 2x3 similarity transform mapping frame pixels to crop pixels.

    Raises :class:`~fakescope.errors.AlignmentError` for landmarks that are not five finite
    points, whose eyes coincide, or that give no finite transform.
    """
    dst = _template(size, margin, alignment)
    points = np.asarray(landmarks, dtype=np.float64)
    if points.shape != (5, 2) or not np.isfinite(points).all():
        raise AlignmentError("landmarks are not five finite points; the face cannot be aligned")
    if float(np.linalg.norm(points[1] - points[0])) < _MIN_EYE_DISTANCE:
        raise AlignmentError("landmarks are degenerate (eyes coincide); cannot align the face")
    try:
        matrix, _ = cv2.estimateAffinePartial2D(points, dst, method=cv2.LMEDS)
    except cv2.error as exc:
        raise AlignmentError(
            f"landmarks are degenerate; the face cannot be aligned ({exc})"
        ) from None
    if matrix is None or not np.isfinite(matrix).all():
        raise AlignmentError("landmarks are degenerate; the face cannot be aligned")
    scale = float(np.hypot(matrix[0, 0], matrix[1, 0]))
    if not scale > 1e-6:
        raise AlignmentError("landmarks are degenerate (zero scale); cannot align the face")
    return np.asarray(matrix, dtype=np.float64)


def align_face(
    image: npt.NDArray[np.uint8],
    face: FaceBox,
    size: int,
    margin: float,
    track_id: int = -1,
    time_s: float = 0.0,
    alignment: str = "arcface5",
) -> FaceCrop:
    """Warp ``face`` out of ``image`` into a ``size`` x ``size`` crop; keeps the affine matrix
    so crop-space results (scores, heatmaps) can be drawn back on the frame. Pixels outside the
    frame replicate its border."""
    matrix = alignment_matrix(face.landmarks, size, margin, alignment)
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
