"""Frozen dataclasses passed between the pipeline's stages.

media -> :class:`Frame` -> :class:`FaceBox` -> :class:`Track` -> :class:`FaceCrop`
-> :class:`CropScore` -> :class:`TrackVerdict` -> :class:`Verdict` (with the
:class:`DecisionInfo` its labels were decided by, and beside the face verdict the
whole-image :class:`SynthesisVerdict`).
"""

from __future__ import annotations

import enum
import math
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope._overall import FaceAnswer, ImageAnswer, OverallLabel, OverallVerdict, combine
from fakescope._text import display_path

__all__ = [
    "DETECTOR_ERROR",
    "FAMILY_BAND",
    "GENERATOR_FAMILIES",
    "Attribution",
    "Box",
    "CropScore",
    "DecisionInfo",
    "Evidence",
    "FaceBox",
    "FaceCrop",
    "Frame",
    "GeneratorFamily",
    "Identity",
    "Label",
    "MediaInfo",
    "ModelInfo",
    "OverallLabel",
    "OverallVerdict",
    "Status",
    "SynthesisVerdict",
    "Track",
    "TrackVerdict",
    "Verdict",
    "display_path",
]

Box = tuple[float, float, float, float]
"""A box ``(x0, y0, x1, y1)`` in frame pixels."""


class Status(enum.StrEnum):
    """How an input ended. Only ``ok`` carries a score."""

    OK = "ok"
    NO_FACE = "no_face"
    FACE_TOO_SMALL = "face_too_small"
    UNDECODABLE = "undecodable"
    UNSUPPORTED = "unsupported"
    TOO_LARGE = "too_large"
    ERROR = "error"


class Label(enum.StrEnum):
    """The decision for an input or a face track."""

    FAKE = "fake"
    REAL = "real"
    UNCERTAIN = "uncertain"


@dataclass(frozen=True, eq=False)
class Frame:
    """One decoded frame: ``image`` is HxWx3 uint8 RGB, upright (rotation applied)."""

    index: int
    time_s: float
    image: npt.NDArray[np.uint8]

    @property
    def height(self) -> int:
        return int(self.image.shape[0])

    @property
    def width(self) -> int:
        return int(self.image.shape[1])


@dataclass(frozen=True)
class MediaInfo:
    """What the decoder learned about an input before sampling it.

    ``width`` and ``height`` are the upright size of the input itself. ``frame_scale`` is
    below 1 when its frames were scaled down while decoding (``decode_max_side``): frames
    are then ``frame_scale`` times that size, and verdicts map their boxes back to the
    input's own pixels.
    """

    kind: str  # "video" | "image"
    format: str
    width: int
    height: int
    codec: str = ""
    duration_s: float | None = None
    fps: float | None = None
    frame_count: int | None = None
    rotation: int = 0
    frame_scale: float = 1.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self) | {"frame_scale": round(self.frame_scale, 6)}


@dataclass(frozen=True, eq=False)
class FaceBox:
    """One detected face in one frame.

    ``landmarks`` is (5, 2) float32 in frame pixels, ordered like the ArcFace template:
    image-left eye, image-right eye, nose tip, image-left mouth corner, image-right mouth corner.
    ``mesh`` is the (468, 3) FaceMesh in frame pixels when it was computed.
    """

    frame_index: int
    box: Box
    score: float
    landmarks: npt.NDArray[np.float32]
    mesh: npt.NDArray[np.float32] | None = None

    @property
    def width(self) -> float:
        return self.box[2] - self.box[0]

    @property
    def height(self) -> float:
        return self.box[3] - self.box[1]


@dataclass(frozen=True, eq=False)
class Track:
    """The faces of one person across the sampled frames, in frame order."""

    track_id: int
    faces: tuple[FaceBox, ...]


