"""Issue 30 item 2: face crops scored beside the face search (``ScanConfig.overlap``) give the
same verdicts as scoring them after it: same crops, same scores, same order; the same errors;
no thread left behind and no hang on a cut or failing input."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

from fakescope import ScanConfig, Scanner, Status
from fakescope.errors import DecodeError
from fakescope.faces import align_face
from fakescope.inference._found import _Clock
from fakescope.inference._overlap import ScoreAhead
from fakescope.io import load_example_face
from fakescope.models import create_detector
from fakescope.types import FaceBox, FaceCrop, Frame, MediaInfo, Verdict
from scenes import Actor, BlueIsFake, write_scene

WORKER = "fakescope-classify"


def _no_worker_left() -> bool:
    return not any(t.name == WORKER and t.is_alive() for t in threading.enumerate())


def _same(a: Verdict, b: Verdict) -> None:
    """Equal verdicts, but for the timings (the report's JSON object, field by field)."""
    da, db = a.to_dict(), b.to_dict()
    da.pop("timings_ms")
    db.pop("timings_ms")
    assert da == db


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three faces: one throughout, a smaller one, one that enters late and leaves early (so
    the search looks back and the scan decodes extra frames around a brief track)."""
    return write_scene(
        tmp_path_factory.mktemp("overlap") / "three.mp4",
        load_example_face(),
        [Actor(20, 20, 220), Actor(250, 170, 150), Actor(440, 60, 150, start=1.3, end=1.8)],
    )


@pytest.fixture(scope="module")
def pair() -> tuple[Scanner, Scanner]:
    """The default scan, sequential and overlapped."""
    return Scanner(ScanConfig(overlap=False)), Scanner(ScanConfig(overlap=True))


def test_default_detector_scores_a_crop_the_same_in_any_batch_and_thread_count(
    pair: tuple[Scanner, Scanner], scene: Path
) -> None:
    """What overlap relies on: a crop's score does not depend on the crops scored with it or
    on onnxruntime's thread count (bit for bit)."""
    sequential, _ = pair
    _, frames = sequential.open(scene)
    cfg = sequential.detector.config
    crops = []
    for frame in frames:
        faces = sequential.face_detector.detect(frame.image, frame.index, [], full_scan=True)
        crops += [
            align_face(frame.image, f, cfg.input_size, cfg.margin, alignment=cfg.alignment).image
            for f in faces
        ]
    batch = np.stack(crops[:12])
    assert len(batch) >= 8
    reference = sequential.detector.predict(batch)
    for threads in (1, 2):
        detector = create_detector(sequential.config.detector, threads=threads)
        for size in (1, 4, 8, 16):
            for member in getattr(detector, "members", [detector]):
                member.batch_size = size
            assert np.array_equal(detector.predict(batch), reference), (threads, size)
        one_by_one = np.concatenate([detector.predict(batch[k : k + 1]) for k in range(3)])
        assert np.array_equal(one_by_one, reference[:3])


def test_overlapped_scan_equals_the_sequential_scan(
    pair: tuple[Scanner, Scanner], scene: Path, face_clip: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    sequential, overlapped = pair
    threads: list[str] = []
    predict = overlapped.detector.predict

    def recorded(crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        threads.append(threading.current_thread().name)
        return predict(crops)

    monkeypatch.setattr(overlapped.detector, "predict", recorded)
    assert sequential.config.synthesis_detector is not None  # its frames go to the worker too
    for clip in (scene, face_clip):
        a, b = sequential.scan(clip), overlapped.scan(clip)
        assert a.status is Status.OK, a.reason
        assert len(a.tracks) == (3 if clip == scene else 1)
        _same(a, b)
        assert [(f.track_id, f.frame_index, f.raw_score) for t in b.tracks for f in t.frames] == [
            (f.track_id, f.frame_index, f.raw_score) for t in a.tracks for f in t.frames
        ]
        assert b.synthesis is not None and b.synthesis.to_dict() == a.synthesis.to_dict()  # type: ignore[union-attr]
        assert b.timings_ms["classify"] > 0 and b.timings_ms["synthesis"] > 0
        if clip == scene:  # its brief face was also looked for in extra frames
            sampled = {round(x) for x in np.linspace(0, 39, 32)}
            assert any(
                f.frame_index not in sampled
                for f in min(b.tracks, key=lambda t: len(t.frames)).frames
            )
    assert threads and set(threads) == {WORKER}  # every crop was scored beside the search
    assert _no_worker_left()


def test_overlapped_heatmaps_equal_the_sequential_ones(scene: Path, tmp_path: Path) -> None:
    outs = []
    for overlap in (False, True):
        folder = tmp_path / str(overlap)
        scanner = Scanner(
            ScanConfig(overlap=overlap, heatmaps_dir=str(folder), synthesis_detector=None)
        )
        verdict = scanner.scan(scene)
        assert verdict.status is Status.OK, verdict.reason
        outs.append((verdict, sorted(p.name for p in folder.iterdir())))
    (a, files_a), (b, files_b) = outs
    assert files_a == files_b and files_a
    assert [t.peak_region for t in a.tracks] == [t.peak_region for t in b.tracks]
    assert all(t.peak_region is not None for t in a.tracks)


def test_overlap_sets_the_detector_threads() -> None:
    from fakescope.inference._overlap import OVERLAP_THREADS, scoring_threads

    assert scoring_threads(ScanConfig()) == OVERLAP_THREADS == 1
    assert scoring_threads(ScanConfig(overlap=False)) == 0  # every core, as before
    assert scoring_threads(ScanConfig(threads=2)) == 2  # an explicit count stands


# -- errors: the same verdict either way -------------------------------------------------------


class _Failing(BlueIsFake):
    """Raises on the call that scores a blue (``fake``) crop: an error the sequential scan
    meets when it scores every crop at the end."""

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        out = super().predict(crops)
        if (out == self.fake).any():
            raise RuntimeError("the network broke on a blue face")
        return out


class _NanForBlue(BlueIsFake):
    """No valid score (NaN) for a blue crop: a per-face ``detector_error``."""

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        out = super().predict(crops)
        return np.where(out == self.fake, np.nan, out)


class _Short(BlueIsFake):
    """One score too few for every call."""

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        return super().predict(crops)[1:]


def _stubbed(overlap: bool, kind: type[BlueIsFake]) -> Scanner:
    scanner = Scanner(ScanConfig(overlap=overlap, synthesis_detector=None, threshold=0.5))
    scanner.calibrators = {}
    scanner.detector = kind(scanner.detector)  # type: ignore[assignment]
    return scanner


@pytest.fixture(scope="module")
def blue_scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_scene(
        tmp_path_factory.mktemp("blue") / "blue.mp4",
        load_example_face(),
        [Actor(40, 60, 150), Actor(420, 80, 150, blue=True)],
    )


@pytest.mark.parametrize("kind", [_Failing, _NanForBlue, _Short])
def test_detector_errors_give_the_same_verdict(kind: type[BlueIsFake], blue_scene: Path) -> None:
    a = _stubbed(False, kind).scan(blue_scene)
    b = _stubbed(True, kind).scan(blue_scene)
    _same(a, b)
    if kind is _NanForBlue:
        assert b.status is Status.OK and b.faces_dropped["detector_error"] > 0
    else:
        assert b.status is Status.ERROR
        assert ("broke on a blue face" if kind is _Failing else "scores for") in b.reason
    assert _no_worker_left()


# -- bad inputs: no hang, no thread left -------------------------------------------------------


def test_cut_videos_scan_alike_and_leave_no_worker(
    pair: tuple[Scanner, Scanner], face_clip: Path, hostile_dir: Path, tmp_path: Path
) -> None:
    sequential, overlapped = pair
    data = face_clip.read_bytes()
    cut = tmp_path / "cut60.mp4"
    cut.write_bytes(data[: int(len(data) * 0.6)])
    for clip in (hostile_dir / "truncated.mp4", cut, tmp_path / "missing.mp4"):
        start = time.monotonic()
        b = overlapped.scan(clip)
        assert time.monotonic() - start < 120
        _same(sequential.scan(clip), b)
        assert _no_worker_left()


def test_a_decoder_failing_mid_scan_stops_the_worker(
    pair: tuple[Scanner, Scanner], scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def breaking(scanner: Scanner) -> Any:
        real_open = scanner.open

        def breaking_open(path: Path, report: Any = None) -> tuple[MediaInfo, Iterator[Frame]]:
            media, frames = real_open(path, report)

            def some() -> Iterator[Frame]:
                for k, frame in enumerate(frames):
                    if k == 9:
                        raise DecodeError("the stream broke")
                    yield frame

            return media, some()

        return breaking_open

    verdicts = []
    for scanner in pair:
        monkeypatch.setattr(scanner, "open", breaking(scanner))
        verdicts.append(scanner.scan(scene))
        monkeypatch.undo()
    _same(*verdicts)
    assert verdicts[1].status is Status.UNDECODABLE and "the stream broke" in verdicts[1].reason
    assert _no_worker_left()


# -- the worker itself ---------------------------------------------------------------------------


class _Recorder:
    """Records the batch sizes it is called with; raw score = mean pixel / 255."""

    config: Any = None
    has_maps = False

    def __init__(self, delay: float = 0.0, fail: bool = False) -> None:
        self.calls: list[int] = []
        self.delay, self.fail = delay, fail

    def predict(self, crops: npt.NDArray[np.uint8]) -> npt.NDArray[np.float64]:
        self.calls.append(len(crops))
        time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("boom")
        return np.asarray(crops.reshape(len(crops), -1).mean(axis=1) / 255.0)


def _faces(n: int) -> tuple[list[FaceBox], dict[int, FaceCrop]]:
    faces = [
        FaceBox(k, (0.0, 0.0, 10.0, 10.0), 0.9, np.zeros((5, 2), np.float32)) for k in range(n)
    ]
    crops = {
        id(f): FaceCrop(-1, k, 0.0, f.box, np.full((4, 4, 3), k, np.uint8), np.eye(2, 3))
        for k, f in enumerate(faces)
    }
    return faces, crops


def test_worker_scores_every_crop_by_face_and_batches_what_is_queued() -> None:
    detector = _Recorder(delay=0.02)
    faces, crops = _faces(12)
    order: list[int] = []
    with ScoreAhead(detector, batch=4, depth=16) as ahead:  # type: ignore[arg-type]
        for k, face in enumerate(faces):
            ahead.crops([face], crops)
            if k == 5:
                ahead.job(lambda clock: order.append(len(ahead.scored.raw)))
        scored = ahead.finish()
    assert {k: float(v) for k, v in scored.raw.items()} == {
        id(f): k / 255.0 for k, f in enumerate(faces)
    }
    assert sum(detector.calls) == 12 and max(detector.calls) <= 4
    assert len(detector.calls) < 12  # crops queued while it worked went in together
    assert order == [6]  # the job ran after the crops handed over before it
    assert ahead.clock.ms["classify"] > 0
    assert scored.covers([id(f) for f in faces], maps=False)
    assert not scored.covers([id(f) for f in faces], maps=True)


def test_a_failing_worker_never_blocks_the_search() -> None:
    detector = _Recorder(fail=True)
    faces, crops = _faces(40)
    with ScoreAhead(detector, batch=1, depth=1) as ahead:  # type: ignore[arg-type]
        for face in faces:
            ahead.crops([face], crops)
        scored = ahead.finish()
    assert scored.failed and not scored.covers([id(faces[0])], maps=False)
    assert detector.calls == [1]  # it stopped scoring at the first failure
    assert _no_worker_left()


def test_close_drops_what_has_not_started_and_a_job_error_reaches_finish() -> None:
    detector = _Recorder(delay=0.05)
    faces, crops = _faces(20)
    ahead = ScoreAhead(detector, batch=1, depth=32)  # type: ignore[arg-type]
    for face in faces:
        ahead.crops([face], crops)
    ahead.close()
    ahead.close()
    assert len(detector.calls) < 20 and _no_worker_left()

    def broken(clock: _Clock) -> None:
        raise KeyError("job")

    ahead = ScoreAhead(_Recorder())  # type: ignore[arg-type]
    ahead.job(broken)
    with pytest.raises(KeyError, match="job"):
        ahead.finish()
    assert _no_worker_left()


def test_no_overlap_flag_reaches_the_scan_config() -> None:
    from fakescope.cli._main import build_parser, config_overrides

    for command in ("scan", "bench", "eval"):
        args = build_parser().parse_args([command, "x.mp4", "--no-overlap"])
        assert config_overrides(args)["overlap"] is False
    assert "overlap" not in config_overrides(build_parser().parse_args(["scan", "x.mp4"]))


def test_overlap_is_not_a_setting_that_changes_a_verdict() -> None:
    """A batch folder written with one resumes with the other (and with folders written
    before the field existed: the hash leaves it out)."""
    import dataclasses
    import hashlib
    import json

    from fakescope.batch._runner import config_hash

    assert config_hash(ScanConfig(overlap=False)) == config_hash(ScanConfig())
    before = dataclasses.asdict(ScanConfig())
    for name in ("threads", "overlap", "heatmaps_dir", "thumbnails_dir"):
        before.pop(name)
    text = json.dumps(before, sort_keys=True, default=str)
    assert config_hash(ScanConfig()) == hashlib.sha256(text.encode()).hexdigest()[:16]
