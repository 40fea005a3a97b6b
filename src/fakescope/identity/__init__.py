"""Whose face: offline face-recognition embeddings per face track, track merging by identity,
and a local gallery of known people stored as embeddings only.

The embedding network (dlib's public-domain face-recognition ResNet, converted to ONNX) ships in
the package and runs in onnxruntime: identity needs no extra install.
"""

from fakescope.identity._embed import (
    EMBEDDING_DIM,
    MODEL_FILE,
    MODEL_SHA256,
    ONNX_FILE,
    IdentityEmbedder,
    chip_matrix,
    face_chip,
    find_model,
    pool,
)
from fakescope.identity._enrol import FRAMES_PER_VIDEO, reference_embeddings
from fakescope.identity._gallery import (
    SAME_PERSON_INTERCEPT,
    SAME_PERSON_SLOPE,
    SAME_PERSON_THRESHOLD,
    Gallery,
    GalleryMatch,
    fit_same_person_calibration,
    same_person_probability,
)
from fakescope.identity._merge import merge_tracks
from fakescope.identity._reference import (
    REFERENCE_FILE,
    REFERENCE_MIN_FACES,
    ReferenceCheck,
    reference_distances,
)
from fakescope.identity._tracks import CHIPS_PER_TRACK, TrackIdentifier

__all__ = [
    "CHIPS_PER_TRACK",
    "EMBEDDING_DIM",
    "FRAMES_PER_VIDEO",
    "MODEL_FILE",
    "MODEL_SHA256",
    "ONNX_FILE",
    "REFERENCE_FILE",
    "REFERENCE_MIN_FACES",
    "SAME_PERSON_INTERCEPT",
    "SAME_PERSON_SLOPE",
    "SAME_PERSON_THRESHOLD",
    "Gallery",
    "GalleryMatch",
    "IdentityEmbedder",
    "ReferenceCheck",
    "TrackIdentifier",
    "chip_matrix",
    "face_chip",
    "find_model",
    "fit_same_person_calibration",
    "merge_tracks",
    "pool",
    "reference_distances",
    "reference_embeddings",
    "same_person_probability",
]
