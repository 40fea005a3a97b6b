"""The overall verdict (issue 26): one answer to "is this media authentic?" from the face
question and the whole-image question, and calibration that maps what it was fitted on."""

from __future__ import annotations

import tomllib
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

import fakescope
from fakescope import ScanConfig, Scanner
from fakescope._overall import FaceAnswer, ImageAnswer, OverallLabel, combine
from fakescope.calibration import LogitCalibrator, calibrator_from_dict
from fakescope.errors import ConfigError
from fakescope.inference._decide import load_calibrators
from fakescope.types import (
    CropScore,
    FaceBox,
    Label,
    Status,
    SynthesisVerdict,
    Track,
    Verdict,
)
from scenes import Actor, BlueIsFake, write_scene

ROOT = Path(__file__).resolve().parents[1]


def _faces(label: str, p: float, face: int = 1, errors: int = 0) -> FaceAnswer:
    return FaceAnswer("ok", "", label, p, face, errors)


def _image(label: str, p: float) -> ImageAnswer:
    return ImageAnswer("ok", "", label, p, 1)


@pytest.mark.parametrize(
    ("faces", "image", "label", "decided_by", "probability"),
    [
        (_faces("fake", 0.93, 2), _image("real", 0.02), "manipulated", "face", 0.93),
        (_faces("real", 0.10), _image("fake", 0.99), "generated", "whole_image", 0.99),
        # both fake: the more probable names the label
        (_faces("fake", 0.80), _image("fake", 0.97), "generated", "whole_image", 0.97),
        (_faces("fake", 0.98), _image("fake", 0.70), "manipulated", "face", 0.98),
        # a confident fake on either question wins over an uncertain other
        (_faces("uncertain", 0.50), _image("fake", 0.90), "generated", "whole_image", 0.90),
        (_faces("real", 0.10), _image("real", 0.20), "authentic", "whole_image", 0.20),
        (_faces("real", 0.10), _image("uncertain", 0.45), "uncertain", "whole_image", 0.45),
        (_faces("uncertain", 0.55), _image("real", 0.01), "uncertain", "face", 0.55),
        # a face lost to a detector error blocks "authentic"
        (_faces("real", 0.10, errors=1), _image("real", 0.05), "uncertain", "face", 0.10),
    ],
)
def test_overall_rule(
    faces: FaceAnswer, image: ImageAnswer, label: str, decided_by: str, probability: float
) -> None:
    v = combine(faces, image)
    assert v.label == label
    assert v.decided_by == decided_by
    assert v.probability == pytest.approx(probability)
    assert v.face == (faces.face if decided_by == "face" else None)
    assert len(v.reasons) == 2
    # the deciding question's reason comes first
    first = v.reasons[0].lower()
    assert ("face" in first) if decided_by == "face" else ("image" in first)


def test_authentic_needs_both_questions_answered() -> None:
    no_face = FaceAnswer("no_face", "no face found in 32 sampled frame(s)")
    assert combine(no_face, _image("real", 0.05)).label is OverallLabel.UNCERTAIN
    assert combine(no_face, _image("fake", 0.95)).label is OverallLabel.GENERATED
    too_small = ImageAnswer("unsupported", "image too small for the synthesis detector")
    assert combine(_faces("real", 0.1), too_small).label is OverallLabel.UNCERTAIN
    assert combine(_faces("fake", 0.9), too_small).label is OverallLabel.MANIPULATED
    # the synthesis detector switched off: the questions asked decide
    assert combine(_faces("real", 0.1), None).label is OverallLabel.AUTHENTIC
    assert "not checked" in combine(_faces("real", 0.1), None).reasons[1]


def test_nothing_answered_is_no_verdict_without_a_number() -> None:
    bad = FaceAnswer("undecodable", "truncated at 12%")
    v = combine(bad, ImageAnswer("undecodable", "truncated at 12%"))
    assert v.label is OverallLabel.NO_VERDICT
    assert v.probability is None and v.decided_by is None
    assert v.headline.startswith("No verdict")
    assert v.to_dict()["probability"] is None


def test_headline_states_the_probability_of_not_authentic() -> None:
    # never 1 - p: an authentic verdict at 7% says 7%, not 93%
    assert "7% likely not authentic" in combine(_faces("real", 0.07), _image("real", 0.01)).headline
    v = combine(_faces("fake", 0.93, 2), _image("real", 0.01))
    assert (
        v.headline == "Manipulated: face 2 looks swapped or re-enacted (93% likely not authentic)"
    )


def test_verdict_json_leads_with_the_overall_verdict() -> None:
    synth = SynthesisVerdict(Status.OK, "", 0.99, Label.FAKE, 0.98, None, 1)
    v = Verdict("p.jpg", Status.NO_FACE, "no face found", synthesis=synth)
    out = v.to_dict()
    assert list(out)[:2] == ["path", "verdict"]
    assert out["verdict"]["label"] == "generated"
    assert out["verdict"]["probability"] == pytest.approx(0.99)
    assert out["label"] == "uncertain" and out["fake_probability"] is None  # face question
    abstain = Verdict("x.mp4", Status.UNDECODABLE, "empty file").to_dict()["verdict"]
    assert abstain["label"] == "no_verdict"


