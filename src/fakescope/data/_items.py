"""The record every dataset adapter produces, plus shared constants and helpers."""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from fakescope.errors import ConfigError, InputError
from fakescope.io import IMAGE_EXTENSIONS, MEDIA_EXTENSIONS, VIDEO_EXTENSIONS

LABELS = ("real", "fake")
SPLITS = ("train", "val", "test")
KINDS = ("video", "image")
DEV_ONLY = frozenset({"ffpp_c40_videos"})
"""Datasets kept for development figures only: never trained, validated or calibrated on
(the face store, the quantizer's data and ``fakescope calibrate`` refuse them)."""


class DatasetWarning(UserWarning):
    """A dataset is usable but not exactly as described (e.g. metadata naming missing files)."""


@dataclass(frozen=True)
class MediaItem:
    """One video or image of a dataset, as an adapter found it on disk (never decoded).

    ``media_id`` is unique and stable (``"ffpp/Deepfakes/c23/000_003"``); ``method`` is
    ``"real"`` for bona fide media, else the manipulation's name; ``identities`` lists every
    person/source id involved (a face swap lists target and source) and drives
    :func:`~fakescope.data.identity_disjoint_split`; ``split`` is ``None`` when the dataset
    gives none; ``compression`` is ``"c0"``/``"c23"``/``"c40"``/``"raw"``... when known.
    """

    media_id: str
    path: Path
    label: str
    dataset: str
    method: str
    identities: tuple[str, ...]
    split: str | None = None
    compression: str | None = None
    mask_path: Path | None = None
    kind: str = "video"

    def __post_init__(self) -> None:
        if self.label not in LABELS:
            raise ConfigError(
                f"{self.media_id}: label must be 'real' or 'fake', not {self.label!r}"
            )
        if (self.label == "real") != (self.method == "real"):
            raise ConfigError(
                f"{self.media_id}: method must be 'real' exactly when label is 'real' "
                f"(label {self.label!r}, method {self.method!r})"
            )
        if self.split is not None and self.split not in SPLITS:
            raise ConfigError(f"{self.media_id}: split must be one of {SPLITS} or None")
        if self.kind not in KINDS:
            raise ConfigError(f"{self.media_id}: kind must be 'video' or 'image'")
        if not self.media_id:
            raise ConfigError("media_id must not be empty")
        # Accept any iterable of ids / str paths but always store the declared types.
        object.__setattr__(self, "identities", tuple(str(i) for i in self.identities))
        object.__setattr__(self, "path", Path(self.path))
        if self.mask_path is not None:
            object.__setattr__(self, "mask_path", Path(self.mask_path))


def kind_of(path: Path) -> str | None:
    """``"video"``/``"image"`` from the file extension, ``None`` when it is not media."""
    suffix = path.suffix.lower()
    if suffix in VIDEO_EXTENSIONS:
        return "video"
    if suffix in IMAGE_EXTENSIONS:
        return "image"
    return None


def media_files(folder: Path, extensions: Iterable[str] = MEDIA_EXTENSIONS) -> list[Path]:
    """Media files under ``folder`` (recursive, sorted, hidden names skipped)."""
    wanted = frozenset(extensions)
    return sorted(
        p
        for p in folder.rglob("*")
        if p.is_file()
        and p.suffix.lower() in wanted
        and not any(part.startswith(".") for part in p.relative_to(folder).parts)
    )


def warn_entries(dataset: str, what: str, names: Sequence[str], shown: int = 5) -> None:
    """Emit one :class:`DatasetWarning`: ``"<dataset>: <count> <what>: <first names>"``."""
    if not names:
        return
    head = ", ".join(names[:shown])
    more = f", ... (+{len(names) - shown} more)" if len(names) > shown else ""
    warnings.warn(
        f"{dataset}: {len(names)} {what}: {head}{more}",
        DatasetWarning,
        stacklevel=3,
    )


def require_dir(root: Path, what: str) -> Path:
    """``root`` as a Path, or :class:`InputError` when it is not a folder."""
    root = Path(root)
    if not root.is_dir():
        raise InputError(f"{what}: {root} is not a folder")
    return root


def check_unique(items: Sequence[MediaItem]) -> None:
    """:class:`InputError` when two items share a ``media_id``."""
    seen: set[str] = set()
    dupes: list[str] = []
    for item in items:
        if item.media_id in seen:
            dupes.append(item.media_id)
        seen.add(item.media_id)
    if dupes:
        raise InputError(f"duplicate media_id values: {', '.join(sorted(set(dupes))[:5])}")
