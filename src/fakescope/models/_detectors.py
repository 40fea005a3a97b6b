"""Deepfake detectors: a registry of crop classifiers. A detector is one factory plus one
registration; each shipped weight brings its :class:`WeightConfig`."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Protocol

import numpy as np
import numpy.typing as npt

from fakescope._runtime import onnx_session
from fakescope.config import DEFAULT_DETECTOR
from fakescope.errors import ModelError
from fakescope.models._assets import asset_path, verified_path
from fakescope.models._config import WeightConfig
from fakescope.registry import Registry
from fakescope.types import ModelInfo

__all__ = [
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "Detector",
    "OnnxDetector",
    "create_detector",
    "detector_argument",
]


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


def _shipped(config_file: str) -> WeightConfig:
    return WeightConfig.from_json(asset_path(config_file))


@DETECTORS.register("effnet-lite0-ffpp", role="baseline")
def _effnet_lite0_ffpp(threads: int = 0) -> Detector:
    """Supervised baseline: EfficientNet-Lite0 (ImageNet init) fine-tuned on the FF++ face-crop
    train split (best on lightly compressed FF++ crops; no heatmaps, uncalibrated)."""
    return OnnxDetector(_shipped("effnet_lite0_ffpp.json"), threads)


@DETECTORS.register("effnet-lite0-sbi")
def _effnet_lite0_sbi(threads: int = 0) -> Detector:
    """Detector v1 (the default until v0.3.0, a member of ``fused-v2`` and ``fused-v3``):
    EfficientNet-Lite0 with a blend-mask head, trained on FF++ reals and fakes plus
    Self-Blended Images pseudo-fakes under H.264/JPEG degradations; calibrated; heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_sbi.json"), threads)


@DETECTORS.register("effnet-lite0-v2", role="previous")
def _effnet_lite0_v2(threads: int = 0) -> Detector:
    """Detector v2: EfficientNet-Lite0 with a blend-mask head, trained on the
    face store of DFDC faces, FF++ c23 clips, FF++ crops and UTKFace (reals, supervised fakes and
    Self-Blended pseudo-fakes, balanced by class and source set, split by identity);
    calibrated on its own identity-held-out split; gives heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v2.json"), threads)


@DETECTORS.register("effnet-lite0-v3", role="previous")
def _effnet_lite0_v3(threads: int = 0) -> Detector:
    """Detector v3: ``effnet-lite0-v2`` trained 8 more epochs on the same face store and
    identity split (warm start); calibrated on the same identity-held-out split; gives
    heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v3.json"), threads)


@DETECTORS.register("fused-v2", role="previous")
def _fused_v2(threads: int = 0) -> Detector:
    """The default of v0.3.0: the mean logit of ``effnet-lite0-sbi`` and ``effnet-lite0-v2``
    on the same crop, calibrated on v2's calibration split."""
    from fakescope.models._fused import FusedDetector

    return FusedDetector.from_json(asset_path("fused_v2.json"), threads)


@DETECTORS.register("fused-v3", role="previous")
def _fused_v3(threads: int = 0) -> Detector:
    """The default of v0.4.0: the mean logit of ``effnet-lite0-sbi`` and ``effnet-lite0-v3``
    on the same crop, calibrated on v3's calibration split; heatmaps are the mean of both mask
    heads. Chosen over v1+v2+v3 on the validation split (same cost as two members)."""
    from fakescope.models._fused import FusedDetector

    return FusedDetector.from_json(asset_path("fused_v3.json"), threads)


@DETECTORS.register("effnet-lite0-sbi-int8", float_twin="effnet-lite0-sbi")
def _effnet_lite0_sbi_int8(threads: int = 0) -> Detector:
    """``effnet-lite0-sbi`` quantized to 8-bit integers (static, calibrated on train-split
    crops; stem, heads and outputs in float): the same network about 2.2x faster on CPU,
    recalibrated on its own scores."""
    return OnnxDetector(_shipped("effnet_lite0_sbi_int8.json"), threads)


@DETECTORS.register("effnet-lite0-v3-int8", float_twin="effnet-lite0-v3", role="previous")
def _effnet_lite0_v3_int8(threads: int = 0) -> Detector:
    """``effnet-lite0-v3`` quantized to 8-bit integers (static, calibrated on train-split
    crops; stem, heads and outputs in float): the same network about 2.3x faster on CPU,
    recalibrated on its own scores."""
    return OnnxDetector(_shipped("effnet_lite0_v3_int8.json"), threads)


@DETECTORS.register("fused-v3-int8", float_twin="fused-v3", role="previous")
def _fused_v3_int8(threads: int = 0) -> Detector:
    """The default of v0.5.0: ``fused-v3`` with 8-bit integer members (``effnet-lite0-sbi-int8`` and
    ``effnet-lite0-v3-int8``), about 2.2x faster to score; the mean logit of both on the same
    crop, calibrated on v3's calibration split with the int8 scores; heatmaps as ``fused-v3``."""
    from fakescope.models._fused import FusedDetector

    return FusedDetector.from_json(asset_path("fused_v3_int8.json"), threads)


