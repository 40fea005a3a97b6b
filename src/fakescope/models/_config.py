"""Per-weight configuration (like timm's PretrainedCfg): a shipped weight carries its own
preprocessing, sha256 and decision threshold in a JSON file beside it."""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fakescope.errors import ModelError

__all__ = ["WeightConfig"]


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
    """A fitted calibrator (``fakescope.calibration`` ``to_dict``) for track and input scores;
    when present, scores are probabilities and the cost-based threshold applies."""

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
