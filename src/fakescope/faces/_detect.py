"""Face detectors: a registry of strategies that turn one RGB frame into :class:`FaceBox` es.

Every detector ends in the same FaceMesh step, so boxes and 5-point landmarks mean the same
thing whichever strategy found the face: the box is the mesh's extent, the landmarks are
derived from the mesh (eye centres, nose tip, mouth corners).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.faces._blazeface import FULL_RANGE, BlazeFace
from fakescope.faces._mesh import FaceMesh, five_points
from fakescope.faces._mtcnn import MTCNN, RawFace
from fakescope.registry import Registry
from fakescope.types import Box, FaceBox

__all__ = [
    "FACE_DETECTORS",
    "BlazeFaceDetector",
    "FaceDetector",
    "HybridFaceDetector",
    "MTCNNFaceDetector",
    "iou",
]

Image = npt.NDArray[np.uint8]
_MTCNN_WINDOW = 12  # pixels: MTCNN's first stage looks at 12x12 windows


Search = bool | Box
"""What a search for new faces covers: ``True`` the whole frame, ``False`` nothing, a box
``(x0, y0, x1, y1)`` (frame pixels) only that part of the frame."""

FullScan = Search | Callable[[Sequence[Box]], Search]
"""Whether (and where) to search the frame for new faces: a :data:`Search`, or a function
that a detector which follows faces calls with the boxes it followed into the frame, to
decide then. A detector that cannot search part of a frame searches all of it."""


class FaceDetector(Protocol):
    """Finds faces in one frame.

    ``hints`` are the boxes found in the previous sampled frame of the same video; a detector
    may look around them first. ``full_scan`` asks it to search the whole frame, or the part
    of it a box names, for new faces as well (see :data:`FullScan`). ``searches`` counts the
    searches for new faces it ran (asked for, or its own, e.g. for a face it lost), so a
    caller can tell whether a call searched.
    """

    searches: int

    def detect(
        self, image: Image, frame_index: int, hints: Sequence[Box] = (), full_scan: FullScan = True
    ) -> list[FaceBox]: ...

    @property
    def landmark_seconds(self) -> float:
        """Time spent in the landmark model so far (reported as its own stage)."""
        ...


FACE_DETECTORS: Registry[FaceDetector] = Registry("face detector")


def iou(a: Box, b: Box) -> float:
    """Intersection over union of two boxes."""
    w = max(0.0, min(a[2], b[2]) - max(a[0], b[0]))
    h = max(0.0, min(a[3], b[3]) - max(a[1], b[1]))
    inter = w * h
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union > 0 else 0.0


@dataclass(frozen=True)
class _Region:
    """Where to run the landmark model: centre, square side and eye-line angle (degrees)."""

    centre: tuple[float, float]
    side: float
    angle: float


def _region(raw: RawFace, side_scale: float) -> _Region:
    x0, y0, x1, y1 = raw.box
    (lx, ly), (rx, ry) = raw.points[0], raw.points[1]
    angle = math.degrees(math.atan2(float(ry - ly), float(rx - lx)))
    return _Region(((x0 + x1) / 2, (y0 + y1) / 2), side_scale * max(x1 - x0, y1 - y0), angle)


def _pad_square(image: Image, border: float) -> tuple[Image, int, int]:
    """``image`` centred on a black square of side ``(1 + 2 * border) * max(h, w)``, and
    where its top-left corner went."""
    h, w = image.shape[:2]
    side = round((1 + 2 * border) * max(h, w))
    x0, y0 = (side - w) // 2, (side - h) // 2
    out = np.zeros((side, side, 3), dtype=np.uint8)
    out[y0 : y0 + h, x0 : x0 + w] = image
    return out, x0, y0


def _shifted(raw: RawFace, dx: float, dy: float, scale: float = 1.0) -> RawFace:
    """``raw`` moved by ``(dx, dy)``, then scaled by ``scale`` (into another image's pixels)."""
    x0, y0, x1, y1 = raw.box
    return RawFace(
        box=((x0 + dx) * scale, (y0 + dy) * scale, (x1 + dx) * scale, (y1 + dy) * scale),
        score=raw.score,
        points=(raw.points + np.array([dx, dy], dtype=np.float32)) * np.float32(scale),
    )


def _offset(region: _Region, dx: float, dy: float) -> _Region:
    return _Region((region.centre[0] + dx, region.centre[1] + dy), region.side, region.angle)


def _crop_square(image: Image, centre: tuple[float, float], side: float) -> tuple[Image, int, int]:
    """A zero-padded square crop and the frame coordinates of its top-left corner."""
    h, w = image.shape[:2]
    half = round(side / 2)
    x0, y0 = round(centre[0]) - half, round(centre[1]) - half
    out = np.zeros((2 * half, 2 * half, 3), dtype=np.uint8)
    sx0, sy0, sx1, sy1 = max(x0, 0), max(y0, 0), min(x0 + 2 * half, w), min(y0 + 2 * half, h)
    if sx1 > sx0 and sy1 > sy0:
        out[sy0 - y0 : sy1 - y0, sx0 - x0 : sx1 - x0] = image[sy0:sy1, sx0:sx1]
    return out, x0, y0


class _MeshStage:
    """The shared last step: landmark model on each region, presence check, de-duplication."""

    def __init__(self, min_presence: float) -> None:
        self.mesh = FaceMesh()
        self.min_presence = min_presence
        self.seconds = 0.0

    def faces(self, image: Image, frame_index: int, regions: Sequence[_Region]) -> list[FaceBox]:
        found: list[FaceBox] = []
        for region in regions:
            start = time.perf_counter()
            result = self.mesh.run(image, region.centre, region.side, region.angle)
            self.seconds += time.perf_counter() - start
            if result.presence < self.min_presence:
                continue
            xy = result.points[:, :2]
            box: Box = (
                float(xy[:, 0].min()),
                float(xy[:, 1].min()),
                float(xy[:, 0].max()),
                float(xy[:, 1].max()),
            )
            if any(iou(box, f.box) > 0.5 for f in found):
                continue
            found.append(
                FaceBox(
                    frame_index=frame_index,
                    box=box,
                    score=result.presence,
                    landmarks=five_points(result.points),
                    mesh=result.points,
                )
            )
        return found


class _FilledFrame:
    """The search for a face that fills the picture (a profile photo or a tight face crop,
    cut at the brows or chin): MTCNN's cascade misses most of them, because its windows need
    the whole face inside the frame. BlazeFace on the frame centred in a black square with a
    ``border`` on each side sees the face at a fraction of its input, as it was trained to.
    Run only after a whole-frame search found nothing; FaceMesh's presence check then
    decides, as for every other face."""

    def __init__(self, blaze: BlazeFace, border: float = 0.3, max_side: int = 256) -> None:
        self.blaze = blaze
        self.border = border
        self.max_side = max_side

    def regions(self, image: Image) -> list[_Region]:
        # BlazeFace sees 128 px: a frame larger than ``max_side`` is shrunk before padding, so
        # a faceless 1080p frame does not cost a 3,000-px black square.
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        small = image
        if scale < 1.0:
            size = (max(1, round(w * scale)), max(1, round(h * scale)))
            small = np.asarray(cv2.resize(image, size, interpolation=cv2.INTER_AREA), np.uint8)
        padded, x0, y0 = _pad_square(small, self.border)
        back = 1.0 / scale
        # BlazeFace boxes are tight (brows to chin): MediaPipe widens them by 1.5.
        return [_region(_shifted(r, -x0, -y0, back), 1.5) for r in self.blaze.detect(padded)]


class MTCNNFaceDetector:
    """MTCNN on the frame downscaled to ``max_side``, then FaceMesh. Slow, high recall. When
    it finds nothing, BlazeFace looks for a face that fills the picture (``_FilledFrame``)."""

    def __init__(
        self, max_side: int = 960, min_face_px: float = 40.0, min_presence: float = 0.5
    ) -> None:
        self.max_side = max_side
        self.min_face_px = min_face_px
        self._mtcnn = MTCNN()
        self._mesh = _MeshStage(min_presence)
        self._filled = _FilledFrame(BlazeFace())
        self.searches = 0  # whole-frame searches so far

    @property
    def landmark_seconds(self) -> float:
        return self._mesh.seconds

    def full_frame(self, image: Image) -> list[RawFace]:
        """MTCNN faces of the whole frame, in frame pixels."""
        h, w = image.shape[:2]
        scale = min(1.0, self.max_side / max(h, w))
        if min(h, w) * scale < _MTCNN_WINDOW:
            # Thinner than MTCNN's smallest window once scaled: no face can be found, and
            # a very thin frame would scale to a side of 0 pixels.
            return []
        small = image
        if scale < 1.0:
            small = np.asarray(
                cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA),
                dtype=np.uint8,
            )
        self._mtcnn.min_size = max(12.0, 0.85 * self.min_face_px * scale)
        out = []
        for raw in self._mtcnn.detect(small):
            box = (raw.box[0] / scale, raw.box[1] / scale, raw.box[2] / scale, raw.box[3] / scale)
            out.append(RawFace(box=box, score=raw.score, points=raw.points / scale))
        return out

    def detect(
        self, image: Image, frame_index: int, hints: Sequence[Box] = (), full_scan: FullScan = True
    ) -> list[FaceBox]:
        self.searches += 1
        regions = [_region(raw, 1.1) for raw in self.full_frame(image)]
        return self.filled_if_none(
            image, frame_index, self._mesh.faces(image, frame_index, regions)
        )

    def filled_if_none(self, image: Image, frame_index: int, faces: list[FaceBox]) -> list[FaceBox]:
        """``faces`` when there are any; else the face that fills the picture, if one does."""
        if faces:
            return faces
        return self._mesh.faces(image, frame_index, self._filled.regions(image))


