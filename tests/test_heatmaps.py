"""Heatmaps: crop-space maps drawn back on the frame through the alignment matrix."""

from __future__ import annotations

import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakescope import ScanConfig, Scanner, Status
from fakescope.faces import alignment_matrix
from fakescope.inference._heatmaps import backproject, peak_region
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
    assert track.heatmap is not None and Path(track.heatmap).name == "face_track0.png"
    image = cv2.imread(track.heatmap)
    assert image is not None and image.shape[:2] == (240, 320)
    assert track.peak_region is not None
    x0, y0, x1, y1 = track.peak_region
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    d = verdict.to_dict()["faces"][0]
    assert d["heatmap"] == track.heatmap and len(d["peak_region"]) == 4


def test_heatmaps_need_a_mask_head(tmp_path: Path) -> None:
    from fakescope.errors import ConfigError

    with pytest.raises(ConfigError, match="no segmentation output"):
        Scanner(ScanConfig(detector="effnet-lite0-ffpp", heatmaps_dir=str(tmp_path)))
