"""Method attribution (issue 12 item 3): the head, its trainer and the scan's attribution."""

from __future__ import annotations

import dataclasses
import hashlib
import json
from pathlib import Path

import numpy as np
import pytest

from conftest import write_image, write_store
from fakescope.config import ScanConfig
from fakescope.errors import ConfigError, ModelError
from fakescope.evaluation import (
    AttributionRecord,
    attribution_markdown,
    attribution_summary,
    evidence_rows,
)
from fakescope.inference import Scanner
from fakescope.models import ATTRIBUTORS, Attributor, create_attributor
from fakescope.training.attribution import METHODS, confusion, fit_head
from fakescope.training.engine import ship, train
from fakescope.training.store import FaceStore, StoreParams
from fakescope.types import (
    Attribution,
    Evidence,
    Label,
    ModelInfo,
    Status,
    TrackVerdict,
    Verdict,
)
from tiny_store import mesh, tiny_detector

ASTRONAUT = Path(__file__).parents[1] / "src" / "fakescope" / "assets" / "astronaut.jpg"


def _head(dim: int = 1280, classes: tuple[str, ...] = ("Deepfakes", "Face2Face")) -> dict:
    rng = np.random.default_rng(0)
    return {
        "name": "test-head",
        "embedder": "effnet-lite0-v3",
        "classes": list(classes),
        "families": {c: METHODS[c] for c in classes},
        "mean": [0.0] * dim,
        "scale": [1.0] * dim,
        "coef": rng.normal(size=(len(classes), dim)).tolist(),
        "intercept": [0.0] * len(classes),
        "temperature": 2.0,
        "max_crops": 3,
    }


def test_confusion_counts_rows_as_truth() -> None:
    assert confusion([0, 0, 1, 2], [0, 1, 1, 0], 3) == [[1, 1, 0], [0, 1, 0], [1, 0, 0]]


def test_fit_head_separates_classes_and_keeps_absent_ones_unlikely() -> None:
    rng = np.random.default_rng(1)
    x = np.concatenate([rng.normal(-2, 1, (40, 4)), rng.normal(2, 1, (40, 4))]).astype(np.float32)
    y = np.repeat([0, 2], 40)
    mean, scale, coef, intercept = fit_head(x, y, 1.0, n_classes=3)
    pred = (((x - mean) / scale) @ coef.T + intercept).argmax(axis=1)
    assert (pred == y).mean() > 0.95
    assert coef.shape == (3, 4) and not (pred == 1).any()


def test_attributor_pools_crops_and_scales_by_temperature() -> None:
    attributor = Attributor(_head(), sha256="x")
    emb = np.random.default_rng(2).normal(size=(5, 1280))
    p = attributor.probabilities(emb)
    assert p.shape == (5, 2)
    np.testing.assert_allclose(p.sum(axis=1), 1.0)
    sharper = Attributor({**_head(), "temperature": 0.5}, sha256="x").probabilities(emb)
    assert np.abs(sharper - 0.5).mean() > np.abs(p - 0.5).mean()
    crops = np.random.default_rng(3).integers(0, 255, (6, 192, 192, 3), dtype=np.uint8)
    found = attributor.attribute(crops)
    assert found.method in ("Deepfakes", "Face2Face")
    assert found.family == METHODS[found.method]
    assert found.confidence == max(found.probabilities.values()) >= 0.5
    assert found.to_dict()["model"]["name"] == "test-head"


def test_attributor_refuses_bad_heads() -> None:
    with pytest.raises(ModelError, match="inconsistent"):
        Attributor({**_head(), "intercept": [0.0]}, sha256="x")
    with pytest.raises(ModelError, match="lacks"):
        Attributor({k: v for k, v in _head().items() if k != "coef"}, sha256="x")
    with pytest.raises(ModelError, match="no embedding"):  # this network exports no features
        Attributor({**_head(), "embedder": "oneclass-vae-v1"}, sha256="x")


def test_shipped_attributor_loads() -> None:
    assert ATTRIBUTORS.names() == ["attrib-v1"]
    attributor = create_attributor("attrib-v1")
    assert set(attributor.classes) == set(METHODS)
    assert attributor.info.sha256 and attributor.input_size == 192


