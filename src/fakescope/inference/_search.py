"""When and where a video scan searches a frame for new faces (issue 30).

The grid: a whole-frame search (MTCNN, 50-130 ms) may run on every ``full_scan_every``-th
sampled frame. :class:`SearchRule` skips a grid search when the frame shows nothing new
since the frame was last searched: on small grey thumbnails, after undoing a global shift
(a camera pan, by a template match with the faces masked out), no patch of about a face's
size outside the faces followed (their boxes widened) changed by more than
:data:`CHANGE_LEVEL` grey levels on average. A face that enters changes its patch, so the
search runs there as before. When the camera stood still and what changed lies in at most
:data:`MAX_PART` of the frame, only that part is searched (the changed patches, widened by a
patch and by half their extent each way); the reference then takes that part of the frame,
so what changes elsewhere is still compared with how it looked when last searched. The whole
frame is searched at least every ``full_scan_skip + 1`` grid points. A sampled frame that
follows no face waits for the next grid point (and its rule) too, the last sampled frame is
one when it follows no face, and a face found there is looked for again in the frames since
the last grid point. ``full_scan_skip`` 0 is the old rule: every grid point, and every
sampled frame that follows no face, is searched whole.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.faces import Search
from fakescope.types import Box

__all__ = ["CHANGE_LEVEL", "Change", "SearchRule", "change_score", "changed_part", "patch_change"]

THUMB_SIDE = 160
"""Pixels of a thumbnail's longer side."""
CHANGE_LEVEL = 10.0
"""Mean absolute grey-level change of a face-sized patch (0-255) that calls for a search."""
FACE_WIDEN = 1.25
"""A followed face's box is widened by this share of its size on every side (hair, ears,
the head turning) and down to the frame's bottom edge (the body) before the change is
measured outside it."""

MAX_SHIFT = 4.0
"""Thumbnail pixels of camera pan undone before comparing (1/40 of the longer side)."""

MAX_PART = 0.5
"""A changed part of the frame larger than this share of it is searched whole."""

Thumb = npt.NDArray[np.float32]


def thumbnail(image: npt.NDArray[np.uint8]) -> tuple[Thumb, float]:
    """``image`` (RGB) as a grey float thumbnail of longer side :data:`THUMB_SIDE`, lightly
    blurred, and its scale (thumbnail pixels per frame pixel)."""
    h, w = image.shape[:2]
    scale = min(1.0, THUMB_SIDE / max(h, w, 1))
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    small = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    return np.asarray(cv2.GaussianBlur(small.astype(np.float32), (3, 3), 0), np.float32), scale


def _mask_faces(mask: npt.NDArray[np.bool_], boxes: Sequence[Box], scale: float) -> None:
    h, w = mask.shape
    for x0, y0, x1, y1 in boxes:
        bw, bh = (x1 - x0) * FACE_WIDEN, (y1 - y0) * FACE_WIDEN
        c0 = max(0, math.floor((x0 - bw) * scale))
        c1 = min(w, math.ceil((x1 + bw) * scale))
        r0 = max(0, math.floor((y0 - bh) * scale))
        if c1 > c0 and r0 < h:
            mask[r0:, c0:c1] = False


def _moved(cur: Thumb, dx: float, dy: float) -> Thumb:
    h, w = cur.shape
    shift = np.array([[1, 0, dx], [0, 1, dy]], dtype=np.float32)
    return np.asarray(cv2.warpAffine(cur, shift, (w, h), flags=cv2.INTER_LINEAR), np.float32)


