"""Contract test over every registered deepfake detector, and weight integrity."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from fakescope._cpu import INT8_ENV, int8_exact
from fakescope.errors import ConfigError, ModelError
from fakescope.models import (
    ASSET_SHA256,
    DETECTORS,
    WeightConfig,
    asset_path,
    create_detector,
    sha256_file,
    verified_path,
)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_detector_contract(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(INT8_ENV, raising=False)
    detector = create_detector(name, threads=1)
    cfg = detector.config
    # an int8 weight is its float twin where this CPU would not run it exactly
    assert cfg.name == detector.info.name == DETECTORS.resolve(name)[0]
    assert detector.info.resolved_from == (None if cfg.name == name else name)
    assert detector.info.sha256 == cfg.sha256 == sha256_file(asset_path(cfg.file))
    size = cfg.input_size
    rng = np.random.default_rng(0)
    crops = rng.integers(0, 255, (5, size, size, 3), dtype=np.uint8)
    probs = detector.predict(crops)
    assert probs.shape == (5,)
    assert np.all((probs >= 0) & (probs <= 1))
    one_by_one = np.concatenate([detector.predict(crops[i : i + 1]) for i in range(5)])
    np.testing.assert_allclose(probs, one_by_one, atol=1e-5)
    assert detector.predict(np.zeros((0, size, size, 3), np.uint8)).shape == (0,)
    same, maps = detector.predict_maps(crops)
    np.testing.assert_allclose(same, probs, atol=1e-5)
    if detector.has_maps:
        assert maps is not None and maps.ndim == 3 and maps.shape[0] == 5
        assert np.all((maps >= 0) & (maps <= 1))
    else:
        assert maps is None
    with pytest.raises(ModelError):
        detector.predict(crops[:, :-1])


def test_unknown_detector_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown detector"):
        create_detector("no-such-detector")


def test_shipped_assets_match_their_sha256() -> None:
    for name, digest in ASSET_SHA256.items():
        assert sha256_file(asset_path(name)) == digest, name


def test_tampered_weight_fails_its_check(tmp_path: Path) -> None:
    copy = tmp_path / "model.onnx"
    shutil.copyfile(asset_path("mtcnn_rnet.onnx"), copy)
    with copy.open("ab") as fh:
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        verified_path(copy, ASSET_SHA256["mtcnn_rnet.onnx"])
    with pytest.raises(ModelError, match="missing"):
        verified_path(tmp_path / "absent.onnx", "0" * 64)


def test_verified_hashes_are_remembered_until_the_file_changes(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from fakescope import _assets

    monkeypatch.setenv("FAKESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    copy = tmp_path / "model.onnx"
    shutil.copyfile(asset_path("mtcnn_rnet.onnx"), copy)
    digest = ASSET_SHA256["mtcnn_rnet.onnx"]
    assert verified_path(copy, digest) == copy
    assert (tmp_path / "cache" / "sha256-stamps.json").is_file()
    _assets._verified.cache_clear()  # a new process: only the stamp file remembers

    def no_hashing(path: Path) -> str:
        raise AssertionError("hashed again although the file did not change")

    monkeypatch.setattr(_assets, "sha256_file", no_hashing)
    assert verified_path(copy, digest) == copy
    monkeypatch.undo()
    monkeypatch.setenv("FAKESCOPE_CACHE_DIR", str(tmp_path / "cache"))
    _assets._verified.cache_clear()
    with copy.open("ab") as fh:  # changed: size and time differ, so it is hashed and refused
        fh.write(b"\0")
    with pytest.raises(ModelError, match="sha256"):
        verified_path(copy, digest)
    monkeypatch.setenv("FAKESCOPE_CACHE_DIR", "")  # no cache at all
    _assets._verified.cache_clear()
    with pytest.raises(ModelError, match="sha256"):
        verified_path(copy, digest)


def test_weight_config_rejects_unknown_keys(tmp_path: Path) -> None:
    good = asset_path(create_detector("effnet-lite0-v4").config.file).with_suffix(".json")
    text = good.read_text().replace('"name"', '"nmae"', 1)
    bad = tmp_path / "bad.json"
    bad.write_text(text)
    with pytest.raises(ModelError, match="unknown keys"):
        WeightConfig.from_json(bad)


def test_detector_from_a_weight_config_file(tmp_path: Path) -> None:
    """A run's ``weights.json`` (file relative to it) loads like a registered detector."""
    shipped = create_detector("effnet-lite0-v4")
    run = tmp_path / "run"
    run.mkdir()
    shutil.copyfile(asset_path(shipped.config.file), run / "model.onnx")
    text = asset_path(shipped.config.file).with_suffix(".json").read_text()
    (run / "weights.json").write_text(text.replace(shipped.config.file, "model.onnx"))
    detector = create_detector(str(run / "weights.json"))
    crops = np.random.default_rng(0).integers(0, 255, (2, 192, 192, 3), dtype=np.uint8)
    assert np.allclose(detector.predict(crops), shipped.predict(crops), atol=1e-5)
    (run / "model.onnx").write_bytes(b"not a model")
    with pytest.raises(ModelError, match="sha256"):
        create_detector(str(run / "weights.json"))