def test_scan_attributes_only_fake_faces(tmp_path: Path) -> None:
    photo = write_image(tmp_path / "a.png", np.asarray(_astronaut()))
    base = ScanConfig(synthesis_detector=None, attribution="attrib-v1")
    fake = Scanner(dataclasses.replace(base, threshold=0.01, uncertain_band=0.0)).scan(photo)
    assert fake.label is Label.FAKE and fake.tracks
    attribution = fake.tracks[0].attribution
    assert attribution is not None and attribution.method in METHODS
    assert fake.to_dict()["faces"][0]["attribution"]["family"] == attribution.family
    real = Scanner(dataclasses.replace(base, threshold=0.99, uncertain_band=0.0)).scan(photo)
    assert real.label is Label.REAL and real.tracks[0].attribution is None
    off = Scanner(ScanConfig(synthesis_detector=None)).scan(photo)
    assert all(t.attribution is None and t.evidence == () for t in off.tracks)


def test_attribution_must_read_the_detectors_crops(tmp_path: Path) -> None:
    from fakescope.models import asset_path

    data = json.loads(asset_path("effnet_lite0_v3.json").read_text())
    data.update(margin=0.3, file=str(asset_path(data["file"])))
    weights = tmp_path / "wide.json"
    weights.write_text(json.dumps(data))
    cfg = ScanConfig(detector=str(weights), synthesis_detector=None, attribution="attrib-v1")
    with pytest.raises(ConfigError, match="margin"):
        Scanner(cfg)


def _astronaut() -> np.ndarray:
    import cv2

    return cv2.cvtColor(cv2.imread(str(ASTRONAUT)), cv2.COLOR_BGR2RGB)


# --------------------------------------------------------------------------------------------
# the trainer, end to end on a tiny store with a tiny embedder


def _method_store(root: Path) -> FaceStore:
    rng = np.random.default_rng(0)
    params = StoreParams(size=64, frames_per_video=2)
    images, marks, rows = [], [], []
    for g in range(12):
        for k, method in enumerate(("Deepfakes", "Face2Face", "real")):
            texture = rng.integers(0, 120, (64, 64, 3), dtype=np.uint8)
            for f in range(2):
                img = texture.copy()
                img[..., k % 3] += 120  # each method tints another channel
                images.append(img)
                marks.append(mesh(rng, 64, 36.0))
                rows.append(
                    {
                        "media_id": f"v/{method}/{g}",
                        "dataset": "tiny",
                        "label": "real" if method == "real" else "fake",
                        "method": method,
                        "group": f"g{g}",
                        "split": "test" if g >= 10 else "",
                        "frame": f,
                    }
                )
    write_store(root, images, marks, rows, params.size, params.frames_per_video)
    return FaceStore.open(root)


