"""fakescope: an offline, CPU-first deepfake detector for videos and photos.

>>> from fakescope import scan
>>> verdict = scan("clip.mp4")            # doctest: +SKIP
>>> verdict.overall.label, verdict.overall.probability  # doctest: +SKIP
>>> verdict.status, verdict.fake_probability, verdict.label  # face question  # doctest: +SKIP
"""

from __future__ import annotations

import typing
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

if typing.TYPE_CHECKING:
    __version__: str
    """The installed release (pyproject's ``version``; shipped weights name the release they
    first shipped in, never a later one)."""
else:  # __getattr__ is hidden from mypy, which would take any other name for a str

    def __getattr__(name: str) -> str:
        """``__version__``, read from the installed metadata on first use (importlib.metadata
        costs a scan's start-up about 15 ms, and a scan never needs it)."""
        if name != "__version__":
            raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
        from importlib import metadata

        try:
            version = metadata.version("fakescope")
        except metadata.PackageNotFoundError:  # run from a source tree that was never installed
            version = "0+unknown"
        globals()["__version__"] = version
        return version


def scan(path: str | Path, config: ScanConfig | None = None) -> Verdict:
    """Scan one video or photo with a fresh :class:`Scanner` (reuse a Scanner for batches)."""
    return Scanner(config).scan(path)
