"""The CNN branch of the synthesis detector: an ONNX network over native-resolution patches of
the whole image, and its JSON weight config (input size, normalisation, patches, calibration,
sha256 of the network), like the face detectors' weight configs."""

from __future__ import annotations

import dataclasses
import functools
import itertools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope._assets import verified_path
from fakescope._runtime import onnx_session
from fakescope.calibration import Calibrator, calibrator_from_dict
from fakescope.errors import ConfigError, ModelError
from fakescope.synthesis._probability import calibrated_probability
from fakescope.types import ModelInfo

__all__ = [
    "CNN_WEIGHTS_FORMAT",
    "FAMILY_OUTPUT",
    "PATCH_LAYOUTS",
    "CnnSynthesisDetector",
    "CnnSynthesisWeights",
    "limit_side",
    "patch_origins",
]

CNN_WEIGHTS_FORMAT = "fakescope-synthesis-cnn/1"
FAMILY_OUTPUT = "family_logit"
"""The optional network output naming the generator family: one logit per patch, sigmoid =
P(diffusion | generated)."""
BATCH_PATCHES = 40
"""At most about this many patches go through the network in one call."""

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]

# Patch centres as fractions of the image: the centre, then the four quadrant centres.
_CENTRES = ((0.5, 0.5), (0.3, 0.3), (0.3, 0.7), (0.7, 0.3), (0.7, 0.7))
# A 3 x 3 grid of patches spread from edge to edge (each patch's top-left corner at 0, half-way
# or at the far end of its free range in each direction): the centre, the four edge
# midpoints, then the four corners.
_EDGES = ((0.0, 0.5), (0.5, 0.0), (0.5, 1.0), (1.0, 0.5))
_GRID = ((0.5, 0.5), *_EDGES, (0.0, 0.0), (0.0, 1.0), (1.0, 0.0), (1.0, 1.0))
PATCH_LAYOUTS = {"quadrants": len(_CENTRES), "grid": len(_GRID)}
"""Where an image's patches are cut, and how many each layout has at most: ``quadrants``
(the default; every shipped weight) the centre and the four quadrant centres; ``grid`` a 3 x 3
grid that reaches the image's edges and corners (tried on cnn-v3, not shipped: MODEL_CARD)."""


def patch_origins(
    height: int, width: int, size: int, count: int, layout: str = "quadrants"
) -> list[tuple[int, int]]:
    """Top-left corners of up to ``count`` distinct ``size`` x ``size`` patches of an image,
    in the order of ``layout`` (:data:`PATCH_LAYOUTS`): ``quadrants``, the centre first, then
    the quadrant centres, each moved inside the image; ``grid``, the centre, the edge
    midpoints, then the corners of a 3 x 3 grid spanning the image. An image of exactly
    ``size`` gives one patch; an image below ``size`` raises ValueError."""
    if min(height, width) < size:
        raise ValueError(f"image {width}x{height} is smaller than the {size} px patch")
    if layout not in PATCH_LAYOUTS:
        raise ValueError(f"unknown patch layout {layout!r}: {', '.join(PATCH_LAYOUTS)}")
    if not 1 <= count <= PATCH_LAYOUTS[layout]:
        raise ValueError(f"patch count must be 1-{PATCH_LAYOUTS[layout]}, not {count}")
    out: list[tuple[int, int]] = []
    for fy, fx in (_GRID if layout == "grid" else _CENTRES)[:count]:
        if layout == "grid":  # a fraction of the free range
            y, x = round(fy * (height - size)), round(fx * (width - size))
        else:  # a fraction of the image, the patch centred there
            y = min(max(round(fy * height - size / 2), 0), height - size)
            x = min(max(round(fx * width - size / 2), 0), width - size)
        if (y, x) not in out:
            out.append((y, x))
    return out


def limit_side(image: _U8, max_side: int) -> _U8:
    """Area-downscale ``image`` so that its shorter side is at most ``max_side`` (unchanged if
    it already is): very large photos are seen at the scale generators work at."""
    h, w = image.shape[:2]
    short = min(h, w)
    if short <= max_side:
        return image
    s = max_side / short
    size = (max(1, round(w * s)), max(1, round(h * s)))
    return np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), dtype=np.uint8)


