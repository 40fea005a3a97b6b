"""Whole-image synthesis detectors: a registry, the linear frequency detector and its JSON
weight format (plain numbers, never a pickle)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fakescope._assets import sha256_file, shipped
from fakescope.calibration import Calibrator, calibrator_from_dict
from fakescope.errors import ConfigError, ModelError
from fakescope.registry import Registry
from fakescope.synthesis._cnn import CNN_WEIGHTS_FORMAT, CnnSynthesisDetector
from fakescope.synthesis._features import FeatureConfig, extract_features
from fakescope.synthesis._probability import calibrated_probability
from fakescope.types import ModelInfo

__all__ = [
    "DEFAULT_SYNTHESIS_DETECTOR",
    "SYNTHESIS_DETECTORS",
    "WEIGHTS_FORMAT",
    "FamilySynthesisDetector",
    "LinearSynthesisDetector",
    "SynthesisDetector",
    "SynthesisWeights",
    "create_synthesis_detector",
    "load_synthesis_weights",
    "synthesis_detector_argument",
]

DEFAULT_SYNTHESIS_DETECTOR = "cnn-v2-int8"
WEIGHTS_FORMAT = "fakescope-synthesis-linear/1"

_F64 = npt.NDArray[np.float64]


class SynthesisDetector(Protocol):
    """Scores whole images (a photo, or a video's sampled frames): was it generated whole?"""

    min_side: int
    """An image whose shorter side is below this is not scored (the caller abstains)."""
    threshold: float
    """Decision threshold on the calibrated probability."""
    calibrated: bool
    """Whether :meth:`probability` applies a fitted calibrator."""

    @property
    def info(self) -> ModelInfo: ...

    def score(self, images: Sequence[npt.NDArray[np.uint8]]) -> _F64:
        """Raw score (a logit, any real) per RGB uint8 image (H, W, 3), whole frame or photo."""
        ...

    def probability(self, raw: _F64) -> _F64:
        """Calibrated probability that the image was generated whole, per raw score."""
        ...


@runtime_checkable
class FamilySynthesisDetector(SynthesisDetector, Protocol):
    """A synthesis detector that may also name the generator family (``cnn-v2``)."""

    def score_with_family(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[_F64, _F64 | None]:
        """:meth:`score` and, from the same network calls, each image's family logit
        (sigmoid = P(diffusion | generated)); None when this weight has no family output."""
        ...


SYNTHESIS_DETECTORS: Registry[SynthesisDetector] = Registry("synthesis detector")


def _payload_sha256(payload: dict[str, Any]) -> str:
    """sha256 of the canonical JSON of ``payload`` (sorted keys, no spaces)."""
    text = json.dumps(payload, sort_keys=True, separators=(",", ":"), allow_nan=False)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def _vector(name: str, values: Any, size: int) -> tuple[float, ...]:
    try:
        out = tuple(float(v) for v in values)
    except (TypeError, ValueError) as exc:
        raise ModelError(f"synthesis weights: {name} must be a list of numbers ({exc})") from None
    if len(out) != size:
        raise ModelError(f"synthesis weights: {name} has {len(out)} values, features need {size}")
    if not all(math.isfinite(v) for v in out):
        raise ModelError(f"synthesis weights: {name} has non-finite values")
    return out


@dataclass(frozen=True)
class SynthesisWeights:
    """A standardised linear classifier over :func:`extract_features` (what scikit-learn's
    ``StandardScaler`` + ``LogisticRegression`` fit), with its calibration and provenance.

    ``raw = ((features - mean) / scale) @ coef + intercept``.
    """

    name: str
    version: str
    features: FeatureConfig
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    coef: tuple[float, ...]
    intercept: float
    calibration: dict[str, Any] | None = None
    """A fitted ``fakescope.calibration`` calibrator (``to_dict``) mapping ``sigmoid(raw)`` of
    one image to a probability; None = uncalibrated (the probability is ``sigmoid(raw)``)."""
    threshold: float = 0.5
    min_side: int = 0
    """Shorter side below which an image is not scored; 0 = the analysis window."""
    architecture: str = ""
    trained_on: str = ""
    license: str = ""

    def __post_init__(self) -> None:
        size = self.features.size
        for field in ("mean", "scale", "coef"):
            object.__setattr__(self, field, _vector(field, getattr(self, field), size))
        if not all(s > 0 for s in self.scale):
            raise ModelError("synthesis weights: every scale must be positive")
        if not math.isfinite(self.intercept):
            raise ModelError("synthesis weights: intercept must be finite")
        if not 0.0 < self.threshold < 1.0:
            raise ModelError(
                f"synthesis weights: threshold must be in (0, 1), not {self.threshold}"
            )
        if self.min_side == 0:
            object.__setattr__(self, "min_side", self.features.window)
        if self.min_side < self.features.window:
            raise ModelError(
                f"synthesis weights: min_side {self.min_side} is below the "
                f"{self.features.window} px analysis window"
            )
        if self.calibration is not None:
            try:
                calibrator_from_dict(self.calibration)
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"synthesis weights: bad calibration: {exc}") from None

    def payload(self) -> dict[str, Any]:
        """The JSON object without its checksum."""
        data = dataclasses.asdict(self)
        data["features"] = self.features.to_dict()
        for field in ("mean", "scale", "coef"):
            data[field] = list(data[field])
        return {"format": WEIGHTS_FORMAT, **data}

    def to_dict(self) -> dict[str, Any]:
        """The JSON object, with ``payload_sha256`` (checked again at load)."""
        payload = self.payload()
        return {**payload, "payload_sha256": _payload_sha256(payload)}

    def save(self, path: Path) -> Path:
        """Write as indented JSON; returns ``path``."""
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = "synthesis weights") -> SynthesisWeights:
        """Rebuild from :meth:`to_dict`. Unknown or missing keys, another format, or a
        ``payload_sha256`` that does not match the content raise :class:`ModelError`."""
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object")
        raw = dict(data)
        fmt = raw.pop("format", None)
        if fmt != WEIGHTS_FORMAT:
            raise ModelError(f"{source}: format {fmt!r} is not {WEIGHTS_FORMAT!r}")
        checksum = raw.pop("payload_sha256", None)
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"{source}: unknown keys {', '.join(unknown)}")
        if checksum != _payload_sha256({"format": fmt, **raw}):
            raise ModelError(f"{source}: content does not match its payload_sha256 (edited?)")
        try:
            raw["features"] = FeatureConfig.from_dict(raw["features"])
            return cls(**raw)
        except (ConfigError, KeyError, TypeError, ValueError) as exc:
            raise ModelError(f"{source}: invalid weights: {exc}") from None

    @classmethod
    def from_json(cls, path: Path) -> SynthesisWeights:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read synthesis weights {path}: {exc}") from None
        return cls.from_dict(data, path.name)


