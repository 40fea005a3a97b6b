"""Hand-crafted, human-readable cues of one face track.

One track is what the training store holds per video (:mod:`fakescope.training.store`):
``T`` loose square face crops (uint8 RGB, the face box scaled 1.6x, border pixels replicated,
:func:`loose_crop`), their 468 MediaPipe FaceMesh points in crop pixels and the time in
seconds of each frame. :func:`track_cues` turns it into a :class:`CueFeatures`: a fixed,
ordered list of named numbers (:data:`FEATURE_NAMES`, described one line each by
:data:`FEATURES`), never NaN. A dynamic cue that the track is too short for (or a region too
small to measure) gets its spec's neutral value and is listed in ``CueFeatures.missing``;
:class:`~fakescope.cues.CueModel` then substitutes the real-class median it was trained with.

Groups of cues:

* eyes: eye aspect ratio (EAR, Soukupova & Cech 2016, the standard MediaPipe 6-point sets)
  statistics and blinks per 10 s (an EAR drop below 70 % of the track's own open-eye level,
  with hysteresis, counted as events);
* head pose (after Yang et al. 2019, in 2D): each frame's inner face (eye corners, nose,
  mouth) and whole head (face oval) are fitted by a similarity to the track's mean shape; a
  real head moves both alike, a pasted face may turn or scale differently;
* landmark jitter: the movement left between consecutive frames after removing the best
  global similarity, per inter-ocular distance and per second;
* colour, blur and noise of the face region (the face oval shrunk 0.9x) against a ring
  around it (between the oval grown 1.1x and 1.35x; it holds skin, hair, neck and
  background): Lab colour gap and its frame-to-frame change, log ratio of the Laplacian's
  mean square (sharpness; its variance about 0), log ratio of the median absolute Laplacian
  (a robust high-pass noise level: edges are a minority of pixels). The image cues are
  measured on the crop scaled down by an integer factor to about 128 px (256 px crops: 2x,
  INTER_AREA), which keeps them cheap: colour is unaffected, blur and noise then describe the
  band just below the 128 px Nyquist frequency.

Everything is numpy + OpenCV; a 32-frame track of 256 px crops takes ~10-15 ms on one core.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.cues._image import image_cues

__all__ = [
    "CUES_VERSION",
    "FACE_OVAL",
    "FEATURES",
    "FEATURE_NAMES",
    "INNER_FACE",
    "LEFT_EYE_EAR",
    "RIGHT_EYE_EAR",
    "CueFeatures",
    "CueSpec",
    "eye_aspect_ratio",
    "loose_crop",
    "track_cues",
]

CUES_VERSION = 1
"""Bump when any feature's definition changes (trainer caches and shipped models key on it)."""

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]
_C128 = npt.NDArray[np.complex128]

# -------------------------------------------------------------------------------------------
# FaceMesh index sets

RIGHT_EYE_EAR = (33, 160, 158, 133, 153, 144)
"""Subject's right eye (image left), EAR order p1..p6: outer corner, 2 upper lid, inner
corner, 2 lower lid points (p2-p6 and p3-p5 face each other)."""
LEFT_EYE_EAR = (362, 385, 387, 263, 373, 380)
"""Subject's left eye (image right), same order as :data:`RIGHT_EYE_EAR`."""
FACE_OVAL = (
    10, 338, 297, 332, 284, 251, 389, 356, 454, 323, 361, 288, 397, 365, 379, 378, 400, 377,
    152, 148, 176, 149, 150, 136, 172, 58, 132, 93, 234, 127, 162, 21, 54, 103, 67, 109,
)  # fmt: skip
"""MediaPipe FACEMESH_FACE_OVAL as a closed polygon (forehead top 10, clockwise in the
image, chin 152)."""
INNER_FACE = (
    33, 133, 362, 263,  # eye corners
    168, 6, 197, 195, 5, 4, 1,  # nose bridge to tip
    98, 327,  # nose wings
    61, 291, 0,  # mouth corners, upper lip centre
)  # fmt: skip
"""The central face for the pose cue: rigid-ish points only (no eyelids, no lower lip)."""
_EYE_CENTRES = ((33, 133), (362, 263))

# -------------------------------------------------------------------------------------------
# the feature list


