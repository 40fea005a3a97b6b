"""Track evidence models: further lines of evidence about one face track, beside the face
detector (e.g. handcrafted cues + SVM). One registry, like the detectors; a model sees each
face of a track as it is found (:meth:`TrackEvidenceModel.observe`, with the frame at hand)
and judges the whole track at the end (:meth:`TrackEvidenceModel.assess`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fakescope.registry import Registry
from fakescope.types import Evidence, FaceBox, ModelInfo

__all__ = ["EVIDENCE_MODELS", "TrackEvidenceModel", "create_evidence_model"]


class TrackEvidenceModel(Protocol):
    """Judges a face track from per-face observations taken while the frames stream past."""

    @property
    def info(self) -> ModelInfo: ...

    def observe(self, image: npt.NDArray[np.uint8], face: FaceBox) -> Any:
        """What the model keeps of one face of one frame (cheap; ``face.mesh`` is set)."""
        ...

    def assess(self, observations: Sequence[Any], times_s: Sequence[float]) -> Evidence:
        """The evidence of one track from its faces' observations in frame order."""
        ...


EVIDENCE_MODELS: Registry[TrackEvidenceModel] = Registry("evidence model")


@EVIDENCE_MODELS.register("cues-svm-v1")
def _cues_v1(threads: int = 0) -> TrackEvidenceModel:
    """Handcrafted cues people can read (blinks, head-pose consistency, landmark jitter,
    colour, blur and noise mismatch between the face and its surroundings) under an RBF SVM
    fitted on FF++ c23 clips; calibrated by Platt scaling on out-of-fold scores."""
    from fakescope.models._cues import ShippedCues

    return ShippedCues.load("cues_svm_v1.json")


def create_evidence_model(name: str, threads: int = 0) -> TrackEvidenceModel:
    """A registered evidence model by name."""
    return EVIDENCE_MODELS.create(name, threads=threads)
