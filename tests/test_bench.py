"""``fakescope bench`` (issue 30 item 4): beside the generated one-face clip it times a
generated five-face scene, and every row with known faces says how many of the faces present
in the sampled frames the scan found (recall). Output only: no timed assertion."""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import cv2
import numpy as np
import pytest

from fakescope import ScanConfig
from fakescope.cli._bench import FPS, faces_found, run_bench
from fakescope.errors import ConfigError
from fakescope.io import (
    BENCH_SCENE,
    SceneFace,
    load_example_face,
    make_scene,
    open_media,
    scene_boxes,
)
from fakescope.types import Box, CropScore, Label, Status, TrackVerdict, Verdict


def _verdict(crops: list[tuple[int, Box]]) -> Verdict:
    frames = tuple(CropScore(0, index, index / FPS, box, 0.1, 0.1) for index, box in crops)
    track = TrackVerdict(0, 0.1, Label.REAL, frames, 0.1)
    return Verdict("x.mp4", Status.OK, "", 0.1, Label.REAL, (track,), raw_score=0.1)


def test_faces_found_counts_each_present_face_once() -> None:
    truth = {
        0: [(0.0, 0.0, 100.0, 100.0), (200.0, 0.0, 300.0, 100.0)],
        5: [(0.0, 0.0, 100.0, 100.0)],
    }
    verdict = _verdict(
        [
            (0, (10.0, 10.0, 90.0, 90.0)),  # the first face
            (0, (20.0, 20.0, 80.0, 80.0)),  # the first face again: no second count
            (0, (400.0, 0.0, 500.0, 100.0)),  # where no face is
            (5, (150.0, 0.0, 250.0, 100.0)),  # centre (200, 50): outside the face of frame 5
            (9, (10.0, 10.0, 90.0, 90.0)),  # not a sampled frame
        ]
    )
    assert faces_found(verdict, [0, 5], lambda i: truth.get(i, [])) == (1, 3)
    assert faces_found(verdict, [], lambda i: truth.get(i, [])) == (0, 0)


def test_scene_faces_are_where_scene_boxes_says(tmp_path: Path) -> None:
    face = load_example_face()
    faces = (SceneFace(20, 20, 150), SceneFace(300, 100, 120, start=0.5, end=1.0, drift=0))
    clip = make_scene(tmp_path / "s.mp4", face, faces, width=480, height=270, seconds=1.2, fps=10)
    _, frames = open_media(clip)
    for frame in frames:
        boxes = scene_boxes(faces, face.shape, frame.index / 10)
        assert (boxes[1] is not None) == (0.5 <= frame.index / 10 < 1.0)
        for f, box in zip(faces, boxes, strict=True):
            if box is None:
                continue
            x1, y1, x2, y2 = map(int, box)
            sprite = cv2.resize(face, (x2 - x1, y2 - y1), interpolation=cv2.INTER_AREA)
            pasted = frame.image[y1:y2, x1:x2].astype(np.float64)
            assert np.abs(pasted - sprite).mean() < 8, (frame.index, f)  # H.264, crf 23
    with pytest.raises(ConfigError, match="leaves"):
        make_scene(tmp_path / "x.mp4", face, [SceneFace(400, 20, 150)], width=480, height=270)


def test_bench_scene_has_a_brief_a_small_and_a_late_face() -> None:
    assert len(BENCH_SCENE) == 5
    assert any(f.end - f.start <= 2.0 for f in BENCH_SCENE)
    assert any(f.start > 5.0 and math.isinf(f.end) for f in BENCH_SCENE)
    assert min(f.height for f in BENCH_SCENE) < 0.5 * max(f.height for f in BENCH_SCENE)


def test_bench_prints_a_scene_row_with_recall(
    tmp_path: Path, face_clip: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "bench.json"
    config = ScanConfig(num_frames=8, synthesis_detector=None)
    assert run_bench([str(face_clip)], config, repeat=1, json_out=str(out), seconds=7.0) == 0
    rows = json.loads(out.read_text())["results"]
    assert [r["clip"] for r in rows] == [
        "synthetic_720p_7s.mp4",
        "scene_5faces_720p_7s.mp4",
        face_clip.name,
    ]
    generated, scene, given = rows
    # 8 frames sampled evenly from 210: one face in each of the generated clip's; in the
    # scene's (at 0, 1, 2, 3, 3.97, 4.97, 5.97 and 6.97 s), three faces throughout, the brief
    # one (3-5 s) in three, the late one (from 6.5 s) in one
    sampled = [round(x) / FPS for x in np.linspace(0, 7 * FPS - 1, 8)]
    assert generated["sampled_frames"] == scene["sampled_frames"] == 8
    assert generated["faces_present"] == 8
    shown = sum(f.start <= t < f.end for t in sampled for f in BENCH_SCENE)
    assert scene["faces_present"] == shown == 3 * 8 + 3 + 1
    for row in (generated, scene):
        assert 0 < row["faces_found"] <= row["faces_present"]
        assert row["recall"] == round(row["faces_found"] / row["faces_present"], 3)
        assert row["total_over_decode"] > 0 and row["stages_ms"]["total"] > 0
        # CPU time is real work: more than nothing, and the floor it sets is a floor
        assert row["cpu_ms"] > 0 and 1 <= row["cores"] <= (os.cpu_count() or 1)
        want = row["cpu_ms"] / row["cores"] / row["decode_only_ms"]
        assert row["cpu_floor_over_decode"] == pytest.approx(want, abs=0.006)
    assert given["faces_present"] is None and given["recall"] is None
    assert given["faces_found"] == given["sampled_frames"] == 8  # its one face, in each
    printed = capsys.readouterr().out
    assert "recall" in printed and "scene_5faces" in printed
    assert f"{scene['faces_found']}/{scene['faces_present']}" in printed
    assert f"{given['faces_found']}/?" in printed
    assert f"{given['cpu_floor_over_decode']} ({given['cpu_ms']:.0f} ms on" in printed


def test_sweep_rows_count_the_faces_of_multi_face_clips(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakescope.cli import _bench

    monkeypatch.setattr(_bench, "SWEEP_FRAMES", ())  # its clips are 1280x720: slow
    monkeypatch.setattr(_bench, "SWEEP_SIZES", ((640, 360),))
    monkeypatch.setattr(_bench, "SWEEP_FACES", (2,))
    out = tmp_path / "bench.json"
    config = ScanConfig(num_frames=4, synthesis_detector=None)
    assert run_bench([], config, 1, str(out), sweep=True, seconds=2.0) == 0
    sweep = json.loads(out.read_text())["sweep"]
    assert [(r["variable"], r["value"]) for r in sweep] == [("resolution", "640x360"), ("faces", 2)]
    assert [r["faces_present"] for r in sweep] == [4, 8]  # 1 and 2 faces in each of 4 frames
    for row in sweep:
        assert 0 < row["faces_found"] <= row["faces_present"]