class HybridFaceDetector:
    """BlazeFace around the previous frame's faces (in a ``roi_scale`` square, then a
    ``wide_scale`` one); MTCNN on a downscaled frame when asked for a full scan or when a face
    was lost (a hint not found again). Without hints and without ``full_scan`` it finds
    nothing: whoever calls it decides when a frame that follows no face is searched. Both end
    in FaceMesh."""

    def __init__(
        self,
        max_side: int = 960,
        min_face_px: float = 40.0,
        roi_scale: float = 2.4,
        min_presence: float = 0.5,
        wide_scale: float = 4.0,
    ) -> None:
        self.roi_scale = roi_scale
        self.wide_scale = wide_scale
        self._full = MTCNNFaceDetector(max_side, min_face_px, min_presence)
        self._blaze = self._full._filled.blaze
        self._mesh = self._full._mesh
        self.searches = 0  # searches for new faces so far (asked for, or a face lost)
        self.part_searches = 0  # of them, searches of part of the frame

    @property
    def landmark_seconds(self) -> float:
        return self._mesh.seconds

    def whole_frame(self, image: Image) -> list[_Region]:
        """Where the whole-frame search for new faces puts the landmark model: MTCNN's faces."""
        return [_region(raw, 1.1) for raw in self._full.full_frame(image)]

    def _search(self, image: Image, area: Search) -> list[_Region]:
        """:meth:`whole_frame` on the frame, or on the part ``area`` (a box) of it."""
        if isinstance(area, bool):
            return self.whole_frame(image)
        h, w = image.shape[:2]
        x0, y0 = max(0, math.floor(area[0])), max(0, math.floor(area[1]))
        x1, y1 = min(w, math.ceil(area[2])), min(h, math.ceil(area[3]))
        if x1 - x0 < _MTCNN_WINDOW or y1 - y0 < _MTCNN_WINDOW:
            return []
        self.part_searches += 1
        part = np.ascontiguousarray(image[y0:y1, x0:x1])
        return [_offset(r, x0, y0) for r in self.whole_frame(part)]

    def _around(self, image: Image, hint: Box, scale: float) -> list[RawFace]:
        centre = ((hint[0] + hint[2]) / 2, (hint[1] + hint[3]) / 2)
        side = scale * max(hint[2] - hint[0], hint[3] - hint[1])
        crop, x0, y0 = _crop_square(image, centre, side)
        if crop.size == 0:
            return []
        return [_shifted(r, x0, y0) for r in self._blaze.detect(crop)]

    def detect(
        self, image: Image, frame_index: int, hints: Sequence[Box] = (), full_scan: FullScan = True
    ) -> list[FaceBox]:
        regions: list[_Region] = []
        lost = False  # a face followed into this frame that BlazeFace did not find again
        for hint in hints:
            # A face that moved more than its width since the last sampled frame: look again
            # in a wider square (the face is then smaller in BlazeFace's 128-px input).
            raws = self._around(image, hint, self.roi_scale) or self._around(
                image, hint, self.wide_scale
            )
            if not raws:
                lost = True
            # BlazeFace boxes are tight (brows to chin): MediaPipe widens them by 1.5.
            regions.extend(_region(r, 1.5) for r in raws)
        faces = self._mesh.faces(image, frame_index, regions)
        if callable(full_scan):  # decided once the faces followed are found (SearchRule)
            full_scan = full_scan([f.box for f in faces])
        if lost:  # it may be anywhere
            full_scan = True
        if full_scan is not False:
            self.searches += 1
            more = self._mesh.faces(image, frame_index, self._search(image, full_scan))
            faces.extend(f for f in more if all(iou(f.box, g.box) <= 0.3 for g in faces))
            if full_scan is True:
                faces = self._full.filled_if_none(image, frame_index, faces)
        return faces


