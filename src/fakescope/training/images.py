"""The one image reader of the trainers and data-preparation scripts."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError

__all__ = ["read_rgb"]


def read_rgb(path: str | Path) -> npt.NDArray[np.uint8]:
    """An image file as an ``H x W x 3`` uint8 RGB array.

    Decoded by OpenCV (``cv2.imread`` with ``IMREAD_COLOR``: EXIF orientation applied, grey
    and alpha images made 3-channel, 16-bit ones scaled to 8). A file that is missing or that
    OpenCV cannot decode raises :class:`~fakescope.errors.ConfigError` (a ``ValueError``)
    naming it.
    """
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        why = "OpenCV cannot decode it" if Path(path).is_file() else "no such file"
        raise ConfigError(f"cannot read image {path}: {why}")
    return np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
