"""Ingest: identify media by content, enforce limits, and decode sampled RGB frames.

``open_media(path)`` -> ``(MediaInfo, Iterator[Frame])`` is the stage's entry point;
``expand_inputs`` turns command-line arguments into files and ``make_clip`` writes
synthetic test videos.
"""

from __future__ import annotations

from fakescope.io._config import DecodeReport, Limits, Sampling
from fakescope.io._inputs import expand_inputs
from fakescope.io._media import open_media
from fakescope.io._seek import read_frames_at
from fakescope.io._sniff import sniff
from fakescope.io._synth import load_example_face, make_clip

__all__ = [
    "DecodeReport",
    "Limits",
    "Sampling",
    "expand_inputs",
    "load_example_face",
    "make_clip",
    "open_media",
    "read_frames_at",
    "sniff",
]
