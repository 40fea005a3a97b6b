"""MediaPipe FaceMesh (468 points, Apache-2.0) on LiteRT, and the 5 alignment points it gives."""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from fakescope._assets import shipped
from fakescope._runtime import litert_interpreter

__all__ = ["FaceMesh", "MeshResult", "five_points"]

_SIZE = 192
# FaceMesh indices: image-left eye (subject's right), image-right eye, nose tip, mouth corners.
_LEFT_EYE = (33, 133, 159, 145)
_RIGHT_EYE = (362, 263, 386, 374)
_NOSE = 1
_MOUTH_LEFT = 61
_MOUTH_RIGHT = 291


@dataclass(frozen=True, eq=False)
class MeshResult:
    """468x3 landmarks in frame pixels (z in the same scale) and the face-presence score."""

    points: npt.NDArray[np.float32]
    presence: float


def five_points(mesh: npt.NDArray[np.float32]) -> npt.NDArray[np.float32]:
    """The 5 ArcFace-order points (eyes, nose, mouth corners) from a 468-point mesh."""
    xy = mesh[:, :2]
    return np.stack(
        [
            xy[list(_LEFT_EYE)].mean(axis=0),
            xy[list(_RIGHT_EYE)].mean(axis=0),
            xy[_NOSE],
            xy[_MOUTH_LEFT],
            xy[_MOUTH_RIGHT],
        ]
    ).astype(np.float32)


class FaceMesh:
    """Runs the landmark model on a face region given by a centre, a side and an angle."""

    def __init__(self, threads: int = 1) -> None:
        self._interp = litert_interpreter(shipped("face_landmark.tflite"), threads)
        self._input = self._interp.get_input_details()[0]["index"]
        outputs = {d["name"]: d["index"] for d in self._interp.get_output_details()}
        self._points = outputs["conv2d_21"]
        self._presence = outputs["conv2d_31"]

    def run(
        self,
        image: npt.NDArray[np.uint8],
        centre: tuple[float, float],
        side: float,
        angle_deg: float = 0.0,
    ) -> MeshResult:
        """Landmarks of the face centred at ``centre`` in a square of ``side`` px rotated by
        ``angle_deg`` (the eye line's angle), returned in ``image`` pixels."""
        scale = _SIZE / side
        matrix = cv2.getRotationMatrix2D(centre, angle_deg, scale)
        matrix[0, 2] += _SIZE / 2 - centre[0]
        matrix[1, 2] += _SIZE / 2 - centre[1]
        crop = cv2.warpAffine(
            image, matrix, (_SIZE, _SIZE), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
        )
        self._interp.set_tensor(self._input, (crop.astype(np.float32) / 255.0)[None])
        self._interp.invoke()
        pts = self._interp.get_tensor(self._points).reshape(468, 3).astype(np.float32)
        logit = float(self._interp.get_tensor(self._presence).reshape(-1)[0])
        inverse = cv2.invertAffineTransform(matrix)
        xy = pts[:, :2] @ inverse[:, :2].T + inverse[:, 2]
        out = np.concatenate([xy, pts[:, 2:3] / scale], axis=1).astype(np.float32)
        return MeshResult(points=out, presence=1.0 / (1.0 + np.exp(-logit)))
