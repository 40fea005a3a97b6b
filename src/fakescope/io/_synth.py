"""Synthetic test clips: a drifting textured background, optionally with a moving face."""

from __future__ import annotations

import math
from importlib import resources
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError, DecodeError
from fakescope.io._quiet import silence_library_logs

__all__ = ["clip_face_boxes", "load_example_face", "make_clip"]

_CONTAINERS = {".mp4": "mp4", ".mov": "mov", ".mkv": "matroska", ".webm": "webm", ".avi": "avi"}
_WEBM_CODECS = frozenset({"libvpx-vp9", "libvpx", "libaom-av1", "libsvtav1"})
_CODEC_OPTIONS: dict[str, dict[str, str]] = {
    "libx264": {"preset": "veryfast", "crf": "23"},
    "libx265": {"preset": "ultrafast", "crf": "28", "x265-params": "log-level=error"},
    "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "crf": "32", "row-mt": "1"},
    "mpeg4": {"qscale": "4"},
}
_MARGIN = 16  # background pixels of drift on each side


def load_example_face() -> npt.NDArray[np.uint8]:
    """The packaged example face: a head-and-shoulders crop of scikit-image's astronaut
    photo (public domain), as an HxWx3 uint8 RGB array."""
    data = (resources.files("fakescope") / "assets" / "astronaut.jpg").read_bytes()
    bgr = cv2.imdecode(np.frombuffer(data, dtype=np.uint8), cv2.IMREAD_COLOR)
    if bgr is None:
        raise DecodeError("the packaged example face image is corrupt")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def make_clip(
    path: Path,
    *,
    width: int = 1280,
    height: int = 720,
    seconds: float = 10.0,
    fps: int = 30,
    face: npt.NDArray[np.uint8] | None = None,
    face_height: int = 200,
    codec: str = "libx264",
    seed: int = 0,
    num_faces: int = 1,
) -> Path:
    """Write a synthetic yuv420p video to ``path`` and return ``path``.

    The container follows the suffix (.mp4, .mov, .mkv, .webm, .avi). The background is a
    smooth random texture that drifts a little; ``face`` (RGB), when given, is scaled to
    ``face_height`` pixels tall and pasted on top, moving slowly so there is real motion;
    ``num_faces`` copies side by side (each in its own column) test multi-face scenes.
    """
    if num_faces < 1:
        raise ConfigError(f"num_faces must be >= 1, got {num_faces}")
    path = Path(path)
    _validate(path, width, height, seconds, fps, face, face_height, codec)
    rng = np.random.default_rng(seed)
    background = _background(rng, width + 2 * _MARGIN, height + 2 * _MARGIN)
    sprite = None if face is None else _scale_face(face, face_height, width // num_faces, height)
    total = max(1, round(seconds * fps))

    silence_library_logs()
    with av.open(str(path), mode="w", format=_CONTAINERS[path.suffix.lower()]) as container:
        stream: Any = container.add_stream(codec, rate=fps)
        stream.width = width
        stream.height = height
        stream.pix_fmt = "yuv420p"
        stream.codec_context.options = dict(_CODEC_OPTIONS.get(codec, {}))
        if codec == "mpeg4":
            stream.codec_context.qscale = 4
        for i in range(total):
            image = _render(background, sprite, i / fps, width, height, num_faces)
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


def _validate(
    path: Path,
    width: int,
    height: int,
    seconds: float,
    fps: int,
    face: npt.NDArray[np.uint8] | None,
    face_height: int,
    codec: str,
) -> None:
    suffix = path.suffix.lower()
    if suffix not in _CONTAINERS:
        raise ConfigError(f"unsupported clip suffix {suffix!r}; use one of {sorted(_CONTAINERS)}")
    if width <= 0 or height <= 0 or width % 2 or height % 2:
        raise ConfigError(f"width and height must be positive and even, got {width}x{height}")
    if not (seconds > 0 and math.isfinite(seconds)):
        raise ConfigError(f"seconds must be positive, got {seconds}")
    if fps <= 0:
        raise ConfigError(f"fps must be positive, got {fps}")
    if codec not in av.codecs_available:
        raise ConfigError(f"codec {codec!r} is not available in this PyAV build")
    if suffix == ".webm" and codec not in _WEBM_CODECS:
        raise ConfigError(f"a .webm clip needs a VP9/AV1 codec, not {codec!r}")
    if face is not None:
        if face.ndim != 3 or face.shape[2] != 3 or face.dtype != np.uint8:
            raise ConfigError(f"face must be an HxWx3 uint8 RGB image, got {face.shape}")
        if not 0 < face_height <= height:
            raise ConfigError(f"face_height must be in 1..{height}, got {face_height}")


def _background(rng: np.random.Generator, width: int, height: int) -> npt.NDArray[np.uint8]:
    """A smooth colourful texture: coarse noise upsampled, plus a gentle gradient."""
    coarse = rng.uniform(40, 215, size=(max(2, height // 40), max(2, width // 40), 3))
    smooth = np.asarray(
        cv2.resize(coarse.astype(np.float32), (width, height), interpolation=cv2.INTER_CUBIC),
        dtype=np.float32,
    )
    fine = rng.normal(0.0, 6.0, size=(height, width, 1)).astype(np.float32)
    ys = np.linspace(-25.0, 25.0, height, dtype=np.float32)[:, None, None]
    return np.asarray(np.clip(smooth + fine + ys, 0, 255), dtype=np.uint8)


def _scale_face(
    face: npt.NDArray[np.uint8], face_height: int, width: int, height: int
) -> npt.NDArray[np.uint8]:
    scale = face_height / face.shape[0]
    face_width = min(width, max(1, round(face.shape[1] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_CUBIC
    sprite = cv2.resize(face, (face_width, face_height), interpolation=interp)
    return np.ascontiguousarray(sprite, dtype=np.uint8)


def _render(
    background: npt.NDArray[np.uint8],
    sprite: npt.NDArray[np.uint8] | None,
    t: float,
    width: int,
    height: int,
    num_faces: int = 1,
) -> npt.NDArray[np.uint8]:
    ox = _MARGIN + round(_MARGIN * math.sin(2 * math.pi * t / 6.0))
    oy = _MARGIN + round(_MARGIN * math.cos(2 * math.pi * t / 8.0))
    image = background[oy : oy + height, ox : ox + width].copy()
    if sprite is not None:
        sh, sw = sprite.shape[:2]
        for x0, y0 in _origins(t, width, height, sw, sh, num_faces):
            image[y0 : y0 + sh, x0 : x0 + sw] = sprite
    return image


def _origins(
    t: float, width: int, height: int, sw: int, sh: int, num_faces: int
) -> list[tuple[int, int]]:
    """Top-left corners of the ``num_faces`` pasted faces (``sw`` x ``sh``) at ``t``."""
    column = width // num_faces
    amp_x = min(0.15 * column, (column - sw) / 2)
    amp_y = min(0.10 * height, (height - sh) / 2)
    return [
        (
            round(k * column + (column - sw) / 2 + amp_x * math.sin(2 * math.pi * t / 5.0)),
            round((height - sh) / 2 + amp_y * math.sin(2 * math.pi * (t + k) / 7.0)),
        )
        for k in range(num_faces)
    ]


def clip_face_boxes(
    face_shape: tuple[int, ...],
    t: float,
    *,
    width: int = 1280,
    height: int = 720,
    face_height: int = 200,
    num_faces: int = 1,
) -> list[tuple[float, float, float, float]]:
    """Where :func:`make_clip` (same geometry) pastes its faces at ``t`` seconds, as
    ``(x1, y1, x2, y2)`` pixels; ``face_shape`` is the shape of the ``face`` it was given."""
    scale = face_height / face_shape[0]
    sw = min(width // num_faces, max(1, round(face_shape[1] * scale)))
    return [
        (float(x), float(y), float(x + sw), float(y + face_height))
        for x, y in _origins(t, width, height, sw, face_height, num_faces)
    ]