def test_detector_argument_names_the_choices(tmp_path: Path) -> None:
    from fakescope.models import detector_argument

    assert detector_argument(DETECTORS.names()[0]) == DETECTORS.names()[0]
    with pytest.raises(ValueError, match="weight config"):
        detector_argument("nope")
    with pytest.raises(ValueError):
        detector_argument(str(tmp_path / "missing.json"))


def test_weight_config_alignment_and_calibration_levels(tmp_path: Path) -> None:
    import json

    raw = json.loads(asset_path("effnet_lite0_sbi.json").read_text())
    path = tmp_path / "w.json"
    path.write_text(json.dumps({**raw, "alignment": "dlib68"}))
    with pytest.raises(ModelError, match="alignment 'dlib68'"):
        WeightConfig.from_json(path)
    legacy = {"kind": "logit", "a": 0.5, "b": 0.1}  # the 0.1 layout: one crop calibrator
    path.write_text(json.dumps({**raw, "calibration": legacy}))
    assert WeightConfig.from_json(path).calibration == {"crop": legacy}
    path.write_text(json.dumps({**raw, "calibration": {"frame": legacy}}))
    with pytest.raises(ModelError, match="calibration levels"):
        WeightConfig.from_json(path)


@pytest.mark.parametrize("name", DETECTORS.names())
def test_every_shipped_weight_is_calibrated_at_both_levels(name: str) -> None:
    from fakescope.calibration import calibrator_from_dict

    config = create_detector(name).config
    assert config.calibration is not None and set(config.calibration) == {"video", "crop"}
    for level in ("video", "crop"):
        cal = calibrator_from_dict(config.calibration[level])
        low, high = cal.predict_proba([0.1, 0.9])[:, 1]
        if DETECTORS.declared_role(name) == "baseline" and config.calibration[level]["kind"] == (
            "constant"
        ):  # a baseline whose scores carry no information on the calibration data
            assert low == high == pytest.approx(0.5)
        else:
            assert low < high  # increasing: the input's max over faces stays calibrated


@pytest.mark.parametrize("name", [n for n in DETECTORS.names() if n.endswith("-int8")])
def test_int8_detector_scores_like_its_float_network(
    name: str, example_face: np.ndarray, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A quantized network gives its float twin's raw scores on real face crops, within the
    rounding measured on the val split (mean |delta p| about 0.02; tools/quantize_detectors.py).
    That holds where onnxruntime runs u8 x s8 exactly (VNNI, ARM); on other x86 CPUs (AVX2
    only, AVX512 without VNNI: up to 0.28 apart) the int8 name gives the float twin itself."""
    import cv2

    from fakescope.faces import FACE_DETECTORS, align_face

    monkeypatch.delenv(INT8_ENV, raising=False)
    twin_name = DETECTORS.float_twin(name)
    assert twin_name == name.removesuffix("-int8")
    quantized = create_detector(name, threads=1)
    twin = create_detector(twin_name, threads=1)
    (face,) = FACE_DETECTORS.create("hybrid").detect(example_face, 0)
    base = align_face(example_face, face, 192, 0.125).image
    rng = np.random.default_rng(0)
    pixelated = cv2.resize(cv2.resize(base, (24, 24), interpolation=cv2.INTER_AREA), (192, 192))
    pasted = base.copy()  # a crude colour-shifted inner face: the networks disagree on it
    inner = pasted[60:150, 50:142].astype(np.float64) * [1.2, 0.9, 0.8]
    pasted[60:150, 50:142] = np.clip(inner, 0, 255).astype(np.uint8)
    noise = rng.integers(0, 255, (192, 192, 3), dtype=np.uint8)
    crops = [base, base[:, ::-1], pixelated, pasted, noise, cv2.GaussianBlur(noise, (9, 9), 3)]
    batch = np.ascontiguousarray(np.stack(crops))
    if not int8_exact():  # the default here is the float twin, and the verdict says so
        assert quantized.info.name == twin_name and quantized.info.resolved_from == name
        assert quantized.info.sha256 == twin.info.sha256
        np.testing.assert_array_equal(quantized.predict(batch), twin.predict(batch))
        return
    assert quantized.info.name == name and quantized.info.resolved_from is None
    delta = np.abs(quantized.predict(batch) - twin.predict(batch))
    # the other shipped network differs by about 0.25 on these crops
    assert delta.mean() < 0.05 and delta.max() < 0.15, delta
    assert quantized.config.sha256 != twin.config.sha256