# -- calibration fitted on what it maps --------------------------------------------------------


def _toy(frames: int = 32) -> tuple[Scanner, LogitCalibrator, LogitCalibrator]:
    scanner = Scanner(ScanConfig(num_frames=frames))
    crop = LogitCalibrator().fit([0.1, 0.2, 0.3, 0.6, 0.7, 0.9], [0, 0, 1, 0, 1, 1])
    video = calibrator_from_dict({"kind": "logit", "a": 3.0, "b": 2.0})
    assert isinstance(video, LogitCalibrator)
    scanner.calibrators = {"crop": crop, "video": video}
    return scanner, crop, video


def _box(frame: int, x: float = 0.0) -> FaceBox:
    lm = np.array([[x + 30, 40], [x + 70, 40], [x + 50, 60], [x + 35, 80], [x + 65, 80]])
    return FaceBox(frame, (x, 0.0, x + 100, 100.0), 0.99, lm.astype(np.float32))


def _scores(track: Track, raw: float) -> list[CropScore]:
    return [CropScore(track.track_id, f.frame_index, 0.0, f.box, raw, raw) for f in track.faces]


def test_brief_tracks_are_read_no_more_confidently_than_either_level() -> None:
    scanner, crop, video = _toy()
    long = Track(0, tuple(_box(i) for i in range(32)))
    brief = Track(1, tuple(_box(i, 300) for i in range(3)))
    photo_like = Track(2, tuple(_box(i, 600) for i in range(3)))
    scores = _scores(long, 0.7) + _scores(brief, 0.7) + _scores(photo_like, 0.34)
    _, _, (v_long, v_brief, v_low) = scanner.decide([long, brief, photo_like], scores, "video")
    assert v_long.calibration_level == "video"
    assert v_long.fake_probability == pytest.approx(video.predict_proba([0.7])[0, 1])
    assert v_brief.calibration_level == "brief"
    c, v = crop.predict_proba([0.7, 0.34])[:, 1], video.predict_proba([0.7, 0.34])[:, 1]
    # 0.7: the toy video map is the more confident one, so the crop map's reading stands
    assert v_brief.fake_probability == pytest.approx(c[0]) and c[0] < v[0]
    # 0.34: the crop map reads it further from 0.5 than the video map: the video map's stands
    assert abs(c[1] - 0.5) > abs(v[1] - 0.5)
    assert v_low.fake_probability == pytest.approx(v[1])
    assert v_long.to_dict()["calibration_level"] == "video"
    # a photo's face goes through the crop level, however few crops
    _, _, (v_photo,) = scanner.decide([brief], _scores(brief, 0.34), "image")
    assert v_photo.calibration_level == "crop"
    assert v_photo.fake_probability == pytest.approx(c[1])


def _weight_maps() -> list[tuple[str, dict[str, object]]]:
    from fakescope.models import DETECTORS, create_detector

    out = []
    for name in DETECTORS.names():
        calibration = create_detector(name).config.calibration
        if calibration:
            out.append((name, calibration))
    return out


@pytest.mark.parametrize(
    ("name", "calibration"), _weight_maps(), ids=[n for n, _ in _weight_maps()]
)
def test_a_brief_track_never_outshouts_a_full_one_with_the_shipped_maps(
    name: str, calibration: dict[str, object]
) -> None:
    """With every shipped weight's own maps, over the whole raw range, a video's brief track
    is never further from 0.5 than a full-length track of the same raw mean, nor labelled
    fake where the full track is not (the input's probability is its highest track's)."""
    scanner = Scanner(ScanConfig())
    scanner.calibrators = load_calibrators(calibration, name)
    raw = np.linspace(0.001, 0.999, 999)
    full = scanner.calibrate(raw, scanner.calibration_level("video", 32))
    brief = scanner.calibrate(raw, scanner.calibration_level("video", 3))
    assert np.all(np.abs(brief - 0.5) <= np.abs(full - 0.5) + 1e-12)
    assert np.all(brief[full >= 0.5] <= full[full >= 0.5] + 1e-12)
    threshold, band = scanner.threshold, scanner.config.uncertain_band
    assert not np.any((brief >= threshold + band) & (full < threshold + band))


def test_decide_refuses_nan_whatever_the_order() -> None:
    scanner, _, _ = _toy()
    a = Track(0, tuple(_box(i) for i in range(8)))
    b = Track(1, tuple(_box(i, 300) for i in range(8)))
    for order in ([a, b], [b, a]):
        scores = _scores(a, float("nan")) + _scores(b, 0.95)
        with pytest.raises(ValueError, match="not finite"):
            scanner.decide(order, scores, "video")


