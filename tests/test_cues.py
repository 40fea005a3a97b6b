"""Hand-crafted track cues (fakescope.cues) and their SVM trainer (fakescope.training.cues):
synthetic tracks only, a few seconds."""

from __future__ import annotations

import hashlib
import json
import time
from dataclasses import replace
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_store
from fakescope.cues import (
    FACE_OVAL,
    FEATURE_NAMES,
    INNER_FACE,
    LEFT_EYE_EAR,
    RIGHT_EYE_EAR,
    CueFeatures,
    CueModel,
    FeatureMismatchError,
    FeatureReference,
    eye_aspect_ratio,
    loose_crop,
    track_cues,
)
from fakescope.errors import ConfigError, ModelError

_F64 = npt.NDArray[np.float64]
_U8 = npt.NDArray[np.uint8]


# --------------------------------------------------------------------------------------------
# synthetic faces


def _mesh(side: float, rng: np.random.Generator, ear: float = 0.3) -> _F64:
    """468 points of a face centred in a ``side`` crop: the face oval on an ellipse (clockwise
    from the forehead), both EAR eyes with aspect ratio ``ear``, nose and mouth in place,
    every other point scattered inside."""
    c = side / 2.0
    rx, ry = 0.3 * side, 0.36 * side
    pts = c + rng.uniform(-0.55, 0.55, (468, 2)) * [rx, ry]
    theta = np.linspace(-np.pi / 2, 3 * np.pi / 2, len(FACE_OVAL), endpoint=False)
    pts[list(FACE_OVAL)] = np.stack([c + rx * np.cos(theta), c + ry * np.sin(theta)], axis=1)
    for idx, cx in ((RIGHT_EYE_EAR, c - 0.12 * side), (LEFT_EYE_EAR, c + 0.12 * side)):
        _set_eye(pts, idx, cx, c - 0.08 * side, 0.1 * side, ear)
    nose = [i for i in INNER_FACE if i not in (33, 133, 362, 263, 61, 291, 0)]
    pts[nose, 0] = c + rng.normal(0, 0.01 * side, len(nose))
    pts[nose, 1] = np.linspace(c - 0.08 * side, c + 0.05 * side, len(nose))
    pts[61] = (c - 0.08 * side, c + 0.15 * side)  # mouth corners, upper lip
    pts[291] = (c + 0.08 * side, c + 0.15 * side)
    pts[0] = (c, c + 0.13 * side)
    return pts


def _set_eye(pts: _F64, idx: tuple[int, ...], cx: float, cy: float, w: float, ear: float) -> None:
    h = ear * w / 2.0  # EAR = (2h + 2h) / (2w)
    p1, p2, p3, p4, p5, p6 = idx
    pts[p1], pts[p4] = (cx - w / 2, cy), (cx + w / 2, cy)
    pts[p2], pts[p3] = (cx - w / 6, cy - h), (cx + w / 6, cy - h)
    pts[p6], pts[p5] = (cx - w / 6, cy + h), (cx + w / 6, cy + h)


def _rigid_track(base: _F64, t: int, side: float) -> _F64:
    """``base`` turning, scaling and sliding a little over ``t`` frames (a similarity each)."""
    out = np.empty((t, *base.shape))
    c = side / 2.0
    for k in range(t):
        a = 0.15 * np.sin(k / 4.0)
        s = 1.0 + 0.05 * np.cos(k / 5.0)
        rot = s * np.array([[np.cos(a), -np.sin(a)], [np.sin(a), np.cos(a)]])
        out[k] = (base - c) @ rot.T + c + [2.0 * np.sin(k / 3.0), 1.5 * k / t]
    return out


def _texture(side: int, rng: np.random.Generator, smooth: float = 1.5) -> _U8:
    """Skin-coloured texture with detail at every scale."""
    noise = rng.normal(0, 1, (side, side, 3)).astype(np.float32)
    detail = cv2.GaussianBlur(noise, (0, 0), smooth) * 25.0
    base = np.array([200.0, 150.0, 125.0], np.float32)
    return np.clip(base + detail, 0, 255).astype(np.uint8)


def _face_mask(points: _F64, side: int) -> npt.NDArray[np.bool_]:
    mask = np.zeros((side, side), np.uint8)
    cv2.fillPoly(mask, [np.round(points[list(FACE_OVAL)]).astype(np.int32)], 1)
    return mask.astype(bool)


