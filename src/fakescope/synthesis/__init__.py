"""Whole-image synthesis detection: was this photo (or video frame) generated whole by a GAN or
a diffusion model? A second line of evidence beside the face-swap detectors, with its own
registry, weights, calibration and verdict.

``create_synthesis_detector(name)`` gives a :class:`SynthesisDetector`: ``score(images)`` ->
raw logits, ``probability(raw)`` -> calibrated probabilities. The shipped detectors are CNNs
on native-resolution patches (:class:`CnnSynthesisDetector`): ``cnn-v3-int8`` and its float twin
``cnn-v3``.
"""

from __future__ import annotations

from fakescope.synthesis._cnn import (
    CNN_WEIGHTS_FORMAT,
    FAMILY_OUTPUT,
    PATCH_LAYOUTS,
    CnnSynthesisDetector,
    CnnSynthesisWeights,
    limit_side,
    patch_origins,
)
from fakescope.synthesis._detector import (
    DEFAULT_SYNTHESIS_DETECTOR,
    SYNTHESIS_DETECTORS,
    FamilySynthesisDetector,
    SynthesisDetector,
    create_synthesis_detector,
    load_synthesis_weights,
    synthesis_detector_argument,
)

__all__ = [
    "CNN_WEIGHTS_FORMAT",
    "DEFAULT_SYNTHESIS_DETECTOR",
    "FAMILY_OUTPUT",
    "PATCH_LAYOUTS",
    "SYNTHESIS_DETECTORS",
    "CnnSynthesisDetector",
    "CnnSynthesisWeights",
    "FamilySynthesisDetector",
    "SynthesisDetector",
    "create_synthesis_detector",
    "limit_side",
    "load_synthesis_weights",
    "patch_origins",
    "synthesis_detector_argument",
]
