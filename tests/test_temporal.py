"""Temporal video head (fakescope.training.temporal): synthetic data only, a few seconds."""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_store

torch = pytest.importorskip("torch")
ort = pytest.importorskip("onnxruntime")

from fakescope.training.store import FaceStore, StoreParams  # noqa: E402
from fakescope.training.temporal import (  # noqa: E402
    AttentionPool,
    FitConfig,
    GRUHead,
    VideoSet,
    check_export,
    evaluate,
    export_head,
    fit_head,
    frame_features,
    main,
    pseudo_fake_video,
    track_features,
)

# 5-point ArcFace template (112 px) and the FaceMesh indices five_points() reads
_TEMPLATE = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]]
)
_FIVE = [(33, 133, 159, 145), (362, 263, 386, 374), (1,), (61,), (291,)]


def _mesh(rng: np.random.Generator, side: int, face: float) -> npt.NDArray[np.float32]:
    """468 points spread over a face of ``face`` px centred in a ``side`` crop, with eyes,
    nose and mouth where the ArcFace template puts them."""
    c = side / 2
    pts = c + rng.uniform(-0.45, 0.45, (468, 2)) * face
    for idx, p in zip(_FIVE, _TEMPLATE, strict=True):
        pts[list(idx)] = c + (p / 112.0 - 0.5) * face + rng.normal(0, 0.3, 2)
    return pts.astype(np.float32)


def _synthetic_videos(n: int, seed: int, dim: int = 8, t: int = 32) -> VideoSet:
    """Real: frame logits N(0, 0.3); fake: N(0, 2.0): the same mean (sigmoid is symmetric,
    so the mean frame probability is ~0.5 for both) but a different spread over time.
    Embeddings are noise."""
    rng = np.random.default_rng(seed)
    feats, labels = [], []
    for i in range(2 * n):
        label = i % 2
        logits = rng.normal(0.0, 2.0 if label else 0.3, t)
        emb = rng.normal(0.0, 1.0, (t, dim)).astype(np.float32)
        probs = 1.0 / (1.0 + np.exp(-logits))
        feats.append(frame_features(emb, probs.astype(np.float32)))
        labels.append(label)
    kinds = ["fake" if y else "real" for y in labels]
    return VideoSet(feats, np.array(labels, np.int64), kinds, [str(i) for i in range(2 * n)])


def test_heads_learn_a_temporal_signal_the_mean_misses() -> None:
    torch.set_num_threads(1)
    train, val = _synthetic_videos(80, 0), _synthetic_videos(40, 1)
    test = _synthetic_videos(40, 2)
    cfg = FitConfig(epochs=12, steps_per_epoch=15, batch=16, lr=3e-3, patience=12)
    heads = {"attention": AttentionPool(9, reduce=8), "gru": GRUHead(9, reduce=8)}
    for head in heads.values():
        fit = fit_head(head, train, val, cfg)
        assert 0 <= fit["best_epoch"] < cfg.epochs and fit["history"]
    result = evaluate(dict(heads), {"test": test})["test"]
    assert result["real"] == result["fake"] == 40
    assert abs(result["mean"] - 0.5) < 0.2  # the current rule is blind to it
    best = max(result["attention"], result["gru"])
    assert best >= 0.95 and best > result["mean"] + 0.25, result


def test_attention_head_starts_as_the_mean_logit() -> None:
    head = AttentionPool(5, reduce=4)
    head.eval()
    x = torch.randn(3, 7, 5)
    assert torch.allclose(head(x), x[..., -1].mean(dim=1), atol=1e-6)


@pytest.mark.parametrize("kind", [AttentionPool, GRUHead])
def test_onnx_export_round_trips_with_any_length(kind: type, tmp_path: Path) -> None:
    torch.manual_seed(0)
    head = kind(17, reduce=6)
    rng = np.random.default_rng(0)
    head.set_normalisation(rng.normal(0, 1, 17).astype(np.float32), np.full(17, 2.0, np.float32))
    for p in head.parameters():  # not the zero-initialised output: make the output vary
        torch.nn.init.normal_(p, 0.0, 0.3)
    path = tmp_path / "head.onnx"
    export_head(head, path)
    assert check_export(head, path, lengths=(1, 3, 8, 40)) < 1e-4
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    (inp,) = session.get_inputs()
    assert inp.name == "frames" and inp.shape[0] == 1 and inp.shape[2] == 17
    assert [o.name for o in session.get_outputs()] == ["fake_probability"]
    outs = []
    for t in (2, 25):
        x = rng.normal(0, 2, (1, t, 17)).astype(np.float32)
        (got,) = session.run(["fake_probability"], {"frames": x})
        with torch.no_grad():
            want = torch.sigmoid(head(torch.from_numpy(x))).numpy()
        assert got.shape == (1,) and np.abs(got - want).max() < 1e-4
        outs.append(float(got[0]))
    assert outs[0] != outs[1]


