"""Issue 11 item 2: every input gets a whole-image synthesis verdict beside its face verdict.

The top-level fields keep their face-swap meaning; the ``synthesis`` block carries its own
status, calibrated probability, label, reason and model. Most tests use a small registered
detector whose score follows the image's mean brightness (so a wrong image, a wrong mean or
a wrong label fails them); one set uses the shipped default.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_image
from fakescope import ScanConfig, Scanner, Status, SynthesisVerdict
from fakescope.cli import main
from fakescope.decision import decide_label
from fakescope.io import load_example_face
from fakescope.synthesis import DEFAULT_SYNTHESIS_DETECTOR, SYNTHESIS_DETECTORS
from fakescope.types import Label, ModelInfo

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "astronaut.mp4"
BRIGHT = "test-brightness"
RAISES = "test-raises"
MIN_SIDE = 64


class Brightness:
    """Raw score ``8 * mean / 255 - 4`` (a logit: dark images real, bright ones fake);
    uncalibrated, threshold 0.5. Records how many images each call scored."""

    info = ModelInfo(BRIGHT, "0" * 64, "test")
    min_side = MIN_SIDE
    threshold = 0.5
    calibrated = False

    def __init__(self) -> None:
        self.calls: list[int] = []

    def score(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float64]:
        self.calls.append(len(images))
        return np.array([8.0 * float(im.mean()) / 255.0 - 4.0 for im in images])

    def probability(self, raw: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
        return np.asarray(1.0 / (1.0 + np.exp(-np.asarray(raw, dtype=np.float64))))


class Raises(Brightness):
    info = ModelInfo(RAISES, "1" * 64, "test")

    def score(self, images: Sequence[npt.NDArray[np.uint8]]) -> npt.NDArray[np.float64]:
        raise RuntimeError("synthetic failure")


def _bright(**_: Any) -> Brightness:
    """Test detector: the image's mean brightness as a logit (dark real, bright fake)."""
    return Brightness()


def _raises(**_: Any) -> Raises:
    """Test detector: always fails, to show the face verdict does not depend on it."""
    return Raises()


def _register() -> None:
    if BRIGHT not in SYNTHESIS_DETECTORS:
        SYNTHESIS_DETECTORS.register(BRIGHT)(_bright)
    if RAISES not in SYNTHESIS_DETECTORS:
        SYNTHESIS_DETECTORS.register(RAISES)(_raises)


_register()


def _expected(images: Sequence[npt.NDArray[np.uint8]]) -> tuple[float, float]:
    raw = float(np.mean([8.0 * float(im.mean()) / 255.0 - 4.0 for im in images]))
    return raw, 1.0 / (1.0 + np.exp(-raw))


@pytest.fixture(scope="module")
def scanner() -> Scanner:
    return Scanner(ScanConfig(num_frames=8, synthesis_detector=BRIGHT))


@pytest.fixture(scope="module")
def photo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    # PNG: lossless, so the mean the scanner sees is the one written
    return write_image(tmp_path_factory.mktemp("synth") / "face.png", load_example_face(), ".png")


def _gradient(h: int, w: int, lo: int, hi: int) -> npt.NDArray[np.uint8]:
    row = np.linspace(lo, hi, w).astype(np.uint8)
    return np.ascontiguousarray(np.broadcast_to(row[None, :, None], (h, w, 3)))


def _scan_json(argv: list[str], capsys: pytest.CaptureFixture[str]) -> list[dict[str, Any]]:
    assert main(["scan", "--json", *argv]) == 0
    return [json.loads(line) for line in capsys.readouterr().out.splitlines()]


def test_photo_gets_both_verdicts(scanner: Scanner, photo: Path) -> None:
    v = scanner.scan(photo)
    assert v.status is Status.OK, v.reason
    s = v.synthesis
    assert s is not None and s.status is Status.OK, s
    raw, p = _expected([load_example_face()])
    assert s.raw_score == pytest.approx(raw) and s.fake_probability == pytest.approx(p)
    assert s.frames == 1 and s.model == Brightness.info
    assert s.label is decide_label(p, 0.5, 0.1)
    assert "synthesis" in v.timings_ms and v.timings_ms["synthesis"] >= 0
    d = v.to_dict()["synthesis"]
    assert set(d) == {
        "status",
        "reason",
        "fake_probability",
        "raw_score",
        "label",
        "model",
        "frames",
        "family",
    }
    assert d["model"]["name"] == BRIGHT and d["frames"] == 1
    assert d["family"] is None  # a detector without a generator-family output never names one


