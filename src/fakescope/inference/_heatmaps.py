"""Pixel heatmaps: a detector's crop-space map drawn back on the frame through the crop's
affine matrix, as a PNG overlay of the most suspicious frame of each face track; and small
JPEG thumbnails of that face."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.types import Box

__all__ = [
    "backproject",
    "face_thumbnail",
    "heatmap_figure",
    "peak_region",
    "write_jpeg",
    "write_overlay",
]


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
        borderValue=(0.0,),
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


_BACKGROUND = (32, 32, 32)  # gaps and the caption strip
_OUTLINE = (200, 200, 200)  # thin frame around the enlarged face
_MUTED = (170, 170, 170)  # secondary caption text
_MAX_HEIGHT = 640  # the figure's image rows (without the caption strip), unless panel is larger
_MAX_LEFT_WIDTH = 1280  # very wide frames are scaled down further
_FACE_MARGIN = 0.3  # of the box's larger side, on each side of the enlarged face
_MIN_REGION = 16  # frame pixels: tiny boxes still show some context


_SHOWN = 0.01  # map values below this are not drawn (outside the crop, or nothing there)


def _blend(image: npt.NDArray[np.uint8], heat: npt.NDArray[np.float32]) -> npt.NDArray[np.uint8]:
    """``image`` with the heatmap blended in on an absolute scale (JET: 0 blue, 1 red, as the
    legend under the figure shows), so one colour means one value on every face; weight
    0.3 + 0.5 x heat wherever the map reaches :data:`_SHOWN`, so even a low map is visible."""
    colours = cv2.applyColorMap((heat * 255).astype(np.uint8), cv2.COLORMAP_JET)
    colours = cv2.cvtColor(colours, cv2.COLOR_BGR2RGB).astype(np.float32)
    alpha = np.where(heat >= _SHOWN, 0.3 + 0.5 * heat, 0.0).astype(np.float32)[..., None]
    out = image.astype(np.float32) * (1 - alpha) + colours * alpha
    return np.ascontiguousarray(np.clip(out, 0, 255).astype(np.uint8))


def _resize(
    image: npt.NDArray[Any], width: int, height: int, smooth: bool = True
) -> npt.NDArray[Any]:
    """``image`` resized to ``width`` x ``height`` (area averaging when shrinking)."""
    if image.shape[1] == width and image.shape[0] == height:
        return image
    shrink = width < image.shape[1] and height < image.shape[0]
    interp = cv2.INTER_AREA if shrink else (cv2.INTER_CUBIC if smooth else cv2.INTER_LINEAR)
    return np.asarray(cv2.resize(image, (width, height), interpolation=interp))


def _as_rgb(frame: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    """A uint8 RGB (h, w, 3) view of ``frame``: grey frames are repeated, alpha is dropped."""
    image = np.asarray(frame)
    if image.dtype != np.uint8:
        image = np.clip(image, 0, 255).astype(np.uint8)
    if image.ndim == 2:
        image = np.repeat(image[..., None], 3, axis=2)
    if image.ndim != 3 or image.shape[2] not in (1, 3, 4) or 0 in image.shape[:2]:
        raise ValueError(f"frame must be an (h, w, 3) RGB image, got shape {image.shape}")
    if image.shape[2] == 1:
        image = np.repeat(image, 3, axis=2)
    return np.ascontiguousarray(image[..., :3])


def _face_region(
    box: Box, width: int, height: int, margin: float = _FACE_MARGIN
) -> tuple[int, int, int, int]:
    """The square of the box's larger side plus ``margin`` of it on each side (at least
    ``_MIN_REGION`` px), centred on the box and cut at the frame's edges, as integer
    (left, top, right, bottom). ValueError when the box lies entirely outside the frame."""
    x0, y0, x1, y1 = (
        min(box[0], box[2]),
        min(box[1], box[3]),
        max(box[0], box[2]),
        max(box[1], box[3]),
    )
    if max(x0, 0) >= min(x1, width) or max(y0, 0) >= min(y1, height):
        raise ValueError(f"face box {box} is entirely outside the {width}x{height} frame")
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    half = max(max(x1 - x0, y1 - y0) * (0.5 + margin), _MIN_REGION / 2)
    left, top = max(0, math.floor(cx - half)), max(0, math.floor(cy - half))
    right, bottom = min(width, math.ceil(cx + half)), min(height, math.ceil(cy + half))
    return left, top, max(right, left + 1), max(bottom, top + 1)


def _draw_box(
    image: npt.NDArray[np.uint8],
    box: Box,
    scale: float,
    offset: tuple[float, float],
    thickness: int,
) -> None:
    """Draw ``box`` (frame pixels) on ``image`` as a white rectangle with a dark edge,
    mapped by ``(v - offset) * scale``; parts outside the image are clipped by OpenCV."""
    x0, x1 = sorted(((box[0] - offset[0]) * scale, (box[2] - offset[0]) * scale))
    y0, y1 = sorted(((box[1] - offset[1]) * scale, (box[3] - offset[1]) * scale))
    limit = 4 * max(image.shape[:2])  # keep coordinates in OpenCV's int range
    p0 = (int(np.clip(round(x0), -limit, limit)), int(np.clip(round(y0), -limit, limit)))
    p1 = (int(np.clip(round(x1), -limit, limit)), int(np.clip(round(y1), -limit, limit)))
    cv2.rectangle(image, p0, p1, (0, 0, 0), thickness + 2, cv2.LINE_AA)
    cv2.rectangle(image, p0, p1, (255, 255, 255), thickness, cv2.LINE_AA)


def _fit_text(text: str, width: int, height: int, thickness: int) -> float:
    """The largest Hershey font scale (at most height-based) at which ``text`` fits."""
    scale = height / 40
    (w, _), _ = cv2.getTextSize(text, cv2.FONT_HERSHEY_SIMPLEX, scale, thickness)
    if w > width > 0:
        scale *= width / w
    return max(scale, 0.2)


def _ascii(text: str) -> str:
    """``text`` with what OpenCV's Hershey fonts cannot draw replaced by ``?``."""
    return "".join(c if " " <= c <= "~" else "?" for c in text.replace("\n", " "))