@dataclass(frozen=True, eq=False)
class FaceCrop:
    """An aligned face crop and the 2x3 affine ``matrix`` mapping frame -> crop pixels."""

    track_id: int
    frame_index: int
    time_s: float
    box: Box
    image: npt.NDArray[np.uint8]
    matrix: npt.NDArray[np.float64]


@dataclass(frozen=True)
class CropScore:
    """The detector's score for one crop.

    ``fake_probability`` is on the calibrated scale of every other probability in a verdict
    (the weight's crop-level calibrator; equal to ``raw_score`` for an uncalibrated weight);
    ``raw_score`` is the network's own output.
    """

    track_id: int
    frame_index: int
    time_s: float
    box: Box
    fake_probability: float
    raw_score: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "index": self.frame_index,
            "time_s": round(self.time_s, 4),
            "box": [round(v, 1) for v in self.box],
            "fake_probability": round(self.fake_probability, 6),
            "raw_score": round(self.raw_score, 6),
        }


@dataclass(frozen=True)
class Attribution:
    """Which family of manipulation a fake face track most resembles (``face swap``,
    ``reenactment``, ``DFDC-style swap``) and which training method (``method``, e.g.
    ``Deepfakes``), from an attribution head over the face's embeddings.

    Given only for a track labelled ``fake``. ``confidence`` is the head's temperature-scaled
    probability of ``method`` among the methods it knows (not a fake probability: it says
    nothing about whether the face is fake); ``probabilities`` has every method's.
    """

    family: str
    method: str
    confidence: float
    probabilities: dict[str, float]
    model: ModelInfo

    def to_dict(self) -> dict[str, Any]:
        return {
            "family": self.family,
            "method": self.method,
            "confidence": round(self.confidence, 4),
            "probabilities": {k: round(v, 4) for k, v in self.probabilities.items()},
            "model": self.model.to_dict(),
        }


@dataclass(frozen=True)
class Identity:
    """Whose face a track shows (``ScanConfig.identity``): ``person`` numbers the people of
    one input from 0 (tracks of one person, e.g. across cuts, share it); with a gallery,
    ``name`` is the known person it matches (None: unknown), ``closest`` the nearest gallery
    person whatever the distance, ``distance`` the embedding distance to them and
    ``same_person_probability`` its calibrated probability of being them."""

    person: int
    name: str | None = None
    closest: str | None = None
    distance: float | None = None
    same_person_probability: float | None = None

    def to_dict(self) -> dict[str, Any]:
        finite = self.distance is not None and math.isfinite(self.distance)
        return {
            "person": self.person,
            "name": self.name,
            "closest": self.closest,
            "distance": round(self.distance, 4) if finite and self.distance is not None else None,
            "same_person_probability": (
                None
                if self.same_person_probability is None
                else round(self.same_person_probability, 4)
            ),
        }


@dataclass(frozen=True)
class Evidence:
    """A further line of evidence about one face track, from a model that is not the face
    detector (e.g. handcrafted cues + SVM): its own calibrated ``fake_probability`` (None when
    it could not judge, with the reason in ``summary``) and ``findings``: what it saw, in
    plain words, most telling first. ``values`` are the measured quantities behind them."""

    name: str
    fake_probability: float | None
    summary: str
    findings: tuple[str, ...] = ()
    values: dict[str, float] = field(default_factory=dict)
    model: ModelInfo | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "fake_probability": (
                None if self.fake_probability is None else round(self.fake_probability, 6)
            ),
            "summary": self.summary,
            "findings": list(self.findings),
            "values": {k: round(v, 6) for k, v in self.values.items()},
            "model": None if self.model is None else self.model.to_dict(),
        }


