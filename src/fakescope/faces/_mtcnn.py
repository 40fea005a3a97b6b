"""MTCNN (Zhang et al. 2016) on onnxruntime, ported from facenet-pytorch's ``detect_face``.

The three nets are the MIT-licensed facenet-pytorch weights exported to ONNX by
``tools/export_face_assets.py``. Input images are RGB uint8.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from fakescope._assets import shipped
from fakescope._runtime import onnx_session

__all__ = ["MTCNN", "RawFace"]

F32 = npt.NDArray[np.float32]


@dataclass(frozen=True, eq=False)
class RawFace:
    """A detector's raw output: box (x0, y0, x1, y1), score and 5 points (5, 2)."""

    box: tuple[float, float, float, float]
    score: float
    points: F32


def _nms(boxes: F32, scores: F32, threshold: float, method: str = "union") -> npt.NDArray[np.intp]:
    """Greedy NMS; ``method='min'`` divides the overlap by the smaller box (MTCNN's last stage)."""
    if len(boxes) == 0:
        return np.empty(0, dtype=np.intp)
    x0, y0, x1, y1 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    area = (x1 - x0 + 1) * (y1 - y0 + 1)
    order = np.argsort(scores)[::-1]
    keep: list[int] = []
    while order.size:
        i = int(order[0])
        keep.append(i)
        rest = order[1:]
        w = np.maximum(0.0, np.minimum(x1[i], x1[rest]) - np.maximum(x0[i], x0[rest]) + 1)
        h = np.maximum(0.0, np.minimum(y1[i], y1[rest]) - np.maximum(y0[i], y0[rest]) + 1)
        inter = w * h
        denom = np.minimum(area[i], area[rest]) if method == "min" else area[i] + area[rest] - inter
        order = rest[inter / denom <= threshold]
    return np.asarray(keep, dtype=np.intp)


def _square(boxes: F32) -> F32:
    """MTCNN's ``rerec``: make boxes square around their centre."""
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0]
    h = boxes[:, 3] - boxes[:, 1]
    side = np.maximum(w, h)
    out[:, 0] = boxes[:, 0] + w * 0.5 - side * 0.5
    out[:, 1] = boxes[:, 1] + h * 0.5 - side * 0.5
    out[:, 2] = out[:, 0] + side
    out[:, 3] = out[:, 1] + side
    return out


def _regress(boxes: F32, reg: F32) -> F32:
    out = boxes.copy()
    w = boxes[:, 2] - boxes[:, 0] + 1
    h = boxes[:, 3] - boxes[:, 1] + 1
    out[:, 0] += reg[:, 0] * w
    out[:, 1] += reg[:, 1] * h
    out[:, 2] += reg[:, 2] * w
    out[:, 3] += reg[:, 3] * h
    return out


def _normalise(batch: npt.NDArray[np.uint8]) -> F32:
    """NHWC uint8 -> NCHW float32 scaled as MTCNN expects."""
    return ((batch.astype(np.float32) - 127.5) * 0.0078125).transpose(0, 3, 1, 2).copy()


def _patches(image: npt.NDArray[np.uint8], boxes: F32, size: int) -> npt.NDArray[np.uint8]:
    """Crop each box (zero-padded outside the image) and resize to ``size``."""
    h, w = image.shape[:2]
    out = np.zeros((len(boxes), size, size, 3), dtype=np.uint8)
    for k, (bx0, by0, bx1, by1) in enumerate(boxes[:, :4].astype(np.int64)):
        bw, bh = bx1 - bx0 + 1, by1 - by0 + 1
        if bw < 2 or bh < 2:
            continue
        patch = np.zeros((bh, bw, 3), dtype=np.uint8)
        sx0, sy0 = max(bx0, 0), max(by0, 0)
        sx1, sy1 = min(bx1 + 1, w), min(by1 + 1, h)
        if sx1 <= sx0 or sy1 <= sy0:
            continue
        patch[sy0 - by0 : sy1 - by0, sx0 - bx0 : sx1 - bx0] = image[sy0:sy1, sx0:sx1]
        out[k] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return out


