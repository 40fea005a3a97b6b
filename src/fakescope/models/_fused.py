"""A fused ensemble: several detectors behind one :class:`Detector`, each crop's member
probabilities combined by a fitted fuser (:mod:`fakescope.fusion`).

An ensemble is a JSON file (written by ``fakescope fuse``)::

    {"name": ..., "version": ..., "members": [detector names or weight-config .json paths
     relative to this file], "fuser": {fuser to_dict}, "threshold": 0.5, "trained_on": ...,
     "calibration": {...}}

``version``, ``threshold``, ``trained_on`` and ``calibration`` are optional; ``calibration``
is laid out like a weight config's and is fitted on the *fused* raw scores (``fakescope
calibrate``); members' own calibrations are not used. Members must share input size, margin
and alignment so that one aligned crop feeds them all.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope._assets import sha256_file
from fakescope.errors import FakescopeError, ModelError
from fakescope.models._base import DETECTORS, Detector, create_member
from fakescope.models._config import CALIBRATION_LEVELS, WeightConfig
from fakescope.types import ModelInfo

if TYPE_CHECKING:
    from fakescope.fusion import Fuser

__all__ = ["FusedDetector", "is_ensemble_config", "read_ensemble"]

_REQUIRED = ("name", "members", "fuser")
_OPTIONAL = ("version", "threshold", "trained_on", "calibration")


def is_ensemble_config(path: Path) -> bool:
    """Whether ``path`` is a readable JSON object with a ``members`` key (an ensemble, not a
    single weight's config)."""
    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError):
        return False
    return isinstance(raw, dict) and "members" in raw


def read_ensemble(path: Path) -> dict[str, Any]:
    """Read and check an ensemble JSON without loading its members; unknown or missing keys,
    a bad fuser or bad calibration levels raise :class:`ModelError`."""
    from fakescope.calibration import calibrator_from_dict
    from fakescope.fusion import fuser_from_dict

    try:
        raw = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise ModelError(f"cannot read ensemble {path}: {exc}") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"ensemble {path.name} must hold a JSON object")
    missing = [k for k in _REQUIRED if k not in raw]
    unknown = sorted(set(raw) - {*_REQUIRED, *_OPTIONAL})
    if missing or unknown:
        what = [f"missing {', '.join(missing)}"] if missing else []
        what += [f"unknown {', '.join(unknown)}"] if unknown else []
        raise ModelError(f"invalid ensemble {path.name}: {'; '.join(what)} keys")
    members = raw["members"]
    if (
        not isinstance(members, list)
        or len(members) < 2
        or not all(isinstance(m, str) and m for m in members)
    ):
        raise ModelError(f"ensemble {path.name}: 'members' must list at least two detectors")
    try:
        fuser_from_dict(raw["fuser"])
        threshold = float(raw.get("threshold", 0.5))
        cal = raw.get("calibration")
        if cal is not None:
            levels = {"crop": cal} if "kind" in cal else dict(cal)
            if not levels or not set(levels) <= set(CALIBRATION_LEVELS):
                raise ModelError(
                    f"calibration levels must be among {', '.join(CALIBRATION_LEVELS)}, "
                    f"got {', '.join(sorted(levels)) or 'none'}"
                )
            for data in levels.values():
                calibrator_from_dict(data)
    except (FakescopeError, TypeError, ValueError, KeyError) as exc:
        raise ModelError(f"invalid ensemble {path.name}: {exc}") from exc
    if not 0.0 < threshold < 1.0:
        raise ModelError(f"ensemble {path.name}: threshold must be in (0, 1), got {threshold}")
    return raw


def _member_path(member: str, folder: Path) -> str:
    """A member as :func:`~fakescope.models.create_detector` takes it: a registered name as
    is, a .json path resolved against the ensemble's folder."""
    if member in DETECTORS or not member.endswith(".json"):
        return member
    path = Path(member)
    return str(path if path.is_absolute() else (folder / path).resolve())


