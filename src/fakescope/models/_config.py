"""Per-weight configuration (like timm's PretrainedCfg): a shipped weight carries its own
preprocessing, sha256 and decision threshold in a JSON file beside it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.errors import ModelError

__all__ = ["CALIBRATION_LEVELS", "WeightConfig"]

CALIBRATION_LEVELS = ("video", "crop")


@dataclass(frozen=True)
class WeightConfig:
    """How to feed one shipped weight file and read its output."""

    name: str
    file: str
    sha256: str
    input_size: int
    mean: tuple[float, float, float]
    std: tuple[float, float, float]
    margin: float
    alignment: str = "arcface5"
    threshold: float = 0.5
    version: str = ""
    architecture: str = ""
    trained_on: str = ""
    license: str = ""
    calibration: dict[str, Any] | None = None
    """Fitted calibrators by level (``fakescope.calibration`` ``to_dict`` each):
    ``{"crop": ..., "video": ...}``. ``crop`` maps one crop's raw score (a frame, a photo's
    face) and ``video`` a video face track's aggregate to a probability; each was fitted on
    that same aggregate. A single calibrator (the 0.1 layout, with ``kind`` at the top) is read
    as the crop level. When present, probabilities are calibrated and the cost-based threshold
    applies."""

    def __post_init__(self) -> None:
        from fakescope.faces import ALIGNMENTS

        if self.alignment not in ALIGNMENTS:
            raise ModelError(
                f"weight {self.name!r} asks for alignment {self.alignment!r}; this version "
                f"knows {', '.join(sorted(ALIGNMENTS))}"
            )
        cal = self.calibration
        if cal is None:
            return
        if "kind" in cal:  # one calibrator: the crop level
            object.__setattr__(self, "calibration", {"crop": dict(cal)})
            return
        unknown = sorted(set(cal) - set(CALIBRATION_LEVELS))
        if unknown or not cal:
            raise ModelError(
                f"weight {self.name!r}: calibration levels must be among "
                f"{', '.join(CALIBRATION_LEVELS)}, got {', '.join(unknown) or 'none'}"
            )

    @classmethod
    def from_json(cls, path: Path) -> WeightConfig:
        """Load a config; unknown or missing keys are errors."""
        try:
            raw: dict[str, Any] = json.loads(path.read_text())
        except (OSError, ValueError) as exc:
            raise ModelError(f"cannot read weight config {path}: {exc}") from exc
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(raw) - known)
        if unknown:
            raise ModelError(f"unknown keys in {path.name}: {', '.join(unknown)}")
        try:
            raw["mean"] = tuple(raw["mean"])
            raw["std"] = tuple(raw["std"])
            return cls(**raw)
        except (KeyError, TypeError) as exc:
            raise ModelError(f"invalid weight config {path.name}: {exc}") from exc