class MTCNN:
    """Three-stage cascaded face detector with 5 landmarks.

    ``min_size`` is the smallest face (pixels, in the image given) searched for.
    """

    def __init__(
        self,
        min_size: float = 20.0,
        thresholds: tuple[float, float, float] = (0.6, 0.7, 0.7),
        factor: float = 0.709,
        threads: int = 0,
    ) -> None:
        self.min_size = min_size
        self.thresholds = thresholds
        self.factor = factor
        self._pnet = onnx_session(shipped("mtcnn_pnet.onnx"), threads)
        self._rnet = onnx_session(shipped("mtcnn_rnet.onnx"), threads)
        self._onet = onnx_session(shipped("mtcnn_onet.onnx"), threads)

    def _stage1(self, image: npt.NDArray[np.uint8]) -> F32:
        h, w = image.shape[:2]
        m = 12.0 / self.min_size
        min_side = min(h, w) * m
        scale = m
        found: list[F32] = []
        previous = image
        while min_side >= 12:
            sh, sw = int(h * scale + 1), int(w * scale + 1)
            # each level from the one above (area averaging, as a direct resize would be):
            # about 4x less resizing than from the full image every time
            resized = np.asarray(
                cv2.resize(previous, (sw, sh), interpolation=cv2.INTER_AREA), dtype=np.uint8
            )
            previous = resized
            prob, reg = self._pnet.run(None, {"input": _normalise(resized[None])})
            prob, reg = prob[0], reg[0]
            ys, xs = np.nonzero(prob >= self.thresholds[0])
            if len(ys):
                score = prob[ys, xs]
                q1x = np.floor((2 * xs + 1) / scale)
                q1y = np.floor((2 * ys + 1) / scale)
                q2x = np.floor((2 * xs + 12) / scale)
                q2y = np.floor((2 * ys + 12) / scale)
                cand = np.stack([q1x, q1y, q2x, q2y, score, *reg[:, ys, xs]], axis=1)
                cand = cand.astype(np.float32)
                found.append(cand[_nms(cand[:, :4], cand[:, 4], 0.5)])
            scale *= self.factor
            min_side *= self.factor
        if not found:
            return np.zeros((0, 5), dtype=np.float32)
        boxes = np.concatenate(found)
        boxes = boxes[_nms(boxes[:, :4], boxes[:, 4], 0.7)]
        w_ = boxes[:, 2] - boxes[:, 0]
        h_ = boxes[:, 3] - boxes[:, 1]
        refined = np.stack(
            [
                boxes[:, 0] + boxes[:, 5] * w_,
                boxes[:, 1] + boxes[:, 6] * h_,
                boxes[:, 2] + boxes[:, 7] * w_,
                boxes[:, 3] + boxes[:, 8] * h_,
                boxes[:, 4],
            ],
            axis=1,
        )
        return _square(refined)

    def detect(self, image: npt.NDArray[np.uint8]) -> list[RawFace]:
        """All faces in an RGB image, best first."""
        boxes = self._stage1(image)
        if len(boxes) == 0:
            return []
        boxes[:, :4] = np.trunc(boxes[:, :4])
        prob, reg = self._rnet.run(None, {"input": _normalise(_patches(image, boxes, 24))})
        keep = prob > self.thresholds[1]
        boxes, reg = boxes[keep], reg[keep]
        boxes[:, 4] = prob[keep]
        if len(boxes) == 0:
            return []
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7)
        boxes = _square(_regress(boxes[pick], reg[pick]))
        boxes[:, :4] = np.trunc(boxes[:, :4])
        prob, reg, pts = self._onet.run(None, {"input": _normalise(_patches(image, boxes, 48))})
        keep = prob > self.thresholds[2]
        boxes, reg, pts = boxes[keep], reg[keep], pts[keep]
        if len(boxes) == 0:
            return []
        boxes[:, 4] = prob[keep]
        bw = boxes[:, 2] - boxes[:, 0] + 1
        bh = boxes[:, 3] - boxes[:, 1] + 1
        px = bw[:, None] * pts[:, :5] + boxes[:, 0:1] - 1
        py = bh[:, None] * pts[:, 5:] + boxes[:, 1:2] - 1
        points = np.stack([px, py], axis=2).astype(np.float32)
        boxes = _regress(boxes, reg)
        pick = _nms(boxes[:, :4], boxes[:, 4], 0.7, method="min")
        return [
            RawFace(
                box=(float(b[0]), float(b[1]), float(b[2]), float(b[3])),
                score=float(b[4]),
                points=points[i],
            )
            for i, b in zip(pick, boxes[pick], strict=True)
        ]