@dataclass(frozen=True)
class CueSpec:
    """One cue: its name, what it measures, how to say it is unusual, and its neutral value.

    ``high``/``low`` are :meth:`str.format` templates used when a value lies above/below the
    real-class range; fields: ``value``, ``lo``/``hi`` (the real 10th/90th percentiles),
    ``median`` (real median) and ``times`` (how many times further from typical: the ratio
    to the real median, or for ``scale == "log"`` ``exp(|value - median|)``).
    """

    name: str
    description: str
    high: str
    low: str
    neutral: float
    scale: str = "ratio"  # "ratio" (positive quantity), "log" (a log ratio), "linear"


FEATURES: tuple[CueSpec, ...] = (
    CueSpec(
        "blinks_per_10s",
        "blink events per 10 s (EAR below 70 % of the track's open-eye level, hysteresis)",
        "blinks {value:.1f} times in 10 s (typical {lo:.1f}–{hi:.1f})",
        "blinks {value:.1f} times in 10 s (typical {lo:.1f}–{hi:.1f})",
        neutral=3.0,
        scale="linear",
    ),
    CueSpec(
        "ear_mean",
        "mean eye aspect ratio (both eyes): how open the eyes are",
        "eyes look unusually wide open (eye aspect ratio {value:.2f}, typical {lo:.2f}–{hi:.2f})",
        "eyes look unusually narrow (eye aspect ratio {value:.2f}, typical {lo:.2f}–{hi:.2f})",
        neutral=0.28,
        scale="linear",
    ),
    CueSpec(
        "ear_std",
        "standard deviation of the eye aspect ratio over the track",
        "eye opening varies {times:.1f}x more than in real videos",
        "eye opening barely changes ({times:.1f}x less than in real videos)",
        neutral=0.02,
    ),
    CueSpec(
        "ear_asym",
        "mean |right EAR - left EAR| / mean EAR: the two eyes open differently",
        "the two eyes open differently, {times:.1f}x more than in real videos",
        "the two eyes open unusually alike ({times:.1f}x less difference than in real videos)",
        neutral=0.08,
    ),
    CueSpec(
        "pose_rot_mean_deg",
        "mean rotation (deg) between the inner-face and whole-head similarity fits",
        "the inner face turns against the head outline by {value:.2f}° on average "
        "(typical {lo:.2f}–{hi:.2f}°)",
        "the inner face and the head outline turn together unusually tightly "
        "({value:.2f}°, typical {lo:.2f}–{hi:.2f}°)",
        neutral=0.5,
    ),
    CueSpec(
        "pose_rot_max_deg",
        "largest rotation (deg) between the inner-face and whole-head fits in the track",
        "at worst the inner face is turned {value:.1f}° against the head outline "
        "(typical {lo:.1f}–{hi:.1f}°)",
        "the inner face never turns against the head outline by more than {value:.2f}° "
        "(typical {lo:.2f}–{hi:.2f}°)",
        neutral=1.5,
    ),
    CueSpec(
        "pose_scale_mean_pct",
        "mean |log scale ratio| (%) between the inner-face and whole-head fits",
        "the inner face changes size against the head outline by {value:.2f} % on average "
        "(typical {lo:.2f}–{hi:.2f} %)",
        "the inner face keeps its size against the head outline unusually exactly "
        "({value:.2f} %, typical {lo:.2f}–{hi:.2f} %)",
        neutral=1.0,
    ),
    CueSpec(
        "pose_scale_max_pct",
        "largest |log scale ratio| (%) between the inner-face and whole-head fits",
        "at worst the inner face is {value:.1f} % off in size against the head outline "
        "(typical {lo:.1f}–{hi:.1f} %)",
        "the inner face is never more than {value:.2f} % off in size against the head outline "
        "(typical {lo:.2f}–{hi:.2f} %)",
        neutral=3.0,
    ),
    CueSpec(
        "jitter",
        "landmark motion left after the best similarity between consecutive frames, "
        "in inter-ocular distances per second",
        "face landmarks jitter {times:.1f}x more than in real videos",
        "face landmarks are {times:.1f}x steadier than in real videos",
        neutral=0.2,
    ),
    CueSpec(
        "colour_gap",
        "mean Lab distance (ΔE76) between the face region and the ring around it",
        "face colour differs from its surroundings by ΔE {value:.1f} (typical {lo:.1f}–{hi:.1f})",
        "face colour matches its surroundings unusually closely "
        "(ΔE {value:.1f}, typical {lo:.1f}–{hi:.1f})",
        neutral=10.0,
    ),
    CueSpec(
        "colour_flicker",
        "mean frame-to-frame change of the face-minus-ring Lab colour difference (ΔE76)",
        "face colour drifts from the surrounding skin {times:.1f}x more than in real videos",
        "face colour follows the surrounding skin {times:.1f}x more steadily than in real videos",
        neutral=1.0,
    ),
    CueSpec(
        "blur_log_ratio",
        "median over frames of log(mean square Laplacian in the face / in the ring): "
        "< 0 when the face is blurrier than its surroundings",
        "the face is {times:.1f}x sharper against its surroundings than in real videos",
        "the face is {times:.1f}x blurrier against its surroundings than in real videos",
        neutral=0.0,
        scale="log",
    ),
    CueSpec(
        "noise_log_ratio",
        "median over frames of log(median |Laplacian| in the face / in the ring): a robust "
        "high-pass noise level, < 0 when the face is smoother",
        "the face carries {times:.1f}x more fine noise against its surroundings than in real "
        "videos",
        "the face is {times:.1f}x smoother (less fine noise) against its surroundings than in "
        "real videos",
        neutral=0.0,
        scale="log",
    ),
)
"""Every cue, in the order of :data:`FEATURE_NAMES` (the model's input order)."""

