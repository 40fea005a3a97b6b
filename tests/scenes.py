"""Test helper: short H.264 clips with several faces, each visible in its own time window
(a second person who appears briefly, a smaller face, a face that enters late)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import cv2
import numpy as np
import numpy.typing as npt


@dataclass(frozen=True)
class Actor:
    """One face pasted at ``(x, y)`` (top-left, pixels), ``height`` px tall, shown for
    ``start <= t < end`` seconds; ``blue`` swaps its red and blue channels (a marker a stub
    detector can read as "manipulated")."""

    x: int
    y: int
    height: int
    start: float = 0.0
    end: float = float("inf")
    blue: bool = False


def write_scene(
    path: Path,
    face: npt.NDArray[np.uint8],
    actors: list[Actor],
    *,
    width: int = 640,
    height: int = 360,
    seconds: float = 4.0,
    fps: int = 10,
) -> Path:
    rng = np.random.default_rng(0)
    coarse = rng.uniform(60, 200, size=(height // 40 + 1, width // 40 + 1, 3)).astype(np.float32)
    background = np.asarray(
        np.clip(cv2.resize(coarse, (width, height), interpolation=cv2.INTER_CUBIC), 0, 255),
        dtype=np.uint8,
    )
    sprites = []
    for a in actors:
        scale = a.height / face.shape[0]
        sprite = cv2.resize(face, (round(face.shape[1] * scale), a.height), cv2.INTER_AREA)
        sprites.append(sprite[..., ::-1].copy() if a.blue else sprite)
    with av.open(str(path), mode="w", format="mp4") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
        stream.codec_context.options = {"crf": "18", "preset": "ultrafast", "g": "10"}
        for i in range(round(seconds * fps)):
            t = i / fps
            image = background.copy()
            for a, sprite in zip(actors, sprites, strict=True):
                if a.start <= t < a.end:
                    h, w = sprite.shape[:2]
                    image[a.y : a.y + h, a.x : a.x + w] = sprite
            frame = av.VideoFrame.from_ndarray(image, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode(None))
    return path


class BlueIsFake:
    """A stand-in for a detector: raw score ``fake`` for a crop whose blue channel outweighs
    its red one (the :class:`Actor` ``blue`` marker), ``real`` otherwise."""

    has_maps = False

    def __init__(self, real: object, fake: float = 0.99, authentic: float = 0.05) -> None:
        self._real = real
        self.config = real.config  # type: ignore[attr-defined]
        self.fake, self.authentic = fake, authentic

    @property
    def info(self) -> object:
        return self._real.info  # type: ignore[attr-defined]

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        mean = crops.reshape(len(crops), -1, 3).mean(axis=1)
        return np.where(mean[:, 2] > mean[:, 0] + 10, self.fake, self.authentic)

    def predict_maps(self, crops: npt.NDArray[np.uint8]) -> tuple[npt.NDArray[np.float64], None]:
        return self.predict(crops), None
