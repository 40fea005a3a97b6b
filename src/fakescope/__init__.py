"""fakescope: an offline, CPU-first deepfake detector for videos and photos.

>>> from fakescope import scan
>>> verdict = scan("clip.mp4")            # doctest: +SKIP
>>> verdict.status, verdict.fake_probability, verdict.label  # doctest: +SKIP
"""

from __future__ import annotations

from pathlib import Path

from fakescope.config import ScanConfig
from fakescope.errors import (
    ConfigError,
    DecodeError,
    FakescopeError,
    InputError,
    ModelError,
    TooLarge,
    UnsupportedMedia,
)
from fakescope.inference import Scanner
from fakescope.types import (
    CropScore,
    DecisionInfo,
    FaceBox,
    FaceCrop,
    Frame,
    Label,
    MediaInfo,
    ModelInfo,
    Status,
    SynthesisVerdict,
    Track,
    TrackVerdict,
    Verdict,
)

__all__ = [
    "ConfigError",
    "CropScore",
    "DecisionInfo",
    "DecodeError",
    "FaceBox",
    "FaceCrop",
    "FakescopeError",
    "Frame",
    "InputError",
    "Label",
    "MediaInfo",
    "ModelError",
    "ModelInfo",
    "ScanConfig",
    "Scanner",
    "Status",
    "SynthesisVerdict",
    "TooLarge",
    "Track",
    "TrackVerdict",
    "UnsupportedMedia",
    "Verdict",
    "scan",
]

__version__ = "0.1.0"


def scan(path: str | Path, config: ScanConfig | None = None) -> Verdict:
    """Scan one video or photo with a fresh :class:`Scanner` (reuse a Scanner for batches)."""
    return Scanner(config).scan(path)