@dataclass(frozen=True)
class TrackVerdict:
    """The aggregated score of one face track.

    ``fake_probability`` is the calibrated probability of the track's aggregate
    (``raw_score``: the aggregate of its crops' raw scores, by ``ScanConfig.track_aggregator``),
    calibrated at the level it was fitted on (video level for videos, crop level for photos).
    """

    track_id: int
    fake_probability: float
    label: Label
    frames: tuple[CropScore, ...]
    raw_score: float
    heatmap: str | None = None
    """PNG overlay of the track's most suspicious frame (``scan --heatmaps DIR``)."""
    peak_region: Box | None = None
    """Frame-pixel box of the hottest part of that frame's heatmap."""
    thumbnail: str | None = None
    """JPEG of the face in the track's most suspicious frame (``ScanConfig.thumbnails_dir``)."""
    attribution: Attribution | None = None
    """Which manipulation family a ``fake`` track resembles (``ScanConfig.attribution``)."""
    evidence: tuple[Evidence, ...] = ()
    """Other lines of evidence about this face (``ScanConfig.evidence``)."""
    identity: Identity | None = None
    """Whose face this is (``ScanConfig.identity``)."""
    calibration_level: str | None = None
    """The calibrator ``fake_probability`` went through: ``video`` (a video's track of at
    least ``min_track_frames`` crops), ``crop`` (photos and briefer tracks; the level of every
    frame's probability) or None (an uncalibrated weight)."""

    def to_dict(self) -> dict[str, Any]:
        return {
            "track_id": self.track_id,
            "fake_probability": round(self.fake_probability, 6),
            "raw_score": round(self.raw_score, 6),
            "calibration_level": self.calibration_level,
            "label": str(self.label),
            "frames": [s.to_dict() for s in self.frames],
            "heatmap": self.heatmap,
            "peak_region": (
                None if self.peak_region is None else [round(v, 1) for v in self.peak_region]
            ),
            "thumbnail": self.thumbnail,
            "attribution": None if self.attribution is None else self.attribution.to_dict(),
            "evidence": [e.to_dict() for e in self.evidence],
            "identity": None if self.identity is None else self.identity.to_dict(),
        }


@dataclass(frozen=True)
class ModelInfo:
    """Which detector weight produced a verdict.

    ``resolved_from`` names the weight that was asked for when another one ran in its place
    (an int8 weight's float twin, on a CPU where the int8 network is not exact, or under
    ``FAKESCOPE_INT8=never``) and ``resolution`` says why; both None otherwise.
    """

    name: str
    sha256: str
    version: str = ""
    resolved_from: str | None = None
    resolution: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class DecisionInfo:
    """How a verdict's labels were decided: ``fake`` at or above ``threshold +
    uncertain_band``, ``real`` below ``threshold - uncertain_band``, else ``uncertain``.

    ``calibrated`` says the scores went through the weight's calibrator and
    ``calibration_level`` which one (``"video"`` or ``"crop"``; None when uncalibrated);
    ``rule`` says in words where ``threshold`` came from (cost-minimising for ``cost_miss``,
    ``cost_false_alarm`` and ``prior_fake``, the weight's own, or ``--threshold``). The costs
    and prior are the scan's settings; they set the threshold only under the cost rule.
    ``aggregation`` says how the input's probability and label follow from its faces.
    """

    threshold: float
    uncertain_band: float
    calibrated: bool
    cost_miss: float
    cost_false_alarm: float
    prior_fake: float
    rule: str
    aggregation: str = ""
    calibration_level: str | None = None

    def to_dict(self) -> dict[str, Any]:
        rounded = {"threshold": self.threshold, "uncertain_band": self.uncertain_band}
        return asdict(self) | {k: round(v, 6) for k, v in rounded.items()}


DETECTOR_ERROR = "detector_error"
"""The ``faces_dropped`` reason of a face whose crops the detector gave no valid score for (a
non-finite or out-of-range output): counted, named in the reason, and it keeps the input from
being called authentic."""


def _check_scored(
    what: str, status: Status, p: float | None, raw: float | None, label: Label
) -> None:
    """Only an ``ok`` verdict carries a score, and it must: never a made-up one."""
    if status is Status.OK:
        if p is None:
            raise ValueError(f"an ok {what} needs a fake_probability")
    elif p is not None or raw is not None or label is not Label.UNCERTAIN:
        raise ValueError(f"a {status} {what} must not carry a score or a decision")