def _background_shift(ref: Thumb, cur: Thumb, mask: npt.NDArray[np.bool_]) -> tuple[float, float]:
    """The move ``(tx, ty)`` (thumbnail pixels, at most :data:`MAX_SHIFT` each way, sub-pixel)
    that best lays ``cur`` back onto ``ref`` where ``mask`` is set: a camera pan undone, the
    faces, which move on their own, masked out (``cv2.matchTemplate`` with a mask)."""
    h, w = cur.shape
    m = math.ceil(MAX_SHIFT)
    inner = mask[m : h - m, m : w - m]
    if h <= 2 * m + 1 or w <= 2 * m + 1 or not inner.any():
        return 0.0, 0.0
    templ = np.ascontiguousarray(ref[m : h - m, m : w - m])
    cost = cv2.matchTemplate(cur, templ, cv2.TM_SQDIFF, mask=inner.astype(np.float32))
    y, x = np.unravel_index(int(np.argmin(cost)), cost.shape)

    def vertex(c0: float, c1: float, c2: float) -> float:
        curve = c0 - 2 * c1 + c2
        return 0.0 if curve <= 0 else max(-0.5, min(0.5, (c0 - c2) / (2 * curve)))

    fx = vertex(*cost[y, x - 1 : x + 2]) if 0 < x < 2 * m else 0.0
    fy = vertex(*cost[y - 1 : y + 2, x]) if 0 < y < 2 * m else 0.0
    return -(x - m + fx), -(y - m + fy)


@dataclass(frozen=True)
class Change:
    """How a frame's thumbnail changed against the reference (see :func:`patch_change`):
    the mean absolute change of the face-sized patch around each thumbnail pixel (``patch``),
    where such a patch lies mostly outside the faces (``full``), the global shift undone, and
    the face side in thumbnail pixels (``side``; the patches are that, rounded)."""

    patch: npt.NDArray[np.float32]
    full: npt.NDArray[np.bool_]
    shift: tuple[float, float]
    side: float

    @property
    def score(self) -> float:
        """The largest patch change (``inf`` when no patch could be compared)."""
        return float(self.patch[self.full].max()) if self.full.any() else math.inf


def patch_change(
    ref: Thumb, cur: Thumb, scale: float, boxes: Sequence[Box], min_face_px: float
) -> Change | None:
    """The change of every face-sized patch between thumbnails ``ref`` and ``cur`` (taken at
    ``scale``), after undoing their global shift, outside ``boxes`` (frame pixels, widened as
    :data:`FACE_WIDEN` says); None when the thumbnails differ in shape or nothing is left to
    compare."""
    if ref.shape != cur.shape:
        return None
    h, w = cur.shape
    mask = np.ones((h, w), dtype=bool)
    _mask_faces(mask, boxes, scale)
    if not mask.any():
        return None
    dx, dy = _background_shift(ref, cur, mask)
    diff = np.abs(_moved(cur, dx, dy) - ref)
    bx, by = math.ceil(abs(dx)) + 1, math.ceil(abs(dy)) + 1
    mask[:by] = mask[h - by :] = False
    mask[:, :bx] = mask[:, w - bx :] = False
    side = max(2, round(min_face_px * scale))
    weight = cv2.blur(mask.astype(np.float32), (side, side))
    patch = cv2.blur(np.where(mask, diff, 0.0).astype(np.float32), (side, side))
    # the mean over the masked-in pixels of each patch that is mostly masked in
    full = weight >= 0.5
    mean = np.zeros(patch.shape, dtype=np.float32)
    mean[full] = patch[full] / weight[full]
    return Change(mean, np.asarray(full, dtype=bool), (dx, dy), max(2.0, min_face_px * scale))


def change_score(
    ref: Thumb, cur: Thumb, scale: float, boxes: Sequence[Box], min_face_px: float
) -> float:
    """The largest mean absolute change of a face-sized patch between thumbnails ``ref``
    and ``cur`` (taken at ``scale``), after undoing their global shift, outside ``boxes``
    (frame pixels, widened as :data:`FACE_WIDEN` says); ``inf`` when the thumbnails differ
    in shape or nothing is left to compare."""
    change = patch_change(ref, cur, scale, boxes, min_face_px)
    return math.inf if change is None else change.score


