"""Fusers follow the scikit-learn estimator contract and round-trip through JSON; a fused
ensemble is a Detector; ``fakescope fuse`` writes one from a scores.csv."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.base import clone
from sklearn.exceptions import NotFittedError

from fakescope.evaluation import roc_auc
from fakescope.fusion import FUSERS, MeanLogitFuser, StackingFuser, fuser_from_dict

SIZE = 8


def _scores(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Three members: a good one, a weaker one and pure noise (columns of probabilities)."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    sign = 2 * y - 1
    good = 1.5 * sign + rng.normal(0, 1.5, n)
    weak = 0.5 * sign + rng.normal(0, 1.5, n)
    noise = rng.normal(0, 1.5, n)
    X = 1 / (1 + np.exp(-np.column_stack([good, weak, noise])))
    return X, y


def test_all_is_exact() -> None:
    import fakescope.fusion as fusion

    assert sorted(fusion.__all__) == fusion.__all__
    assert all(hasattr(fusion, name) for name in fusion.__all__)


@pytest.mark.parametrize("kind", ["mean-logit", "stacking"])
def test_estimator_contract_and_json_round_trip(kind: str) -> None:
    X, y = _scores(500, 0)
    fuser = FUSERS.create(kind)
    assert fuser.fit(X, y) is fuser
    assert clone(fuser).get_params() == fuser.get_params()
    p = fuser.predict_proba(X)
    assert p.shape == (500,) and p.dtype == np.float64 and np.all((p >= 0) & (p <= 1))
    again = fuser_from_dict(json.loads(json.dumps(fuser.to_dict())))
    np.testing.assert_array_equal(again.predict_proba(X), p)
    assert fuser.predict_proba(np.zeros((0, 3))).shape == (0,)
    with pytest.raises(ValueError, match="probabilities"):
        fuser.fit(X + 1, y)


def test_fusers_are_registered_unfitted() -> None:
    assert FUSERS.names() == ["mean-logit", "stacking"]
    stacking = FUSERS.create("stacking")
    assert isinstance(stacking, StackingFuser)
    with pytest.raises(NotFittedError):
        stacking.predict_proba([[0.2, 0.3]])
    assert StackingFuser(C=0.5).set_params(C=2.0).get_params() == {"C": 2.0, "balanced": True}
    with pytest.raises(ValueError, match="both classes"):
        StackingFuser().fit([[0.2, 0.3], [0.4, 0.1]], [1, 1])
    with pytest.raises(ValueError, match="combines 3 members, got 2"):
        StackingFuser().fit(*_scores(50, 0)).predict_proba([[0.2, 0.3]])


def test_stacking_ignores_noise_and_beats_the_weaker_member() -> None:
    X, y = _scores(4000, 0)
    X_test, y_test = _scores(4000, 1)
    stacking = StackingFuser().fit(X, y)
    assert stacking.coef_.shape == (3,)
    assert abs(stacking.coef_[2]) < 0.1  # the noise member
    assert stacking.coef_[0] > stacking.coef_[1] > 0.1
    fused = roc_auc(y_test, stacking.predict_proba(X_test))
    members = [roc_auc(y_test, X_test[:, i]) for i in range(3)]
    assert fused > members[1] + 0.05
    assert fused >= members[0] - 0.005


def test_mean_logit_of_identical_members_is_the_member() -> None:
    p = np.linspace(0.01, 0.99, 50)
    np.testing.assert_allclose(MeanLogitFuser().predict_proba(np.column_stack([p, p])), p)
    weighted = MeanLogitFuser(weights=[3.0, 1.0])
    np.testing.assert_allclose(weighted.predict_proba(np.column_stack([p, p, p])[:, :2]), p)
    with pytest.raises(ValueError, match="2 members"):
        weighted.predict_proba(np.column_stack([p, p, p]))


# --- fused detectors over tiny ONNX models -------------------------------------------------


def _tiny_onnx(path: Path, a: float, mask: bool) -> None:
    """``fake_probability = sigmoid(a * mean(input))``; with ``mask``, also a (N, S, S)
    ``mask = sigmoid(mean over channels)``."""
    onnx = pytest.importorskip("onnx")
    from onnx import TensorProto, helper

    nodes = [
        helper.make_node("ReduceMean", ["input"], ["m"], axes=[1, 2, 3], keepdims=0),
        helper.make_node("Constant", [], ["a"], value=helper.make_tensor("av", 1, [], [a])),
        helper.make_node("Mul", ["m", "a"], ["z"]),
        helper.make_node("Sigmoid", ["z"], ["fake_probability"]),
    ]
    outputs = [helper.make_tensor_value_info("fake_probability", TensorProto.FLOAT, ["N"])]
    if mask:
        nodes += [
            helper.make_node("ReduceMean", ["input"], ["c"], axes=[1], keepdims=0),
            helper.make_node("Sigmoid", ["c"], ["mask"]),
        ]
        outputs.append(helper.make_tensor_value_info("mask", TensorProto.FLOAT, ["N", SIZE, SIZE]))
    graph = helper.make_graph(
        nodes,
        "tiny",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["N", 3, SIZE, SIZE])],
        outputs,
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    onnx.checker.check_model(model)
    path.write_bytes(model.SerializeToString())


def _member(folder: Path, name: str, a: float, mask: bool = False, **cfg: object) -> Path:
    """A weight config ``folder/name.json`` beside its tiny model; returns the config path."""
    from fakescope.models import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    model = folder / f"{name}.onnx"
    _tiny_onnx(model, a, mask)
    config = {
        "name": name,
        "file": model.name,
        "sha256": sha256_file(model),
        "input_size": SIZE,
        "mean": [0.5, 0.5, 0.5],
        "std": [0.25, 0.25, 0.25],
        "margin": 0.2,
        **cfg,
    }
    path = folder / f"{name}.json"
    path.write_text(json.dumps(config))
    return path


def _crops(n: int = 5) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (n, SIZE, SIZE, 3), dtype=np.uint8)


def test_fused_detector_fuses_members_and_their_maps(tmp_path: Path) -> None:
    from fakescope.errors import ModelError
    from fakescope.models import FusedDetector, create_detector, sha256_file

    a = create_detector(str(_member(tmp_path, "a", 2.0, mask=True)), threads=1)
    b = create_detector(str(_member(tmp_path, "b", -1.0)), threads=1)
    fuser = StackingFuser()
    fuser.coef_, fuser.intercept_ = np.array([0.7, 0.4]), 0.1
    fused = FusedDetector([a, b], fuser, name="ens", version="1")
    crops = _crops()
    X = np.column_stack([a.predict(crops), b.predict(crops)])
    probs = fused.predict(crops)
    assert probs.shape == (5,)
    np.testing.assert_allclose(probs, fuser.predict_proba(X))
    assert fused.has_maps
    same, maps = fused.predict_maps(crops)
    np.testing.assert_allclose(same, probs)
    assert maps is not None and maps.shape == (5, SIZE, SIZE)
    np.testing.assert_allclose(maps, a.predict_maps(crops)[1])  # the only member with maps
    assert fused.predict(np.zeros((0, SIZE, SIZE, 3), np.uint8)).shape == (0,)
    assert (fused.config.input_size, fused.config.margin) == (SIZE, 0.2)
    assert fused.info.name == "ens" and fused.info.version == "1"
    with pytest.raises(ModelError, match="2 members"):
        FusedDetector([a, b, b], fuser, name="ens")
    with pytest.raises(ModelError, match="at least two"):
        FusedDetector([a], fuser, name="ens")

    wide = create_detector(str(_member(tmp_path, "wide", 1.0, margin=0.4)), threads=1)
    with pytest.raises(ModelError, match="margin"):
        FusedDetector([a, wide], MeanLogitFuser(), name="ens")

    ensemble = {
        "name": "ens",
        "version": "1",
        "members": ["a.json", "b.json"],
        "fuser": fuser.to_dict(),
        "threshold": 0.4,
        "trained_on": "toy",
    }
    path = tmp_path / "ens.json"
    path.write_text(json.dumps(ensemble))
    loaded = create_detector(str(path), threads=1)
    assert isinstance(loaded, FusedDetector)
    np.testing.assert_allclose(loaded.predict(crops), probs)
    assert loaded.config.file == "ens.json" and loaded.config.sha256 == sha256_file(path)
    assert loaded.config.threshold == 0.4 and loaded.config.calibration is None

    _member(tmp_path / "small", "small", 1.0, input_size=SIZE * 2)
    path.write_text(json.dumps({**ensemble, "members": ["a.json", "small/small.json"]}))
    with pytest.raises(ModelError, match="input_size"):
        create_detector(str(path), threads=1)
    path.write_text(json.dumps({**ensemble, "members": ["a.json", "ens.json"]}))
    with pytest.raises(ModelError, match="itself an ensemble"):
        create_detector(str(path), threads=1)
    path.write_text(json.dumps({**ensemble, "fuser": {"kind": "median"}}))
    with pytest.raises(ModelError, match="unknown fuser kind"):
        create_detector(str(path), threads=1)


# --- fakescope fuse, end to end ------------------------------------------------------------

HEADER = (
    "media_id,track_id,frame_index,detector,score,label,method,dataset,status,compression,raw_score"
)
# item, label, raw score of a.json, raw score of b.json (item-level rows); crop rows and an
# item every member abstained on are in the table too, as fakescope eval writes them
ITEMS = [
    ("r1", 0, 0.10, 0.30),
    ("r2", 0, 0.20, 0.45),
    ("r3", 0, 0.35, 0.20),
    ("r4", 0, 0.60, 0.35),
    ("r5", 0, 0.15, 0.55),
    ("f1", 1, 0.80, 0.60),
    ("f2", 1, 0.55, 0.70),
    ("f3", 1, 0.90, 0.40),
    ("f4", 1, 0.40, 0.80),
    ("f5", 1, 0.70, 0.65),
]


def _scores_csv(path: Path, items: list[tuple[str, int, float, float]]) -> Path:
    lines = [HEADER]
    for media, label, *raws in items:
        method = "Deepfakes" if label else "original"
        for det, raw in zip(["a.json", "b.json"], raws, strict=True):
            lines.append(f"{media},-1,-1,{det},{raw},{label},{method},toy,ok,c23,{raw}")
            lines.append(f"{media},0,3,{det},{raw},{label},{method},toy,ok,c23,{raw}")
    for det in ["a.json", "b.json"]:
        lines.append(f"nf,-1,-1,{det},nan,0,original,toy,no_face,c23,nan")
    path.write_text("\n".join(lines) + "\n")
    return path


def test_fuse_cli_writes_a_loadable_ensemble(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from fakescope.cli import main
    from fakescope.models import FusedDetector, create_detector

    monkeypatch.chdir(tmp_path)
    _member(tmp_path, "a", 2.0)
    _member(tmp_path, "b", -1.0)
    scores = _scores_csv(tmp_path / "scores.csv", ITEMS)
    members = ["--member", "a.json", "--member", "b.json"]
    out = Path("ens") / "ens.json"
    code = main(["fuse", str(scores), *members, "--name", "ab", "--out", str(out)])
    assert code == 0, capsys.readouterr().err
    report = json.loads(capsys.readouterr().out)
    assert report["items"] == 10 and report["skipped_unscored_items"] == 1
    assert set(report["weights"]) == set(report["auc_members"]) == {"a.json", "b.json"}
    assert report["auc_members"]["a.json"] == pytest.approx(0.92)
    ensemble = json.loads(out.read_text())
    # the reported AUC is the written ensemble's own, on the items it was fitted on
    x = np.asarray([[a, b] for _, _, a, b in ITEMS])
    fused = fuser_from_dict(ensemble["fuser"]).predict_proba(x)
    assert report["auc_fusion"] == pytest.approx(roc_auc([y for _, y, *_ in ITEMS], fused))
    assert ensemble["members"] == ["../a.json", "../b.json"]
    assert ensemble["name"] == "ab" and ensemble["fuser"]["kind"] == "stacking"
    detector = create_detector(str(out), threads=1)
    assert isinstance(detector, FusedDetector) and detector.predict(_crops()).shape == (5,)

    code = main(["fuse", str(scores), *members, "--kind", "mean-logit", "--name", "m"])
    assert code == 2  # --out is required
    out2 = tmp_path / "mean.json"
    code = main(
        ["fuse", str(scores), *members, "--kind", "mean-logit", "--name", "m", "--out", str(out2)]
    )
    assert code == 0
    assert json.loads(out2.read_text())["fuser"] == {"kind": "mean-logit"}
    assert json.loads(out2.read_text())["members"] == ["a.json", "b.json"]
    capsys.readouterr()

    # refusals: one member, an unknown member, an item one member did not score
    assert main(["fuse", str(scores), "--member", "a.json", "--name", "x", "--out", "x"]) == 2
    assert "at least two" in capsys.readouterr().err
    assert main(["fuse", str(scores), *members, "--member", "c", "--name", "x", "--out", "x"]) == 2
    assert "not in" in capsys.readouterr().err
    text = scores.read_text().replace("f3,-1,-1,b.json,0.4,1,Deepfakes,toy,ok,c23,0.4", "")
    holey = tmp_path / "holey.csv"
    holey.write_text(text)
    assert main(["fuse", str(holey), *members, "--name", "x", "--out", "x.json"]) == 2
    err = capsys.readouterr().err
    assert "'f3'" in err and "b.json" in err and not Path("x.json").exists()

    # the ensemble is then evaluated and calibrated like any detector, in place
    rows = [HEADER]
    for k, (media, label, ra, rb) in enumerate(ITEMS * 2):
        raw = (ra + rb) / 2
        rows.append(f"{media}{k},-1,-1,{out},{raw},{label},m,toy,ok,,{raw}")
        for frame in (0, 1):  # videos: the video level is fitted on videos only
            rows.append(f"{media}{k},0,{frame},{out},{raw},{label},m,toy,ok,,{raw}")
    (tmp_path / "ens_scores.csv").write_text("\n".join(rows) + "\n")
    code = main(
        [
            "calibrate",
            "ens_scores.csv",
            "--detector",
            str(out),
            "--level",
            "video",
            "--folds",
            "2",
            "--out",
            "cal.json",
            "--weights",
            str(out),
        ]
    )
    assert code == 0, capsys.readouterr().err
    calibrated = create_detector(str(out), threads=1)
    assert calibrated.config.calibration is not None
    assert set(calibrated.config.calibration) == {"video"}
