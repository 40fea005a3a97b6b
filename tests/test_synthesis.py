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

from conftest import write_image
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
    assert synthesis_detector_argument("cnn-v2") == "cnn-v2"
    copy = tmp_path / "w.json"
    shutil.copy(asset_path("synth_cnn_v2.json"), copy)
    assert synthesis_detector_argument(str(copy)) == str(copy)
    with pytest.raises(ValueError, match="cnn-v2-int8"):
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


# --- the data helpers the CNN recipe uses --------------------------------------------------


def test_split_by_image_is_deterministic_and_stratified() -> None:
    from fakescope.training.synthesis import split_by_image

    files = [f"real/{i}.jpg" for i in range(50)] + [f"fake/{i}.jpg" for i in range(25)]
    labels = [0] * 50 + [1] * 25
    splits = split_by_image(files, labels, seed=0)
    order = np.random.default_rng(1).permutation(len(files))
    shuffled = split_by_image([files[i] for i in order], [labels[i] for i in order], seed=0)
    assert dict(zip(files, splits, strict=True)) == {
        files[i]: s for i, s in zip(order, shuffled, strict=True)
    }
    for label, n in ((0, 50), (1, 25)):
        got = [s for s, lab in zip(splits, labels, strict=True) if lab == label]
        assert got.count("train") == round(0.6 * n) and got.count("calib") == round(0.2 * n)
    assert split_by_image(files, labels, seed=1) != splits


def test_read_rgb_and_manifest_readers(tmp_path: Path) -> None:
    """The trainers' one image reader and the MANIFEST.tsv readers built on load_manifest."""
    from fakescope.training.images import read_rgb
    from fakescope.training.synthesis import load_manifest
    from fakescope.training.synthesis_cnn_data import read_image, real_videos

    rgb = np.random.default_rng(0).integers(0, 256, (20, 30, 3), dtype=np.uint8)
    png = write_image(tmp_path / "a.png", rgb, ".png")
    got = read_rgb(png)
    assert got.dtype == np.uint8 and got.shape == (20, 30, 3) and np.array_equal(got, rgb)
    assert np.array_equal(read_image(str(png)), rgb)  # the CNN trainer's reader: same pixels
    cv2.imwrite(str(tmp_path / "grey.png"), rgb[:, :, 0])
    assert read_rgb(tmp_path / "grey.png").shape == (20, 30, 3)
    with pytest.raises(ConfigError, match="no such file"):
        read_rgb(tmp_path / "missing.jpg")
    (tmp_path / "bad.jpg").write_bytes(b"not an image")
    with pytest.raises(ValueError, match=r"bad\.jpg: OpenCV cannot decode"):
        read_rgb(str(tmp_path / "bad.jpg"))

    rows = ["b.mp4\treal", "a.mp4\tfake", "c.mp4\t Real", "0.mp4\treal"]
    (tmp_path / "MANIFEST.tsv").write_text("file\tlabel\n" + "\n".join(rows) + "\n")
    items = load_manifest(tmp_path, "v")
    assert [(Path(i.path).name, i.label) for i in items] == [
        ("0.mp4", 0),
        ("a.mp4", 1),
        ("b.mp4", 0),
        ("c.mp4", 0),
    ]
    assert real_videos(tmp_path) == [str(tmp_path / n) for n in ("0.mp4", "b.mp4", "c.mp4")]
