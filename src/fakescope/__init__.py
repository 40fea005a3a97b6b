"""fakescope: an offline, CPU-first deepfake detector for videos and photos.

>>> from fakescope import scan
>>> verdict = scan("clip.mp4")            # doctest: +SKIP
>>> verdict.overall.label, verdict.overall.probability  # doctest: +SKIP
>>> verdict.status, verdict.fake_probability, verdict.label  # face question  # doctest: +SKIP
"""

from __future__ import annotations

from importlib import metadata
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
    GeneratorFamily,
    Label,
    MediaInfo,
    ModelInfo,
    OverallLabel,
    OverallVerdict,
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
    "GeneratorFamily",
    "InputError",
    "Label",
    "MediaInfo",
    "ModelError",
    "ModelInfo",
    "OverallLabel",
    "OverallVerdict",
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

try:
    __version__ = metadata.version("fakescope")
    """The installed release (pyproject's ``version``; shipped weights name the release they
    first shipped in, never a later one)."""
except metadata.PackageNotFoundError:  # run from a source tree that was never installed
    __version__ = "0+unknown"


def scan(path: str | Path, config: ScanConfig | None = None) -> Verdict:
    """Scan one video or photo with a fresh :class:`Scanner` (reuse a Scanner for batches)."""
    return Scanner(config).scan(path)