def _frames(
    side: int, t: int, rng: np.random.Generator, *, tint: float = 0.0, blur: float = 0.0,
    noise: float = 0.0, smooth: float = 1.5,
) -> tuple[_U8, _F64]:  # fmt: skip
    """``t`` crops of one face (rigid motion) whose face region may be tinted, blurred or
    noisier than its surroundings, and their landmarks."""
    marks = _rigid_track(_mesh(side, rng), t, side)
    crops = []
    for k in range(t):
        img = _texture(side, rng, smooth)
        inside = _face_mask(marks[k], side)
        face: npt.NDArray[np.float32] = img.astype(np.float32)
        if blur:
            face = np.asarray(cv2.GaussianBlur(face, (0, 0), blur), np.float32)
        if tint:
            face = face + np.array([tint, -0.5 * tint, -0.5 * tint], np.float32)
        if noise:
            face = face + rng.normal(0, noise, face.shape).astype(np.float32)
        img[inside] = np.clip(face, 0, 255).astype(np.uint8)[inside]
        crops.append(img)
    return np.stack(crops), marks


def _track(crops: _U8, marks: _F64, fps: float = 10.0) -> CueFeatures:
    return track_cues(crops, marks, np.arange(len(crops)) / fps)


# --------------------------------------------------------------------------------------------
# cues


def test_eye_aspect_ratio_of_the_synthetic_eyes() -> None:
    pts = _mesh(128, np.random.default_rng(0), ear=0.27)
    right, left = eye_aspect_ratio(pts)
    np.testing.assert_allclose([right[0], left[0]], [0.27, 0.27], atol=1e-9)


def test_two_blinks_are_two_events_scaled_per_10s() -> None:
    rng = np.random.default_rng(1)
    t, side = 50, 128
    base = _mesh(side, rng)
    marks = _rigid_track(base, t, side)
    ears = 0.3 + rng.normal(0, 0.005, t)
    ears[[10, 11]] = 0.05  # blink 1: two closed frames are one event
    ears[[30, 32]] = 0.05  # blink 2: a half-open frame between (hysteresis: still one event)
    ears[31] = 0.23
    for k in range(t):
        pts = _mesh(side, np.random.default_rng(1), ear=float(ears[k]))
        marks[k] = _rigid_track(pts, t, side)[k]
    crops = np.zeros((t, side, side, 3), np.uint8)
    cues = track_cues(crops, marks, np.arange(t) / 10.0)  # 50 frames at 10 fps: 5 s
    assert "blinks_per_10s" not in cues.missing
    assert cues["blinks_per_10s"] == pytest.approx(10.0 * 2 / 5.0)
    assert cues["ear_std"] > 0.03
    # eyes that never close: no blink
    steady = _rigid_track(base, t, side)
    assert track_cues(crops, steady, np.arange(t) / 10.0)["blinks_per_10s"] == 0.0


def test_jitter_grows_with_landmark_noise_and_ignores_rigid_motion() -> None:
    rng = np.random.default_rng(2)
    crops, marks = _frames(96, 16, rng)
    rigid = _track(crops, marks)
    noisy = _track(crops, marks + rng.normal(0, 0.6, marks.shape))
    noisier = _track(crops, marks + rng.normal(0, 1.5, marks.shape))
    assert rigid["jitter"] < 1e-6  # a pure similarity motion leaves nothing
    assert rigid["pose_rot_max_deg"] < 1e-6 and rigid["pose_scale_max_pct"] < 1e-6
    assert noisy["jitter"] > 0.05 and noisier["jitter"] > 2.0 * noisy["jitter"]
    assert noisy["pose_rot_mean_deg"] > 0.0
    # per second: the same motion sampled twice as fast is twice the jitter per second
    fast = track_cues(crops, marks + rng.normal(0, 0.6, marks.shape), np.arange(16) / 20.0)
    assert fast["jitter"] == pytest.approx(2.0 * noisy["jitter"], rel=0.3)


def test_a_tinted_face_gives_a_larger_colour_mismatch() -> None:
    plain = _track(*_frames(128, 6, np.random.default_rng(3)))
    tinted = _track(*_frames(128, 6, np.random.default_rng(3), tint=40.0))
    assert tinted["colour_gap"] > plain["colour_gap"] + 15.0
    # a tint that comes and goes makes the face colour drift against its surroundings
    crops, marks = _frames(128, 6, np.random.default_rng(3), tint=40.0)
    plain_crops, _ = _frames(128, 6, np.random.default_rng(3))
    crops[::2] = plain_crops[::2]
    flicker = _track(crops, marks)
    assert flicker["colour_flicker"] > 5.0 * max(plain["colour_flicker"], 1.0)


