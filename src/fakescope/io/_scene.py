"""Multi-face scenes with known faces: the packaged photo pasted several times at its own
size, place and time window over the drifting background of :func:`make_clip`, so that a
benchmark can count the faces a scan finds against the faces present (``fakescope bench``)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import av
import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError
from fakescope.io._quiet import silence_library_logs
from fakescope.io._synth import _CODEC_OPTIONS, _MARGIN, _background, _scale_face
from fakescope.types import Box

__all__ = ["BENCH_SCENE", "SceneFace", "make_scene", "scene_boxes"]


@dataclass(frozen=True)
class SceneFace:
    """One pasted face: its top-left corner ``(x, y)``, ``height`` pixels tall (the photo's
    aspect kept), shown for ``start <= t < end`` seconds, drifting up to ``drift`` pixels
    around its place."""

    x: int
    y: int
    height: int
    start: float = 0.0
    end: float = math.inf
    drift: int = 12

    def visible(self, t: float) -> bool:
        return self.start <= t < self.end

    def origin(self, t: float) -> tuple[int, int]:
        """Top-left corner at ``t`` seconds (each face sways on its own phase)."""
        phase = (self.x + self.y) / 97.0
        dx = round(self.drift * math.sin(2 * math.pi * t / 5.0 + phase))
        dy = round(self.drift * math.sin(2 * math.pi * t / 7.0 + phase))
        return self.x + dx, self.y + dy


BENCH_SCENE = (
    SceneFace(60, 120, 320),  # the main face, throughout
    SceneFace(440, 60, 200),  # a second face, throughout
    SceneFace(720, 500, 150),  # a small face (about 50 px), throughout
    SceneFace(960, 80, 240, start=3.0, end=5.0),  # a brief face
    SceneFace(440, 400, 240, start=6.5),  # a face that enters late
)
"""The multi-face scene ``fakescope bench`` times on a 1280x720 clip of 10 s."""


def _sprite_size(face_shape: tuple[int, ...], height: int) -> tuple[int, int]:
    return max(1, round(face_shape[1] * height / face_shape[0])), height


def scene_boxes(
    faces: Sequence[SceneFace], face_shape: tuple[int, ...], t: float
) -> list[Box | None]:
    """Where each face of the scene is pasted at ``t`` seconds, as ``(x1, y1, x2, y2)``
    pixels (None while it is not shown); ``face_shape`` is the pasted photo's shape."""
    out: list[Box | None] = []
    for face in faces:
        if not face.visible(t):
            out.append(None)
            continue
        w, h = _sprite_size(face_shape, face.height)
        x, y = face.origin(t)
        out.append((float(x), float(y), float(x + w), float(y + h)))
    return out


def make_scene(
    path: Path,
    face: npt.NDArray[np.uint8],
    faces: Sequence[SceneFace] = BENCH_SCENE,
    *,
    width: int = 1280,
    height: int = 720,
    seconds: float = 10.0,
    fps: int = 30,
    seed: int = 0,
) -> Path:
    """Write an H.264 ``.mp4`` of ``faces`` (each a copy of ``face``, RGB) to ``path``."""
    path = Path(path)
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ConfigError(f"width and height must be positive and even, got {width}x{height}")
    if not (seconds > 0 and math.isfinite(seconds)) or fps <= 0:
        raise ConfigError("seconds and fps must be positive")
    sprites = [_scale_face(face, f.height, width, height) for f in faces]
    for f, sprite in zip(faces, sprites, strict=True):
        sh, sw = sprite.shape[:2]
        if f.x - f.drift < 0 or f.y - f.drift < 0:
            raise ConfigError(f"{f} leaves the frame")
        if f.x + f.drift + sw > width or f.y + f.drift + sh > height:
            raise ConfigError(f"{f} leaves the {width}x{height} frame")
    background = _background(np.random.default_rng(seed), width + 2 * _MARGIN, height + 2 * _MARGIN)
    silence_library_logs()
    with av.open(str(path), mode="w", format="mp4") as container:
        stream: Any = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = dict(_CODEC_OPTIONS["libx264"])
        for i in range(max(1, round(seconds * fps))):
            t = i / fps
            ox = _MARGIN + round(_MARGIN * math.sin(2 * math.pi * t / 6.0))
            oy = _MARGIN + round(_MARGIN * math.cos(2 * math.pi * t / 8.0))
            image = background[oy : oy + height, ox : ox + width].copy()
            for f, sprite in zip(faces, sprites, strict=True):
                if f.visible(t):
                    x, y = f.origin(t)
                    image[y : y + sprite.shape[0], x : x + sprite.shape[1]] = sprite
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path