def test_pseudo_fake_video_blends_every_frame_alike() -> None:
    rng = np.random.default_rng(0)
    t, side = 6, 96
    base = rng.integers(0, 256, (side, side, 3), dtype=np.uint8)
    images = np.stack([np.roll(base, k, axis=1) for k in range(t)])
    marks = np.stack([_mesh(np.random.default_rng(k), side, 50.0) for k in range(t)])
    video = pseudo_fake_video(images, marks, seed=3)
    assert video.label == 1
    assert video.frames.shape == images.shape and video.frames.dtype == np.uint8
    assert video.masks.shape == (t, side, side)
    for k in range(t):
        assert not np.array_equal(video.frames[k], images[k])
        outside = video.masks[k] == 0  # source-side transforms only: the rest is untouched
        assert outside.any() and np.array_equal(video.frames[k][outside], images[k][outside])
    # one blend recipe per video: peaks within the small ratio jitter, masks overlap closely
    peaks = video.masks.reshape(t, -1).max(axis=1)
    assert peaks.max() - peaks.min() < 0.25 * peaks.mean()
    inside = video.masks > 0.5 * peaks[:, None, None]
    iou = (inside[0] & inside[1]).sum() / (inside[0] | inside[1]).sum()
    assert iou > 0.8
    again = pseudo_fake_video(images, marks, seed=3)
    assert np.array_equal(again.frames, video.frames)
    other = pseudo_fake_video(images, marks, seed=4)
    assert not np.array_equal(other.frames, video.frames)


# --------------------------------------------------------------------------------------------
# end to end: a tiny store and a tiny detector with the real interface


class _TinyDetector(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 6, 3, stride=4)
        self.fc = torch.nn.Linear(6, 1)

    def forward(self, x):  # type: ignore[no-untyped-def]
        f = torch.relu(self.conv(x))
        emb = f.mean(dim=(2, 3))
        return torch.sigmoid(self.fc(emb)[:, 0]), torch.sigmoid(f[:, 0]), emb


def _tiny_detector(path: Path) -> Path:
    torch.manual_seed(0)
    with warnings.catch_warnings():  # the legacy exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _TinyDetector().eval(),
            (torch.zeros(1, 3, 32, 32),),
            str(path),
            input_names=["input"],
            output_names=["fake_probability", "mask", "embedding"],
            dynamic_axes={k: {0: "n"} for k in ("input", "fake_probability", "mask", "embedding")},
            opset_version=17,
            dynamo=False,
        )
    return path


def _tiny_store(root: Path, groups: int = 8, frames: int = 8) -> FaceStore:
    rng = np.random.default_rng(0)
    params = StoreParams(size=64, frames_per_video=frames)
    images, marks, rows = [], [], []
    for g in range(groups):
        for label in ("real", "fake"):
            media = f"vids/{label}/{g:03d}"
            texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for f in reversed(range(frames)):  # stored out of order on purpose
                img = np.roll(texture, f, axis=0)
                if label == "fake":
                    img = np.clip(img.astype(np.int16) + 40, 0, 255).astype(np.uint8)
                images.append(img)
                marks.append(_mesh(rng, 64, 36.0))
                rows.append(
                    {
                        "media_id": media,
                        "dataset": "tiny_videos",
                        "label": label,
                        "method": "Deepfakes" if label == "fake" else "real",
                        "group": f"g{g}",
                        "split": "",
                        "frame": f * 3,
                    }
                )
    write_store(root, images, marks, rows, params.size, params.frames_per_video)
    return FaceStore.open(root)


def test_track_features_match_the_detector(tmp_path: Path) -> None:
    store = _tiny_store(tmp_path / "store", groups=1, frames=4)
    onnx = _tiny_detector(tmp_path / "det.onnx")
    emb, prob = track_features(store, [3, 0, 5], onnx, 32, 0.125)
    assert emb.shape == (3, 6) and emb.dtype == np.float32 and prob.shape == (3,)
    one, p_one = track_features(store, [0], onnx, 32, 0.125)
    np.testing.assert_allclose(one[0], emb[1], atol=1e-5)
    np.testing.assert_allclose(p_one[0], prob[1], atol=1e-6)


def test_cli_end_to_end_caches_and_exports(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    store = _tiny_store(tmp_path / "store")
    onnx = _tiny_detector(tmp_path / "det.onnx")
    run = tmp_path / "run"
    run.mkdir()
    split = {**{f"g{g}": "train" for g in range(4)}, "g4": "val", "g5": "val"}
    split.update({"g6": "calib", "g7": "calib"})
    (run / "splits.json").write_text(json.dumps({"groups": split}))
    out = tmp_path / "out"
    argv = [
        "--store", str(store.root), "--run", str(run), "--detector-onnx", str(onnx),
        "--size", "32", "--margin", "0.125", "--out", str(out), "--datasets", "tiny_videos",
        "--epochs", "2", "--steps", "2", "--batch", "4",
    ]  # fmt: skip
    report = main(argv)
    results = report["results"]
    assert results["train"]["kinds"] == {"Deepfakes": 4, "pseudo": 4, "real": 4}
    assert results["val"]["videos"] == results["calib"]["videos"] == 4
    for split_name in ("val", "calib"):
        assert {"mean", "attention", "gru"} <= set(results[split_name])
    assert report["chosen"] in ("mean", "attention", "gru") and report["note"]
    head = json.loads((out / "head.json").read_text())
    assert head["input_dims"] == 7 and head["embedding_dims"] == 6
    assert head["replaces_mean"] == report["replaces_mean"]
    assert head["sha256"] == hashlib.sha256((out / "head.onnx").read_bytes()).hexdigest()
    assert head["detector_sha256"] == hashlib.sha256(onnx.read_bytes()).hexdigest()
    assert len(list(out.glob("features_*.npz"))) == len(list(out.glob("pseudo_*.npz"))) == 1
    capsys.readouterr()
    again = main(argv)
    err = capsys.readouterr().err
    assert "cached detector outputs" in err and "cached pseudo-fake outputs" in err
    assert again["results"]["val"]["mean"] == results["val"]["mean"]