@pytest.mark.parametrize("side", [128, 256])  # 256: measured on the 2x downscaled crop
def test_blurred_face_region_gives_a_negative_blur_mismatch(side: int) -> None:
    k = side / 128
    plain = _track(*_frames(side, 4, np.random.default_rng(4), smooth=0.7 * k))
    blurred = _track(*_frames(side, 4, np.random.default_rng(4), smooth=0.7 * k, blur=2.0 * k))
    assert abs(plain["blur_log_ratio"]) < 0.3
    assert blurred["blur_log_ratio"] < -1.0
    assert blurred["noise_log_ratio"] < plain["noise_log_ratio"]


@pytest.mark.parametrize("side", [128, 256])
def test_a_noisier_face_region_gives_a_positive_noise_mismatch(side: int) -> None:
    k = side / 128
    plain = _track(*_frames(side, 4, np.random.default_rng(5), smooth=3.0 * k))
    noisy = _track(*_frames(side, 4, np.random.default_rng(5), smooth=3.0 * k, noise=4.0 * k))
    assert abs(plain["noise_log_ratio"]) < 0.3
    assert noisy["noise_log_ratio"] > 0.7


def test_short_tracks_are_nan_free_and_flag_what_they_cannot_measure() -> None:
    crops, marks = _frames(64, 2, np.random.default_rng(6))
    one = _track(crops[:1], marks[:1])
    assert one.names == FEATURE_NAMES and all(np.isfinite(one.vector()))
    assert {"blinks_per_10s", "ear_std", "jitter", "colour_flicker"} <= one.missing
    assert {"pose_rot_mean_deg", "pose_scale_max_pct"} <= one.missing
    assert "ear_mean" not in one.missing and "colour_gap" not in one.missing
    two = _track(crops, marks)
    assert "jitter" not in two.missing and "colour_flicker" not in two.missing
    assert "blinks_per_10s" in two.missing  # 2 frames over 0.1 s say nothing about blinks
    assert CueFeatures.from_dict(json.loads(json.dumps(two.to_dict()))) == two
    with pytest.raises(ValueError, match="empty"):
        track_cues(crops[:0], marks[:0], [])
    with pytest.raises(ValueError, match="crops"):
        track_cues(crops, marks[:1], [0.0])
    with pytest.raises(ValueError, match="increasing"):
        track_cues(crops, marks, [1.0, 0.0])


def test_loose_crop_matches_the_training_store() -> None:
    from fakescope.training.prepare_sbi import crop_face

    rng = np.random.default_rng(7)
    frame = rng.integers(0, 256, (240, 320, 3), dtype=np.uint8)
    mesh = np.concatenate([rng.uniform(50, 200, (468, 2)), rng.normal(0, 5, (468, 1))], axis=1)
    box = (200.0, 30.0, 300.0, 150.0)  # runs off the frame: replicated border
    crop, pts = loose_crop(frame, box, mesh.astype(np.float32))
    want_crop, want_pts = crop_face(frame, box, mesh.astype(np.float32), 256, 1.6)
    assert np.array_equal(crop, want_crop)
    np.testing.assert_allclose(pts, want_pts, atol=1e-4)


def test_a_32_frame_track_is_cheap() -> None:
    cv2.setNumThreads(1)
    crops, marks = _frames(256, 32, np.random.default_rng(8))
    times = np.arange(32) / 6.0
    best = min(_timed(crops, marks, times) for _ in range(3))
    assert best < 0.1, f"{best * 1000:.1f} ms"  # ~10-20 ms on one core; slack for shared CI


def _timed(crops: _U8, marks: _F64, times: _F64) -> float:
    start = time.perf_counter()
    track_cues(crops, marks, times)
    return time.perf_counter() - start


# --------------------------------------------------------------------------------------------
# the model


