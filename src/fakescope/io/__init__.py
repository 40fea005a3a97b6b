"""Ingest: identify media by content, enforce limits, and decode sampled RGB frames.

``open_media(path)`` -> ``(MediaInfo, Iterator[Frame])`` is the stage's entry point;
``expand_inputs`` turns command-line arguments into files, ``make_clip`` writes
synthetic test videos and ``make_scene`` multi-face ones whose faces are known. ``sniff`` and
``sniff_bytes`` name a file's type from its first bytes (``read_head``), never its suffix.

PyAV is imported with the first video: ``read_frames_at``, ``make_clip``, ``make_scene`` (and
the other names of ``_scene.py``) and ``load_example_face`` are loaded on first use (PEP 562),
so a photo scan never loads it.
"""

from __future__ import annotations

import typing

from fakescope._lazy import lazy_attributes as _lazy_attributes
from fakescope.io._config import DecodeReport, Limits, Sampling
from fakescope.io._inputs import expand_inputs
from fakescope.io._media import open_media
from fakescope.io._sniff import (
    IMAGE_EXTENSIONS,
    MEDIA_EXTENSIONS,
    VIDEO_EXTENSIONS,
    read_head,
    sniff,
    sniff_bytes,
    worth_scanning,
)

if typing.TYPE_CHECKING:
    from fakescope.io._scene import BENCH_SCENE, SceneFace, make_scene, scene_boxes
    from fakescope.io._seek import read_frames_at
    from fakescope.io._synth import clip_face_boxes, load_example_face, make_clip

__all__ = [
    "BENCH_SCENE",
    "IMAGE_EXTENSIONS",
    "MEDIA_EXTENSIONS",
    "VIDEO_EXTENSIONS",
    "DecodeReport",
    "Limits",
    "Sampling",
    "SceneFace",
    "clip_face_boxes",
    "expand_inputs",
    "load_example_face",
    "make_clip",
    "make_scene",
    "open_media",
    "read_frames_at",
    "read_head",
    "scene_boxes",
    "sniff",
    "sniff_bytes",
    "worth_scanning",
]

_LAZY = {
    "read_frames_at": "fakescope.io._seek",
    "load_example_face": "fakescope.io._synth",
    "make_clip": "fakescope.io._synth",
    "clip_face_boxes": "fakescope.io._synth",
    "BENCH_SCENE": "fakescope.io._scene",
    "SceneFace": "fakescope.io._scene",
    "make_scene": "fakescope.io._scene",
    "scene_boxes": "fakescope.io._scene",
}


if not typing.TYPE_CHECKING:  # hidden from mypy, which would take any name for Any
    __getattr__, __dir__ = _lazy_attributes(__name__, _LAZY)