FEATURE_NAMES: tuple[str, ...] = tuple(s.name for s in FEATURES)
_SPECS = {s.name: s for s in FEATURES}

# how much of the track a dynamic cue needs
_MIN_BLINK_FRAMES = 5
_MIN_BLINK_SPAN_S = 1.5
_CLOSE_FRACTION = 0.70  # closed below 70 % of the open-eye level ...
_REOPEN_FRACTION = 0.85  # ... and open again above 85 %
_MIN_POSE_FRAMES = 3


@dataclass(frozen=True)
class CueFeatures:
    """The cues of one track: ordered names and float values (never NaN).

    ``missing`` names the cues that could not be measured (track too short, region too
    small): their value is the spec's neutral value, and a model substitutes its own
    real-class median. ``frames`` and ``duration_s`` describe the track that was measured.
    """

    names: tuple[str, ...]
    values: tuple[float, ...]
    missing: frozenset[str] = field(default_factory=frozenset)
    frames: int = 0
    duration_s: float = 0.0

    def __post_init__(self) -> None:
        if len(self.names) != len(self.values):
            raise ValueError(f"{len(self.names)} names but {len(self.values)} values")
        if len(set(self.names)) != len(self.names):
            raise ValueError("feature names must be unique")
        if not all(math.isfinite(v) for v in self.values):
            raise ValueError("feature values must be finite")
        if not self.missing <= set(self.names):
            raise ValueError(f"unknown missing features {sorted(self.missing - set(self.names))}")

    def __getitem__(self, name: str) -> float:
        try:
            return self.values[self.names.index(name)]
        except ValueError:
            raise KeyError(name) from None

    def as_dict(self) -> dict[str, float]:
        """``{name: value}`` in feature order."""
        return dict(zip(self.names, self.values, strict=True))

    def vector(self) -> _F64:
        """The values as a float64 array in feature order."""
        return np.asarray(self.values, np.float64)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (see :meth:`from_dict`)."""
        return {
            "features": self.as_dict(),
            "missing": sorted(self.missing),
            "frames": self.frames,
            "duration_s": self.duration_s,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CueFeatures:
        """Inverse of :meth:`to_dict`."""
        feats = dict(data["features"])
        return cls(
            names=tuple(feats),
            values=tuple(float(v) for v in feats.values()),
            missing=frozenset(data.get("missing", ())),
            frames=int(data.get("frames", 0)),
            duration_s=float(data.get("duration_s", 0.0)),
        )


# -------------------------------------------------------------------------------------------
# the crop


def loose_crop(
    image: _U8,
    box: tuple[float, float, float, float],
    mesh: npt.NDArray[np.floating[Any]],
    size: int = 256,
    scale: float = 1.6,
) -> tuple[_U8, npt.NDArray[np.float32]]:
    """The crop and crop-pixel landmarks the cues expect, from a frame, a face box
    ``(x0, y0, x1, y1)`` and its FaceMesh (468, 2 or 3) in frame pixels.

    A square of ``scale`` x the box's longer side around its centre, resized to ``size`` with
    border pixels replicated: exactly :func:`fakescope.training.prepare_sbi.crop_face`, which
    made the training store."""
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    side = scale * max(box[2] - box[0], box[3] - box[1])
    k = size / side
    matrix = np.array([[k, 0, size / 2 - k * cx], [0, k, size / 2 - k * cy]], dtype=np.float64)
    crop = cv2.warpAffine(
        image, matrix, (size, size), flags=cv2.INTER_AREA, borderMode=cv2.BORDER_REPLICATE
    )
    points = np.asarray(mesh, np.float64)[:, :2] @ matrix[:, :2].T + matrix[:, 2]
    return np.asarray(crop, np.uint8), points.astype(np.float32)


# -------------------------------------------------------------------------------------------
# geometry


def eye_aspect_ratio(landmarks: npt.ArrayLike) -> tuple[_F64, _F64]:
    """``(right, left)`` eye aspect ratios per frame of (T, 468, 2) landmarks
    (``(|p2-p6| + |p3-p5|) / (2 |p1-p4|)``; ~0.25-0.35 open, < 0.15 closed)."""
    pts = np.asarray(landmarks, np.float64)
    if pts.ndim == 2:
        pts = pts[None]
    out = []
    for idx in (RIGHT_EYE_EAR, LEFT_EYE_EAR):
        p = pts[:, list(idx)]
        vertical = np.linalg.norm(p[:, 1] - p[:, 5], axis=-1) + np.linalg.norm(
            p[:, 2] - p[:, 4], axis=-1
        )
        horizontal = np.linalg.norm(p[:, 0] - p[:, 3], axis=-1)
        out.append(vertical / np.maximum(2.0 * horizontal, 1e-6))
    return out[0], out[1]


def _centred(z: _C128) -> _C128:
    return np.asarray(z - z.mean(axis=-1, keepdims=True), np.complex128)


def _similarity(src: _C128, dst: _C128) -> _C128:
    """Per row, the complex ``a = s e^{i theta}`` with ``a (src - mean) ~ dst - mean``
    (least squares; rows are frames, columns points)."""
    s, d = _centred(src), _centred(dst)
    num = np.sum(np.conj(s) * d, axis=-1)
    den = np.sum(np.abs(s) ** 2, axis=-1)
    return np.asarray(num / np.maximum(den, 1e-12), np.complex128)


def _mean_shape(z: _C128, iterations: int = 3) -> _C128:
    """Generalised Procrustes mean of the frames' point sets (unit RMS, centred)."""
    zc = _centred(z)
    ref = zc[0] / max(float(np.linalg.norm(zc[0])), 1e-12)
    for _ in range(iterations):
        a = _similarity(zc, np.broadcast_to(ref, zc.shape))
        ref = (a[:, None] * zc).mean(axis=0)
        ref = ref / max(float(np.linalg.norm(ref)), 1e-12)
    return np.asarray(ref, np.complex128)


