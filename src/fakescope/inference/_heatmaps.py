"""Pixel heatmaps: a detector's crop-space map drawn back on the frame through the crop's
affine matrix, as a PNG overlay of the most suspicious frame of each face track; and small
JPEG thumbnails of that face."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.types import Box

__all__ = ["backproject", "face_thumbnail", "overlay", "peak_region", "write_jpeg", "write_overlay"]


def backproject(
    crop_map: npt.NDArray[np.float64],
    matrix: npt.NDArray[np.float64],
    crop_size: int,
    frame_shape: tuple[int, int],
) -> npt.NDArray[np.float32]:
    """Resize a (h, w) crop-space map to the crop, then warp it into frame pixels with the
    inverse of ``matrix`` (frame -> crop). Outside the crop the result is 0."""
    up = cv2.resize(
        crop_map.astype(np.float32), (crop_size, crop_size), interpolation=cv2.INTER_LINEAR
    )
    height, width = frame_shape
    heat = cv2.warpAffine(
        up,
        matrix,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
    return np.clip(np.asarray(heat, dtype=np.float32), 0.0, 1.0)


def peak_region(heat: npt.NDArray[np.float32], level: float = 0.5) -> Box | None:
    """Bounding box of the pixels at or above ``level`` x the map's maximum; None when the map
    is (nearly) empty."""
    top = float(heat.max()) if heat.size else 0.0
    if top < 0.05:
        return None
    ys, xs = np.nonzero(heat >= level * top)
    return (float(xs.min()), float(ys.min()), float(xs.max() + 1), float(ys.max() + 1))


def overlay(
    frame: npt.NDArray[np.uint8], heat: npt.NDArray[np.float32], box: Box, score: float
) -> npt.NDArray[np.uint8]:
    """The frame with the heatmap blended in (JET colours, weight = heat) and the face box
    labelled with its fake probability."""
    colours = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = (0.6 * heat)[..., None]
    out = (frame.astype(np.float32) * (1 - alpha) + colours * alpha).astype(np.uint8)
    x0, y0, x1, y1 = (round(v) for v in box)
    cv2.rectangle(out, (x0, y0), (x1, y1), (255, 255, 255), 2)
    cv2.putText(
        out,
        f"fake {score:.0%}",
        (x0, max(12, y0 - 6)),
        cv2.FONT_HERSHEY_SIMPLEX,
        0.6,
        (255, 255, 255),
        2,
        cv2.LINE_AA,
    )
    return out


def write_overlay(path: Path, image: npt.NDArray[np.uint8]) -> Path:
    """Write an RGB image as PNG (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if not cv2.imwrite(str(path), cv2.cvtColor(image, cv2.COLOR_RGB2BGR)):
        raise OSError(f"cannot write {path}")
    return path


def face_thumbnail(
    frame: npt.NDArray[np.uint8], box: Box, size: int = 160, margin: float = 0.25
) -> npt.NDArray[np.uint8]:
    """The face ``box`` of an RGB ``frame`` as a small RGB image: a square of the box's larger
    side plus ``margin`` of it on each side, centred on the box, cut at the frame's edges,
    scaled so its larger side is ``size`` pixels."""
    height, width = frame.shape[:2]
    x0, y0, x1, y1 = box
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(x1 - x0, y1 - y0) * (0.5 + margin)
    left, top = max(0, round(cx - half)), max(0, round(cy - half))
    right, bottom = min(width, round(cx + half)), min(height, round(cy + half))
    if right <= left or bottom <= top:
        raise ValueError(f"face box {box} is outside the {width}x{height} frame")
    crop = frame[top:bottom, left:right]
    scale = size / max(crop.shape[0], crop.shape[1])
    dsize = (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale)))
    interp = cv2.INTER_AREA if scale < 1 else cv2.INTER_LINEAR
    return np.ascontiguousarray(cv2.resize(crop, dsize, interpolation=interp), dtype=np.uint8)


def write_jpeg(path: Path, image: npt.NDArray[np.uint8], quality: int = 85) -> Path:
    """Write an RGB image as JPEG (creating the folder)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    bgr = cv2.cvtColor(image, cv2.COLOR_RGB2BGR)
    if not cv2.imwrite(str(path), bgr, [cv2.IMWRITE_JPEG_QUALITY, quality]):
        raise OSError(f"cannot write {path}")
    return path
