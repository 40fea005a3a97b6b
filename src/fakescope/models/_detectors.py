"""Deepfake detectors: a registry of crop classifiers. A detector is one factory plus one
registration; each shipped weight brings its :class:`WeightConfig`. The registry, the
:class:`Detector` protocol and :class:`OnnxDetector` are in ``_base.py``."""

from __future__ import annotations

from pathlib import Path

from fakescope._assets import asset_path
from fakescope.config import DEFAULT_DETECTOR
from fakescope.models._base import DETECTORS, Detector, OnnxDetector, create_member
from fakescope.models._config import WeightConfig
from fakescope.models._fused import FusedDetector, is_ensemble_config

__all__ = [
    "DEFAULT_DETECTOR",
    "create_detector",
    "detector_argument",
]


def _shipped(config_file: str) -> WeightConfig:
    return WeightConfig.from_json(asset_path(config_file))


@DETECTORS.register("effnet-lite0-sbi")
def _effnet_lite0_sbi(threads: int = 0) -> Detector:
    """Detector v1 in float (the float twin of the default's member ``effnet-lite0-sbi-int8``):
    EfficientNet-Lite0 with a blend-mask head, trained on FF++ reals and fakes plus
    Self-Blended Images pseudo-fakes under H.264/JPEG degradations; calibrated; heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_sbi.json"), threads)


@DETECTORS.register("effnet-lite0-v3", role="embedder")
def _effnet_lite0_v3(threads: int = 0) -> Detector:
    """Kept for its embedding: ``attrib-v1`` was fitted on this network's pooled embedding, so it
    ships while the attribution head does (not the detector to scan with: ``effnet-lite0-v4``
    is this network trained further). Detector v3: EfficientNet-Lite0 with a blend-mask head,
    trained on the face store (DFDC faces, FF++ c23 clips and crops, UTKFace) by warm start
    from the no longer shipped ``effnet-lite0-v2``; calibrated on the identity-held-out split;
    gives heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v3.json"), threads)


@DETECTORS.register("effnet-lite0-sbi-int8", float_twin="effnet-lite0-sbi")
def _effnet_lite0_sbi_int8(threads: int = 0) -> Detector:
    """``effnet-lite0-sbi`` quantized to 8-bit integers (static, calibrated on train-split
    crops; stem, heads and outputs in float): the same network about 2.2x faster on CPU,
    recalibrated on its own scores."""
    return OnnxDetector(_shipped("effnet_lite0_sbi_int8.json"), threads)


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
    return FusedDetector.from_json(asset_path("fused_v4.json"), threads)


@DETECTORS.register("effnet-lite0-v4-int8", float_twin="effnet-lite0-v4")
def _effnet_lite0_v4_int8(threads: int = 0) -> Detector:
    """Detector v4 in 8-bit integers: ``effnet-lite0-v3`` trained 10 more epochs on the same
    face store and pinned identity split (warm start from its ONNX), quantized like
    ``effnet-lite0-sbi-int8``; calibrated on the same identity-held-out split; gives heatmaps."""
    return OnnxDetector(_shipped("effnet_lite0_v4_int8.json"), threads)


@DETECTORS.register("fused-v4-int8", float_twin="fused-v4")
def _fused_v4_int8(threads: int = 0) -> Detector:
    """The default (since v0.6.0): the mean logit of ``effnet-lite0-sbi-int8`` and
    ``effnet-lite0-v4-int8`` on the same crop; crop level calibrated on v4's calibration
    split, video level chosen on never-trained c23 videos; heatmaps are the mean of both mask
    heads."""
    return FusedDetector.from_json(asset_path("fused_v4_int8.json"), threads)


@DETECTORS.register("sbi-realsonly-v1")
def _sbi_realsonly_v1(threads: int = 0) -> Detector:
    """Never saw a real fake: reals + self-blended pseudo-fakes only. EfficientNet-Lite0 from
    its ImageNet weights with a blend-mask head, trained on the real faces of the face store's
    train identities with Self-Blended pseudo-fakes as its only fakes (no shipped detector as a
    start), its epoch chosen on the val split; for manipulations nobody has collected yet;
    calibrated; gives heatmaps."""
    return OnnxDetector(_shipped("sbi_realsonly_v1.json"), threads)


@DETECTORS.register("sbi-realsonly-v3")
def _sbi_realsonly_v3(threads: int = 0) -> Detector:
    """Never saw a real fake, trained longer: ``sbi-realsonly-v1``'s recipe (reals +
    self-blended pseudo-fakes only, EfficientNet-Lite0 from its ImageNet weights, blend-mask
    head) over 20 epochs instead of 8, its epoch chosen on the val split; for manipulations
    nobody has collected yet; calibrated; gives heatmaps."""
    return OnnxDetector(_shipped("sbi_realsonly_v3.json"), threads)


@DETECTORS.register("oneclass-vae-v1", role="baseline")
def _oneclass_vae_v1(threads: int = 0) -> Detector:
    """Baseline, near chance on our data (seed 001's OC-FakeDect; val AUC of its raw score
    0.45-0.52): a convolutional VAE trained on real faces only, whose score is how badly it
    reconstructs a 96 px face (log error, standardised on its training reals). Kept so the
    one-class result can be reproduced and compared; its error mostly measures sharpness, not
    manipulation. Calibrated to a constant 50%; no heatmaps."""
    return OnnxDetector(_shipped("oneclass_vae_v1.json"), threads)


def create_detector(name: str = DEFAULT_DETECTOR, threads: int = 0) -> Detector:
    """Build a registered detector by name, or from a weight config file: ``name`` ending in
    ``.json`` is read with :meth:`WeightConfig.from_json` and its ``file`` is taken relative to
    that JSON's folder (how a trained run is evaluated before it is shipped). A ``.json`` with a
    ``members`` key is an ensemble and gives a :class:`~fakescope.models.FusedDetector`.

    An int8 weight gives its float twin instead where this CPU would not run it exactly (x86
    without AVX512-VNNI or AVX-VNNI) or under ``FAKESCOPE_INT8=never``; the twin's ``info``
    then names the int8 weight in ``resolved_from`` and says why (:mod:`fakescope._cpu`)."""
    if name.endswith(".json") and is_ensemble_config(Path(name)):
        return FusedDetector.from_json(Path(name), threads)
    return create_member(name, threads)


def detector_argument(text: str) -> str:
    """argparse ``type=``: a registered detector name or an existing weight-config or ensemble
    ``.json``."""
    if text in DETECTORS.names() or (text.endswith(".json") and Path(text).is_file()):
        return text
    raise ValueError(
        f"unknown detector {text!r}: choose one of {', '.join(DETECTORS.names())} "
        "or give a weight config or ensemble .json"
    )
