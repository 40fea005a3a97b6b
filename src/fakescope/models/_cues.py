"""The shipped handcrafted-cues SVM as a track evidence model (:mod:`fakescope.cues`)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope._assets import ASSET_SHA256, shipped
from fakescope.cues import CueModel, loose_crop, track_cues
from fakescope.types import Evidence, FaceBox, ModelInfo

__all__ = ["ShippedCues"]


class ShippedCues:
    """Keeps each face's loose crop and crop-pixel FaceMesh while the frames stream past,
    then scores the track's cues with the SVM and names the most unusual ones."""

    def __init__(self, model: CueModel, info: ModelInfo) -> None:
        self.model = model
        self._info = info

    @classmethod
    def load(cls, asset: str, name: str = "cues-svm-v1", version: str = "0.1.0") -> ShippedCues:
        """The shipped model file ``asset`` (sha256-checked)."""
        return cls(CueModel.load(shipped(asset)), ModelInfo(name, ASSET_SHA256[asset], version))

    @property
    def info(self) -> ModelInfo:
        return self._info

    @property
    def trained_on(self) -> str:
        """The training data, from the model file's ``meta``."""
        meta = self.model.meta
        sets = ", ".join(str(d) for d in meta.get("datasets", [])) or "unknown data"
        return f"{meta.get('tracks', '?')} face tracks of {sets} (identity-grouped CV)"

    def observe(
        self, image: npt.NDArray[np.uint8], face: FaceBox
    ) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]] | None:
        if face.mesh is None:
            return None
        return loose_crop(image, face.box, face.mesh)

    def assess(self, observations: Sequence[Any], times_s: Sequence[float]) -> Evidence:
        kept = [(o, t) for o, t in zip(observations, times_s, strict=True) if o is not None]
        if not kept:
            return Evidence(self._info.name, None, "no face landmarks to read", model=self._info)
        crops = [o[0] for o, _ in kept]
        points = np.stack([o[1] for o, _ in kept])
        cues = track_cues(crops, points, [t for _, t in kept])
        p = float(self.model.predict(cues))
        n = len(kept)
        summary = (
            f"{'unusual' if p >= 0.5 else 'typical'} for a real face, read from {n} "
            f"frame{'s' if n != 1 else ''}"
        )
        if cues.missing:
            summary += f" ({len(cues.missing)} cue(s) need a longer track)"
        return Evidence(
            self._info.name,
            p,
            summary,
            tuple(self.model.explain(cues, k=3)),
            {k: float(v) for k, v in cues.as_dict().items()},
            self._info,
        )