@DETECTORS.register("effnet-lite0-v4")
def _effnet_lite0_v4(threads: int = 0) -> Detector:
    """Detector v4: ``effnet-lite0-v3`` trained 10 more epochs on the same face store and
    pinned identity split (warm start from its ONNX, BatchNorm statistics re-estimated);
    calibrated on the same identity-held-out split; gives heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v4.json"), threads)


@DETECTORS.register("fused-v4")
def _fused_v4(threads: int = 0) -> Detector:
    """The mean logit of ``effnet-lite0-sbi`` and ``effnet-lite0-v4`` on the same crop (the
    float twin of ``fused-v4-int8``, for CPUs without VNNI), calibrated on v4's calibration
    split; heatmaps are the mean of both mask heads."""
    from fakescope.models._fused import FusedDetector

    return FusedDetector.from_json(asset_path("fused_v4.json"), threads)


@DETECTORS.register("effnet-lite0-v4-int8", float_twin="effnet-lite0-v4")
def _effnet_lite0_v4_int8(threads: int = 0) -> Detector:
    """Detector v4 in 8-bit integers: ``effnet-lite0-v3`` trained 10 more epochs on the same
    face store and pinned identity split (warm start from its ONNX), quantized like
    ``effnet-lite0-v3-int8``; calibrated on the same identity-held-out split; gives heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v4_int8.json"), threads)


@DETECTORS.register("fused-v4-int8", float_twin="fused-v4")
def _fused_v4_int8(threads: int = 0) -> Detector:
    """The default (since v0.6.0): the mean logit of ``effnet-lite0-sbi-int8`` and
    ``effnet-lite0-v4-int8`` on the same crop; crop level calibrated on v4's calibration
    split, video level chosen on never-trained c23 videos; heatmaps are the mean of both mask
    heads."""
    from fakescope.models._fused import FusedDetector

    return FusedDetector.from_json(asset_path("fused_v4_int8.json"), threads)


@DETECTORS.register("sbi-realsonly-v1")
def _sbi_realsonly_v1(threads: int = 0) -> Detector:
    """Never saw a real fake: reals + self-blended pseudo-fakes only. EfficientNet-Lite0 from
    its ImageNet weights with a blend-mask head, trained on the real faces of the face store's
    train identities with Self-Blended pseudo-fakes as its only fakes (no shipped detector as a
    start), its epoch chosen on the val split; for manipulations nobody has collected yet;
    calibrated; gives heatmaps."""
    return OnnxDetector(_shipped("sbi_realsonly_v1.json"), threads)


@DETECTORS.register("oneclass-vae-v1", role="baseline")
def _oneclass_vae_v1(threads: int = 0) -> Detector:
    """Baseline, near chance on our data (seed 001's OC-FakeDect): a convolutional VAE trained on
    real faces only, whose score is how badly it reconstructs a 96 px face (log error,
    standardised on its training reals). Kept so the one-class result can be reproduced and
    compared; its error mostly measures sharpness, not manipulation. Calibrated; no heatmaps."""
    return OnnxDetector(_shipped("oneclass_vae_v1.json"), threads)


def create_detector(name: str = DEFAULT_DETECTOR, threads: int = 0) -> Detector:
    """Build a registered detector by name, or from a weight config file: ``name`` ending in
    ``.json`` is read with :meth:`WeightConfig.from_json` and its ``file`` is taken relative to
    that JSON's folder (how a trained run is evaluated before it is shipped). A ``.json`` with a
    ``members`` key is an ensemble and gives a :class:`~fakescope.models.FusedDetector`.

    An int8 weight gives its float twin instead where this CPU would not run it exactly (x86
    without AVX512-VNNI or AVX-VNNI) or under ``FAKESCOPE_INT8=never``; the twin's ``info``
    then names the int8 weight in ``resolved_from`` and says why (:mod:`fakescope._cpu`)."""
    if name.endswith(".json"):
        from fakescope.models._fused import FusedDetector, is_ensemble_config

        path = Path(name)
        if is_ensemble_config(path):
            return FusedDetector.from_json(path, threads)
        config = WeightConfig.from_json(path)
        model = Path(config.file)
        if not model.is_absolute():
            config = dataclasses.replace(config, file=str((path.parent / model).resolve()))
        return OnnxDetector(config, threads)
    target, reason = DETECTORS.resolve(name)
    detector = DETECTORS.create(target, threads=threads)
    if reason is not None:
        _mark_resolved(detector, name, reason)
    return detector


def _mark_resolved(detector: Detector, name: str, reason: str) -> None:
    """Record on the float twin ``detector`` that it was built in place of ``name``."""
    from fakescope.models._fused import FusedDetector

    if not isinstance(detector, OnnxDetector | FusedDetector):
        raise ModelError(f"{name}'s float twin is not an ONNX detector or an ensemble")
    detector.resolved_from, detector.resolution = name, reason


def detector_argument(text: str) -> str:
    """argparse ``type=``: a registered detector name or an existing weight-config or ensemble
    ``.json``."""
    if text in DETECTORS.names() or (text.endswith(".json") and Path(text).is_file()):
        return text
    raise ValueError(
        f"unknown detector {text!r}: choose one of {', '.join(DETECTORS.names())} "
        "or give a weight config or ensemble .json"
    )