def changed_part(
    change: Change, level: float, shape: tuple[int, int]
) -> tuple[int, int, int, int] | None:
    """The thumbnail rectangle ``(r0, c0, r1, c1)`` a search must cover to see everything
    that changed by more than ``level``: the changed patches' centres, widened by a patch
    (``change.side`` thumbnail pixels) and by half the rectangle's size on every side. None when
    that is more than :data:`MAX_PART` of the thumbnail, or the camera moved (a part then
    means nothing: the whole frame is searched)."""
    if max(abs(change.shift[0]), abs(change.shift[1])) > 0.5:
        return None
    rows, cols = np.nonzero(change.full & (change.patch > level))
    if not len(rows):
        return None
    h, w = shape
    r0, r1, c0, c1 = int(rows.min()), int(rows.max()) + 1, int(cols.min()), int(cols.max()) + 1
    pad_r = math.ceil(change.side + (r1 - r0) / 2)
    pad_c = math.ceil(change.side + (c1 - c0) / 2)
    r0, r1 = max(0, r0 - pad_r), min(h, r1 + pad_r)
    c0, c1 = max(0, c0 - pad_c), min(w, c1 + pad_c)
    if (r1 - r0) * (c1 - c0) > MAX_PART * h * w:
        return None
    return r0, c0, r1, c1


class SearchRule:
    """Decides, per grid point, whether and where the frame is searched (see the module doc).

    Call :meth:`due` at each grid point with the frame and the faces followed into it, and
    :meth:`searched` after every search (the rule's or a lost face's). The reference is what
    every part of the frame looked like when that part was last searched: a search of a part
    updates only that part of it."""

    def __init__(self, skip: int, min_face_px: float, level: float = CHANGE_LEVEL) -> None:
        self.skip = skip
        self.min_face_px = min_face_px
        self.level = level
        self.since_whole = 0  # grid points since the last whole-frame search
        self._ref: Thumb | None = None
        self._ref_boxes: list[Box] = []
        # due's frame, its thumbnail and the thumbnail rectangle it asked to search
        self._last: tuple[npt.NDArray[np.uint8], Thumb, tuple[int, int, int, int] | None] | None
        self._last = None

    def due(self, image: npt.NDArray[np.uint8], followed: Sequence[Box]) -> Search:
        """Whether this grid point's frame must be searched: ``True`` whole, ``False`` not at
        all, or a box, the part of it (frame pixels) where something changed."""
        if self.skip <= 0 or self._ref is None or self.since_whole >= self.skip:
            return True
        cur, scale = thumbnail(image)
        boxes = [*self._ref_boxes, *followed]
        change = patch_change(self._ref, cur, scale, boxes, self.min_face_px)
        if change is not None and change.score <= self.level:
            self._last = (image, cur, None)
            self.since_whole += 1
            return False
        part = None if change is None else changed_part(change, self.level, cur.shape)
        self._last = (image, cur, part)  # searched() on the same frame reuses it
        if part is None:
            return True
        r0, c0, r1, c1 = part
        return (c0 / scale, r0 / scale, c1 / scale, r1 / scale)

    def searched(self, image: npt.NDArray[np.uint8], faces: Sequence[Box]) -> None:
        """A search ran on ``image`` and found ``faces``: the reference is updated where it
        looked (the part :meth:`due` named for this frame, else the whole frame)."""
        if self.skip <= 0:
            return
        last, self._last = self._last, None
        self._ref_boxes = list(faces)
        if last is None or last[0] is not image:
            self._ref, self.since_whole = thumbnail(image)[0], 0
            return
        cur, part = last[1], last[2]
        if part is None or self._ref is None or self._ref.shape != cur.shape:
            self._ref, self.since_whole = cur, 0
            return
        r0, c0, r1, c1 = part
        self._ref[r0:r1, c0:c1] = cur[r0:r1, c0:c1]
        self.since_whole += 1
