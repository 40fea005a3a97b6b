"""Faces: detect (boxes + 468-point mesh + 5 landmarks) -> filter -> link tracks -> align."""

from fakescope.faces._align import ARCFACE_TEMPLATE, align_face, alignment_matrix
from fakescope.faces._detect import (
    FACE_DETECTORS,
    FaceDetector,
    HybridFaceDetector,
    MTCNNFaceDetector,
    iou,
)
from fakescope.faces._tracks import filter_faces, link_tracks

__all__ = [
    "ARCFACE_TEMPLATE",
    "FACE_DETECTORS",
    "FaceDetector",
    "HybridFaceDetector",
    "MTCNNFaceDetector",
    "align_face",
    "alignment_matrix",
    "filter_faces",
    "iou",
    "link_tracks",
]
