"""Heatmaps: crop-space maps drawn back on the frame through the alignment matrix."""

from __future__ import annotations

import dataclasses
import hashlib
import re
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from fakescope import ScanConfig, Scanner, Status
from fakescope.faces import alignment_matrix
from fakescope.inference._heatmaps import backproject, heatmap_figure, peak_region
from fakescope.models import OnnxDetector, WeightConfig

onnx = pytest.importorskip("onnx")


def _mask_model(path: Path, size: int) -> WeightConfig:
    """A tiny ONNX detector with the SBI export's interface: fake_probability (N,) and a
    (N, S/16, S/16) mask, both sigmoids of local means of the normalised input."""
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Sigmoid", ["m"], ["fake_probability"]),
        helper.make_node("ReduceMean", ["input"], ["c"], axes=[1], keepdims=1),
        helper.make_node("AveragePool", ["c"], ["p"], kernel_shape=[16, 16], strides=[16, 16]),
        helper.make_node("Squeeze", ["p", "axis"], ["q"]),
        helper.make_node("Sigmoid", ["q"], ["mask"]),
    ]
    graph = helper.make_graph(
        nodes,
        "mask-model",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["n", 3, size, size])],
        [
            helper.make_tensor_value_info("fake_probability", TensorProto.FLOAT, ["n"]),
            helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["n", size // 16, size // 16]),
        ],
        [helper.make_tensor("axis", TensorProto.INT64, [1], [1])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return WeightConfig(
        name="test-mask",
        file=str(path),
        sha256=hashlib.sha256(path.read_bytes()).hexdigest(),
        input_size=size,
        mean=(0.5, 0.5, 0.5),
        std=(0.5, 0.5, 0.5),
        margin=0.25,
    )


def test_backprojection_inverts_the_alignment() -> None:
    landmarks = np.array([[100, 100], [140, 100], [120, 125], [105, 145], [135, 145]], np.float32)
    matrix = alignment_matrix(landmarks, 64, 0.25)
    crop_map = np.zeros((4, 4))
    crop_map[1:3, 1:3] = 1.0  # the centre of the crop
    heat = backproject(crop_map, matrix, 64, (240, 320))
    assert heat.shape == (240, 320) and heat.dtype == np.float32
    box = peak_region(heat)
    assert box is not None
    cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
    centre = cv2.invertAffineTransform(matrix) @ np.array([32.0, 32.0, 1.0])
    assert abs(cx - centre[0]) < 4 and abs(cy - centre[1]) < 4
    assert heat[0, 0] == 0.0 and heat[-1, -1] == 0.0
    assert peak_region(np.zeros((5, 5), np.float32)) is None


def test_scan_writes_heatmaps(tmp_path: Path, face_clip: Path) -> None:
    cfg = _mask_model(tmp_path / "mask.onnx", 64)
    detector = OnnxDetector(cfg, threads=1)
    assert detector.has_maps
    probs, maps = detector.predict_maps(np.zeros((2, 64, 64, 3), np.uint8))
    assert probs.shape == (2,) and maps is not None and maps.shape == (2, 4, 4)

    scanner = Scanner(ScanConfig(num_frames=6))
    scanner.detector = detector
    scanner.config = dataclasses.replace(scanner.config, heatmaps_dir=str(tmp_path / "hm"))
    verdict = scanner.scan(face_clip)
    assert verdict.status is Status.OK, verdict.reason
    (track,) = verdict.tracks
    # <stem>_track<id>.png, the stem optionally followed by a hash of the input's path
    assert track.heatmap is not None
    assert re.fullmatch(r"face(-[0-9a-f]{10})?_track0\.png", Path(track.heatmap).name)
    image = cv2.imread(track.heatmap)
    # the frame itself (320x240) or the frame beside the enlarged face (wider)
    assert image is not None and image.shape[0] >= 240 and image.shape[1] >= 320
    assert track.peak_region is not None
    x0, y0, x1, y1 = track.peak_region
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    d = verdict.to_dict()["faces"][0]
    assert d["heatmap"] == track.heatmap and len(d["peak_region"]) == 4


def test_heatmaps_need_a_mask_head(tmp_path: Path) -> None:
    from fakescope.errors import ConfigError

    with pytest.raises(ConfigError, match="no segmentation output"):
        Scanner(ScanConfig(detector="oneclass-vae-v1", heatmaps_dir=str(tmp_path)))


def _grey_scene(
    width: int = 854,
    height: int = 480,
    box: tuple[float, float, float, float] = (100, 200, 160, 260),
) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """A flat grey frame and a heatmap concentrated inside ``box`` (a small hot blob)."""
    frame = np.full((height, width, 3), 128, np.uint8)
    heat = np.zeros((height, width), np.float32)
    x0, y0, x1, y1 = (round(v) for v in box)
    cx, cy = (x0 + x1) // 2, (y0 + y1) // 2
    heat[cy - 6 : cy + 6, cx - 8 : cx + 8] = 1.0
    return frame, heat


def _hot(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.bool_]:
    """Strongly coloured pixels: the heat overlay (outlines and text are grey/white/black)."""
    spread = image.max(axis=2).astype(np.int16) - image.min(axis=2).astype(np.int16)
    return spread > 60


def test_figure_enlarges_the_face() -> None:
    box = (100.0, 200.0, 160.0, 260.0)  # a 60-px face in an 854x480 frame
    frame, heat = _grey_scene(box=box)
    fig = heatmap_figure(frame, heat, box, 0.92)
    assert fig.dtype == np.uint8 and fig.ndim == 3 and fig.shape[2] == 3
    assert fig.shape[1] > frame.shape[1] and fig.shape[0] > frame.shape[0]
    assert 320 <= fig.shape[0] <= 720
    hot = _hot(fig)
    left, right = int(hot[:, :700].sum()), int(hot[:, 700:].sum())
    assert left > 0  # the heat is shown on the whole frame too
    assert right >= 10 * left
    # the hot pixels on the right all lie beside the frame, in the enlarged face panel
    cols = np.nonzero(hot[:, 700:].any(axis=0))[0] + 700
    assert cols.min() > frame.shape[1]
    # the face box (white) is drawn around the face on the left
    assert (fig[:, :700] == 255).all(axis=2).sum() > 100


def _strip(fig: npt.NDArray[np.uint8]) -> npt.NDArray[np.uint8]:
    return fig[-30:]


def test_figure_caption() -> None:
    box = (100.0, 200.0, 160.0, 260.0)
    frame, heat = _grey_scene(box=box)
    a = heatmap_figure(frame, heat, box, 0.92)
    b = heatmap_figure(frame, heat, box, 0.31)
    c = heatmap_figure(frame, heat, box, 0.92, caption="manipulated mouth")
    assert a.shape == b.shape == c.shape
    for fig in (a, b, c):
        strip = _strip(fig)
        assert (strip.max(axis=2) > 200).sum() > 50  # white text on the dark strip
    # the same pictures, different captions
    assert np.array_equal(a[:-60], b[:-60])
    assert not np.array_equal(_strip(a), _strip(b))
    assert not np.array_equal(_strip(a), _strip(c))
    assert np.array_equal(a, heatmap_figure(frame, heat, box, 0.92))  # deterministic


@pytest.mark.parametrize(
    ("size", "box"),
    [
        ((854, 480), (-30.0, -20.0, 40.0, 50.0)),  # partly outside, top left
        ((854, 480), (820.0, 440.0, 900.0, 530.0)),  # partly outside, bottom right
        ((854, 480), (400.0, 200.0, 405.0, 205.0)),  # a 5-px face
        ((854, 480), (0.0, 0.0, 854.0, 480.0)),  # the whole frame
        ((854, 480), (160.0, 260.0, 100.0, 200.0)),  # corners swapped
        ((97, 61), (20.0, 10.0, 60.0, 50.0)),  # a frame smaller than the panel, odd sizes
        ((7, 5), (1.0, 1.0, 4.0, 4.0)),  # a tiny frame
        ((3841, 2161), (1800.0, 900.0, 2100.0, 1250.0)),  # a huge frame
        ((4000, 300), (100.0, 100.0, 160.0, 160.0)),  # a very wide frame
        ((90, 1001), (10.0, 500.0, 70.0, 560.0)),  # a very tall frame
    ],
)
def test_figure_edge_cases(size: tuple[int, int], box: tuple[float, float, float, float]) -> None:
    width, height = size
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, (height, width, 3), dtype=np.uint8)
    for heat in (np.zeros((height, width), np.float32), rng.random((height, width), np.float32)):
        fig = heatmap_figure(frame, heat, box, 0.5, panel=320)
        assert fig.dtype == np.uint8 and fig.shape[2] == 3
        assert 320 < fig.shape[0] <= 720 and fig.shape[1] > 320
        assert fig.shape[1] <= 1280 + 720 + 64


def test_figure_rejects_bad_input() -> None:
    frame, heat = _grey_scene()
    with pytest.raises(ValueError, match="outside"):
        heatmap_figure(frame, heat, (900.0, 10.0, 960.0, 70.0), 0.5)
    with pytest.raises(ValueError, match="outside"):
        heatmap_figure(frame, heat, (-80.0, -80.0, -20.0, -20.0), 0.5)
    with pytest.raises(ValueError, match="heat"):
        heatmap_figure(frame, heat[:100], (100.0, 200.0, 160.0, 260.0), 0.5)
    with pytest.raises(ValueError, match="finite"):
        heatmap_figure(frame, heat, (float("nan"), 0.0, 10.0, 10.0), 0.5)


def test_figure_panel_size() -> None:
    box = (100.0, 200.0, 160.0, 260.0)
    frame, heat = _grey_scene(box=box)
    small = heatmap_figure(frame, heat, box, 0.5, panel=320)
    large = heatmap_figure(frame, heat, box, 0.5, panel=600)
    assert large.shape[0] > small.shape[0] and large.shape[1] > small.shape[1]
    grey = np.full((120, 200, 3), 90, np.uint8)  # a small grey frame is enlarged to the panel
    fig = heatmap_figure(grey[..., 0], np.zeros((120, 200), np.float32), (50, 30, 110, 90), 0.5)
    assert fig.shape[0] >= 320