def test_label_follows_the_decision_rule(scanner: Scanner, tmp_path: Path) -> None:
    bright = scanner.scan(
        write_image(tmp_path / "bright.png", _gradient(200, 300, 230, 255), ".png")
    )
    dark = scanner.scan(write_image(tmp_path / "dark.png", _gradient(200, 300, 0, 25), ".png"))
    assert bright.synthesis is not None and dark.synthesis is not None
    assert bright.synthesis.label is Label.FAKE and "looks generated" in bright.synthesis.reason
    assert dark.synthesis.label is Label.REAL and "threshold 0.50" in dark.synthesis.reason
    assert bright.synthesis.fake_probability > 0.9 > 0.1 > dark.synthesis.fake_probability  # type: ignore[operator]


def test_video_scores_up_to_four_spread_frames(scanner: Scanner) -> None:
    detector = scanner.synthesis
    assert isinstance(detector, Brightness)
    before = len(detector.calls)
    v = scanner.scan(EXAMPLE)
    assert v.status is Status.OK and v.synthesis is not None
    assert v.synthesis.status is Status.OK and v.synthesis.frames == 4
    assert sum(detector.calls[before:]) == 4
    # the video's raw score is the mean over its frames; its probability that score's
    assert v.synthesis.raw_score is not None
    expected = float(detector.probability(np.array([v.synthesis.raw_score]))[0])
    assert v.synthesis.fake_probability == pytest.approx(expected)
    assert f"{v.synthesis.frames} sampled frames" in v.synthesis.reason
    run = scanner._synthesis_run(32)  # of 32 sampled frames: 4, first to last, evenly
    assert run is not None and sorted(run.picks) == [0, 10, 21, 31]
    assert scanner._synthesis_run(1).picks == frozenset({0})  # type: ignore[union-attr]


def test_no_face_image_still_gets_a_synthesis_verdict(scanner: Scanner, tmp_path: Path) -> None:
    flat = _gradient(240, 320, 40, 200)
    v = scanner.scan(write_image(tmp_path / "flat.png", flat, ".png"))
    assert v.status is Status.NO_FACE and v.fake_probability is None
    assert v.synthesis is not None and v.synthesis.status is Status.OK
    assert v.synthesis.fake_probability == pytest.approx(_expected([flat])[1])


def test_too_small_for_the_synthesis_detector_abstains(scanner: Scanner, tmp_path: Path) -> None:
    v = scanner.scan(write_image(tmp_path / "tiny.png", _gradient(40, 50, 0, 255), ".png"))
    s = v.synthesis
    assert s is not None and s.status is Status.UNSUPPORTED and s.fake_probability is None
    assert s.reason == f"image too small for the synthesis detector (40 px, needs {MIN_SIDE})"
    assert s.label is Label.UNCERTAIN and s.frames == 0 and s.model == Brightness.info


def test_unreadable_inputs_abstain_alike(scanner: Scanner, tmp_path: Path) -> None:
    (tmp_path / "empty.mp4").write_bytes(b"")
    (tmp_path / "text.jpg").write_text("not an image\n" * 20)
    for name in ("empty.mp4", "text.jpg"):
        v = scanner.scan(tmp_path / name)
        assert v.status in {Status.UNDECODABLE, Status.UNSUPPORTED}
        assert v.synthesis is not None and v.synthesis.status is v.status
        assert v.synthesis.fake_probability is None and v.synthesis.reason == v.reason


def test_failing_synthesis_detector_leaves_the_face_verdict_alone(
    scanner: Scanner, photo: Path
) -> None:
    broken = Scanner(ScanConfig(num_frames=8, synthesis_detector=RAISES))
    v = broken.scan(photo)
    assert v.status is Status.OK, v.reason
    assert v.fake_probability == scanner.scan(photo).fake_probability
    assert v.synthesis is not None and v.synthesis.status is Status.ERROR
    assert "RuntimeError: synthetic failure" in v.synthesis.reason
    assert v.synthesis.fake_probability is None and v.synthesis.model == Raises.info


def test_top_level_fields_keep_their_meaning(scanner: Scanner, photo: Path) -> None:
    off = Scanner(ScanConfig(num_frames=8, synthesis_detector=None))
    assert off.synthesis is None
    on_v, off_v = scanner.scan(photo), off.scan(photo)
    assert off_v.synthesis is None and off_v.to_dict()["synthesis"] is None
    a, b = on_v.to_dict(), off_v.to_dict()
    for key in ("status", "fake_probability", "raw_score", "label", "faces", "model", "decision"):
        assert a[key] == b[key], key
    assert a["reason"] == b["reason"]


