"""Faces: detect (boxes + 468-point mesh + 5 landmarks) -> filter -> link tracks -> align."""

from fakescope.faces._align import ALIGNMENTS, ARCFACE_TEMPLATE, align_face, alignment_matrix
from fakescope.faces._detect import (
    FACE_DETECTORS,
    FaceDetector,
    FullScan,
    HybridFaceDetector,
    MTCNNFaceDetector,
    Search,
    iou,
)
from fakescope.faces._mesh import five_points
from fakescope.faces._tracks import FaceFilter, filter_faces, link_tracks, split_faces

__all__ = [
    "ALIGNMENTS",
    "ARCFACE_TEMPLATE",
    "FACE_DETECTORS",
    "FaceDetector",
    "FaceFilter",
    "FullScan",
    "HybridFaceDetector",
    "MTCNNFaceDetector",
    "Search",
    "align_face",
    "alignment_matrix",
    "filter_faces",
    "five_points",
    "iou",
    "link_tracks",
    "split_faces",
]