GENERATOR_FAMILIES = ("gan", "diffusion")
FAMILY_BAND = (0.25, 0.75)
"""A family probability (P(diffusion | generated)) strictly inside this band names no family
(``unknown``); at or below its low end the image resembles a GAN, at or above its high end a
diffusion model."""


@dataclass(frozen=True)
class GeneratorFamily:
    """Which kind of image generator a generated image most resembles: ``gan``,
    ``diffusion`` or ``unknown``, with ``confidence`` the probability of the family it leans
    to (``max(p, 1 - p)`` of the network's ``p`` = P(diffusion | generated): at least 0.75 for
    a named family, below it for ``unknown``). The network's own sigmoid, learnt on StyleGAN2
    and Stable Diffusion 2.1 images only; on held-out images of those two families it measures
    calibrated (MODEL_CARD: ``tools/family_calibration.py``), on other generators unmeasured."""

    name: str
    confidence: float

    def __post_init__(self) -> None:
        if self.name not in (*GENERATOR_FAMILIES, "unknown"):
            raise ValueError(f"generator family {self.name!r} is not gan, diffusion or unknown")
        if not 0.5 <= self.confidence <= 1.0:
            raise ValueError(f"family confidence {self.confidence!r} is not in [0.5, 1]")

    @classmethod
    def from_probability(cls, p_diffusion: float) -> GeneratorFamily:
        """The family of P(diffusion | generated) ``p_diffusion`` by :data:`FAMILY_BAND`."""
        p = float(p_diffusion)
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"family probability {p!r} is not in [0, 1]")
        low, high = FAMILY_BAND
        name = "gan" if p <= low else "diffusion" if p >= high else "unknown"
        return cls(name, max(p, 1.0 - p))

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "confidence": round(self.confidence, 6)}


@dataclass(frozen=True)
class SynthesisVerdict:
    """Whether the whole image (a photo, or a video's sampled frames) was generated, e.g. by
    a GAN or a diffusion model: a line of evidence of its own, beside the face verdict.

    ``fake_probability`` is the synthesis detector's calibrated probability that the image
    was generated whole (for a video: of the mean raw score over up to 4 evenly spread
    sampled frames); None unless ``status`` is ``ok``. ``label`` is decided like the face
    verdict's (:mod:`fakescope.decision`: the same cost rule and uncertain band, with the
    synthesis detector's own threshold when it is uncalibrated). ``frames`` counts the
    images scored (1 for a photo). ``family`` names the generator family the image most
    resembles (:class:`GeneratorFamily`), only when it is labelled generated (``fake``) by a
    detector that has a family output; None otherwise.
    """

    status: Status
    reason: str
    fake_probability: float | None = None
    label: Label = Label.UNCERTAIN
    raw_score: float | None = None
    model: ModelInfo | None = None
    frames: int = 0
    family: GeneratorFamily | None = None

    def __post_init__(self) -> None:
        _check_scored(
            "synthesis verdict", self.status, self.fake_probability, self.raw_score, self.label
        )
        if self.family is not None and self.label is not Label.FAKE:
            raise ValueError("only a synthesis verdict labelled fake names a generator family")

    def to_dict(self) -> dict[str, Any]:
        return {
            "status": str(self.status),
            "reason": display_path(self.reason)[0],
            "fake_probability": (
                None if self.fake_probability is None else round(self.fake_probability, 6)
            ),
            "raw_score": None if self.raw_score is None else round(self.raw_score, 6),
            "label": str(self.label),
            "model": None if self.model is None else self.model.to_dict(),
            "frames": self.frames,
            "family": None if self.family is None else self.family.to_dict(),
        }


