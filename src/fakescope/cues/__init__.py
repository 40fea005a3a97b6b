"""Hand-crafted, human-readable cues of a face track and the small SVM that scores them.

At scan time (numpy + OpenCV only, no scikit-learn)::

    from fakescope.cues import CueModel, loose_crop, track_cues

    model = CueModel.load(path_to_cues_svm_json)           # e.g. models/assets/cues_svm_v1.json
    crops, points = zip(*(loose_crop(f.image, face.box, face.mesh) for f, face in track))
    cues = track_cues(crops, points, [f.time_s for f, _ in track])
    p_fake = model.predict(cues)                           # calibrated probability
    reasons = model.explain(cues, k=3)                     # ["blinks 0.0 times in 10 s ...", ...]

A track is ``T`` frames of one face in time order: the loose 256 px crop of each frame
(:func:`loose_crop`, the face box x 1.6, exactly as the training store made them), its 468
FaceMesh points in crop pixels and the frame time in seconds. :func:`track_cues` returns a
:class:`CueFeatures` (ordered names and values, NaN-free; cues a short track cannot give are
neutral and listed in ``missing``). :data:`FEATURES` describes every cue in one line.

The model is trained by ``fakescope train configs/cues_v1.yaml`` (scikit-learn, training only)
and stored as plain JSON (:data:`MODEL_FORMAT`, never a pickle).
"""

from fakescope.cues._features import (
    CUES_VERSION,
    FACE_OVAL,
    FEATURE_NAMES,
    FEATURES,
    INNER_FACE,
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    CueFeatures,
    CueSpec,
    eye_aspect_ratio,
    loose_crop,
    track_cues,
)
from fakescope.cues._svm import (
    MODEL_FORMAT,
    SHIPPED_ASSET,
    CueModel,
    FeatureMismatchError,
    FeatureReference,
)

__all__ = [
    "CUES_VERSION",
    "FACE_OVAL",
    "FEATURES",
    "FEATURE_NAMES",
    "INNER_FACE",
    "LEFT_EYE_EAR",
    "MODEL_FORMAT",
    "RIGHT_EYE_EAR",
    "SHIPPED_ASSET",
    "CueFeatures",
    "CueModel",
    "CueSpec",
    "FeatureMismatchError",
    "FeatureReference",
    "eye_aspect_ratio",
    "loose_crop",
    "track_cues",
]
