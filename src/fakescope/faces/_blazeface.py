"""MediaPipe BlazeFace (Apache-2.0) on LiteRT: short range (128x128) and full range (192x192).

Short range is used on regions of interest around faces already found, where the face fills a
good part of the region, and on a picture a face fills; it does not see small faces in a whole
frame (MTCNN does that). Full range looks at a whole frame, and at overlapping square tiles
of it, for the ``blazeface`` face detector.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope._assets import shipped
from fakescope._runtime import litert_interpreter
from fakescope.faces._mtcnn import RawFace, _nms

__all__ = ["FULL_RANGE", "SHORT_RANGE", "BlazeFace"]


@dataclass(frozen=True)
class _Model:
    """One BlazeFace model: its file, input side and SSD anchor layout (stride, anchors per
    cell), as in MediaPipe's ``face_detection_*.pbtxt``."""

    file: str
    size: int
    layers: tuple[tuple[int, int], ...]


SHORT_RANGE = _Model("blazeface_short.tflite", 128, ((8, 2), (16, 6)))
"""Faces within ~2 m of a selfie camera: at least ~15 % of the picture's side."""
FULL_RANGE = _Model("blazeface_full.tflite", 192, ((4, 1),))
"""Faces up to ~5 m away (the sparse full-range model): down to ~5 % of the side."""


def _anchors(model: _Model) -> npt.NDArray[np.float32]:
    """SSD anchor centres of ``model``, in [0, 1] (fixed anchor size: the regressors give the
    box size directly)."""
    centres: list[tuple[float, float]] = []
    for stride, per_cell in model.layers:
        cells = model.size // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, dtype=np.float32)


class BlazeFace:
    """Faces in an RGB image, letterboxed into the model's square input (short range: faces at
    least ~15 % of the side; ``FULL_RANGE``: smaller ones too)."""

    def __init__(
        self, score_threshold: float = 0.5, threads: int = 1, model: _Model = SHORT_RANGE
    ) -> None:
        self.score_threshold = score_threshold
        self.spec = model
        self._threads = threads
        self._anchors = _anchors(model)

    @functools.cached_property
    def _model(self) -> tuple[Any, int, int, int]:
        """The interpreter and its input and output indices, loaded on first use (a photo's
        faces are searched with MTCNN alone)."""
        interp = litert_interpreter(shipped(self.spec.file), self._threads)
        details = sorted(interp.get_output_details(), key=lambda d: int(d["shape"][-1]))
        index = interp.get_input_details()[0]["index"]
        # (1, anchors, 1) scores and (1, anchors, 16) regressors, whatever the names
        return interp, index, details[1]["index"], details[0]["index"]

    def detect(self, image: npt.NDArray[np.uint8]) -> list[RawFace]:
        """Faces in ``image``, with boxes and points in its pixel coordinates.

        Points are BlazeFace's (image-left eye, image-right eye, nose, mouth centre, ears) -
        only the first two are used, to orient the landmark model.
        """
        h, w = image.shape[:2]
        size = self.spec.size
        f = size / max(h, w)
        rw, rh = max(1, round(w * f)), max(1, round(h * f))
        x0, y0 = (size - rw) // 2, (size - rh) // 2
        small = cv2.resize(image, (rw, rh), interpolation=cv2.INTER_AREA)
        blob = small
        if (rw, rh) != (size, size):  # letterbox: the model sees the picture undistorted
            blob = np.zeros((size, size, 3), dtype=np.uint8)
            blob[y0 : y0 + rh, x0 : x0 + rw] = small
        blob_f = (blob.astype(np.float32) / 127.5 - 1.0)[None]
        interp, index, reg_index, cls_index = self._model
        interp.set_tensor(index, blob_f)
        interp.invoke()
        reg = interp.get_tensor(reg_index)[0]
        logits = interp.get_tensor(cls_index)[0, :, 0]
        scores = 1.0 / (1.0 + np.exp(-np.clip(logits, -50.0, 50.0)))
        keep = np.nonzero(scores >= self.score_threshold)[0]
        if keep.size == 0:
            return []
        reg, scores, anchors = reg[keep] / size, scores[keep], self._anchors[keep]
        cx = reg[:, 0] + anchors[:, 0]
        cy = reg[:, 1] + anchors[:, 1]
        boxes = np.stack(
            [cx - reg[:, 2] / 2, cy - reg[:, 3] / 2, cx + reg[:, 2] / 2, cy + reg[:, 3] / 2], axis=1
        )
        boxes = (boxes * size - np.array([x0, y0, x0, y0], dtype=np.float32)) / f
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        points = (points * size - np.array([x0, y0], dtype=np.float32)) / f
        pick = _nms(boxes.astype(np.float32), scores.astype(np.float32), 0.3)
        return [
            RawFace(
                box=(
                    float(boxes[i, 0]),
                    float(boxes[i, 1]),
                    float(boxes[i, 2]),
                    float(boxes[i, 3]),
                ),
                score=float(scores[i]),
                points=points[i].astype(np.float32),
            )
            for i in pick
        ]
