"""The whole-image synthesis detectors: registry contract, weight files and the data helpers
the CNN recipe shares (splits, manifest and image readers). The shipped CNNs' floors are in
test_synthesis_cnn.py."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from fakescope.errors import ConfigError, ModelError
from fakescope.models import asset_path
from fakescope.synthesis import (
    DEFAULT_SYNTHESIS_DETECTOR,
    SYNTHESIS_DETECTORS,
    create_synthesis_detector,
    synthesis_detector_argument,
)


def _natural(example_face: npt.NDArray[np.uint8], side: int = 288) -> npt.NDArray[np.uint8]:
    """A natural-ish photo at least ``side`` px: the example face, mirrored out to size."""
    h, w = example_face.shape[:2]
    img = cv2.copyMakeBorder(
        example_face, 0, max(0, side - h), 0, max(0, side - w), cv2.BORDER_REFLECT
    )
    return np.ascontiguousarray(img)


# --- registry contract ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHESIS_DETECTORS.names())
def test_contract(name: str, example_face: npt.NDArray[np.uint8]) -> None:
    detector = create_synthesis_detector(name)
    info = detector.info
    assert info.name and len(info.sha256) == 64 and info.version
    assert detector.min_side >= 32 and 0.0 < detector.threshold < 1.0
    img = _natural(example_face, max(288, detector.min_side))
    raw = detector.score([img, img[::-1].copy()])
    assert raw.shape == (2,) and raw.dtype == np.float64 and np.isfinite(raw).all()
    assert detector.score([]).shape == (0,)
    grid = np.linspace(-30.0, 30.0, 121)
    p = detector.probability(grid)
    assert p.shape == grid.shape and ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= 0).all() and p[-1] > p[0]
    with pytest.raises(ValueError, match="too small"):
        detector.score([img[: detector.min_side - 1]])


def test_default_and_argument(tmp_path: Path) -> None:
    assert DEFAULT_SYNTHESIS_DETECTOR in SYNTHESIS_DETECTORS
    assert synthesis_detector_argument("cnn-v3") == "cnn-v3"
    copy = tmp_path / "w.json"
    shutil.copy(asset_path("synth_cnn_v3.json"), copy)
    assert synthesis_detector_argument(str(copy)) == str(copy)
    with pytest.raises(ValueError, match="cnn-v3-int8"):
        synthesis_detector_argument("no-such-detector")
    with pytest.raises(ValueError, match="freq-v1"):  # no longer shipped
        synthesis_detector_argument("freq-v1")
    with pytest.raises(ValueError):
        synthesis_detector_argument(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError):
        create_synthesis_detector("no-such-detector")


def test_other_weight_files_are_refused_by_name(tmp_path: Path) -> None:
    """A weight file that is not a CNN config (the removed freq-v1's linear format, a face
    detector's config) is a ModelError that says which format it has."""
    linear = tmp_path / "synth_freq_v1.json"
    linear.write_text(json.dumps({"format": "fakescope-synthesis-linear/1", "name": "freq-v1"}))
    with pytest.raises(ModelError, match="freq-v1 is no longer supported"):
        create_synthesis_detector(str(linear))
    with pytest.raises(ModelError, match="format None"):
        create_synthesis_detector(str(asset_path("effnet_lite0_v4.json")))
    with pytest.raises(ModelError, match="cannot read"):
        create_synthesis_detector(str(tmp_path / "absent.json"))
