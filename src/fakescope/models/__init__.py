"""Deepfake detectors (single weights and fused ensembles), their per-weight configs and the
shipped model files."""

from fakescope._assets import (
    ASSET_SHA256,
    asset_path,
    sha256_file,
    shipped,
    verified_path,
)
from fakescope.models._attribution import (
    ATTRIBUTORS,
    Attributor,
    attributor_argument,
    create_attributor,
)
from fakescope.models._base import DETECTORS, Detector, OnnxDetector
from fakescope.models._config import CALIBRATION_LEVELS, WeightConfig
from fakescope.models._detectors import DEFAULT_DETECTOR, create_detector, detector_argument
from fakescope.models._evidence import (
    EVIDENCE_MODELS,
    TrackEvidenceModel,
    create_evidence_model,
)
from fakescope.models._fused import FusedDetector, is_ensemble_config, read_ensemble

__all__ = [
    "ASSET_SHA256",
    "ATTRIBUTORS",
    "CALIBRATION_LEVELS",
    "DEFAULT_DETECTOR",
    "DETECTORS",
    "EVIDENCE_MODELS",
    "Attributor",
    "Detector",
    "FusedDetector",
    "OnnxDetector",
    "TrackEvidenceModel",
    "WeightConfig",
    "asset_path",
    "attributor_argument",
    "create_attributor",
    "create_detector",
    "create_evidence_model",
    "detector_argument",
    "is_ensemble_config",
    "read_ensemble",
    "sha256_file",
    "shipped",
    "verified_path",
]