def _sklearn_model(seed: int, gamma: float | str = 0.2) -> tuple[CueModel, object, _F64]:
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import SVC

    from fakescope.training.cues import model_from_sklearn, real_reference

    rng = np.random.default_rng(seed)
    d = len(FEATURE_NAMES)
    x = rng.normal(0, 1, (80, d)) * rng.uniform(0.1, 10, d) + rng.normal(0, 5, d)
    first = (x[:, 0] - x[:, 0].mean()) / x[:, 0].std()
    y = (first + rng.normal(0, 1, 80) > 0).astype(np.int64)
    pipe = Pipeline([("scale", StandardScaler()), ("svm", SVC(C=2.0, gamma=gamma))]).fit(x, y)
    missing = np.zeros_like(x, bool)
    ref = real_reference(x, missing, y, FEATURE_NAMES)
    neutral = {n: r.median for n, r in ref.items()}
    model = model_from_sklearn(pipe, FEATURE_NAMES, (-1.5, 0.2), ref, neutral)
    return model, pipe, x


@pytest.mark.parametrize("gamma", [0.2, "scale"])
def test_numpy_svm_equals_sklearn_decision_function(gamma: float | str) -> None:
    model, pipe, x = _sklearn_model(0, gamma)
    test = np.random.default_rng(1).normal(0, 1, (50, x.shape[1])) * x.std(0) + x.mean(0)
    want = pipe.decision_function(test)  # type: ignore[attr-defined]
    got = model.decision_values(test)
    assert np.max(np.abs(got - want)) < 1e-6
    assert np.ptp(want) > 0.5  # a non-trivial function
    one = CueFeatures(FEATURE_NAMES, tuple(float(v) for v in test[3]))
    assert model.decision(one) == pytest.approx(want[3], abs=1e-6)
    assert model.predict(one) == pytest.approx(1 / (1 + np.exp(-1.5 * want[3] + 0.2)), abs=1e-9)


def test_json_round_trip_and_integrity(tmp_path: Path) -> None:
    model, _, x = _sklearn_model(2)
    path = tmp_path / "cues.json"
    model.save(path)
    again = CueModel.load(path, sha256=hashlib.sha256(path.read_bytes()).hexdigest())
    assert again.to_dict() == model.to_dict()
    np.testing.assert_array_equal(again.decision_values(x), model.decision_values(x))
    assert "inf" not in path.read_text() and "NaN" not in path.read_text()
    with pytest.raises(ModelError, match="sha256"):
        CueModel.load(path, sha256="0" * 64)
    data = json.loads(path.read_text())
    with pytest.raises(ModelError, match="format"):
        CueModel.from_dict({**data, "format": "pickle"})
    data["svm"]["dual_coef"] = data["svm"]["dual_coef"][:-1]
    with pytest.raises(ModelError, match="support vectors"):
        CueModel.from_dict(data)


def test_feature_order_mismatch_is_a_clear_error() -> None:
    model, _, x = _sklearn_model(3)
    names = (FEATURE_NAMES[1], FEATURE_NAMES[0], *FEATURE_NAMES[2:])
    swapped = CueFeatures(names, tuple(float(v) for v in x[0]))
    with pytest.raises(FeatureMismatchError, match="different order"):
        model.predict(swapped)
    fewer = CueFeatures(FEATURE_NAMES[:-1], tuple(float(v) for v in x[0, :-1]))
    with pytest.raises(FeatureMismatchError, match=FEATURE_NAMES[-1]):
        model.predict(fewer)
    assert isinstance(FeatureMismatchError("x"), ConfigError)
    with pytest.raises(FeatureMismatchError):
        model.decision_values(x[:, :5])
    # a mapping is matched by name, whatever its order
    mapping = dict(reversed(list(zip(FEATURE_NAMES, x[0].tolist(), strict=True))))
    assert model.decision(mapping) == pytest.approx(model.decision_values(x[0])[0])


def _typical_model() -> CueModel:
    model, _, _ = _sklearn_model(4)
    reference = {n: FeatureReference(1.0, 2.0, 3.0) for n in FEATURE_NAMES}
    reference["blinks_per_10s"] = FeatureReference(2.0, 3.5, 5.0)
    reference["colour_flicker"] = FeatureReference(0.5, 1.0, 1.5)
    reference["blur_log_ratio"] = FeatureReference(-0.5, 0.0, 0.5)
    return replace(model, reference=reference)


