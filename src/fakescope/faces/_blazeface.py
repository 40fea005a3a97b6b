"""MediaPipe BlazeFace short-range (128x128, Apache-2.0) on LiteRT.

Used on regions of interest around faces already found, where the face fills a good part of
the region; it does not see small faces in a whole frame (MTCNN does that).
"""

from __future__ import annotations

import functools
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope._runtime import litert_interpreter
from fakescope.faces._mtcnn import RawFace, _nms
from fakescope.models._assets import shipped

__all__ = ["BlazeFace"]

_SIZE = 128


def _anchors() -> npt.NDArray[np.float32]:
    """SSD anchor centres of the short-range model: stride 8 (2 a cell), 16 (6 a cell)."""
    centres: list[tuple[float, float]] = []
    for stride, per_cell in ((8, 2), (16, 6)):
        cells = _SIZE // stride
        for y in range(cells):
            for x in range(cells):
                centres.extend([((x + 0.5) / cells, (y + 0.5) / cells)] * per_cell)
    return np.asarray(centres, dtype=np.float32)


class BlazeFace:
    """Faces in a (roughly square) RGB image where faces are at least ~15% of its side."""

    def __init__(self, score_threshold: float = 0.5, threads: int = 1) -> None:
        self.score_threshold = score_threshold
        self._threads = threads
        self._anchors = _anchors()

    @functools.cached_property
    def _model(self) -> tuple[Any, int, int, int]:
        """The interpreter and its input and output indices, loaded on first use (a photo's
        faces are searched with MTCNN alone)."""
        interp = litert_interpreter(shipped("blazeface_short.tflite"), self._threads)
        outputs = {d["name"]: d["index"] for d in interp.get_output_details()}
        index = interp.get_input_details()[0]["index"]
        return interp, index, outputs["regressors"], outputs["classificators"]

    def detect(self, image: npt.NDArray[np.uint8]) -> list[RawFace]:
        """Faces in ``image``, with boxes and points in its pixel coordinates.

        Points are BlazeFace's (image-left eye, image-right eye, nose, mouth centre, ears) -
        only the first two are used, to orient the landmark model.
        """
        h, w = image.shape[:2]
        blob = cv2.resize(image, (_SIZE, _SIZE), interpolation=cv2.INTER_AREA)
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
        reg, scores, anchors = reg[keep] / _SIZE, scores[keep], self._anchors[keep]
        cx = reg[:, 0] + anchors[:, 0]
        cy = reg[:, 1] + anchors[:, 1]
        boxes = np.stack(
            [cx - reg[:, 2] / 2, cy - reg[:, 3] / 2, cx + reg[:, 2] / 2, cy + reg[:, 3] / 2], axis=1
        )
        boxes *= np.array([w, h, w, h], dtype=np.float32)
        points = reg[:, 4:16].reshape(-1, 6, 2) + anchors[:, None, :]
        points *= np.array([w, h], dtype=np.float32)
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
