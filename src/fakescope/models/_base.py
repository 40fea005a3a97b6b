"""What a face-crop detector is (:class:`Detector`), the registry of detectors and the
single-weight :class:`OnnxDetector`. The registrations and :func:`create_detector` are in
``_detectors.py``, ensembles in ``_fused.py``; both build on this module (never the other way),
so an ensemble builds its members with :func:`create_member`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from fakescope._assets import asset_path, verified_path
from fakescope._runtime import onnx_session
from fakescope.errors import ModelError
from fakescope.models._config import WeightConfig
from fakescope.registry import Registry
from fakescope.types import ModelInfo

__all__ = ["DETECTORS", "Detector", "OnnxDetector", "create_member"]


class Detector(Protocol):
    """Scores aligned face crops: (N, S, S, 3) uint8 RGB -> (N,) fake probabilities."""

    config: WeightConfig

    @property
    def info(self) -> ModelInfo: ...

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]: ...

    @property
    def has_maps(self) -> bool:
        """Whether :meth:`predict_maps` returns pixel maps (a segmentation head)."""
        ...

    def predict_maps(
        self, crops: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        """Probabilities and, for detectors with a segmentation head, (N, h, w) maps in [0, 1]
        over the crop (where the manipulation is thought to be); None otherwise."""
        ...


DETECTORS: Registry[Detector] = Registry("detector")


class OnnxDetector:
    """A classifier exported to ONNX: input ``input`` (N, 3, S, S) normalised float32,
    output (N,) fake probability."""

    resolved_from: str | None = None
    """The int8 weight this one was built in place of (:func:`create_detector`), if any."""
    resolution: str | None = None
    """Why it was (a sentence for the verdict's ``model``)."""

    def __init__(self, config: WeightConfig, threads: int = 0, batch_size: int = 16) -> None:
        self.config = config
        self.batch_size = batch_size
        # shipped weights name a file in models/assets; user weights may give an absolute path
        file = Path(config.file)
        path = verified_path(file if file.is_absolute() else asset_path(config.file), config.sha256)
        try:
            self._session = onnx_session(path, threads)
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {config.file}: {exc}") from exc
        self._mean = np.asarray(config.mean, dtype=np.float32) * 255.0
        self._inv_std = 1.0 / (np.asarray(config.std, dtype=np.float32) * 255.0)

    @property
    def info(self) -> ModelInfo:
        cfg = self.config
        return ModelInfo(cfg.name, cfg.sha256, cfg.version, self.resolved_from, self.resolution)

    @property
    def has_maps(self) -> bool:
        return "mask" in {o.name for o in self._session.get_outputs()}

    def _run(
        self, crops: npt.NDArray[np.uint8], outputs: list[str]
    ) -> list[npt.NDArray[np.float64]]:
        size = self.config.input_size
        if crops.ndim != 4 or crops.shape[1:] != (size, size, 3):
            raise ModelError(f"expected crops of shape (N, {size}, {size}, 3), got {crops.shape}")
        parts: list[list[npt.NDArray[np.float64]]] = [[] for _ in outputs]
        for start in range(0, len(crops), self.batch_size):
            batch = crops[start : start + self.batch_size].astype(np.float32) - self._mean
            batch *= self._inv_std
            results = self._session.run(outputs, {"input": batch.transpose(0, 3, 1, 2).copy()})
            for part, result in zip(parts, results, strict=True):
                part.append(np.asarray(result, dtype=np.float64))
        return [
            np.concatenate(part) if part else np.zeros((0,), dtype=np.float64) for part in parts
        ]

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        return self._run(crops, ["fake_probability"])[0].reshape(-1)

    @property
    def has_embedding(self) -> bool:
        """Whether the network exports its pooled features (an ``embedding`` output)."""
        return "embedding" in {o.name for o in self._session.get_outputs()}

    def embed(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        """(N, E) pooled features of the crops (networks with an ``embedding`` output)."""
        if not self.has_embedding:
            raise ModelError(f"{self.config.name} has no embedding output")
        return self._run(crops, ["embedding"])[0].reshape(len(crops), -1)

    def predict_maps(
        self, crops: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        if not self.has_maps:
            return self.predict(crops), None
        probs, maps = self._run(crops, ["fake_probability", "mask"])
        return probs.reshape(-1), maps


@runtime_checkable
class _Resolvable(Protocol):
    """A detector that records the int8 weight it was built in place of (ONNX, ensemble)."""

    resolved_from: str | None
    resolution: str | None


def create_member(name: str, threads: int = 0) -> Detector:
    """A detector from anything :func:`~fakescope.models.create_detector` takes but an
    ensemble file: a registered name (its float twin where the int8 network would not run
    exactly, marked as such), or one weight's config ``.json`` (its ``file`` relative to that
    JSON's folder)."""
    if name.endswith(".json"):
        path = Path(name)
        config = WeightConfig.from_json(path)
        model = Path(config.file)
        if not model.is_absolute():
            config = dataclasses.replace(config, file=str((path.parent / model).resolve()))
        return OnnxDetector(config, threads)
    target, reason = DETECTORS.resolve(name)
    detector = DETECTORS.create(target, threads=threads)
    if reason is not None:
        if not isinstance(detector, _Resolvable):
            raise ModelError(f"{name}'s float twin is not an ONNX detector or an ensemble")
        detector.resolved_from, detector.resolution = name, reason
    return detector