@dataclass(frozen=True)
class CnnSynthesisWeights:
    """Weight config of an ONNX synthesis network. The network takes normalised NCHW float
    patches of ``input_size`` px and returns one logit per patch; an image's raw score is
    the mean logit of its patches. A network may also return ``family_logit`` per patch
    (P(diffusion | generated) = sigmoid of the image's mean family logit; ``cnn-v3``); the
    config is the same either way."""

    name: str
    version: str
    file: str
    """The ONNX file, relative to this config's folder."""
    sha256: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    patches: int = 5
    max_side: int = 1024
    layout: str = "quadrants"
    """Where the patches are cut (:data:`PATCH_LAYOUTS`)."""
    calibration: dict[str, Any] | None = None
    """A ``fakescope.calibration`` calibrator (``to_dict``) over ``sigmoid(raw)``."""
    threshold: float = 0.5
    architecture: str = ""
    trained_on: str = ""
    license: str = ""
    head: dict[str, Any] | None = None
    """A head refitted on the network's ``embedding`` output (``fakescope finetune``):
    ``{"coef": [...], "intercept": b, "base": name}``; a patch's logit is then
    ``embedding @ coef + intercept`` instead of the network's own ``logit``."""

    def __post_init__(self) -> None:
        for field in ("mean", "std"):
            values = tuple(float(v) for v in getattr(self, field))
            if len(values) != 3 or not all(math.isfinite(v) for v in values):
                raise ModelError(f"synthesis weights: {field} needs 3 finite numbers")
            object.__setattr__(self, field, values)
        if not all(s > 0 for s in self.std):
            raise ModelError("synthesis weights: std must be positive")
        if self.input_size < 32 or self.max_side < self.input_size:
            raise ModelError("synthesis weights: need 32 <= input_size <= max_side")
        if self.layout not in PATCH_LAYOUTS:
            raise ModelError(f"synthesis weights: layout must be one of {', '.join(PATCH_LAYOUTS)}")
        if not 1 <= self.patches <= PATCH_LAYOUTS[self.layout]:
            raise ModelError(
                f"synthesis weights: patches must be 1-{PATCH_LAYOUTS[self.layout]} "
                f"for the {self.layout} layout"
            )
        if not 0.0 < self.threshold < 1.0:
            raise ModelError("synthesis weights: threshold must be in (0, 1)")
        if len(self.sha256) != 64:
            raise ModelError("synthesis weights: sha256 must be 64 hex digits")
        if self.calibration is not None:
            try:
                calibrator_from_dict(self.calibration)
            except (ConfigError, KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"synthesis weights: bad calibration: {exc}") from None
        if self.head is not None:
            try:
                coef = [float(v) for v in self.head["coef"]]
                numbers = [*coef, float(self.head["intercept"])]
            except (KeyError, TypeError, ValueError) as exc:
                raise ModelError(f"synthesis weights: bad head: {exc}") from None
            if not coef or not all(math.isfinite(v) for v in numbers):
                raise ModelError("synthesis weights: the head needs finite coef and intercept")

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["mean"], data["std"] = list(self.mean), list(self.std)
        return {"format": CNN_WEIGHTS_FORMAT, **data}

    def save(self, path: Path) -> Path:
        path.write_text(json.dumps(self.to_dict(), indent=2, allow_nan=False) + "\n")
        return path

    @classmethod
    def from_dict(
        cls, data: dict[str, Any], source: str = "synthesis weights"
    ) -> CnnSynthesisWeights:
        """Rebuild from :meth:`to_dict`; unknown keys or another format raise ModelError."""
        if not isinstance(data, dict):
            raise ModelError(f"{source}: expected a JSON object")
        raw = dict(data)
        fmt = raw.pop("format", None)
        if fmt != CNN_WEIGHTS_FORMAT:
            raise ModelError(f"{source}: format {fmt!r} is not {CNN_WEIGHTS_FORMAT!r}")
        unknown = sorted(set(raw) - {f.name for f in dataclasses.fields(cls)})
        if unknown:
            raise ModelError(f"{source}: unknown keys {', '.join(unknown)}")
        try:
            return cls(**raw)
        except (TypeError, ValueError) as exc:
            raise ModelError(f"{source}: invalid weights: {exc}") from None