def test_trainer_end_to_end(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    store = _method_store(tmp_path / "store")
    onnx = tiny_detector(tmp_path / "det.onnx")
    weights = tmp_path / "det.json"
    weights.write_text(
        json.dumps(
            {
                "name": "tiny",
                "file": "det.onnx",
                "sha256": hashlib.sha256(onnx.read_bytes()).hexdigest(),
                "input_size": 32,
                "mean": [0.485, 0.456, 0.406],
                "std": [0.229, 0.224, 0.225],
                "margin": 0.125,
            }
        )
    )
    run = tmp_path / "run"
    run.mkdir()
    groups = {f"g{g}": ("train" if g < 6 else "val" if g < 8 else "calib") for g in range(10)}
    groups.update({"g10": "test", "g11": "test"})
    (run / "splits.json").write_text(json.dumps({"groups": groups}))
    out = tmp_path / "out"
    config = {"recipe": "attribution", "data": {"store": str(store.root), "splits": str(run)}}
    overrides = [f"run.out={out}", f"head.embedder={weights}"]
    overrides += ["data.methods=[Deepfakes, Face2Face]", "head.version=9.9.1"]
    result = train(config, overrides)
    report = json.loads((out / "report.json").read_text())
    assert result.metrics == report and result.outputs["head"] == out / "attribution.json"
    assert report["classes"] == ["Deepfakes", "Face2Face"]
    assert report["splits"] == str(run / "splits.json")
    test = report["test"]["crop"]
    assert test["n"] == 8 and sum(map(sum, test["confusion_methods"])) == 8
    assert test["method_accuracy"] >= 0.75  # the tint is easy to tell apart
    head = json.loads((out / "attribution.json").read_text())
    assert len(head["coef"]) == 2 and head["embedder"] == "tiny" and head["version"] == "9.9.1"
    assert len(list(out.glob("features_*.npz"))) == 1
    # a re-run reuses the cached embeddings; the splits file itself names the same split
    again = train(config, [*overrides, f"data.splits={run / 'splits.json'}"])
    assert len(list(out.glob("features_*.npz"))) == 1
    assert again.metrics["test"] == report["test"]

    # the ship stage (fakescope train --ship RUN): into the package's assets (here a temporary
    # folder) as the ship section says; nothing without it
    with pytest.raises(ConfigError, match="nothing to ship"):
        ship(out)
    monkeypatch.setattr("fakescope.models.asset_path", lambda name: tmp_path / name)
    shipped = ship(out, ["ship.stem=attrib_test"])
    assert shipped == tmp_path / "attrib_test.json"
    assert shipped.read_bytes() == (out / "attribution.json").read_bytes()


# --------------------------------------------------------------------------------------------
# evaluation: attribution accuracy and evidence rows


def _verdict(label: Label, tracks: tuple[TrackVerdict, ...]) -> Verdict:
    p = max((t.fake_probability for t in tracks), default=0.5)
    return Verdict("x.mp4", Status.OK, "", p, label, tracks, raw_score=p)


def _track(i: int, p: float, method: str | None, evidence: float | None = None) -> TrackVerdict:
    attribution = None
    if method is not None:
        probs = {
            m: (0.7 if m == method else 0.1) for m in ("Deepfakes", "Face2Face", "DFDC face swap")
        }
        attribution = Attribution(METHODS[method], method, 0.7, probs, ModelInfo("h", "s"))
    ev = () if evidence is None else (Evidence("cues-svm-v1", evidence, "ok"),)
    label = Label.FAKE if p >= 0.5 else Label.REAL
    return TrackVerdict(i, p, label, (), p, attribution=attribution, evidence=ev)


def test_attribution_summary_counts_the_most_fake_attributed_face() -> None:
    families = {m: METHODS[m] for m in ("Deepfakes", "Face2Face", "DFDC face swap")}
    records = [
        AttributionRecord.of(
            "Deepfakes",
            _verdict(Label.FAKE, (_track(0, 0.6, "Face2Face"), _track(1, 0.9, "Deepfakes"))),
        ),
        AttributionRecord.of("Face2Face", _verdict(Label.FAKE, (_track(0, 0.8, "Deepfakes"),))),
        AttributionRecord.of("Face2Face", _verdict(Label.REAL, (_track(0, 0.2, None),))),
        AttributionRecord.of(
            "NeuralTextures", _verdict(Label.FAKE, (_track(0, 0.9, "Deepfakes"),))
        ),
    ]
    s = attribution_summary(records, families)
    assert (s["n_fakes"], s["n_attributed"]) == (3, 2)  # NeuralTextures: unknown to the head
    assert s["method_accuracy"] == 0.5 and s["family_accuracy"] == 0.5
    assert s["confusion"] == {"Deepfakes": {"Deepfakes": 1}, "Face2Face": {"Deepfakes": 1}}
    assert s["ffpp_n"] == 2 and s["ffpp_4method_accuracy"] == 0.5
    assert "| a | 3 | 2 | 0.500 |" in attribution_markdown({"a": s})


def test_evidence_rows_take_the_most_fake_track_and_keep_abstentions() -> None:
    from fakescope.data import MediaItem

    item = MediaItem("m1", Path("x.mp4"), "fake", "ds", "Deepfakes", ("1",), None, None)
    rows = evidence_rows(
        item,
        _verdict(Label.FAKE, (_track(0, 0.6, None, 0.3), _track(1, 0.9, None, 0.8))),
        ["cues-svm-v1"],
    )
    assert [(r.detector, r.score, r.status) for r in rows] == [("evidence:cues-svm-v1", 0.8, "ok")]
    none = evidence_rows(item, _verdict(Label.FAKE, (_track(0, 0.6, None),)), ["cues-svm-v1"])
    assert none[0].status == "error" and np.isnan(none[0].score)
    abstained = Verdict("x.mp4", Status.NO_FACE, "no face")
    assert evidence_rows(item, abstained, ["cues-svm-v1"])[0].status == "no_face"


def test_a_side_by_side_runs_attribution_where_the_crops_match(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """attrib-v1 reads the 192 px crops of the default's family; beside a detector that crops
    at 96 px (the one-class baseline) a single scan refuses it, and `fakescope eval` runs that
    detector without attribution (said on stderr) so the others keep theirs."""
    from fakescope.cli._eval import _scanner
    from fakescope.errors import CropMismatch

    config = ScanConfig(attribution="attrib-v1", synthesis_detector=None)
    with pytest.raises(CropMismatch, match="96 px"):
        Scanner(dataclasses.replace(config, detector="oneclass-vae-v1"))
    assert _scanner(config, "oneclass-vae-v1").attributor is None
    assert "oneclass-vae-v1: no attribution" in capsys.readouterr().err
    assert _scanner(config, "fused-v4-int8").attributor is not None