def test_cli_flag_selects_the_detector_and_no_synthesis_turns_it_off(
    photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (on,) = _scan_json(["--synthesis-detector", BRIGHT, str(photo)], capsys)
    (off,) = _scan_json(["--no-synthesis", str(photo)], capsys)
    assert on["synthesis"]["model"]["name"] == BRIGHT and on["synthesis"]["status"] == "ok"
    assert on["synthesis"]["fake_probability"] == pytest.approx(
        _expected([load_example_face()])[1], abs=1e-6
    )
    assert off["synthesis"] is None
    assert on["fake_probability"] == off["fake_probability"]
    assert main(["scan", "--synthesis-detector", "no-such-detector", str(photo)]) == 2
    assert "no-such-detector" in capsys.readouterr().err
    assert main(["scan", "--no-synthesis", "--synthesis-detector", BRIGHT, str(photo)]) == 2
    capsys.readouterr()


def test_table_shows_the_synthesis_column(photo: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["scan", "--synthesis-detector", BRIGHT, str(photo)]) == 0
    out = capsys.readouterr().out
    assert "generated (whole image)" in out and "synthesis: " in out
    assert main(["scan", "--no-synthesis", str(photo)]) == 0
    out = capsys.readouterr().out
    assert "face.png" in out and "whole image" not in out and "synthesis" not in out


def test_config_default_and_off() -> None:
    assert ScanConfig().synthesis_detector == DEFAULT_SYNTHESIS_DETECTOR
    assert ScanConfig.from_mapping({"synthesis_detector": None}).synthesis_detector is None
    with pytest.raises(ValueError):
        SynthesisVerdict(Status.OK, "no probability")
    with pytest.raises(ValueError):
        SynthesisVerdict(Status.NO_FACE, "scored anyway", fake_probability=0.5)


def test_default_detector_on_a_photo_and_a_video(
    photo: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    objs = _scan_json(["--frames", "8", str(photo), str(EXAMPLE)], capsys)
    assert [o["media"]["kind"] for o in objs] == ["image", "video"]
    for obj in objs:
        s = obj["synthesis"]
        assert s["status"] == "ok", s
        assert 0.0 <= s["fake_probability"] <= 1.0 and s["label"] in {"fake", "real", "uncertain"}
        assert s["model"]["name"] and len(s["model"]["sha256"]) == 64
        assert s["reason"] and isinstance(s["raw_score"], float)
        assert "synthesis" in obj["timings_ms"]
    assert [o["synthesis"]["frames"] for o in objs] == [1, 4]


def test_eval_reports_the_synthesis_detector_per_generator(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`fakescope eval` on a generated-image manifest: the synthesis verdicts become the
    detector ``synthesis:<name>`` with its own headline row, per-generator rows and decision,
    and `--from-scores` (rebuilding the decision for a new cost) reads them back."""
    root = tmp_path / "gen"
    rows = ["file\tlabel\tgenerator_method"]
    for k in range(6):
        fake = k % 2 == 1
        # generated ones are brighter: Brightness ranks them all above the reals
        img = _gradient(96, 96, 120 if fake else 10, 200 if fake else 90)
        name = f"{'fake' if fake else 'real'}/{k}.png"
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        write_image(root / name, img, ".png")
        rows.append(f"{name}\t{'fake' if fake else 'real'}\t{'GenX' if fake else 'none'}")
    (root / "MANIFEST.tsv").write_text("\n".join(rows) + "\n")
    out = tmp_path / "ev"
    argv = ["eval", str(root), "--synthesis-detector", BRIGHT, "--out", str(out), "--no-figures"]
    assert main(argv) == 0
    capsys.readouterr()
    metrics = json.loads((out / "metrics.json").read_text())
    name = f"synthesis:{BRIGHT}"
    assert name in metrics["decisions"]
    assert metrics["decisions"][name]["calibrated"] is False
    synth = metrics["metrics"][name]["gen"]
    assert synth["video"]["auc"]["value"] == pytest.approx(1.0)
    assert synth["per_method"]["GenX"]["n_fake"]["value"] == 3
    report = (out / "report.md").read_text()
    assert f"| {name} | gen | GenX |" in report
    scores = (out / "scores.csv").read_text().splitlines()
    assert sum(name in line for line in scores) == 6  # one row per item, scored once
    again = tmp_path / "ev2"
    argv = ["eval", "--from-scores", str(out / "scores.csv"), "--out", str(again)]
    assert main([*argv, "--no-figures", "--cost-miss", "3"]) == 0
    capsys.readouterr()
    rebuilt = json.loads((again / "metrics.json").read_text())["decisions"][name]
    assert rebuilt["cost_miss"] == 3 and rebuilt["threshold"] == 0.5  # uncalibrated: own