class NanForBlue(BlueIsFake):
    """The blue-marked face gets NaN from the 'network'; the others 0.05."""

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        out = super().predict(crops)
        return np.where(out == self.fake, np.nan, out)


def test_a_face_with_invalid_scores_is_an_error_for_that_face(tmp_path: Path) -> None:
    from fakescope.io import load_example_face

    scanner = Scanner(ScanConfig(threshold=0.5))
    scanner.calibrators = {}
    scanner.detector = NanForBlue(scanner.detector)  # type: ignore[assignment]
    clip = write_scene(
        tmp_path / "two.mp4",
        load_example_face(),
        [Actor(40, 60, 150), Actor(420, 80, 150, blue=True)],
    )
    v = scanner.scan(clip)
    assert v.status is Status.OK, v.reason
    assert len(v.tracks) == 1 and v.label is Label.REAL
    assert v.faces_dropped.get("detector_error", 0) > 0
    assert "detector error" in v.reason
    # the unscored face keeps the input from being called authentic
    assert v.overall.label is OverallLabel.UNCERTAIN
    # every face invalid: an error, never a made-up score
    scanner.detector = NanForBlue(scanner.detector._real, authentic=0.99)  # type: ignore[attr-defined]
    v = scanner.scan(clip)
    assert v.status is Status.ERROR and v.fake_probability is None
    assert "no valid score" in v.reason


def test_a_weight_calibrated_without_a_level_it_needs_is_refused() -> None:
    crop = {"kind": "logit", "a": 1.0, "b": 0.0}
    with pytest.raises(ConfigError, match="lacks the video level"):
        load_calibrators({"crop": crop}, "half-calibrated")
    assert set(load_calibrators({"crop": crop, "video": crop}, "ok")) == {"crop", "video"}
    assert load_calibrators(None, "uncalibrated") == {}


def test_an_optional_stage_failure_is_a_note_not_an_error(
    face_image: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    scanner = Scanner(ScanConfig(num_frames=1, thumbnails_dir=str(tmp_path / "t")))

    def broken(*args: object, **kwargs: object) -> None:
        raise OSError("disk full")

    monkeypatch.setattr(scanner, "write_thumbnails", broken)
    v = scanner.scan(face_image)
    assert v.status is Status.OK, v.reason
    assert v.fake_probability is not None
    assert v.notes and "thumbnails" in v.notes[0] and "disk full" in v.notes[0]
    assert v.to_dict()["notes"] == list(v.notes)


def test_version_follows_the_release() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert fakescope.__version__ == project["version"]
    from fakescope.models import DEFAULT_DETECTOR, create_detector

    shipped = create_detector(DEFAULT_DETECTOR).info.version

    def as_tuple(v: str) -> tuple[int, ...]:
        return tuple(int(x) for x in v.split("."))

    assert as_tuple(fakescope.__version__) >= as_tuple(shipped)


def test_eval_and_batch_score_the_overall_verdict_as_its_own_detector() -> None:
    from fakescope.data import MediaItem
    from fakescope.evaluation import OVERALL_PREFIX, overall_row

    item = MediaItem(
        "x/1", Path("1.jpg"), "fake", "x", "stylegan2", ("1",), None, None, kind="image"
    )
    synth = SynthesisVerdict(Status.OK, "", 0.97, Label.FAKE, 0.9, None, 1)
    v = Verdict("1.jpg", Status.NO_FACE, "no face found", synthesis=synth)
    row = overall_row(item, "fused-v4-int8", v)
    assert row is not None
    assert row.detector == OVERALL_PREFIX + "fused-v4-int8"
    assert row.score == pytest.approx(0.97) and row.status == "ok" and row.label == 1
    nothing = Verdict(
        "1.jpg", Status.UNDECODABLE, "cut", synthesis=SynthesisVerdict(Status.UNDECODABLE, "cut")
    )
    row = overall_row(item, "fused-v4-int8", nothing)
    assert row is not None and np.isnan(row.score) and row.status == "undecodable"
    # without a synthesis verdict the face row already is the overall answer
    assert overall_row(item, "fused-v4-int8", Verdict("1.jpg", Status.NO_FACE, "none")) is None


def test_damage_part_way_says_how_much_was_decoded(tmp_path: Path, scanner: Scanner) -> None:
    from fakescope.io import load_example_face, make_clip

    whole = make_clip(
        tmp_path / "whole.mkv",
        width=320,
        height=240,
        seconds=4.0,
        fps=15,
        face=load_example_face(),
        face_height=150,
    )
    cut = tmp_path / "cut.mkv"
    data = whole.read_bytes()
    cut.write_bytes(data[: int(len(data) * 0.6)])
    v = scanner.scan(cut)
    assert v.status is Status.OK, v.reason  # what decoded is still scanned
    assert "damaged part-way" in v.reason
    assert any("decoded 0-1." in n and "of 4.0 s" in n for n in v.notes), v.notes
    assert not scanner.scan(whole).notes  # an intact file has none