class FusedDetector:
    """Runs every member on the same aligned crops and fuses their raw probabilities with
    ``fuser``; pixel maps are the mean of the members that have them."""

    resolved_from: str | None = None
    """The int8 ensemble this one was built in place of
    (:func:`~fakescope.models.create_detector`), if any."""
    resolution: str | None = None
    """Why it was (a sentence for the verdict's ``model``)."""

    def __init__(
        self,
        members: Sequence[Detector],
        fuser: Fuser,
        *,
        name: str,
        version: str = "",
        threshold: float = 0.5,
        trained_on: str = "",
        calibration: dict[str, Any] | None = None,
        file: str = "",
        sha256: str = "",
    ) -> None:
        if len(members) < 2:
            raise ModelError(f"ensemble {name!r} needs at least two members, got {len(members)}")
        first = members[0].config
        for member in members[1:]:
            cfg = member.config
            for key in ("input_size", "margin", "alignment"):
                if getattr(cfg, key) != getattr(first, key):
                    raise ModelError(
                        f"ensemble {name!r}: member {cfg.name!r} has {key} "
                        f"{getattr(cfg, key)!r} but {first.name!r} has {getattr(first, key)!r}; "
                        "members must share input_size, margin and alignment"
                    )
        try:
            fuser.predict_proba(np.full((1, len(members)), 0.5))
        except ValueError as exc:
            raise ModelError(f"ensemble {name!r} has {len(members)} members: {exc}") from exc
        self.members = list(members)
        self.fuser = fuser
        kind = str(fuser.to_dict().get("kind", "fused"))
        self.config = WeightConfig(
            name=name,
            file=file,
            sha256=sha256,
            input_size=first.input_size,
            mean=first.mean,
            std=first.std,
            margin=first.margin,
            alignment=first.alignment,
            threshold=threshold,
            version=version,
            architecture=f"{kind} ensemble of " + ", ".join(m.config.name for m in members),
            trained_on=trained_on,
            calibration=calibration,
        )

    @classmethod
    def from_json(cls, path: Path, threads: int = 0) -> FusedDetector:
        """Load an ensemble JSON and its members (``.json`` members relative to ``path``'s
        folder; an ensemble cannot be a member)."""
        from fakescope.fusion import fuser_from_dict

        raw = read_ensemble(path)
        members: list[Detector] = []
        for member in raw["members"]:
            target = _member_path(member, path.parent)
            if target.endswith(".json") and is_ensemble_config(Path(target)):
                raise ModelError(
                    f"ensemble {path.name}: member {member!r} is itself an ensemble "
                    "(not supported: list its members instead)"
                )
            try:
                members.append(create_member(target, threads))
            except FakescopeError as exc:
                raise ModelError(f"ensemble {path.name}: member {member!r}: {exc}") from exc
        return cls(
            members,
            fuser_from_dict(raw["fuser"]),
            name=str(raw["name"]),
            version=str(raw.get("version") or ""),
            threshold=float(raw.get("threshold", 0.5)),
            trained_on=str(raw.get("trained_on") or ""),
            calibration=raw.get("calibration"),
            file=path.name,
            sha256=sha256_file(path),
        )

    @property
    def info(self) -> ModelInfo:
        cfg, resolution = self.config, self.resolution
        if resolution is None:  # an ensemble file listing int8 members: which ran as twins
            members = [m.info.resolution for m in self.members if m.info.resolution]
            resolution = "; ".join(members) or None
        return ModelInfo(cfg.name, cfg.sha256, cfg.version, self.resolved_from, resolution)

    @property
    def has_maps(self) -> bool:
        return any(m.has_maps for m in self.members)

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        scores = np.stack([m.predict(crops) for m in self.members], axis=1)
        return self.fuser.predict_proba(scores)

    def predict_maps(
        self, crops: npt.NDArray[np.uint8]
    ) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64] | None]:
        scores: list[npt.NDArray[np.float64]] = []
        maps: list[npt.NDArray[np.float64]] = []
        for member in self.members:
            if member.has_maps:
                probs, member_maps = member.predict_maps(crops)
                if member_maps is not None:
                    maps.append(member_maps)
            else:
                probs = member.predict(crops)
            scores.append(probs)
        fused = self.fuser.predict_proba(np.stack(scores, axis=1))
        return fused, _mean_maps(maps) if maps else None


def _mean_maps(maps: list[npt.NDArray[np.float64]]) -> npt.NDArray[np.float64]:
    """Mean of (N, h, w) maps, each resized to the largest member map first."""
    import cv2

    h = max(m.shape[1] for m in maps)
    w = max(m.shape[2] for m in maps)
    total = np.zeros((maps[0].shape[0], h, w), dtype=np.float64)
    for member_maps in maps:
        if member_maps.shape[1:] != (h, w):
            resized = [cv2.resize(m, (w, h), interpolation=cv2.INTER_LINEAR) for m in member_maps]
            member_maps = np.stack(resized) if resized else np.zeros((0, h, w))
        total += member_maps
    return total / len(maps)
