"""Whole-image synthesis detection: was this photo (or video frame) generated whole by a GAN or
a diffusion model? A second line of evidence beside the face-swap detectors, with its own
registry, weights, calibration and verdict.

``create_synthesis_detector(name)`` gives a :class:`SynthesisDetector`: ``score(images)`` ->
raw logits, ``probability(raw)`` -> calibrated probabilities. The shipped ``freq-v1`` is a
linear model over frequency features (:func:`extract_features`), numpy and OpenCV only.
"""

from __future__ import annotations

from fakescope.synthesis._cnn import (
    CNN_WEIGHTS_FORMAT,
    CnnSynthesisDetector,
    CnnSynthesisWeights,
    limit_side,
    patch_origins,
)
from fakescope.synthesis._detector import (
    DEFAULT_SYNTHESIS_DETECTOR,
    SYNTHESIS_DETECTORS,
    WEIGHTS_FORMAT,
    FamilySynthesisDetector,
    LinearSynthesisDetector,
    SynthesisDetector,
    SynthesisWeights,
    create_synthesis_detector,
    load_synthesis_weights,
    synthesis_detector_argument,
)
from fakescope.synthesis._features import (
    FeatureConfig,
    extract_features,
    feature_names,
    tile_origins,
)

__all__ = [
    "CNN_WEIGHTS_FORMAT",
    "DEFAULT_SYNTHESIS_DETECTOR",
    "SYNTHESIS_DETECTORS",
    "WEIGHTS_FORMAT",
    "CnnSynthesisDetector",
    "CnnSynthesisWeights",
    "FamilySynthesisDetector",
    "FeatureConfig",
    "LinearSynthesisDetector",
    "SynthesisDetector",
    "SynthesisWeights",
    "create_synthesis_detector",
    "extract_features",
    "feature_names",
    "limit_side",
    "load_synthesis_weights",
    "patch_origins",
    "synthesis_detector_argument",
    "tile_origins",
]