class BlazeFaceDetector(HybridFaceDetector):
    """:class:`HybridFaceDetector` with BlazeFace full range (192 px, sparse) for the
    whole-frame search instead of MTCNN: on the frame letterboxed, and, when one side is at
    least ``tile_ratio`` times the other, on overlapping squares along the long side (a 16:9
    frame: 3 squares), where faces are 1.8x larger in the model's input."""

    def __init__(self, tile_ratio: float = 1.3, **hybrid: Any) -> None:
        super().__init__(**hybrid)
        self.tile_ratio = tile_ratio
        self._far = BlazeFace(model=FULL_RANGE)

    def whole_frame(self, image: Image) -> list[_Region]:
        h, w = image.shape[:2]
        raws = list(self._far.detect(image))
        short, long = min(h, w), max(h, w)
        if long >= self.tile_ratio * short:
            n = math.ceil(long / short) + 1
            for k in range(n):
                off = round(k * (long - short) / (n - 1))
                if w >= h:
                    tile, dx, dy = image[:, off : off + short], off, 0
                else:
                    tile, dx, dy = image[off : off + short], 0, off
                found = self._far.detect(np.ascontiguousarray(tile))
                raws.extend(_shifted(r, dx, dy) for r in found)
        # BlazeFace boxes are tight (brows to chin): MediaPipe widens them by 1.5.
        return [_region(r, 1.5) for r in raws]


@FACE_DETECTORS.register("hybrid")
def _hybrid(**kwargs: float) -> FaceDetector:
    """The default: BlazeFace around the faces already followed, MTCNN for the whole-frame
    search for new faces, FaceMesh landmarks for every face."""
    return HybridFaceDetector(**kwargs)  # type: ignore[arg-type]


@FACE_DETECTORS.register("blazeface")
def _blazeface(**kwargs: float) -> FaceDetector:
    """BlazeFace short range around the faces already followed, BlazeFace full range on the
    whole frame and its tiles for new faces (no MTCNN), FaceMesh landmarks for every face:
    several times faster than ``hybrid``'s whole-frame search; misses faces below ~50 px in a
    1080p frame that MTCNN finds (README: Face search)."""
    return BlazeFaceDetector(**kwargs)


@FACE_DETECTORS.register("mtcnn")
def _mtcnn(**kwargs: float) -> FaceDetector:
    """MTCNN on every frame (downscaled), then FaceMesh landmarks: slower, high recall."""
    return MTCNNFaceDetector(**kwargs)  # type: ignore[arg-type]