def _blinks(ear: _F64) -> int:
    """Blink events: drops below ``_CLOSE_FRACTION`` of the open-eye level (the track's 75th
    EAR percentile), each ending when the EAR climbs back above ``_REOPEN_FRACTION`` of it."""
    open_level = float(np.percentile(ear, 75))
    if open_level <= 1e-6:
        return 0
    closed = False
    events = 0
    for value in ear:
        if not closed and value < _CLOSE_FRACTION * open_level:
            closed = True
            events += 1
        elif closed and value > _REOPEN_FRACTION * open_level:
            closed = False
    return events


def _geometry(points: _F64, times: _F64, out: dict[str, float], missing: set[str]) -> None:
    t = len(points)
    right, left = eye_aspect_ratio(points)
    ear = (right + left) / 2.0
    out["ear_mean"] = float(ear.mean())
    out["ear_asym"] = float(np.mean(np.abs(right - left)) / max(float(ear.mean()), 1e-6))
    if t >= 2:
        out["ear_std"] = float(ear.std())
    else:
        missing.add("ear_std")
    # blinks: the span the samples cover (first to last, plus one typical step)
    steps = np.diff(times)
    step = float(np.median(steps)) if t >= 2 else 0.0
    span = float(times[-1] - times[0]) + step
    if t >= _MIN_BLINK_FRAMES and span >= _MIN_BLINK_SPAN_S:
        out["blinks_per_10s"] = 10.0 * _blinks(ear) / span
    else:
        missing.add("blinks_per_10s")

    z = points[..., 0] + 1j * points[..., 1]
    if t >= _MIN_POSE_FRAMES:
        ref = _mean_shape(z)
        inner, oval = list(INNER_FACE), list(FACE_OVAL)
        a_in = _similarity(z[:, inner], np.broadcast_to(ref[inner], (t, len(inner))))
        a_head = _similarity(z[:, oval], np.broadcast_to(ref[oval], (t, len(oval))))
        rel = a_in * np.conj(a_head)
        rot = np.degrees(np.abs(np.angle(rel)))
        scl = 100.0 * np.abs(
            np.log(np.maximum(np.abs(a_in), 1e-12) / np.maximum(np.abs(a_head), 1e-12))
        )
        out["pose_rot_mean_deg"] = float(rot.mean())
        out["pose_rot_max_deg"] = float(rot.max())
        out["pose_scale_mean_pct"] = float(scl.mean())
        out["pose_scale_max_pct"] = float(scl.max())
    else:
        missing.update(
            ("pose_rot_mean_deg", "pose_rot_max_deg", "pose_scale_mean_pct", "pose_scale_max_pct")
        )

    if t >= 2:
        (r0, r1), (l0, l1) = _EYE_CENTRES
        iod = np.abs(
            (z[:, r0] + z[:, r1]) / 2.0 - (z[:, l0] + z[:, l1]) / 2.0
        )  # inter-ocular distance per frame
        a = _similarity(z[:-1], z[1:])
        residual = np.abs(a[:, None] * _centred(z[:-1]) - _centred(z[1:])).mean(axis=1)
        scale = np.maximum((iod[:-1] + iod[1:]) / 2.0, 1e-6)
        dt = np.maximum(steps, 1.0 / 240.0)
        out["jitter"] = float(np.mean(residual / scale / dt))
    else:
        missing.add("jitter")


