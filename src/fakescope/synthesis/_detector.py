"""Whole-image synthesis detectors: the protocol, the registry and the shipped CNN weights."""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fakescope._assets import shipped
from fakescope.errors import ModelError
from fakescope.registry import Registry
from fakescope.synthesis._cnn import CNN_WEIGHTS_FORMAT, CnnSynthesisDetector
from fakescope.types import ModelInfo

__all__ = [
    "DEFAULT_SYNTHESIS_DETECTOR",
    "SYNTHESIS_DETECTORS",
    "FamilySynthesisDetector",
    "SynthesisDetector",
    "create_synthesis_detector",
    "load_synthesis_weights",
    "synthesis_detector_argument",
]

DEFAULT_SYNTHESIS_DETECTOR = "cnn-v3-int8"

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
    """A synthesis detector that may also name the generator family (``cnn-v3``)."""

    def score_with_family(
        self, images: Sequence[npt.NDArray[np.uint8]]
    ) -> tuple[_F64, _F64 | None]:
        """:meth:`score` and, from the same network calls, each image's family logit
        (sigmoid = P(diffusion | generated)); None when this weight has no family output."""
        ...


SYNTHESIS_DETECTORS: Registry[SynthesisDetector] = Registry("synthesis detector")


@SYNTHESIS_DETECTORS.register("cnn-v3")
def _cnn_v3() -> SynthesisDetector:
    """CNN branch v3 (issue 28): EfficientNet-Lite2 (ImageNet init) on native-resolution 192 px
    patches of GAN (StyleGAN2) and diffusion (Stable Diffusion 2.1, split by prompt) portraits
    against real photos, faces and video frames, both classes rescaled, blurred and JPEG- or
    H.264-compressed alike; a second output names the generator family (GAN or diffusion).
    Platt-calibrated on the calib split (MODEL_CARD "cnn-v3")."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v3.json"))


@SYNTHESIS_DETECTORS.register("cnn-v3-int8", float_twin="cnn-v3")
def _cnn_v3_int8() -> SynthesisDetector:
    """The default: ``cnn-v3``'s network quantized to 8-bit integers (static, calibrated on
    train-split patches of both generators; stem, heads and outputs in float), with its Platt
    calibrator refitted on the calib split; names the generator family."""
    return CnnSynthesisDetector.from_json(shipped("synth_cnn_v3_int8.json"))


def create_synthesis_detector(name: str = DEFAULT_SYNTHESIS_DETECTOR) -> SynthesisDetector:
    """A registered name, or a path ending in ``.json`` (a CNN weight config with its network
    beside it, as ``python -m fakescope.training.synthesis_cnn ship`` or ``fakescope finetune``
    writes).

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
    """The detector a synthesis weight file describes: an ONNX network beside the file
    (``fakescope-synthesis-cnn/1``). Any other format raises :class:`ModelError` (the linear
    frequency weights of ``freq-v1`` are no longer read: CHANGELOG.md)."""
    try:
        fmt = json.loads(path.read_text()).get("format")
    except (OSError, ValueError, AttributeError) as exc:
        raise ModelError(f"cannot read synthesis weights {path}: {exc}") from None
    if fmt != CNN_WEIGHTS_FORMAT:
        raise ModelError(
            f"{path.name}: format {fmt!r} is not {CNN_WEIGHTS_FORMAT!r} (the linear frequency "
            "detector freq-v1 is no longer supported; see CHANGELOG.md)"
        )
    return CnnSynthesisDetector.from_json(path)


def synthesis_detector_argument(text: str) -> str:
    """argparse ``type=``: a registered synthesis detector name or an existing ``.json``."""
    if text in SYNTHESIS_DETECTORS or (text.endswith(".json") and Path(text).is_file()):
        return text
    raise ValueError(
        f"unknown synthesis detector {text!r}: choose one of "
        f"{', '.join(SYNTHESIS_DETECTORS.names())} or give a synthesis weights .json"
    )
