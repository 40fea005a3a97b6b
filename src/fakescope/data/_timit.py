"""DeepfakeTIMIT (``higher_quality/`` and ``lower_quality/``) plus optional VidTIMIT reals."""

from __future__ import annotations

from pathlib import Path

from fakescope.data._items import MediaItem, kind_of, require_dir
from fakescope.data._registry import register_adapter
from fakescope.errors import InputError

_QUALITIES = (("higher_quality", "HQ"), ("lower_quality", "LQ"))


def _real_media(speaker: Path) -> list[Path]:
    """VidTIMIT media of one speaker: ``video/*`` (files or frame folders) or ``*.avi|*.mp4``."""
    video = speaker / "video"
    if video.is_dir():
        return sorted(p for p in video.iterdir() if not p.name.startswith("."))
    return sorted(
        p for p in speaker.iterdir() if p.is_file() and p.suffix.lower() in {".avi", ".mp4"}
    )


@register_adapter("deepfaketimit")
def load_deepfaketimit(root: Path, *, real_root: Path | str | None = None) -> list[MediaItem]:
    """Fakes ``<quality>/<speaker>/*.avi`` (method ``DeepfakeTIMIT-HQ``/``-LQ``, identity the
    speaker) and, with ``real_root``, VidTIMIT reals ``<real_root>/<speaker>/video/*`` or
    ``<real_root>/<speaker>/*.avi|*.mp4``. VidTIMIT's ``video/<clip>/`` entries are folders of
    JPEG frames: they are returned as ``kind="video"`` items whose ``path`` is that folder.
    """
    root = require_dir(root, "deepfaketimit")
    items: list[MediaItem] = []
    if not any((root / folder).is_dir() for folder, _ in _QUALITIES):
        raise InputError(f"deepfaketimit: no higher_quality/ or lower_quality/ in {root}")
    for folder, quality in _QUALITIES:
        base = root / folder
        if not base.is_dir():
            continue
        for speaker in sorted(d for d in base.iterdir() if d.is_dir()):
            for video in sorted(speaker.glob("*.avi")):
                items.append(
                    MediaItem(
                        media_id=f"deepfaketimit/{quality}/{speaker.name}/{video.stem}",
                        path=video,
                        label="fake",
                        dataset="deepfaketimit",
                        method=f"DeepfakeTIMIT-{quality}",
                        identities=(speaker.name,),
                    )
                )
    if real_root is not None:
        real = require_dir(Path(real_root), "deepfaketimit real_root (VidTIMIT)")
        for speaker in sorted(d for d in real.iterdir() if d.is_dir()):
            for media in _real_media(speaker):
                items.append(
                    MediaItem(
                        media_id=f"deepfaketimit/real/{speaker.name}/{media.name}",
                        path=media,
                        label="real",
                        dataset="deepfaketimit",
                        method="real",
                        identities=(speaker.name,),
                        kind="video" if media.is_dir() else (kind_of(media) or "video"),
                    )
                )
    return items
