"""Verdicts never hide a manipulated face (issue 9): the input follows its most suspicious
face track, brief and smaller faces are scored, faces entering late are found from their
first sampled frame, one bad face never sinks the input, and every probability is on the
calibrated scale."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from fakescope import ScanConfig, Scanner
from fakescope.calibration import LogitCalibrator
from fakescope.types import CropScore, FaceBox, Label, Status, Track
from scenes import Actor, BlueIsFake, write_scene


@pytest.fixture(scope="module")
def stub_scanner() -> Scanner:
    """The real face pipeline with a detector that calls blue-tinted faces fake (raw 0.99)
    and others real (raw 0.05); uncalibrated, threshold 0.5."""
    scanner = Scanner(ScanConfig(threshold=0.5))
    scanner.calibrators = {}
    scanner.detector = BlueIsFake(scanner.detector)  # type: ignore[assignment]
    return scanner


def _face(frame: int, x: float = 0.0) -> FaceBox:
    lm = np.array([[x + 30, 40], [x + 70, 40], [x + 50, 60], [x + 35, 80], [x + 65, 80]])
    return FaceBox(frame, (x, 0.0, x + 100, 100.0), 0.99, lm.astype(np.float32))


def test_one_confidently_fake_track_makes_the_input_fake(stub_scanner: Scanner) -> None:
    # issue 9: one real face at 0.05 in all 32 frames, a swapped face at 0.99 in 8 of them
    real = Track(0, tuple(_face(i) for i in range(32)))
    fake = Track(1, tuple(_face(i, 300) for i in range(10, 18)))
    scores = [CropScore(0, f.frame_index, 0.0, f.box, 0.05, 0.05) for f in real.faces]
    scores += [CropScore(1, f.frame_index, 0.0, f.box, 0.99, 0.99) for f in fake.faces]
    overall, label, verdicts = stub_scanner.decide([real, fake], scores, "video")
    assert [v.label for v in verdicts] == [Label.REAL, Label.FAKE]
    assert label is Label.FAKE
    assert overall == pytest.approx(max(v.fake_probability for v in verdicts))
    assert overall == pytest.approx(0.99)


def test_brief_second_person_is_scored_and_named(stub_scanner: Scanner, tmp_path: Path) -> None:
    from fakescope.io import load_example_face

    clip = write_scene(
        tmp_path / "brief.mp4",
        load_example_face(),
        [Actor(40, 60, 150), Actor(420, 80, 150, start=1.0, end=1.8, blue=True)],
    )
    v = stub_scanner.scan(clip)
    assert v.status is Status.OK, v.reason
    assert len(v.tracks) == 2
    brief = max(v.tracks, key=lambda t: t.fake_probability)
    assert brief.label is Label.FAKE and v.label is Label.FAKE
    assert f"face {brief.track_id + 1} looks manipulated" in v.reason  # numbered from 1
    # seen in 6 of the 32 frames sampled evenly from 40; extra frames were decoded around it
    sampled = {round(x) for x in np.linspace(0, 39, 32)}
    assert len(brief.frames) > len([f for f in brief.frames if f.frame_index in sampled])
    assert "extra around brief tracks" in v.reason
    times = [f.time_s for f in brief.frames]
    assert min(times) >= 0.95 and max(times) < 1.85


def test_smaller_second_face_is_scored(stub_scanner: Scanner, tmp_path: Path) -> None:
    from fakescope.io import load_example_face

    clip = write_scene(
        tmp_path / "small.mp4",
        load_example_face(),
        [Actor(20, 20, 320), Actor(420, 80, 176, blue=True)],  # about 55% of the main face
    )
    v = stub_scanner.scan(clip)
    assert v.status is Status.OK, v.reason
    assert len(v.tracks) == 2, v.reason
    heights = sorted(t.frames[0].box[3] - t.frames[0].box[1] for t in v.tracks)
    assert 0.45 < heights[0] / heights[1] < 0.65
    assert v.label is Label.FAKE


def test_face_entering_late_is_found_from_its_first_sampled_frame(
    stub_scanner: Scanner, tmp_path: Path
) -> None:
    from fakescope.io import load_example_face

    clip = write_scene(
        tmp_path / "late.mp4",
        load_example_face(),
        [Actor(40, 60, 150), Actor(420, 80, 150, start=2.2, blue=True)],
    )
    v = stub_scanner.scan(clip)
    assert v.status is Status.OK, v.reason
    late = max(v.tracks, key=lambda t: t.fake_probability)
    assert late.label is Label.FAKE
    main = min(v.tracks, key=lambda t: t.fake_probability)
    first_sampled_after_entry = min(f.time_s for f in main.frames if f.time_s >= 2.2)
    assert min(f.time_s for f in late.frames) == pytest.approx(first_sampled_after_entry)


def test_unalignable_face_is_dropped_and_counted(
    stub_scanner: Scanner, face_image: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_detect = stub_scanner.face_detector.detect

    def with_a_broken_face(image: npt.NDArray[np.uint8], index: int, *args, **kwargs):  # type: ignore[no-untyped-def]
        faces = real_detect(image, index, *args, **kwargs)
        broken = FaceBox(index, (5.0, 5.0, 105.0, 105.0), 0.99, np.full((5, 2), np.nan, np.float32))
        return [*faces, broken]

    monkeypatch.setattr(stub_scanner.face_detector, "detect", with_a_broken_face)
    v = stub_scanner.scan(face_image)
    assert v.status is Status.OK, v.reason
    assert len(v.tracks) == 1
    assert v.faces_dropped == {"unalignable": 1}
    assert v.to_dict()["faces_dropped"] == {"unalignable": 1}
    assert "1 unalignable" in v.reason


def _calibrated_scanner(frames: int) -> tuple[Scanner, LogitCalibrator, LogitCalibrator]:
    """A scanner with two distinct toy calibrators, so the level each score took is visible."""
    scanner = Scanner(ScanConfig(num_frames=frames))
    crop = LogitCalibrator().fit([0.1, 0.2, 0.3, 0.6, 0.7, 0.9], [0, 0, 1, 0, 1, 1])
    video = LogitCalibrator().fit([0.05, 0.1, 0.2, 0.3, 0.4, 0.8], [0, 0, 1, 0, 1, 1])
    scanner.calibrators = {"crop": crop, "video": video}
    return scanner, crop, video


def test_every_probability_is_on_the_calibrated_scale(face_clip: Path) -> None:
    scanner, crop, video = _calibrated_scanner(8)
    v = scanner.scan(face_clip)
    assert v.status is Status.OK, v.reason
    assert v.decision is not None and v.decision.calibration_level == "video"
    (track,) = v.tracks
    raws = np.array([f.raw_score for f in track.frames])
    frames = np.array([f.fake_probability for f in track.frames])
    np.testing.assert_allclose(frames, crop.predict_proba(raws)[:, 1], atol=1e-9)
    assert track.raw_score == pytest.approx(raws.mean())
    assert track.fake_probability == pytest.approx(video.predict_proba([raws.mean()])[0, 1])
    assert v.fake_probability == pytest.approx(track.fake_probability)
    assert v.raw_score == pytest.approx(track.raw_score)
    out = v.to_dict()
    assert out["faces"][0]["frames"][0]["raw_score"] == pytest.approx(raws[0], abs=1e-6)
    assert out["decision"]["aggregation"].startswith("input: the highest calibrated")


def test_photos_use_the_crop_level_calibrator(face_image: Path) -> None:
    scanner, crop, _ = _calibrated_scanner(1)
    v = scanner.scan(face_image)
    assert v.status is Status.OK and v.raw_score is not None
    assert v.decision is not None and v.decision.calibration_level == "crop"
    assert v.fake_probability == pytest.approx(crop.predict_proba([v.raw_score])[0, 1])
    assert v.tracks[0].frames[0].fake_probability == pytest.approx(v.fake_probability)


def test_same_file_name_in_two_folders_keeps_both_thumbnails(
    face_image: Path, tmp_path: Path
) -> None:
    out = tmp_path / "thumbs"
    scanner = Scanner(ScanConfig(num_frames=1, thumbnails_dir=str(out)))
    paths = []
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        target = tmp_path / folder / "x.jpg"
        target.write_bytes(face_image.read_bytes())
        v = scanner.scan(target)
        assert v.status is Status.OK and v.tracks[0].thumbnail is not None
        paths.append(v.tracks[0].thumbnail)
    assert paths[0] != paths[1]
    assert all(Path(p).is_file() for p in paths)