@dataclass(frozen=True)
class Verdict:
    """The result for one input.

    ``fake_probability`` is None unless ``status`` is ``ok``; an abstaining verdict
    (any other status) is labelled ``uncertain`` and carries the reason instead.
    """

    path: str
    status: Status
    reason: str
    fake_probability: float | None = None
    label: Label = Label.UNCERTAIN
    tracks: tuple[TrackVerdict, ...] = ()
    model: ModelInfo | None = None
    media: MediaInfo | None = None
    timings_ms: dict[str, float] = field(default_factory=dict)
    decision: DecisionInfo | None = None
    """The threshold, band and rule in force (set by the Scanner, also when it abstained)."""
    raw_score: float | None = None
    """The uncalibrated aggregate behind ``fake_probability`` (what a video-level calibrator
    is fitted on); None unless ``status`` is ``ok``."""
    faces_dropped: dict[str, int] = field(default_factory=dict)
    """Detected faces that were not scored, by reason (``noise``: the noise rule for a
    low-confidence detection beside a larger face; ``too_small``: under ``min_face_px``;
    ``unalignable``: degenerate landmarks; ``over_max_faces``: beyond ``max_faces``;
    ``detector_error``: the face detector gave no valid score for the crop)."""
    synthesis: SynthesisVerdict | None = None
    """The whole-image synthesis verdict (its own status, probability and model); None when
    the synthesis detector is off. Every other field is about faces (swap/reenactment)."""
    notes: tuple[str, ...] = ()
    """What an optional stage (attribution, evidence, identity, heatmaps, thumbnails) could
    not add, in plain words; the verdict itself stands."""

    def __post_init__(self) -> None:
        _check_scored("verdict", self.status, self.fake_probability, self.raw_score, self.label)

    @property
    def overall(self) -> OverallVerdict:
        """The answer to "is this media authentic?" from the face verdict (this verdict's
        ``label`` and ``fake_probability``, the face-manipulation question) and the whole-image
        ``synthesis`` verdict: ``manipulated`` / ``generated`` when either is confidently fake,
        ``authentic`` only when both are confidently authentic (see :mod:`fakescope._overall`
        for the whole rule)."""
        worst = max(self.tracks, key=lambda t: t.fake_probability, default=None)
        faces = FaceAnswer(
            str(self.status),
            self.reason,
            str(self.label),
            self.fake_probability,
            None if worst is None else worst.track_id + 1,
            self.faces_dropped.get(DETECTOR_ERROR, 0),
        )
        synth = self.synthesis
        image = (
            None
            if synth is None
            else ImageAnswer(
                str(synth.status),
                synth.reason,
                str(synth.label),
                synth.fake_probability,
                synth.frames,
            )
        )
        return combine(faces, image)

    def to_dict(self) -> dict[str, Any]:
        """The JSON object that ``fakescope scan --json`` prints for this input.

        ``path`` is always valid UTF-8: a file name that is not (kept by Python as lone
        surrogates) is shown with U+FFFD replacement characters, and its exact bytes are
        added as ``path_bytes_hex``.
        """
        shown, raw = display_path(self.path)
        out: dict[str, Any] = {"path": shown}
        if raw is not None:
            out["path_bytes_hex"] = raw.hex()
        return out | {
            "verdict": self.overall.to_dict(),
            "status": str(self.status),
            "reason": display_path(self.reason)[0],
            "fake_probability": (
                None if self.fake_probability is None else round(self.fake_probability, 6)
            ),
            "raw_score": None if self.raw_score is None else round(self.raw_score, 6),
            "label": str(self.label),
            "faces": [t.to_dict() for t in self.tracks],
            "model": None if self.model is None else self.model.to_dict(),
            "media": None if self.media is None else self.media.to_dict(),
            "timings_ms": {k: round(v, 2) for k, v in self.timings_ms.items()},
            "decision": None if self.decision is None else self.decision.to_dict(),
            "faces_dropped": dict(self.faces_dropped),
            "synthesis": None if self.synthesis is None else self.synthesis.to_dict(),
            "notes": [display_path(n)[0] for n in self.notes],
        }
