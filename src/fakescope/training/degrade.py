"""Deployment-like degradations of an aligned face crop: what a face goes through between a
camera and a heavily compressed upload (FF++ c40 is H.264 at quantiser 40).

Applied after the geometric augmentation, so a blend mask needs no change (every step here is
photometric or a same-size resample). The chain, each step with its own probability:

1. *small face*: downscale to ``scale`` x the side, then back up (faces of 60-150 px in the
   source frame are upsampled to the network input);
2. *codec*: either an H.264 intra frame at a random CRF (libx264 through PyAV, the same
   library fakescope decodes with), or a JPEG re-encode at a random quality.

Deterministic under the ``rng`` passed in (x264 itself is deterministic for one input).
"""

from __future__ import annotations

import io
from dataclasses import dataclass

import av
import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["DegradeConfig", "degrade", "h264_roundtrip", "jpeg_roundtrip"]

_U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class DegradeConfig:
    p_resize: float = 0.5  # probability of the small-face resample
    resize_min: float = 0.35  # smallest scale of that resample (1.0 = none)
    p_codec: float = 0.8  # probability of a codec round trip
    p_h264: float = 0.6  # share of codec round trips that are H.264 (the rest JPEG)
    crf_min: int = 23  # H.264 CRF range (c23 ~ 23, c40 ~ 40)
    crf_max: int = 45
    jpeg_min: int = 25  # JPEG quality range
    jpeg_max: int = 95

    def validate(self) -> None:
        for name in ("p_resize", "p_codec", "p_h264"):
            if not 0.0 <= getattr(self, name) <= 1.0:
                raise ValueError(f"{name} must be in [0, 1]")
        if not 0.05 <= self.resize_min <= 1.0:
            raise ValueError("resize_min must be in [0.05, 1]")
        if not 0 <= self.crf_min <= self.crf_max <= 51:
            raise ValueError("need 0 <= crf_min <= crf_max <= 51")
        if not 1 <= self.jpeg_min <= self.jpeg_max <= 100:
            raise ValueError("need 1 <= jpeg_min <= jpeg_max <= 100")


def jpeg_roundtrip(img: _U8, quality: int) -> _U8:
    """Encode and decode ``img`` (H, W, 3 RGB, or H, W grey) as JPEG at ``quality``.

    cv2's codec reads and writes BGR, so colour goes in as BGR and comes back as RGB: the
    YCbCr conversion and the 4:2:0 chroma subsampling then act on the right channels (red
    carries 0.299 of the luma, blue 0.114), as in a JPEG made from the RGB picture.
    """
    colour = img.ndim == 3 and img.shape[2] == 3
    src = cv2.cvtColor(img, cv2.COLOR_RGB2BGR) if colour else img
    ok, buf = cv2.imencode(".jpg", src, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        return img
    out = cv2.imdecode(buf, cv2.IMREAD_UNCHANGED)
    if out is None:
        return img
    if colour:
        out = cv2.cvtColor(out, cv2.COLOR_BGR2RGB)
    return np.asarray(out, np.uint8)


def h264_roundtrip(img: _U8, crf: int) -> _U8:
    """Encode ``img`` (H, W, 3 RGB; even sides) as one H.264 intra frame at ``crf`` and decode
    it: yuv420p chroma subsampling, 4x4/8x8 DCT blocking and deblocking as in a real video."""
    h, w = img.shape[:2]
    buf = io.BytesIO()
    with av.open(buf, "w", format="h264") as out:
        stream = out.add_stream("libx264", rate=25)
        stream.width, stream.height = w - w % 2, h - h % 2
        stream.pix_fmt = "yuv420p"
        stream.options = {"crf": str(int(crf)), "preset": "ultrafast", "tune": "zerolatency"}
        frame = av.VideoFrame.from_ndarray(
            np.ascontiguousarray(img[: stream.height, : stream.width]), format="rgb24"
        )
        for packet in stream.encode(frame):
            out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
    buf.seek(0)
    with av.open(buf, "r", format="h264") as src:
        for decoded in src.decode(video=0):
            rgb = np.asarray(decoded.to_ndarray(format="rgb24"), np.uint8)
            if rgb.shape[:2] != (h, w):
                rgb = np.asarray(cv2.resize(rgb, (w, h)), np.uint8)
            return rgb
    return img


def degrade(img: _U8, rng: np.random.Generator, cfg: DegradeConfig | None = None) -> _U8:
    """One random draw of the chain above; same shape and dtype as ``img``."""
    cfg = cfg or DegradeConfig()
    h, w = img.shape[:2]
    out = img
    if rng.random() < cfg.p_resize:
        scale = rng.uniform(cfg.resize_min, 1.0)
        small = cv2.resize(
            out, (max(8, round(w * scale)), max(8, round(h * scale))), interpolation=cv2.INTER_AREA
        )
        out = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
    if rng.random() < cfg.p_codec:
        if rng.random() < cfg.p_h264:
            out = h264_roundtrip(out, int(rng.integers(cfg.crf_min, cfg.crf_max + 1)))
        else:
            out = jpeg_roundtrip(out, int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1)))
    return np.ascontiguousarray(out, dtype=np.uint8)
