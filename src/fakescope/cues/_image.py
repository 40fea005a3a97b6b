"""Image statistics of a face track for the cue SVM: colour and sharpness/noise of the inner
face against a ring of skin around it (a blend boundary leaves them different), computed on
crops downscaled to about :data:`_WORK_SIDE` px."""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np
import numpy.typing as npt

__all__ = ["image_cues"]

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]

_FACE_SHRINK = 0.9
_RING_INNER = 1.1
_RING_OUTER = 1.35
_MIN_REGION_PX = 64
_WORK_SIDE = 128  # image cues: crops are scaled down by round(side / 128) (256 px: 2x)

_FACE_CODE = 1024  # |Laplacian| of uint8 is at most 1020: label * 1024 + |Laplacian| is one
_RING_CODE = 2048  # 16-bit code, histogrammed once per frame for both regions


def _regions(
    shapes: npt.NDArray[np.int64], polygons: _F64
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64], npt.NDArray[np.int32]]:
    """For every frame (vectorised): the integer downscale factor to about
    :data:`_WORK_SIDE` px, the ring's bounding box ``(x0, y0, x1, y1)`` in the downscaled
    crop, and the outer ring, inner ring and face polygons in that box (T, 3, 36, 2)."""
    h, w = shapes[:, 0], shapes[:, 1]
    k = np.maximum(1, np.round(np.maximum(h, w) / _WORK_SIDE)).astype(np.int64)
    size = np.stack([np.maximum(w // k, 4), np.maximum(h // k, 4)], axis=1)
    ratio = size / np.stack([w, h], axis=1)
    small = (polygons + 0.5) * ratio[:, None, :] - 0.5  # pixel centres
    centre = small.mean(axis=1, keepdims=True)
    factors = np.array([_RING_OUTER, _RING_INNER, _FACE_SHRINK])[None, :, None, None]
    rings = centre[:, None] + factors * (small - centre)[:, None]
    low = np.maximum(np.floor(rings[:, 0].min(axis=1)).astype(np.int64) - 2, 0)
    high = np.minimum(np.ceil(rings[:, 0].max(axis=1)).astype(np.int64) + 3, size)
    boxes = np.concatenate([low, high], axis=1)
    local = np.round(rings - low[:, None, None, :]).astype(np.int32)
    return k, boxes, np.ascontiguousarray(local)


def _frame_stats(
    crop: _U8, k: int, box: npt.NDArray[np.int64], polygons: npt.NDArray[np.int32]
) -> tuple[npt.NDArray[np.float32], tuple[float, ...], tuple[float, ...]] | None:
    """One crop's ``(|Laplacian| histograms (3, 1024): outside, face, ring; mean RGB of the
    face; mean RGB of the ring)`` in ``box`` of the crop downscaled ``k`` times, or ``None``
    when the box is degenerate."""
    if k > 1:  # an integer factor keeps INTER_AREA on its fast path
        h, w = crop.shape[:2]
        size = (max(w // k, 4), max(h // k, 4))
        crop = np.asarray(cv2.resize(crop, size, interpolation=cv2.INTER_AREA), np.uint8)
    x0, y0, x1, y1 = (int(v) for v in box)
    if x1 - x0 < 4 or y1 - y0 < 4:
        return None
    roi = crop[y0:y1, x0:x1]
    label: npt.NDArray[np.uint16] = np.zeros(roi.shape[:2], np.uint16)
    cv2.fillPoly(label, [polygons[0]], (_RING_CODE,))
    cv2.fillPoly(label, [polygons[1]], (0,))
    cv2.fillPoly(label, [polygons[2]], (_FACE_CODE,))
    gray = cv2.cvtColor(roi, cv2.COLOR_RGB2GRAY)
    lap = cv2.Laplacian(gray, cv2.CV_16S, ksize=1)  # exact integers in [-1020, 1020]
    code = cv2.add(label, np.abs(lap).view(np.uint16))
    hist = cv2.calcHist([code], [0], None, [3 * 1024], [0, 3 * 1024])
    face = tuple(cv2.mean(roi, (label == _FACE_CODE).view(np.uint8))[:3])
    ring = tuple(cv2.mean(roi, (label == _RING_CODE).view(np.uint8))[:3])
    return np.asarray(hist, np.float32).reshape(3, 1024), face, ring


def _region_stats(hist: npt.NDArray[np.float64]) -> tuple[_F64, _F64, _F64]:
    """Per row of 1024-bin |Laplacian| histograms (N, 1024): ``(pixels, mean square,
    median)``, the median interpolated inside its bin (0 for an empty row)."""
    total = hist.sum(axis=1)
    levels = np.arange(hist.shape[1], dtype=np.float64)
    mean_square = hist @ (levels * levels) / np.maximum(total, 1.0)
    cum = np.cumsum(hist, axis=1)
    half = total / 2.0
    k = np.argmax(cum >= half[:, None], axis=1)
    rows = np.arange(len(hist))
    below = np.where(k > 0, cum[rows, np.maximum(k - 1, 0)], 0.0)
    median = k + (half - below) / np.maximum(hist[rows, k], 1e-12)
    return total, mean_square, np.asarray(median, np.float64)


_SRGB_TO_XYZ = np.array(
    [[0.412453, 0.357580, 0.180423], [0.212671, 0.715160, 0.072169], [0.019334, 0.119193, 0.950227]]
)
_WHITE_D65 = np.array([0.950456, 1.0, 1.088754])


def _lab(rgb: npt.ArrayLike) -> _F64:
    """CIE L*a*b* (D65) of sRGB colours in 0..255, shape (..., 3) (OpenCV's RGB2Lab
    formulas, in float: no 8-bit rounding)."""
    c = np.asarray(rgb, np.float64) / 255.0
    linear = np.where(c <= 0.04045, c / 12.92, ((c + 0.055) / 1.055) ** 2.4)
    t = (linear @ _SRGB_TO_XYZ.T) / _WHITE_D65
    f = np.where(t > 0.008856, np.cbrt(t), 7.787 * t + 16.0 / 116.0)
    y = t[..., 1]
    lightness = np.where(y > 0.008856, 116.0 * f[..., 1] - 16.0, 903.3 * y)
    a = 500.0 * (f[..., 0] - f[..., 1])
    b = 200.0 * (f[..., 1] - f[..., 2])
    return np.asarray(np.stack([lightness, a, b], axis=-1), np.float64)


def image_cues(
    crops: Sequence[_U8] | _U8, oval: _F64, out: dict[str, float], missing: set[str]
) -> None:
    """The image cues of a track into ``out`` (``colour_gap``, ``colour_flicker``,
    ``blur_log_ratio``, ``noise_log_ratio``), each name it cannot compute into ``missing``.
    ``oval`` holds every crop's face-oval landmarks in crop pixels, shape (T, 36, 2)."""
    hists: list[npt.NDArray[np.float32]] = []
    colours: list[tuple[tuple[float, ...], tuple[float, ...]]] = []
    shapes = np.array([np.shape(c)[:2] for c in crops], np.int64).reshape(-1, 2)
    factors, boxes, polygons = _regions(shapes, oval)
    for i, crop in enumerate(crops):
        stats = _frame_stats(np.ascontiguousarray(crop), int(factors[i]), boxes[i], polygons[i])
        if stats is not None:
            hists.append(stats[0])
            colours.append(stats[1:])
    names = ("colour_gap", "colour_flicker", "blur_log_ratio", "noise_log_ratio")
    if not hists:
        missing.update(names)
        return
    h = np.stack(hists).astype(np.float64)
    n_face, square_face, median_face = _region_stats(h[:, 1])
    n_ring, square_ring, median_ring = _region_stats(h[:, 2])
    keep = (n_face >= _MIN_REGION_PX) & (n_ring >= _MIN_REGION_PX)
    if not keep.any():
        missing.update(names)
        return
    lab = _lab(np.asarray(colours, np.float64)[keep])  # (frames, face/ring, 3)
    d = lab[:, 0] - lab[:, 1]
    out["colour_gap"] = float(np.linalg.norm(d, axis=1).mean())
    if len(d) >= 2:
        out["colour_flicker"] = float(np.linalg.norm(np.diff(d, axis=0), axis=1).mean())
    else:
        missing.add("colour_flicker")
    blur = np.log((square_face[keep] + 1.0) / (square_ring[keep] + 1.0))
    floor = 0.5  # half a grey level: keeps the ratio finite on flat, noise-free regions
    noise = np.log((median_face[keep] + floor) / (median_ring[keep] + floor))
    out["blur_log_ratio"] = float(np.median(blur))
    out["noise_log_ratio"] = float(np.median(noise))
