"""SBI trainer: config precedence, smooth DCF loss, mask registration and a tiny smoke run."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

torch = pytest.importorskip("torch")

from fakescope.errors import ConfigError  # noqa: E402
from fakescope.training.config import TrainConfig, resolve  # noqa: E402
from fakescope.training.engine import load_config  # noqa: E402
from fakescope.training.losses import hard_dcf, smooth_dcf_loss  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
RECIPE = REPO / "configs" / "sbi_lite0.yaml"


# --------------------------------------------------------------------------------------------
# config


def test_config_precedence_defaults_yaml_set(tmp_path: Path) -> None:
    path = tmp_path / "c.yaml"
    path.write_text("optim:\n  lr: 1.0e-3\n  batch: 16\nsbi:\n  blend_ratios: [0.5, 1]\n")
    cfg = resolve(path, ["optim.lr=3e-4", "data.val_cache=x.npz", "loss.kind=bce+dcf"])
    assert cfg.optim.lr == pytest.approx(3e-4) and isinstance(cfg.optim.lr, float)  # --set
    assert cfg.optim.batch == 16  # yaml
    assert cfg.optim.epochs == TrainConfig().optim.epochs == 8  # default
    assert cfg.sbi.to_sbi_config().blend_ratios == (0.5, 1.0)
    assert cfg.data.val_cache == "x.npz" and cfg.loss.kind == "bce+dcf"
    assert resolve(None, []) == TrainConfig()
    # the saved form round-trips
    saved = tmp_path / "config.yaml"
    saved.write_text(cfg.to_yaml())
    assert resolve(saved) == cfg
    # the shipped recipe is valid
    recipe = resolve(RECIPE)
    assert recipe.data.cache == "cache/ffpp_train_256.npz" and recipe.data.supervised_fakes
    assert recipe.data.real_repeat == 3 and recipe.sbi.fake_fraction is None
    assert recipe.degrade.p_codec > 0 and recipe.optim.epochs == 20


@pytest.mark.parametrize(
    ("text", "key"),
    [("optim:\n  lrr: 1\n", "optim.lrr"), ("optimizer:\n  lr: 1\n", "optimizer")],
)
def test_unknown_yaml_key_is_an_error(tmp_path: Path, text: str, key: str) -> None:
    path = tmp_path / "c.yaml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key):
        resolve(path)


@pytest.mark.parametrize("path", sorted((REPO / "configs").glob("*.yaml")), ids=lambda p: p.name)
def test_every_shipped_config_resolves_and_names_files_that_exist(path: Path) -> None:
    """Each recipe in configs/ resolves with its recipe's config (no unknown key), and the
    committed files it names (a pinned split, a shipped ONNX to start from) exist relative to
    the repository."""
    _, cfg = load_config(path)
    split_file = getattr(cfg.data, "split_file", None) or getattr(cfg.data, "splits", None)
    if split_file is not None:
        pinned = json.loads((REPO / split_file).read_text())["groups"]
        assert set(pinned.values()) <= {"train", "val", "calib", "test"}
    init_from = getattr(getattr(cfg, "model", None), "init_from", None)
    if init_from is not None and init_from.endswith(".onnx"):
        assert (REPO / init_from).is_file()


@pytest.mark.parametrize("item", ["optim.lrr=1", "nope.lr=1", "optim=1", "optim.lr"])
def test_unknown_or_malformed_override_is_an_error(item: str) -> None:
    with pytest.raises(ConfigError, match=item.split("=")[0]):
        resolve(None, [item])


def test_bad_values_are_errors() -> None:
    for item in ("loss.kind=focal", "optim.epochs=1.5", "data.input_size=100", "sbi.p_morph=2"):
        with pytest.raises(ConfigError):
            resolve(None, [item])
    for items in (
        ["data.reals_only=[a]", "data.supervised_only=[a]"],
        ["data.supervised_fakes=false", "data.supervised_only=[a]"],
    ):
        with pytest.raises(ConfigError, match="supervised_only"):
            resolve(None, items)
    ok = resolve(None, ["data.supervised_fakes=true", "data.supervised_only=[a]"])
    assert ok.data.supervised_only == ("a",)


# --------------------------------------------------------------------------------------------
# loss


def test_smooth_dcf_approaches_hard_dcf_and_has_gradients() -> None:
    gen = torch.Generator().manual_seed(0)
    labels = (torch.rand(200, generator=gen) < 0.4).float()
    logits = torch.randn(200, generator=gen) + 1.5 * (labels - 0.5)
    logits = torch.where(logits.abs() < 0.01, logits.sign() * 0.01 + logits, logits)
    for kw in ({}, {"c_miss": 5.0, "c_fa": 1.0, "p_target": 0.1}):
        hard = float(hard_dcf(logits, labels, 0.3, **kw))
        gaps = [
            abs(float(smooth_dcf_loss(logits, labels, 0.3, temperature=t, **kw)) - hard)
            for t in (1.0, 10.0, 100.0, 1e4)
        ]
        assert gaps == sorted(gaps, reverse=True)
        assert gaps[-1] < 1e-3
    # hand case: equal costs, prior 0.5 -> DCF = P_miss + P_fa
    assert float(hard_dcf(torch.tensor([-1.0, 1.0, 2.0]), torch.tensor([1, 0, 1]))) == 1.5
    x = logits.clone().requires_grad_(True)
    smooth_dcf_loss(x, labels, 0.0, temperature=10.0).backward()  # type: ignore[no-untyped-call]
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    # fakes are pushed up, reals down
    assert (x.grad[labels == 1] <= 0).all() and (x.grad[labels == 0] >= 0).all()


# --------------------------------------------------------------------------------------------
# data + model


def test_augment_with_mask_keeps_registration() -> None:
    from fakescope.training.crops import augment_with_mask

    mask = np.zeros((64, 64), np.float32)
    mask[10:40, 5:25] = 1.0  # off-centre: a flip of only one of the two would decorrelate
    image = np.repeat((mask * 200 + 30).astype(np.uint8)[:, :, None], 3, axis=2)
    flipped = 0
    for seed in range(16):
        out, out_mask = augment_with_mask(image, mask, np.random.default_rng(seed))
        assert out.shape == image.shape and out_mask.shape == mask.shape
        corr = np.corrcoef(out.astype(np.float32).mean(axis=2).ravel(), out_mask.ravel())[0, 1]
        assert corr > 0.85, (seed, corr)
        flipped += int(out_mask[:, 40:].sum() > out_mask[:, :24].sum())
    assert 0 < flipped < 16


def test_sbinet_shapes_and_frozen_blocks() -> None:
    from fakescope.training.sbi_net import SBINet

    model = SBINet(pretrained=False, freeze_blocks=3).train()
    logit, seg = model(torch.zeros(2, 3, 64, 64))
    assert logit.shape == (2,) and seg.shape == (2, 4, 4)
    assert not model.backbone._blocks[2].training and model.backbone._blocks[3].training
    assert not any(p.requires_grad for p in model.backbone._blocks[2].parameters())


def test_warm_start_from_an_onnx_export_is_the_same_network(tmp_path: Path) -> None:
    """A shipped ONNX detector (BatchNorms folded into the convolutions) loads back into an
    SBINet that computes what the ONNX graph does; re-estimated BatchNorm statistics keep that
    function and make training mode agree with it; another graph is refused."""
    ort = pytest.importorskip("onnxruntime")
    from fakescope.models import asset_path
    from fakescope.training.onnx_init import refit_batchnorm, state_from_onnx
    from fakescope.training.sbi_net import SBINet, export_onnx

    torch.manual_seed(0)
    source = SBINet(pretrained=False, dropout=0.0)
    for module in source.modules():  # statistics far from the identity, so folding shows
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
            module.weight.data.uniform_(0.5, 1.5)
            module.bias.data.uniform_(-0.2, 0.2)
    path = tmp_path / "model.onnx"
    export_onnx(source.train(), 64, path)
    # the export leaves the network in eval mode (it used to come back in training mode)
    assert not any(m.training for m in source.modules())
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    want = session.run(None, {"input": x})

    def run(model: torch.nn.Module) -> list[npt.NDArray[np.float32]]:
        with torch.no_grad():
            logit, seg, emb = model.forward_all(torch.from_numpy(x))
        return [torch.sigmoid(logit).numpy(), torch.sigmoid(seg).numpy(), emb.numpy()]

    def close(got: list[npt.NDArray[np.float32]], tol: float) -> bool:
        return all(np.abs(w - g).max() < tol for w, g in zip(want, got, strict=True))

    model = SBINet(pretrained=False, dropout=0.0)
    model.load_state_dict(state_from_onnx(model, path))
    assert close(run(model.eval()), 1e-4)
    # batch statistics would renormalise the folded features: not the same network in training
    assert not close(run(copy.deepcopy(model).train()), 1e-2)
    # after the refit the BatchNorms hold real statistics: the same function in eval mode and,
    # on the batch that was measured, in training mode too
    assert refit_batchnorm(model, [torch.from_numpy(x)]) == 3
    assert close(run(model.eval()), 1e-4)
    assert close(run(model.train()), 1e-3)
    frozen = SBINet(pretrained=False, dropout=0.0, freeze_bn=True).train()
    assert not any(m.training for m in frozen.modules() if isinstance(m, torch.nn.BatchNorm2d))
    fresh = SBINet(pretrained=False, dropout=0.0)
    assert not close(run(fresh.eval()), 1e-3)

    with pytest.raises(ConfigError, match="convolutions"):
        state_from_onnx(model, asset_path("mtcnn_onet.onnx"))


def test_warm_start_of_the_synthesis_cnn_keeps_the_detector_and_adds_a_family_row(
    tmp_path: Path,
) -> None:
    """A one-output synthesis CNN export (cnn-v1's layout) loads into the two-output network
    of a run that also names the generator family: the generated logit is the export's, the
    family row keeps its fresh initialisation."""
    ort = pytest.importorskip("onnxruntime")
    from fakescope.training.effnet_lite import EfficientNetLite0
    from fakescope.training.onnx_init import state_from_onnx
    from fakescope.training.synthesis_cnn import export_onnx

    torch.manual_seed(0)
    source = EfficientNetLite0(1)
    for module in source.modules():
        if isinstance(module, torch.nn.BatchNorm2d):
            module.running_mean.uniform_(-0.5, 0.5)
            module.running_var.uniform_(0.5, 2.0)
    path = export_onnx(source.train(), 64, tmp_path / "model.onnx")
    assert not any(m.training for m in source.modules())  # left in eval mode
    x = np.random.default_rng(0).normal(size=(2, 3, 64, 64)).astype(np.float32)
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    logit = session.run(["logit"], {"input": x})[0]
    model = EfficientNetLite0(2)
    family_row = model._fc.weight[1].detach().clone()
    model.load_state_dict(state_from_onnx(model, path))
    with torch.no_grad():
        out = model.eval()(torch.from_numpy(x)).numpy()
    assert np.abs(out[:, 0] - logit).max() < 1e-4
    assert torch.equal(model._fc.weight[1], family_row)


# --------------------------------------------------------------------------------------------
# smoke run


def _loose_crops() -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]:
    """8 loose 256 px crops (1.6x the face box, small shifts) of the example face + meshes."""
    from fakescope.faces import FACE_DETECTORS
    from fakescope.io import load_example_face

    image = load_example_face()
    face = FACE_DETECTORS.create("mtcnn").detect(image, 0)[0]
    assert face.mesh is not None
    x0, y0, x1, y1 = face.box
    side = 1.6 * max(x1 - x0, y1 - y0)
    scale = 256 / side
    crops, meshes = [], []
    for k in range(8):
        dx, dy = (k % 3 - 1) * 4.0, (k // 3 - 1) * 4.0
        cx, cy = (x0 + x1) / 2 + dx, (y0 + y1) / 2 + dy
        m = np.array([[scale, 0, 128 - scale * cx], [0, scale, 128 - scale * cy]])
        crops.append(cv2.warpAffine(image, m, (256, 256), borderMode=cv2.BORDER_REPLICATE))
        meshes.append(face.mesh[:, :2] @ m[:, :2].T + m[:, 2])
    return np.stack(crops), np.stack(meshes).astype(np.float32)


def test_smoke_train_export_resume(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    ort = pytest.importorskip("onnxruntime")
    from fakescope.training.engine import train
    from fakescope.training.sbi import sbi_pair

    def main(argv: list[str]) -> Path:  # fakescope train CONFIG --set KEY=VALUE ...
        return train(argv[0], argv[2:]).run_dir

    images, meshes = _loose_crops()
    n = len(images)
    np.savez(
        tmp_path / "train.npz",
        images=images,
        landmarks=meshes,
        labels=np.zeros(n, np.int64),
        methods=np.array(["real"] * n),
        splits=np.array(["train"] * n),
    )
    rng = np.random.default_rng(1)
    val_images = np.stack(
        [
            img if k % 2 == 0 else sbi_pair(img, mesh, rng)[1]
            for k, (img, mesh) in enumerate(zip(images, meshes, strict=True))
        ]
    )
    labels = np.arange(n) % 2
    np.savez(
        tmp_path / "val.npz",
        images=val_images,
        landmarks=meshes,
        labels=labels,
        methods=np.where(labels == 1, "sbi", "real"),
        splits=np.array(["val"] * n),
    )
    np.savez(  # supervised fakes come from a second cache (only its label-1 items are used)
        tmp_path / "fakes.npz",
        images=val_images[1::2],
        landmarks=meshes[1::2],
        labels=np.array([1, 0, 1, 1][: len(val_images[1::2])]),
        methods=np.array(["sbi"] * len(val_images[1::2])),
        splits=np.array(["train"] * len(val_images[1::2])),
    )
    out = tmp_path / "run"
    argv = [
        str(RECIPE),
        "--set",
        f"data.cache={tmp_path / 'train.npz'}",
        f"data.val_cache={tmp_path / 'val.npz'}",
        f"data.fake_cache={tmp_path / 'fakes.npz'}",
        "data.supervised_fakes=true",
        "data.input_size=64",
        "model.pretrained=false",
        "optim.epochs=1",
        "optim.batch=4",
        "run.max_steps_per_epoch=2",
        "loss.kind=bce+dcf",
        f"run.out={out}",
    ]
    assert main(argv) == out
    lines = (out / "log.jsonl").read_text().splitlines()
    assert len(lines) == 1
    entry = json.loads(lines[0])
    assert entry["epoch"] == 0 and entry["steps"] == 2 and np.isfinite(entry["loss"])
    assert set(entry) >= {"cls_loss", "seg_loss", "dcf_loss", "val_auc", "val_auc_per_method"}
    assert set(entry["val_auc_per_method"]) == {"sbi"} and "val_auc_h264" in entry
    first = capsys.readouterr()
    assert json.loads(first.out.strip().splitlines()[-1]) == entry
    n_fakes = int((np.array([1, 0, 1, 1][: len(val_images[1::2])]) == 1).sum())
    repeat = resolve(RECIPE).data.real_repeat
    assert f"train pool {n * repeat + n_fakes} ({n_fakes} supervised fakes)" in first.err
    saved = resolve(out / "config.yaml")
    assert saved.data.input_size == 64 and saved.run.out == str(out)
    assert (out / "last.pt").exists()

    session = ort.InferenceSession(str(out / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["input"]
    x = np.random.default_rng(0).normal(size=(3, 3, 64, 64)).astype(np.float32)
    names = [o.name for o in session.get_outputs()]
    assert names == ["fake_probability", "mask", "embedding"]
    prob, mask, emb = session.run(None, {"input": x})
    assert prob.shape == (3,) and mask.shape == (3, 4, 4) and emb.shape == (3, 1280)
    assert ((prob >= 0) & (prob <= 1)).all() and ((mask >= 0) & (mask <= 1)).all()

    # second call: resumes after the finished epoch instead of redoing it
    main(argv)
    captured = capsys.readouterr()
    assert "resumed" in captured.err
    assert captured.out.strip() == ""
    assert len((out / "log.jsonl").read_text().splitlines()) == 1

    # warm start: a new run starts from the first run's weights (a tiny lr keeps them), not
    # from a fresh initialisation; a missing checkpoint is a config error
    warm = tmp_path / "warm"
    warm_argv = [
        *[a for a in argv if not a.startswith(("run.out=", "optim.lr="))],
        f"run.out={warm}",
        f"model.init_from={out / 'last.pt'}",
        "optim.lr=1e-12",
    ]
    main(warm_argv)
    assert f"warm start from {out / 'last.pt'}" in capsys.readouterr().err
    before = torch.load(out / "last.pt", weights_only=True)["model"]
    after = torch.load(warm / "last.pt", weights_only=True)["model"]
    head = [k for k in before if k.endswith("weight") and before[k].dtype.is_floating_point]
    assert head and all(torch.allclose(before[k], after[k], atol=1e-6) for k in head)
    with pytest.raises(ConfigError, match="init_from"):
        main([*warm_argv[:-2], f"run.out={tmp_path / 'w2'}", "model.init_from=nope/last.pt"])

    # warm start from an exported ONNX (folded BatchNorms, statistics re-estimated on training
    # batches): with a tiny lr the new run exports the same network
    from_onnx = tmp_path / "from_onnx"
    onnx_argv = [f"run.out={from_onnx}", f"model.init_from={out / 'model.onnx'}", "optim.lr=1e-12"]
    main([*warm_argv[:-2], *onnx_argv])
    assert "BatchNorm statistics re-estimated" in capsys.readouterr().err
    again = ort.InferenceSession(str(from_onnx / "model.onnx"), providers=["CPUExecutionProvider"])
    assert np.abs(again.run(None, {"input": x})[0] - prob).max() < 0.02


def test_balanced_fake_fraction() -> None:
    from fakescope.training.train_sbi import balanced_fake_fraction

    for n_real, n_fake in [(100, 0), (1880, 590), (10, 3)]:
        f = balanced_fake_fraction(n_real, n_fake)
        fakes = n_real * f + n_fake
        assert fakes == pytest.approx((n_real + n_fake) / 2)
    assert balanced_fake_fraction(10, 30) == 0.0
    assert balanced_fake_fraction(0, 5) == 0.0
