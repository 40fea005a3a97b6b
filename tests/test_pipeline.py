"""End-to-end scans on generated media and hostile files: every input ends with a status."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from conftest import write_image
from fakescope import DecisionInfo, Label, ScanConfig, Scanner, Status, Verdict
from fakescope.errors import ConfigError
from fakescope.inference import AGGREGATION_RULE, AGGREGATORS, decide_label, frame_max_scores
from fakescope.types import CropScore


def test_face_clip_gets_an_ok_verdict(scanner: Scanner, face_clip: Path) -> None:
    v = scanner.scan(face_clip)
    assert v.status is Status.OK, v.reason
    assert v.fake_probability is not None and 0.0 <= v.fake_probability <= 1.0
    assert v.label in set(Label)
    assert len(v.tracks) == 1
    frames = v.tracks[0].frames
    assert 20 <= len(frames) <= 30  # 30-frame clip, 32 asked: every frame, almost all found
    indices = [f.frame_index for f in frames]
    assert indices == sorted(indices)
    assert all(0 <= f.time_s <= 2.1 for f in frames)
    x0, y0, x1, y1 = frames[0].box
    assert 0 <= x0 < x1 <= 320 and 0 <= y0 < y1 <= 240
    # input score = mean over frames of the per-frame max: one face, so the track's mean
    assert v.fake_probability == pytest.approx(v.tracks[0].fake_probability)
    assert v.model is not None and len(v.model.sha256) == 64
    assert v.timings_ms["total"] >= v.timings_ms["classify"] > 0


def test_sampling_follows_the_config(face_clip: Path) -> None:
    v = Scanner(ScanConfig(num_frames=6)).scan(face_clip)
    assert v.status is Status.OK
    assert len({f.frame_index for t in v.tracks for f in t.frames}) <= 6


def test_photo_is_scanned(scanner: Scanner, face_image: Path) -> None:
    v = scanner.scan(face_image)
    assert v.status is Status.OK, v.reason
    assert v.media is not None and v.media.kind == "image"
    assert [f.frame_index for f in v.tracks[0].frames] == [0]


def test_no_face(scanner: Scanner, noface_clip: Path) -> None:
    v = scanner.scan(noface_clip)
    assert v.status is Status.NO_FACE
    assert v.fake_probability is None and v.label is Label.UNCERTAIN and v.tracks == ()
    assert "no face" in v.reason


def test_face_too_small(scanner: Scanner, example_face: np.ndarray, tmp_path: Path) -> None:
    import cv2

    small = cv2.resize(example_face, (112, 120), interpolation=cv2.INTER_AREA)
    canvas = np.full((480, 640, 3), 200, np.uint8)
    canvas[100:220, 100:212] = small
    v = scanner.scan(write_image(tmp_path / "small.png", canvas, ".png"))
    assert v.status is Status.FACE_TOO_SMALL, v.reason
    assert v.fake_probability is None


@pytest.mark.parametrize(
    ("name", "status"),
    [
        ("empty.mp4", Status.UNDECODABLE),
        ("truncated.mp4", Status.UNDECODABLE),
        ("text.mp4", Status.UNSUPPORTED),
        ("huge.png", Status.TOO_LARGE),
        ("valid.jpg", Status.OK),
    ],
)
def test_hostile_inputs_get_their_status(
    scanner: Scanner, hostile_dir: Path, name: str, status: Status
) -> None:
    v = scanner.scan(hostile_dir / name)
    assert v.status is status, v.reason
    assert v.reason
    assert (v.fake_probability is None) == (status is not Status.OK)


def test_missing_file_is_an_error_verdict(scanner: Scanner, tmp_path: Path) -> None:
    v = scanner.scan(tmp_path / "absent.mp4")
    assert v.status is Status.ERROR and "no such file" in v.reason


def test_unexpected_failure_becomes_an_error_status(
    scanner: Scanner, face_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def boom(*args: object, **kwargs: object) -> None:
        raise RuntimeError("simulated crash")

    monkeypatch.setattr(scanner.detector, "predict", boom)
    v = scanner.scan(face_image)
    assert v.status is Status.ERROR and "simulated crash" in v.reason
    assert v.fake_probability is None


def test_verdict_refuses_made_up_scores() -> None:
    with pytest.raises(ValueError):
        Verdict("x", Status.NO_FACE, "none", fake_probability=0.5)
    with pytest.raises(ValueError):
        Verdict("x", Status.OK, "ok")


def test_verdicts_carry_the_decision(scanner: Scanner, face_image: Path, tmp_path: Path) -> None:
    v = scanner.scan(face_image)
    assert v.status is Status.OK, v.reason
    calibrated = bool(scanner.calibrators)
    assert v.decision == DecisionInfo(
        threshold=scanner.threshold,
        uncertain_band=0.1,
        calibrated=calibrated,
        cost_miss=1.0,
        cost_false_alarm=1.0,
        prior_fake=0.5,
        rule=(
            "cost-minimising threshold for the calibrated probability"
            if calibrated
            else "fixed threshold from the weight config"
        ),
        aggregation=AGGREGATION_RULE.format(
            track="mean", level="crop" if calibrated else "uncalibrated", brief=8
        ),
        calibration_level="crop" if calibrated else None,
    )
    assert v.to_dict()["decision"] == v.decision.to_dict()
    missing = scanner.scan(tmp_path / "missing.mp4")  # abstaining verdicts carry it too
    assert missing.status is Status.ERROR and missing.decision is not None
    assert missing.decision.threshold == v.decision.threshold

    cfg = ScanConfig(
        num_frames=1,
        threshold=0.3,
        uncertain_band=0.05,
        cost_miss=4.0,
        cost_false_alarm=2.0,
        prior_fake=0.2,
    )
    other = Scanner(cfg).scan(face_image)
    assert other.status is Status.OK and other.fake_probability is not None
    d = other.to_dict()["decision"]
    del d["aggregation"], d["calibration_level"]
    assert d == {
        "threshold": 0.3,
        "uncertain_band": 0.05,
        "calibrated": calibrated,
        "cost_miss": 4.0,
        "cost_false_alarm": 2.0,
        "prior_fake": 0.2,
        "rule": "fixed threshold from --threshold (ScanConfig.threshold)",
    }
    assert other.label is decide_label(other.fake_probability, 0.3, 0.05)
    assert Verdict("x", Status.NO_FACE, "none").to_dict()["decision"] is None


def test_decide_label_band() -> None:
    assert decide_label(0.9, 0.5, 0.1) is Label.FAKE
    assert decide_label(0.6, 0.5, 0.1) is Label.FAKE
    assert decide_label(0.55, 0.5, 0.1) is Label.UNCERTAIN
    assert decide_label(0.4, 0.5, 0.1) is Label.UNCERTAIN
    assert decide_label(0.39, 0.5, 0.1) is Label.REAL


def test_aggregators() -> None:
    scores = [0.1, 0.2, 0.9, 0.4]
    assert AGGREGATORS.create("mean")(scores) == pytest.approx(0.4)
    assert AGGREGATORS.create("max")(scores) == pytest.approx(0.9)
    assert AGGREGATORS.create("median")(scores) == pytest.approx(0.3)
    assert AGGREGATORS.create("top-quartile-mean")(scores) == pytest.approx(0.9)
    crop = [
        CropScore(0, 1, 0.0, (0, 0, 1, 1), 0.2, 0.2),
        CropScore(1, 1, 0.0, (0, 0, 1, 1), 0.7, 0.7),
        CropScore(0, 2, 0.1, (0, 0, 1, 1), 0.3, 0.3),
    ]
    assert frame_max_scores(crop) == [0.7, 0.3]


def test_config_rejects_unknown_keys_and_bad_values() -> None:
    with pytest.raises(ConfigError, match="unknown"):
        ScanConfig.from_mapping({"frames": 3})
    with pytest.raises(ConfigError):
        ScanConfig(num_frames=0)
    assert ScanConfig.from_mapping({"num_frames": 3}).num_frames == 3


def test_calibrated_weight_uses_the_cost_threshold(face_image: Path) -> None:
    import dataclasses

    from fakescope.calibration import LogitCalibrator

    uncalibrated = "effnet-lite0-sbi"
    base = Scanner(ScanConfig(num_frames=1, detector=uncalibrated))
    base.calibrators = {}  # as an uncalibrated weight
    raw = base.scan(face_image)
    assert raw.status is Status.OK and raw.fake_probability is not None
    cal = LogitCalibrator().fit([0.1, 0.2, 0.3, 0.6, 0.7, 0.9], [0, 0, 1, 0, 1, 1])
    wcfg = dataclasses.replace(base.detector.config, calibration=cal.to_dict())
    cfg = ScanConfig(
        num_frames=1, detector=uncalibrated, cost_miss=9.0, cost_false_alarm=1.0, prior_fake=0.5
    )
    scanner = Scanner(cfg)
    scanner.detector.config = wcfg
    scanner.calibrators = {"crop": cal}
    scanner.threshold = scanner._threshold()
    assert scanner.threshold == pytest.approx(0.1)  # 1 * 0.5 / (9 * 0.5 + 1 * 0.5)
    v = scanner.scan(face_image)
    assert v.decision is not None and v.decision.calibrated
    assert v.decision.threshold == pytest.approx(0.1)
    assert (v.decision.cost_miss, v.decision.cost_false_alarm) == (9.0, 1.0)
    assert v.decision.rule.startswith("cost-minimising")
    expected = float(cal.predict_proba([raw.fake_probability])[0, 1])
    assert v.fake_probability == pytest.approx(expected, abs=1e-6)
    assert v.tracks[0].frames[0].raw_score == pytest.approx(raw.tracks[0].frames[0].raw_score)
    assert v.tracks[0].frames[0].fake_probability == pytest.approx(expected, abs=1e-6)


def test_thumbnails_are_written_per_track(face_clip: Path, tmp_path: Path) -> None:
    import cv2

    out = tmp_path / "thumbs"
    v = Scanner(ScanConfig(num_frames=6, thumbnails_dir=str(out))).scan(face_clip)
    assert v.status is Status.OK, v.reason
    (track,) = v.tracks
    assert track.thumbnail is not None and Path(track.thumbnail).parent == out
    assert Path(track.thumbnail).name.startswith("face-")
    assert Path(track.thumbnail).name.endswith("_track0.jpg")
    assert track.heatmap is None  # heatmaps are unchanged: not asked for
    image = cv2.imread(track.thumbnail)
    assert image is not None and max(image.shape[:2]) == 160
    assert v.to_dict()["faces"][0]["thumbnail"] == track.thumbnail
    assert Scanner(ScanConfig(num_frames=6)).scan(face_clip).tracks[0].thumbnail is None


def test_face_thumbnail_stays_inside_the_frame() -> None:
    from fakescope.inference._heatmaps import face_thumbnail

    frame = np.zeros((100, 200, 3), np.uint8)
    frame[:, :100] = (255, 0, 0)  # red on the left half
    thumb = face_thumbnail(frame, (-20.0, 10.0, 60.0, 90.0), size=64)
    assert max(thumb.shape[:2]) == 64 and thumb.dtype == np.uint8
    assert thumb[..., 0].mean() > 200 and thumb[..., 2].mean() < 10  # RGB kept as RGB


def test_face_memo_shares_face_finding_between_scoring_variants(
    face_clip: Path, noface_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Scanners that differ only in how they score find the faces of an input once; the
    verdicts are those of scans without the memo, and a scanner that does more on the way
    (the synthesis detector) or another input never reuses them."""
    from fakescope.inference import FaceMemo

    first = Scanner(ScanConfig(detector="fused-v4", synthesis_detector=None))
    second = Scanner(ScanConfig(detector="effnet-lite0-v4", synthesis_detector=None, cost_miss=3.0))
    alone = [s.scan(face_clip) for s in (first, second)]
    assert first.faces_key() == second.faces_key() is not None

    def no_detection(*args: object, **kwargs: object) -> list[object]:
        raise AssertionError("the second scanner looked for faces again")

    memo = FaceMemo()
    shared = [first.scan(face_clip, memo=memo)]
    monkeypatch.setattr(second.face_detector, "detect", no_detection)
    shared.append(second.scan(face_clip, memo=memo))
    for a, b in zip(alone, shared, strict=True):
        assert b.status is Status.OK, b.reason
        assert b.fake_probability == pytest.approx(a.fake_probability, abs=1e-9)
        assert [t.fake_probability for t in b.tracks] == pytest.approx(
            [t.fake_probability for t in a.tracks], abs=1e-9
        )
    assert shared[0].fake_probability != shared[1].fake_probability  # scored differently
    # another input: found anew (the patched detector says so)
    assert second.scan(noface_clip, memo=memo).status is Status.ERROR
    # a scan that scores the synthesis detector on the way does its own finding
    assert Scanner(ScanConfig(detector="fused-v4")).faces_key() is None
    assert Scanner(ScanConfig(detector="fused-v4", min_face_px=60)).faces_key() != (
        first.faces_key()
    )