def heatmap_figure(
    frame: npt.NDArray[np.uint8],
    heat: npt.NDArray[np.float32],
    box: Box,
    probability: float,
    *,
    caption: str | None = None,
    panel: int = 320,
) -> npt.NDArray[np.uint8]:
    """One RGB image explaining a face's score: on the left the whole ``frame`` with the
    heatmap blended in and the face ``box`` drawn; on the right the face enlarged (the box's
    larger side plus 30 % of it on each side, cut at the frame's edges) with the same
    heatmap, in a thin outline; below both a caption strip with ``caption``, by default
    ``f"fake probability {probability:.0%} (calibrated)"``.

    ``heat`` is an (h, w) map in [0, 1] in frame pixels (:func:`backproject`); ``box`` is in
    frame pixels and may reach past the frame's edges. Both image parts are ``H`` pixels
    high, ``H`` = the frame's height clamped to [``panel``, 640] (or ``panel`` when that is
    larger): small frames are enlarged, huge ones shrunk (also to at most 1280 px wide). The
    face region is scaled to fit an ``H`` x ``H`` square (a square unless cut at an edge).
    The caption strip below adds about 9 % of ``H`` (at least 36 px). Captions are drawn with
    OpenCV's ASCII font (other characters become ``?``).

    Raises ValueError when ``heat`` does not match the frame's size or the box lies
    entirely outside the frame."""
    image = _as_rgb(frame)
    height, width = image.shape[:2]
    hmap = np.asarray(heat, dtype=np.float32)
    if hmap.shape != (height, width):
        raise ValueError(f"heat has shape {hmap.shape}, the frame is {height}x{width}")
    hmap = np.clip(np.nan_to_num(hmap, nan=0.0, posinf=1.0, neginf=0.0), 0.0, 1.0)
    if not all(math.isfinite(v) for v in box):
        raise ValueError(f"face box {box} is not finite")
    left, top, right, bottom = _face_region(box, width, height)

    panel = max(int(panel), 32)
    rows = max(panel, min(height, _MAX_HEIGHT))
    gap = max(6, rows // 40)
    line = max(1, rows // 240)  # box / outline thickness

    # left: the whole frame
    scale = min(rows / height, _MAX_LEFT_WIDTH / width)
    lw, lh = max(1, round(width * scale)), max(1, round(height * scale))
    shown = _blend(_resize(image, lw, lh), np.clip(_resize(hmap, lw, lh, smooth=False), 0, 1))
    _draw_box(shown, box, scale, (0.0, 0.0), line + 1)

    # right: the face region, as large as fits an rows x rows square
    crop, crop_heat = image[top:bottom, left:right], hmap[top:bottom, left:right]
    zoom = rows / max(bottom - top, right - left)
    pw, ph = max(1, round((right - left) * zoom)), max(1, round((bottom - top) * zoom))
    face = _blend(_resize(crop, pw, ph), np.clip(_resize(crop_heat, pw, ph, smooth=False), 0, 1))
    _draw_box(face, box, zoom, (float(left), float(top)), line)

    strip = max(36, round(rows * 0.09))
    out_w = gap + lw + gap + rows + gap
    out = np.empty((gap + rows + strip, out_w, 3), np.uint8)
    out[:] = _BACKGROUND
    y = gap + (rows - lh) // 2
    out[y : y + lh, gap : gap + lw] = shown
    px, py = 2 * gap + lw + (rows - pw) // 2, gap + (rows - ph) // 2
    out[py : py + ph, px : px + pw] = face
    cv2.rectangle(out, (px - 1, py - 1), (px + pw, py + ph), _OUTLINE, 1)

    # caption strip: the main text on the left, a muted legend on the right when it fits
    text = _ascii(
        caption if caption is not None else f"fake probability {probability:.0%} (calibrated)"
    )
    legend = "left: frame, right: face" + (
        f" enlarged {zoom / scale:.1f}x" if zoom > scale * 1.05 else ""
    )
    font = cv2.FONT_HERSHEY_SIMPLEX
    thick = 2 if strip >= 40 else 1
    size = _fit_text(text, out_w - 2 * gap, strip, thick)
    (tw, th), under = cv2.getTextSize(text, font, size, thick)
    base = gap + rows + (strip - th - under) // 2 + th
    cv2.putText(out, text, (gap, base), font, size, (255, 255, 255), thick, cv2.LINE_AA)
    lsize = size * 0.6
    (lw2, _), _ = cv2.getTextSize(legend, font, lsize, 1)
    bar_w = max(60, rows // 5)
    (nw, _), _ = cv2.getTextSize("0", font, lsize, 1)
    (ow, _), _ = cv2.getTextSize("1 manipulated", font, lsize, 1)
    key_w = nw + gap + bar_w + gap + ow  # "0 [colour bar] 1 manipulated"
    right = out_w - gap
    if gap + tw + 4 * gap + key_w <= right:
        x = right - key_w
        cv2.putText(out, "0", (x, base), font, lsize, _MUTED, 1, cv2.LINE_AA)
        x += nw + gap
        ramp = np.linspace(0, 255, bar_w).astype(np.uint8)[None, :].repeat(max(6, th), axis=0)
        bar = cv2.cvtColor(cv2.applyColorMap(ramp, cv2.COLORMAP_JET), cv2.COLOR_BGR2RGB)
        out[base - bar.shape[0] : base, x : x + bar_w] = bar
        x += bar_w + gap
        cv2.putText(out, "1 manipulated", (x, base), font, lsize, _MUTED, 1, cv2.LINE_AA)
        right = right - key_w - 3 * gap
    if gap + tw + 4 * gap + lw2 <= right:
        cv2.putText(out, legend, (right - lw2, base), font, lsize, _MUTED, 1, cv2.LINE_AA)
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
    left, top, right, bottom = _face_region(box, frame.shape[1], frame.shape[0], margin)
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
