"""The overall verdict: one answer to "is this media authentic?" from the two questions a
scan asks (were faces manipulated? was the whole image generated?).

The rule (:func:`combine`), in order:

1. **manipulated / generated**: either question answered ``fake`` decides; when both did, the
   one with the higher probability names the label and the other is listed in the reasons.
2. **authentic**: every question asked was answered ``real`` (faces scored and judged
   authentic, with no face lost to a detector error; the whole image judged not generated,
   unless the synthesis detector was switched off).
3. **uncertain**: at least one question was answered, but neither says ``fake`` and not all
   say ``real`` (a score inside the uncertain band, or one question abstained: no face, an
   image too small to judge whole, ...).
4. **no_verdict**: neither question could be answered (undecodable, unsupported, ...).

``probability`` is the larger of the answered questions' calibrated probabilities of fake: a
lower bound on the probability that the media is not authentic (each question is calibrated
on its own; their combination is not fitted to data, so no figure larger than either is
claimed). It is None for ``no_verdict``.

Kept free of other fakescope imports: :mod:`fakescope.types` builds on it.
"""

from __future__ import annotations

import enum
from dataclasses import dataclass
from typing import Any

__all__ = ["FaceAnswer", "ImageAnswer", "OverallLabel", "OverallVerdict", "combine"]

FACE = "face"
WHOLE_IMAGE = "whole_image"


class OverallLabel(enum.StrEnum):
    """The answer to "is this media authentic?"."""

    MANIPULATED = "manipulated"
    GENERATED = "generated"
    AUTHENTIC = "authentic"
    UNCERTAIN = "uncertain"
    NO_VERDICT = "no_verdict"


@dataclass(frozen=True)
class OverallVerdict:
    """The overall verdict of one input (see the module docstring for the rule).

    ``probability`` is the probability that the media is not authentic (None for
    ``no_verdict``); ``decided_by`` names the question it came from (``"face"`` or
    ``"whole_image"``) and ``face`` the face (numbered from 1, as on the page) when a face
    decided; ``reasons`` says in plain words what each question found, deciding one first.
    """

    label: OverallLabel
    probability: float | None
    decided_by: str | None
    face: int | None
    reasons: tuple[str, ...]

    @property
    def headline(self) -> str:
        """One line for a person: the answer, and how likely the media is not authentic."""
        if self.probability is None:
            return "No verdict: " + (self.reasons[0] if self.reasons else "nothing was scored")
        odds = f"{self.probability:.0%} likely not authentic"
        if self.label is OverallLabel.MANIPULATED:
            return f"Manipulated: face {self.face} looks swapped or re-enacted ({odds})"
        if self.label is OverallLabel.GENERATED:
            return f"Generated: the whole image looks machine-made ({odds})"
        if self.label is OverallLabel.AUTHENTIC:
            return f"Authentic: no sign of face manipulation or generation ({odds})"
        return f"Uncertain: no confident answer ({odds})"

    def to_dict(self) -> dict[str, Any]:
        return {
            "label": str(self.label),
            "probability": None if self.probability is None else round(self.probability, 6),
            "decided_by": self.decided_by,
            "face": self.face,
            "reasons": list(self.reasons),
            "headline": self.headline,
        }


@dataclass(frozen=True)
class FaceAnswer:
    """What the face question found: ``status`` and ``label`` as the verdict's (plain
    strings), ``probability`` of the most suspicious face ``face`` (from 1), ``errors`` faces
    lost to a detector error (a face nobody judged blocks ``authentic``)."""

    status: str
    reason: str
    label: str = "uncertain"
    probability: float | None = None
    face: int | None = None
    errors: int = 0


@dataclass(frozen=True)
class ImageAnswer:
    """What the whole-image (synthesis) question found; ``frames`` images scored."""

    status: str
    reason: str
    label: str = "uncertain"
    probability: float | None = None
    frames: int = 0


def _face_reason(a: FaceAnswer) -> str:
    if a.status != "ok" or a.probability is None:
        if a.status == "no_face":
            return "No face was found, so face manipulation could not be checked."
        if a.status == "face_too_small":
            return "The faces are too small to check for manipulation."
        return f"Face manipulation could not be checked: {a.reason}."
    p = a.probability
    if a.label == "fake":
        text = f"Face {a.face} looks swapped or re-enacted ({p:.0%} probability of manipulation)."
    elif a.label == "real":
        text = (
            f"No face looks manipulated (the most suspicious, face {a.face}: {p:.0%} "
            "probability of manipulation)."
        )
    else:
        text = (
            f"Face {a.face} could not be judged with confidence ({p:.0%} probability of "
            "manipulation, too close to the threshold)."
        )
    if a.errors:
        text += f" {a.errors} face(s) could not be scored (detector error)."
    return text


def _image_reason(a: ImageAnswer | None) -> str:
    if a is None:
        return "Whether the whole image was generated was not checked (synthesis detector off)."
    if a.status != "ok" or a.probability is None:
        return f"Whether the whole image was generated could not be checked: {a.reason}."
    p = a.probability
    one = a.frames <= 1
    what = "the whole image" if one else f"the video's frames ({a.frames} scored)"
    odds = f"{p:.0%} probability of being generated"
    if a.label == "fake":
        return f"Generated: {what} {'looks' if one else 'look'} machine-made ({odds})."
    if a.label == "real":
        return f"Not generated: {what} {'looks' if one else 'look'} camera-made ({odds})."
    return f"Uncertain whether {what} {'was' if one else 'were'} generated ({odds})."


def combine(faces: FaceAnswer, image: ImageAnswer | None) -> OverallVerdict:
    """The overall verdict from the face answer and the whole-image answer (None when the
    synthesis detector is off). Pure: see the module docstring for the rule."""
    face_reason, image_reason = _face_reason(faces), _image_reason(image)
    answered: list[tuple[str, str, float]] = []  # (question, label, probability)
    if faces.status == "ok" and faces.probability is not None:
        answered.append((FACE, faces.label, faces.probability))
    if image is not None and image.status == "ok" and image.probability is not None:
        answered.append((WHOLE_IMAGE, image.label, image.probability))
    if not answered:
        return OverallVerdict(
            OverallLabel.NO_VERDICT, None, None, None, (face_reason, image_reason)
        )
    fakes = [a for a in answered if a[1] == "fake"]
    top = max(fakes or answered, key=lambda a: a[2])
    probability = max(a[2] for a in answered)
    asked = 1 + (image is not None)
    if fakes:
        label = OverallLabel.MANIPULATED if top[0] == FACE else OverallLabel.GENERATED
    elif len(answered) == asked and all(a[1] == "real" for a in answered) and not faces.errors:
        label = OverallLabel.AUTHENTIC
    else:
        label = OverallLabel.UNCERTAIN
    first, second = (face_reason, image_reason) if top[0] == FACE else (image_reason, face_reason)
    return OverallVerdict(
        label,
        probability,
        top[0],
        faces.face if top[0] == FACE else None,
        (first, second),
    )