def test_explain_names_the_cue_out_of_range_in_plain_words() -> None:
    model = _typical_model()
    values = {n: model.reference[n].median for n in FEATURE_NAMES}
    typical = CueFeatures(FEATURE_NAMES, tuple(values.values()))
    assert model.explain(typical) == []
    values["blinks_per_10s"] = 1.0
    values["colour_flicker"] = 3.0  # 3x the real median, 3 spreads above the range
    values["blur_log_ratio"] = -0.6  # just below
    odd = CueFeatures(FEATURE_NAMES, tuple(values.values()))
    reasons = model.explain(odd, k=3)
    assert reasons == [
        "face colour drifts from the surrounding skin 3.0x more than in real videos",
        "blinks 1.0 times in 10 s (typical 2.0–5.0)",
        "the face is 1.8x blurrier against its surroundings than in real videos",
    ]
    assert model.explain(odd, k=1) == reasons[:1]
    # a cue that could not be measured is never a reason
    unmeasured = replace(odd, missing=frozenset({"colour_flicker"}))
    assert not any("colour" in r for r in model.explain(unmeasured))
    # ... and the model scores it at its neutral value
    at_neutral = {**odd.as_dict(), "colour_flicker": model.neutral["colour_flicker"]}
    neutral = CueFeatures(FEATURE_NAMES, tuple(at_neutral.values()))
    assert model.predict(unmeasured) == pytest.approx(model.predict(neutral))


def test_scoring_needs_no_scikit_learn(tmp_path: Path) -> None:
    import subprocess
    import sys

    model, _, x = _sklearn_model(6)
    model.save(tmp_path / "m.json")
    code = (
        "import sys, numpy as np\n"
        "from fakescope.cues import CueModel, CueFeatures, FEATURE_NAMES, track_cues\n"
        f"m = CueModel.load({str(tmp_path / 'm.json')!r})\n"
        f"p = m.predict(CueFeatures(FEATURE_NAMES, {tuple(float(v) for v in x[0])!r}))\n"
        "crops = np.zeros((3, 64, 64, 3), np.uint8)\n"
        "track_cues(crops, np.random.rand(3, 468, 2) * 64, [0.0, 0.1, 0.2])\n"
        "print(repr(p))\n"
        "print(sorted(k for k in sys.modules if k.split('.')[0] in ('sklearn', 'scipy')))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    p_line, modules = out.stdout.strip().splitlines()
    assert modules == "[]", out.stdout
    # without scikit-learn it scores exactly as the model does here
    assert float(p_line) == pytest.approx(model.predict(CueFeatures(FEATURE_NAMES, tuple(x[0]))))


def test_platt_fit_minimises_its_loss() -> None:
    from scipy.optimize import minimize

    from fakescope.training.cues import fit_platt

    rng = np.random.default_rng(5)
    y = rng.integers(0, 2, 200)
    d = rng.normal(0, 1, 200) + 1.2 * (2 * y - 1)
    a, b = fit_platt(d, y)
    n1, n0 = y.sum(), len(y) - y.sum()
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))

    def loss(p: _F64) -> float:
        f = p[0] * d + p[1]
        return float(np.sum(t * np.logaddexp(0, f) + (1 - t) * np.logaddexp(0, -f)))

    best = minimize(loss, np.zeros(2), method="Nelder-Mead", options={"xatol": 1e-8}).x
    assert a < 0 and np.allclose([a, b], best, atol=1e-3)


# --------------------------------------------------------------------------------------------
# the trainer


def _tiny_store(root: Path, groups: int = 6, frames: int = 10, side: int = 64) -> Path:
    """A face store of ``groups`` identities, each a real video and a fake whose face is tinted
    and blurred, rows stored out of frame order."""
    from fakescope.training.store import StoreParams

    rng = np.random.default_rng(0)
    params = StoreParams(size=side, frames_per_video=frames)
    images, marks, rows = [], [], []
    for g in range(groups):
        for label in ("real", "fake"):
            fake = label == "fake"
            crops, pts = _frames(side, frames, rng, tint=30.0 * fake, blur=1.5 * fake, smooth=0.8)
            pts = pts + rng.normal(0, 0.2, pts.shape)
            for f in reversed(range(frames)):
                images.append(crops[f])
                marks.append(pts[f].astype(np.float32))
                rows.append(
                    {
                        "media_id": f"tiny_videos/{label}/{g:03d}",
                        "dataset": "tiny_videos",
                        "label": label,
                        "method": "Deepfakes" if fake else "real",
                        "group": f"g{g}",
                        "split": "",
                        "frame": 3 * f,
                    }
                )
    write_store(root, images, marks, rows, params.size, params.frames_per_video)
    return root


