"""Method attribution: which family of manipulation a fake face resembles.

An attribution head is a multinomial logistic regression over a shipped detector's pooled
embedding (its ONNX ``embedding`` output), stored as plain JSON (no pickle) and applied with
numpy; :mod:`fakescope.training.attribution` trains it. One registry, like the detectors.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope._assets import sha256_file, shipped
from fakescope.errors import ModelError
from fakescope.models._base import OnnxDetector
from fakescope.models._detectors import create_detector
from fakescope.registry import Registry
from fakescope.types import Attribution, ModelInfo

__all__ = ["ATTRIBUTORS", "Attributor", "attributor_argument", "create_attributor"]

_KEYS = ("name", "embedder", "classes", "families", "mean", "scale", "coef", "intercept")


class Attributor:
    """Attributes a face track's aligned crops to a manipulation method and its family.

    ``attribute`` embeds at most ``max_crops`` evenly spread crops of the track with the
    embedder detector, averages the head's log-probabilities over them (as the scan pools a
    track) and returns the most likely method with its temperature-scaled confidence."""

    def __init__(self, head: Mapping[str, Any], sha256: str, threads: int = 0) -> None:
        missing = [k for k in _KEYS if k not in head]
        if missing:
            raise ModelError(f"attribution head lacks {', '.join(missing)}")
        self.name = str(head["name"])
        self.classes: list[str] = [str(c) for c in head["classes"]]
        self.families: dict[str, str] = {str(k): str(v) for k, v in head["families"].items()}
        self._mean = np.asarray(head["mean"], np.float64)
        self._scale = np.asarray(head["scale"], np.float64)
        self._coef = np.asarray(head["coef"], np.float64)
        self._intercept = np.asarray(head["intercept"], np.float64)
        k, d = len(self.classes), len(self._mean)
        if (
            self._coef.shape != (k, d)
            or self._intercept.shape != (k,)
            or self._scale.shape != (d,)
            or set(self.classes) - set(self.families)
        ):
            raise ModelError(f"attribution head {self.name!r} has inconsistent shapes")
        self.temperature = float(head.get("temperature", 1.0))
        self.max_crops = int(head.get("max_crops", 8))
        self.version = str(head.get("version", ""))
        self.trained_on = str(head.get("trained_on", ""))
        embedder = create_detector(str(head["embedder"]), threads)
        if not isinstance(embedder, OnnxDetector) or not embedder.has_embedding:
            raise ModelError(
                f"attribution head {self.name!r}: detector {head['embedder']!r} has no "
                "embedding output"
            )
        self.embedder = embedder
        self.info = ModelInfo(self.name, sha256, self.version)

    @classmethod
    def from_json(cls, path: Path, threads: int = 0) -> Attributor:
        try:
            head = json.loads(path.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read attribution head {path}: {exc}") from None
        if not isinstance(head, dict):
            raise ModelError(f"{path} is not an attribution head")
        return cls(head, sha256_file(path), threads)

    @property
    def input_size(self) -> int:
        return self.embedder.config.input_size

    def probabilities(self, embeddings: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        """(N, K) per-crop method probabilities of (N, D) embeddings."""
        z = (np.asarray(embeddings, np.float64) - self._mean) / self._scale
        logits = (z @ self._coef.T + self._intercept) / self.temperature
        logits -= logits.max(axis=1, keepdims=True)
        e = np.exp(logits)
        out: npt.NDArray[np.float64] = e / e.sum(axis=1, keepdims=True)
        return out

    def attribute(self, crops: npt.NDArray[np.uint8]) -> Attribution:
        """The attribution of one track from its (N, S, S, 3) aligned crops (N >= 1)."""
        if len(crops) == 0:
            raise ValueError("attribution needs at least one crop")
        pick = np.unique(np.linspace(0, len(crops) - 1, min(self.max_crops, len(crops))).round())
        probs = self.probabilities(self.embedder.embed(crops[pick.astype(int)]))
        pooled = np.log(np.clip(probs, 1e-12, None)).mean(axis=0)
        pooled = np.exp(pooled - pooled.max())
        pooled /= pooled.sum()
        best = int(pooled.argmax())
        method = self.classes[best]
        return Attribution(
            family=self.families[method],
            method=method,
            confidence=float(pooled[best]),
            probabilities={c: float(p) for c, p in zip(self.classes, pooled, strict=True)},
            model=self.info,
        )


ATTRIBUTORS: Registry[Attributor] = Registry("attributor")


@ATTRIBUTORS.register("attrib-v1")
def _attrib_v1(threads: int = 0) -> Attributor:
    """Method attribution over ``effnet-lite0-v3``'s embedding: FF++ Deepfakes, FaceSwap
    (face swap), Face2Face, NeuralTextures (reenactment) and DFDC face swaps; logistic
    regression fitted on the face store's identity-disjoint train and val splits."""
    return Attributor.from_json(shipped("attrib_v1.json"), threads)


def create_attributor(name: str, threads: int = 0) -> Attributor:
    """A registered attributor by name, or one read from an attribution head ``.json``."""
    if name.endswith(".json"):
        return Attributor.from_json(Path(name), threads)
    return ATTRIBUTORS.create(name, threads=threads)


def attributor_argument(text: str) -> str:
    """argparse ``type=``: a registered attributor or an existing head ``.json``."""
    if text in ATTRIBUTORS.names() or (text.endswith(".json") and Path(text).is_file()):
        return text
    raise ValueError(
        f"unknown attributor {text!r}: choose one of {', '.join(ATTRIBUTORS.names())} "
        "or give an attribution head .json"
    )