class CnnSynthesisDetector:
    """:class:`CnnSynthesisWeights` run with onnxruntime: each image (shorter side limited to
    ``max_side``) is cut into up to ``patches`` native-resolution patches (no resizing, which
    would wash out up-sampling traces); the raw score is their mean logit."""

    resolved_from: str | None = None
    """The int8 weight this one was built in place of (:func:`create_synthesis_detector`)."""
    resolution: str | None = None
    """Why it was (a sentence for the verdict's ``model``)."""

    def __init__(self, weights: CnnSynthesisWeights, onnx_path: Path, threads: int = 0) -> None:
        verified_path(onnx_path, weights.sha256)  # hashed once per process, as face models are
        self.weights = weights
        self.network_path = onnx_path
        self.min_side = weights.input_size
        self.threshold = weights.threshold
        self.calibrated = weights.calibration is not None
        self._calibrator: Calibrator | None = (
            calibrator_from_dict(weights.calibration) if weights.calibration else None
        )
        self._session = onnx_session(onnx_path, threads)  # built in the background
        self._head: tuple[_F64, float] | None = None
        if weights.head is not None:  # checked against the network now (waits for it)
            if "embedding" not in self._outputs:
                raise ModelError(
                    f"{onnx_path.name} has no 'embedding' output for the refitted head "
                    "(re-export it: python3 -m fakescope.training.synthesis_cnn reexport RUN)"
                )
            coef = np.asarray(weights.head["coef"], dtype=np.float64)
            width = self._session.get_outputs()[self._outputs.index("embedding")].shape[-1]
            if isinstance(width, int) and width != coef.size:
                raise ModelError(f"the head has {coef.size} weights, the embedding {width}")
            self._head = (coef, float(weights.head["intercept"]))
        self._mean = np.asarray(weights.mean, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0
        self._std = np.asarray(weights.std, dtype=np.float32).reshape(1, 3, 1, 1) * 255.0

    @functools.cached_property
    def _input(self) -> str:
        return str(self._session.get_inputs()[0].name)

    @functools.cached_property
    def _outputs(self) -> list[str]:
        return [str(o.name) for o in self._session.get_outputs()]

    @property
    def has_family(self) -> bool:
        """Whether the network has the generator-family output ``family_logit``."""
        return FAMILY_OUTPUT in self._outputs

    @classmethod
    def from_json(cls, path: Path, threads: int = 0) -> CnnSynthesisDetector:
        try:
            data = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read synthesis weights {path}: {exc}") from None
        weights = CnnSynthesisWeights.from_dict(data, path.name)
        onnx_path = path.parent / weights.file
        if not onnx_path.is_file():
            raise ModelError(f"{path.name}: network file {weights.file} is missing")
        return cls(weights, onnx_path, threads)

    @property
    def info(self) -> ModelInfo:
        w = self.weights
        return ModelInfo(w.name, w.sha256, w.version, self.resolved_from, self.resolution)

    def patches(self, image: _U8) -> _U8:
        """(K, size, size, 3) patches of one RGB image; ValueError if it is too small."""
        if image.ndim != 3 or image.shape[2] != 3:
            raise ValueError(f"expected an RGB image (H, W, 3), got shape {image.shape}")
        img = limit_side(image, self.weights.max_side)
        size = self.weights.input_size
        side = min(img.shape[:2])
        if side < size:
            raise ValueError(
                f"image too small for the synthesis detector ({side} px, needs {size})"
            )
        w = self.weights
        corners = patch_origins(img.shape[0], img.shape[1], size, w.patches, w.layout)
        return np.stack([img[y : y + size, x : x + size] for y, x in corners])

    def _run(self, output: str, patches: _U8) -> npt.NDArray[np.float32]:
        (out,) = self._run_many([output], patches)
        return out

    def _run_many(self, outputs: list[str], patches: _U8) -> list[npt.NDArray[np.float32]]:
        x = (patches.transpose(0, 3, 1, 2).astype(np.float32) - self._mean) / self._std
        got = self._session.run(outputs, {self._input: np.ascontiguousarray(x)})
        return [np.asarray(o) for o in got]

    @property
    def has_embedding(self) -> bool:
        """Whether the network exposes the ``embedding`` its logit is computed from."""
        return "embedding" in self._outputs

    def embeddings(self, patches: _U8) -> _F64:
        """(K, D) pooled features of (K, size, size, 3) uint8 patches."""
        if not self.has_embedding:
            raise ModelError(f"{self.weights.file} has no 'embedding' output")
        return np.asarray(self._run("embedding", patches), dtype=np.float64)

    @functools.cached_property
    def _logit_output(self) -> str:
        return "logit" if "logit" in self._outputs else self._outputs[0]

    def logits(self, patches: _U8) -> _F64:
        """One logit per (K, size, size, 3) uint8 patch (the refitted head's, if any)."""
        return self._logits_and_family(patches, family=False)[0]

    def _logits_and_family(self, patches: _U8, family: bool) -> tuple[_F64, _F64 | None]:
        """Patch logits and, with ``family`` (and the output), patch family logits: one
        network call."""
        wanted = ["embedding" if self._head is not None else self._logit_output]
        if family and self.has_family:
            wanted.append(FAMILY_OUTPUT)
        got = self._run_many(wanted, patches)
        if self._head is not None:
            coef, intercept = self._head
            logits = np.asarray(np.asarray(got[0], np.float64) @ coef + intercept, np.float64)
        else:
            logits = np.asarray(got[0], dtype=np.float64).reshape(-1)
        fam = np.asarray(got[1], dtype=np.float64).reshape(-1) if len(got) > 1 else None
        return logits, fam

    def score(self, images: Sequence[_U8]) -> _F64:
        """Mean patch logit per image; images are run a few at a time (at most
        :data:`BATCH_PATCHES` patches per network call), so memory stays flat however many
        images are given."""
        return self.score_with_family(images, family=False)[0]

    def score_with_family(
        self, images: Sequence[_U8], family: bool = True
    ) -> tuple[_F64, _F64 | None]:
        """:meth:`score` and, from the same network calls, each image's mean patch
        ``family_logit`` (None when the network has no family output, or ``family`` is
        False). ``sigmoid`` of it is P(diffusion | generated), see :meth:`family_probability`."""
        family = family and self.has_family
        out: list[float] = []
        fam: list[float] = []
        chunk: list[_U8] = []
        for image in images:
            chunk.append(self.patches(np.asarray(image, dtype=np.uint8)))
            if sum(len(g) for g in chunk) >= BATCH_PATCHES:
                self._score_groups(chunk, out, fam if family else None)
                chunk = []
        if chunk:
            self._score_groups(chunk, out, fam if family else None)
        raw = np.asarray(out, dtype=np.float64)
        return raw, np.asarray(fam, dtype=np.float64) if family else None

    def _score_groups(self, groups: list[_U8], out: list[float], fam: list[float] | None) -> None:
        logits, family = self._logits_and_family(np.concatenate(groups), fam is not None)
        bounds = np.cumsum([0] + [len(g) for g in groups])
        for a, b in itertools.pairwise(bounds):
            out.append(float(logits[a:b].mean()))
            if fam is not None and family is not None:
                fam.append(float(family[a:b].mean()))

    @staticmethod
    def family_probability(family_logit: _F64) -> _F64:
        """P(diffusion | generated) of mean family logits (a plain sigmoid: uncalibrated)."""
        z = np.asarray(family_logit, dtype=np.float64)
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * z)), dtype=np.float64)

    def probability(self, raw: _F64) -> _F64:
        return calibrated_probability(raw, self._calibrator)