def test_trainer_end_to_end_on_a_tiny_store(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.training.cue_tracks import load_tracks
    from fakescope.training.engine import ship, train
    from fakescope.training.store import FaceStore

    store = _tiny_store(tmp_path / "store")
    out = tmp_path / "run"
    config = {
        "recipe": "cues",
        "data": {"store": str(store), "datasets": ["tiny_videos"], "fps": 10,
                 "data_root": str(tmp_path / "no_data")},
        "svm": {"folds": 3, "inner_folds": 2, "n_boot": 50, "c_grid": [0.3, 3]},
    }  # fmt: skip
    overrides = [f"run.out={out}", "svm.gamma_grid=[0.03, 0.3]"]
    result = train(config, overrides)
    report = result.metrics
    assert result.outputs["cues_svm"] == out / "cues_svm.json"
    assert json.loads((out / "report.json").read_text()) == report
    assert report["tracks"] == {
        "total": 12, "real": 6, "fake": 6, "by_method": {"Deepfakes": 6, "real": 6},
        "identity_groups": 6, "frames_median": 10.0, "fps_from_media": 0, "fps_default": 12,
        "tracks_with_missing_cues": 0,
    }  # fmt: skip
    cv = report["cv"]
    assert cv["folds"] == 3 and len(cv["per_fold"]) == 3
    held_out = [set(f["groups"]) for f in cv["per_fold"]]
    assert set().union(*held_out) == {f"g{g}" for g in range(6)}
    assert sum(len(h) for h in held_out) == 6  # every identity held out exactly once
    assert cv["oof_auc"]["value"] >= 0.9 and cv["oof_auc"]["low"] <= cv["oof_auc"]["value"]
    assert report["final"]["C"] in (0.3, 3.0) and report["final"]["gamma"] in (0.03, 0.3)
    assert report["final"]["max_numpy_vs_sklearn_decision_error"] < 1e-9
    single = report["single_feature_auc"]
    assert set(single) == set(FEATURE_NAMES)
    assert single["colour_gap"]["oriented_auc"] == 1.0
    assert single["colour_gap"]["direction"] == "higher in fakes"

    model = CueModel.load(out / "cues_svm.json")
    assert model.names == FEATURE_NAMES and report["final"]["C"] == model.C
    tracks = load_tracks(
        FaceStore.open(store),
        ["tiny_videos"],
        cache_dir=out,
        data_root=tmp_path / "no_data",
        default_fps=10.0,
    )
    probs = [
        model.predict(CueFeatures(FEATURE_NAMES, tuple(float(v) for v in row))) for row in tracks.x
    ]
    assert min(p for p, y in zip(probs, tracks.label, strict=True) if y) > max(
        p for p, y in zip(probs, tracks.label, strict=True) if not y
    )
    fake_row = CueFeatures(FEATURE_NAMES, tuple(float(v) for v in tracks.x[tracks.label == 1][0]))
    assert any("colour" in reason for reason in model.explain(fake_row))

    lines = (out / "features.csv").read_text().splitlines()
    assert len(lines) == 13 and "oof_probability" in lines[0] and "colour_gap" in lines[0]
    assert len(list(out.glob("features_*.npz"))) == 1
    with np.load(next(out.glob("features_*.npz")), allow_pickle=False) as z:
        assert z["x"].shape == (12, len(FEATURE_NAMES))

    capsys.readouterr()
    again = train(out / "config.yaml")  # the run's saved config repeats it
    assert "cached cue table" in capsys.readouterr().err
    assert again.metrics["cv"]["oof_auc"] == cv["oof_auc"]

    # the ship stage (fakescope train --ship RUN) copies the model as the ship section says
    target = ship(out, ["ship.file=shipped.json", f"ship.dest={tmp_path}"])
    assert target == tmp_path / "shipped.json"
    assert target.read_bytes() == (out / "cues_svm.json").read_bytes()
    with pytest.raises(ConfigError, match=r"ship.file: a file name ending in .json"):
        ship(out, ["ship.file=shipped.onnx"])


def test_trainer_refuses_the_development_set(tmp_path: Path) -> None:
    from fakescope.training.cue_tracks import load_tracks
    from fakescope.training.engine import load_config
    from fakescope.training.store import FaceStore

    with pytest.raises(ConfigError, match="svm: folds"):
        load_config({"recipe": "cues"}, ["svm.folds=1"])

    store = FaceStore.open(_tiny_store(tmp_path / "store", groups=1, frames=2))
    with pytest.raises(ConfigError, match="development"):
        load_tracks(store, ["ffpp_c40_videos"])
    with pytest.raises(ConfigError, match="no rows"):
        load_tracks(store, ["other_videos"])
