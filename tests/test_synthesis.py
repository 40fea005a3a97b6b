"""The whole-image synthesis detector: registry contract, features, weight files, training
recipe and the shipped model's floor on stylegan2_ffhq."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from fakescope.errors import ConfigError, ModelError
from fakescope.models import ASSET_SHA256, asset_path, sha256_file
from fakescope.synthesis import (
    DEFAULT_SYNTHESIS_DETECTOR,
    SYNTHESIS_DETECTORS,
    FeatureConfig,
    LinearSynthesisDetector,
    SynthesisWeights,
    create_synthesis_detector,
    extract_features,
    feature_names,
    synthesis_detector_argument,
    tile_origins,
)

SHIPPED = "synth_freq_v1.json"
STYLEGAN2 = "stylegan2_ffhq"
# measured test-split AUC of the shipped freq-v1 (MODEL_CARD: 0.712); the floor leaves room
# for numeric drift across numpy/OpenCV/libjpeg builds, not for a worse model
FREQ_V1_TEST_AUC_FLOOR = 0.68


def _natural(example_face: npt.NDArray[np.uint8], side: int = 288) -> npt.NDArray[np.uint8]:
    """A natural-ish photo at least ``side`` px: the example face, mirrored out to size."""
    h, w = example_face.shape[:2]
    img = cv2.copyMakeBorder(
        example_face, 0, max(0, side - h), 0, max(0, side - w), cv2.BORDER_REFLECT
    )
    return np.ascontiguousarray(img)


def _nearest_up(img: npt.NDArray[np.uint8], factor: int) -> npt.NDArray[np.uint8]:
    small = cv2.resize(
        img, (img.shape[1] // factor, img.shape[0] // factor), interpolation=cv2.INTER_AREA
    )
    return np.ascontiguousarray(np.repeat(np.repeat(small, factor, axis=0), factor, axis=1))


def _zero_insertion_up(img: npt.NDArray[np.uint8], factor: int) -> npt.NDArray[np.uint8]:
    """Down by ``factor``, then zero insertion and an uneven 3-tap kernel (a stride-2
    transposed convolution with a checkerboard)."""
    small = cv2.resize(
        img, (img.shape[1] // factor, img.shape[0] // factor), interpolation=cv2.INTER_AREA
    ).astype(np.float32)
    up = np.zeros((small.shape[0] * factor, small.shape[1] * factor, 3), np.float32)
    up[::factor, ::factor] = small
    taps = np.array([0.5, 1.0, 0.5], np.float32) * factor / 2.0
    out = cv2.filter2D(up, -1, np.outer(taps, taps) * np.array([[1, 1.3, 1]]).T)
    return np.asarray(np.clip(out, 0, 255), dtype=np.uint8)


# --- registry contract ------------------------------------------------------------------------


@pytest.mark.parametrize("name", SYNTHESIS_DETECTORS.names())
def test_contract(name: str, example_face: npt.NDArray[np.uint8]) -> None:
    detector = create_synthesis_detector(name)
    info = detector.info
    assert info.name and len(info.sha256) == 64 and info.version
    assert detector.min_side >= 32 and 0.0 < detector.threshold < 1.0
    img = _natural(example_face, max(288, detector.min_side))
    raw = detector.score([img, img[::-1].copy()])
    assert raw.shape == (2,) and raw.dtype == np.float64 and np.isfinite(raw).all()
    assert detector.score([]).shape == (0,)
    grid = np.linspace(-30.0, 30.0, 121)
    p = detector.probability(grid)
    assert p.shape == grid.shape and ((p >= 0) & (p <= 1)).all()
    assert (np.diff(p) >= 0).all() and p[-1] > p[0]
    with pytest.raises(ValueError, match="too small"):
        detector.score([img[: detector.min_side - 1]])


def test_default_and_argument(tmp_path: Path) -> None:
    assert DEFAULT_SYNTHESIS_DETECTOR in SYNTHESIS_DETECTORS
    assert synthesis_detector_argument("freq-v1") == "freq-v1"
    copy = tmp_path / "w.json"
    shutil.copy(asset_path(SHIPPED), copy)
    assert synthesis_detector_argument(str(copy)) == str(copy)
    with pytest.raises(ValueError, match="freq-v1"):
        synthesis_detector_argument("no-such-detector")
    with pytest.raises(ValueError):
        synthesis_detector_argument(str(tmp_path / "missing.json"))
    with pytest.raises(ConfigError):
        create_synthesis_detector("no-such-detector")


def test_shipped_sha_is_listed_and_reported() -> None:
    path = asset_path(SHIPPED)
    assert ASSET_SHA256[SHIPPED] == sha256_file(path)
    assert create_synthesis_detector("freq-v1").info.sha256 == ASSET_SHA256[SHIPPED]


# --- features ---------------------------------------------------------------------------------


def test_tile_origins() -> None:
    assert tile_origins(256, 256, 3) == [0]
    assert tile_origins(300, 256, 3) == [0, 44]
    assert tile_origins(4000, 256, 3) == [0, 1872, 3744]
    with pytest.raises(ValueError):
        tile_origins(100, 128, 3)


def test_feature_layout_and_config_errors(example_face: npt.NDArray[np.uint8]) -> None:
    cfg = FeatureConfig(
        window=128, spectrum_bins=16, spectrum_angles=4, directional=True, scales=2, colour=True
    )
    feats = extract_features(example_face, cfg)
    assert feats.shape == (cfg.size,) == (len(feature_names(cfg)),)
    assert np.isfinite(feats).all()
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError, match="unknown"):
        FeatureConfig.from_dict({**cfg.to_dict(), "resize": True})
    for bad in ({"window": 100}, {"spectrum_bins": 999}, {"peak_periods": (3,)}):
        with pytest.raises(ConfigError):
            FeatureConfig(**bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="smaller"):
        extract_features(example_face[:100], cfg)


def test_upsampling_raises_the_score(example_face: npt.NDArray[np.uint8]) -> None:
    """Behaviour, not plumbing: the same photo scores as more generated once it has been
    up-sampled the way a generator does (nearest or zero insertion), and zero insertion with an
    uneven kernel (a transposed convolution) leaves spectral peaks at period 2 that the original
    does not have. (Nearest x2 leaves none there: its [1, 1] kernel has a zero at Nyquist.)"""
    detector = create_synthesis_detector("freq-v1")
    img = _natural(example_face, 2 * max(288, detector.min_side))
    for up in (_nearest_up(img, 2), _zero_insertion_up(img, 2)):
        raw = detector.score([img, up])
        assert raw[1] > raw[0], raw
    cfg = FeatureConfig(window=256, peak_periods=(2,))
    peaks = [feature_names(cfg).index(f"peak_{where}_p2") for where in ("axis", "diag")]
    plain = extract_features(img, cfg)[peaks]
    assert (extract_features(_zero_insertion_up(img, 2), cfg)[peaks] > plain + 2.0).all()


# --- weight files -----------------------------------------------------------------------------


def test_weights_json_round_trip(tmp_path: Path, example_face: npt.NDArray[np.uint8]) -> None:
    shipped = SynthesisWeights.from_json(asset_path(SHIPPED))
    again = SynthesisWeights.from_dict(json.loads(json.dumps(shipped.to_dict())))
    assert again == shipped
    path = shipped.save(tmp_path / "copy.json")
    from_path = create_synthesis_detector(str(path))
    registered = create_synthesis_detector("freq-v1")
    img = _natural(example_face, max(288, registered.min_side))
    assert np.array_equal(from_path.score([img]), registered.score([img]))
    assert from_path.info.sha256 == sha256_file(path)
    assert isinstance(from_path, LinearSynthesisDetector) and from_path.calibrated


def _edited(tmp_path: Path, edit: dict[str, object]) -> Path:
    data = json.loads(asset_path(SHIPPED).read_text())
    data.update(edit)
    path = tmp_path / "edited.json"
    path.write_text(json.dumps(data))
    return path


def test_tampered_weights_are_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    coef = json.loads(asset_path(SHIPPED).read_text())["coef"]
    tampered = _edited(tmp_path, {"coef": [c * 1.01 for c in coef]})
    with pytest.raises(ModelError, match="payload_sha256"):
        create_synthesis_detector(str(tampered))
    # the shipped file is also checked against its listed sha256, like every shipped asset
    monkeypatch.setitem(ASSET_SHA256, SHIPPED, "0" * 64)
    with pytest.raises(ModelError, match="sha256"):
        create_synthesis_detector("freq-v1")


def test_unknown_or_bad_keys_are_refused(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="unknown keys"):
        create_synthesis_detector(str(_edited(tmp_path, {"pickle": "no"})))
    with pytest.raises(ModelError, match="format"):
        create_synthesis_detector(str(_edited(tmp_path, {"format": "other/9"})))
    with pytest.raises(ModelError, match="cannot read"):
        create_synthesis_detector(str(tmp_path / "absent.json"))
    face_config = asset_path("effnet_lite0_v2.json")
    with pytest.raises(ModelError):
        create_synthesis_detector(str(face_config))
    weights = SynthesisWeights.from_json(asset_path(SHIPPED))
    payload = weights.payload()
    payload["coef"] = payload["coef"][:-1]
    from fakescope.synthesis._detector import _payload_sha256

    with pytest.raises(ModelError, match="coef"):
        SynthesisWeights.from_dict({**payload, "payload_sha256": _payload_sha256(payload)})


# --- training recipe --------------------------------------------------------------------------


# --- the shipped model on real data -----------------------------------------------------------


@pytest.mark.data
def test_freq_v1_floor_on_stylegan2_test_split(shared_data: Path) -> None:
    from sklearn.metrics import roc_auc_score

    from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image

    root = shared_data / STYLEGAN2
    if not (root / "MANIFEST.tsv").is_file():
        pytest.skip(f"{root} is not present (see ../shared/data/README.md)")
    items = load_manifest(root, "gen")
    splits = split_by_image([i.path for i in items], [i.label for i in items], seed=0)
    test = [i for i, s in zip(items, splits, strict=True) if s == "test"]
    assert len(test) == 76
    detector = create_synthesis_detector("freq-v1")
    images = [cv2.cvtColor(cv2.imread(i.path), cv2.COLOR_BGR2RGB) for i in test]
    raw = detector.score(images)
    auc = roc_auc_score([i.label for i in test], raw)
    assert auc >= FREQ_V1_TEST_AUC_FLOOR, auc