class LinearSynthesisDetector:
    """:class:`SynthesisWeights` applied to :func:`extract_features` (numpy and OpenCV only)."""

    def __init__(self, weights: SynthesisWeights, sha256: str = "") -> None:
        self.weights = weights
        self.sha256 = sha256 or _payload_sha256(weights.payload())
        self.min_side = weights.min_side
        self.threshold = weights.threshold
        self.calibrated = weights.calibration is not None
        self._calibrator: Calibrator | None = (
            calibrator_from_dict(weights.calibration) if weights.calibration else None
        )
        self._mean = np.asarray(weights.mean, dtype=np.float64)
        self._scale = np.asarray(weights.scale, dtype=np.float64)
        self._coef = np.asarray(weights.coef, dtype=np.float64)

    @classmethod
    def from_json(cls, path: Path) -> LinearSynthesisDetector:
        """Load a weight file; the detector's sha256 is the file's."""
        weights = SynthesisWeights.from_json(path)
        return cls(weights, sha256_file(path))

    @property
    def info(self) -> ModelInfo:
        return ModelInfo(self.weights.name, self.sha256, self.weights.version)

    def features(self, images: Sequence[npt.NDArray[np.uint8]]) -> _F64:
        """(N, F) feature matrix; an image below ``min_side`` raises ValueError."""
        rows = []
        for image in images:
            side = min(image.shape[:2]) if image.ndim >= 2 else 0
            if side < self.min_side:
                raise ValueError(
                    f"image too small for the synthesis detector ({side} px, needs {self.min_side})"
                )
            rows.append(extract_features(image, self.weights.features))
        if not rows:
            return np.zeros((0, self.weights.features.size), dtype=np.float64)
        return np.stack(rows)

    def decision(self, features: _F64) -> _F64:
        """Raw scores (logits) of an (N, F) feature matrix."""
        z = (np.asarray(features, dtype=np.float64) - self._mean) / self._scale
        return np.asarray(z @ self._coef + self.weights.intercept, dtype=np.float64)

    def score(self, images: Sequence[npt.NDArray[np.uint8]]) -> _F64:
        return self.decision(self.features(images))

    def probability(self, raw: _F64) -> _F64:
        return calibrated_probability(raw, self._calibrator)