# -------------------------------------------------------------------------------------------
# the track


def track_cues(
    crops: Sequence[_U8] | _U8,
    landmarks: npt.ArrayLike,
    times_s: npt.ArrayLike,
) -> CueFeatures:
    """The cues of one face track (frames in time order).

    ``crops``: ``T`` uint8 RGB square crops (H, W, 3) made like the training store's
    (:func:`loose_crop`: 256 px, box x 1.6; other sizes work, the image cues are ratios);
    ``landmarks``: (T, 468, 2) (or 3, z ignored) FaceMesh points in crop pixels; ``times_s``:
    (T,) frame times in seconds, increasing. Raises :class:`ValueError` on an empty track or
    mismatched lengths. Cues a short track cannot give are neutral and listed in
    ``missing`` (EAR spread and jitter need 2 frames, pose 3, blinks 5 frames over 1.5 s).
    """
    points = np.asarray(landmarks, np.float64)
    times = np.asarray(times_s, np.float64).reshape(-1)
    if points.ndim != 3 or points.shape[1] != 468 or points.shape[2] not in (2, 3):
        raise ValueError(f"landmarks must be (T, 468, 2), got {points.shape}")
    points = points[..., :2]
    t = len(points)
    if t == 0:
        raise ValueError("an empty track has no cues")
    if len(crops) != t or len(times) != t:
        raise ValueError(f"{len(crops)} crops, {t} landmark sets and {len(times)} times")
    if not (np.isfinite(points).all() and np.isfinite(times).all()):
        raise ValueError("landmarks and times must be finite")
    if t >= 2 and np.any(np.diff(times) < 0):
        raise ValueError("frame times must be in increasing order")
    out: dict[str, float] = {}
    missing: set[str] = set()
    _geometry(points, times, out, missing)
    image_cues(crops, points[:, list(FACE_OVAL)], out, missing)
    values = []
    for name in FEATURE_NAMES:
        value = out.get(name)
        if value is None or not math.isfinite(value):
            missing.add(name)
            value = _SPECS[name].neutral
        values.append(float(value))
    span = float(times[-1] - times[0]) if t >= 2 else 0.0
    return CueFeatures(
        names=FEATURE_NAMES,
        values=tuple(values),
        missing=frozenset(missing),
        frames=t,
        duration_s=span,
    )