@SYNTHESIS_DETECTORS.register("freq-v1", role="baseline")
def _freq_v1() -> SynthesisDetector:
    """Frequency branch v1 (issue 11 step 1): on up to 4x4 tiles of 128 px, the log power
    spectrum in 16 radial bins x 4 orientation sectors, spectral peaks at periods 2, 4 and 8,
    Laplacian and directional residual statistics and two octaves of residual-energy decay
    (81 features); a standardised logistic regression fitted on stylegan2_ffhq's train split,
    UTKFace reals and self-made up-sampled fakes (30 % of the fake weight), all under
    crop/resize/blur/JPEG degradations; Platt-calibrated on the calib split. Weak: test AUC
    0.71 on stylegan2_ffhq (MODEL_CARD)."""
    return LinearSynthesisDetector.from_json(shipped("synth_freq_v1.json"))


@SYNTHESIS_DETECTORS.register("cnn-v1", role="previous")
def _cnn_v1() -> SynthesisDetector:
    """CNN branch v1 (the default in v0.4.0; StyleGAN2 only): EfficientNet-Lite0 (ImageNet
    init) fine-tuned on native-resolution 192 px patches of stylegan2_ffhq's train split, real
    photos, faces and video frames of four other sets, and self-made up-sampled fakes, all
    under crop/resize/blur/JPEG degradations; an image's raw score is the mean logit of up to 5
    patches; Platt-calibrated on the calib split. Test AUC 0.96 on stylegan2_ffhq
    (MODEL_CARD)."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v1.json"))


@SYNTHESIS_DETECTORS.register("cnn-v1-int8", float_twin="cnn-v1", role="previous")
def _cnn_v1_int8() -> SynthesisDetector:
    """The default of v0.5.0-v0.7.0: ``cnn-v1``'s network quantized to 8-bit integers (static; stem,
    classifier and outputs in float), about 1.9x faster, with its Platt calibrator refitted on
    the calib split: the int8 raw scores sit about 0.35 logit lower than the float ones."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v1_int8.json"))


@SYNTHESIS_DETECTORS.register("cnn-v2")
def _cnn_v2() -> SynthesisDetector:
    """CNN branch v2 (issue 28): EfficientNet-Lite0 (ImageNet init) on native-resolution 192 px
    patches of GAN (StyleGAN2) and diffusion (Stable Diffusion 2.1, split by prompt) portraits
    against real photos, faces and video frames, both classes rescaled, blurred and JPEG- or
    H.264-compressed alike; a second output names the generator family (GAN or diffusion).
    Platt-calibrated on the calib split (MODEL_CARD)."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v2.json"))


@SYNTHESIS_DETECTORS.register("cnn-v2-int8", float_twin="cnn-v2")
def _cnn_v2_int8() -> SynthesisDetector:
    """The default: ``cnn-v2``'s network quantized to 8-bit integers (static, calibrated on
    train-split patches of both generators; stem, heads and outputs in float), about 2x faster,
    with its Platt calibrator refitted on the calib split; names the generator family."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v2_int8.json"))


def create_synthesis_detector(name: str = DEFAULT_SYNTHESIS_DETECTOR) -> SynthesisDetector:
    """A registered name, or a path ending in ``.json`` (a weight file of this package's
    format, as ``python -m fakescope.training.synthesis`` writes).

    An int8 weight gives its float twin instead where this CPU would not run it exactly (x86
    without AVX512-VNNI or AVX-VNNI) or under ``FAKESCOPE_INT8=never``; the twin's ``info``
    then names the int8 weight in ``resolved_from`` and says why (:mod:`fakescope._cpu`)."""
    if name.endswith(".json"):
        return load_synthesis_weights(Path(name))
    target, reason = SYNTHESIS_DETECTORS.resolve(name)
    detector = SYNTHESIS_DETECTORS.create(target)
    if reason is not None:
        if not isinstance(detector, CnnSynthesisDetector):
            raise ModelError(f"{name}'s float twin is not a CNN synthesis detector")
        detector.resolved_from, detector.resolution = name, reason
    return detector


def load_synthesis_weights(path: Path) -> SynthesisDetector:
    """The detector a synthesis weight file describes, by its ``format``: a linear frequency
    model (``fakescope-synthesis-linear/1``) or an ONNX network beside the file
    (``fakescope-synthesis-cnn/1``)."""
    try:
        fmt = json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"cannot read synthesis weights {path}: {exc}") from None
    if fmt == CNN_WEIGHTS_FORMAT:
        return CnnSynthesisDetector.from_json(path)
    return LinearSynthesisDetector.from_json(path)


def synthesis_detector_argument(text: str) -> str:
    """argparse ``type=``: a registered synthesis detector name or an existing ``.json``."""
    if text in SYNTHESIS_DETECTORS or (text.endswith(".json") and Path(text).is_file()):
        return text
    raise ValueError(
        f"unknown synthesis detector {text!r}: choose one of "
        f"{', '.join(SYNTHESIS_DETECTORS.names())} or give a synthesis weights .json"
    )
