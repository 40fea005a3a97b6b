"""The static INT8 quantizer (fakescope.training.quantize): a tiny exported conv net quantized
for real (int8 weights where asked, float where not, float graph outputs, outputs close to
the float model, byte-identical on a re-run), its calibration data choice, and the command
line end to end on a shipped face network and a tiny face store."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
import pytest

torch = pytest.importorskip("torch")
onnx = pytest.importorskip("onnx")
ort = pytest.importorskip("onnxruntime")

from fakescope.data import MediaItem, write_manifest  # noqa: E402
from fakescope.errors import ConfigError, InputError, ModelError  # noqa: E402
from fakescope.training.quantize import QuantSettings, main, quantize  # noqa: E402
from fakescope.training.quantize_data import (  # noqa: E402
    StoreSplits,
    calibration_indices,
    synth_split,
    synth_test_items,
    val_indices,
)
from fakescope.training.quantize_graph import (  # noqa: E402
    check_interface,
    exclusion_nodes,
    interface,
)
from tiny_store import tiny_store  # noqa: E402


class _TinyNet(torch.nn.Module):
    """Stem conv, two backbone convs, pooled embedding, linear head; and a mask head."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 8, 3, stride=2, padding=1)
        self.conv2 = torch.nn.Conv2d(8, 16, 3, stride=2, padding=1)
        self.conv3 = torch.nn.Conv2d(16, 32, 1)
        self.mask = torch.nn.Conv2d(16, 1, 1)
        self.fc = torch.nn.Linear(32, 1)

    def forward(self, x):  # type: ignore[no-untyped-def]
        f = torch.nn.functional.relu6(self.stem(x))
        f2 = torch.nn.functional.relu6(self.conv2(f))
        emb = torch.nn.functional.relu6(self.conv3(f2)).mean(dim=(2, 3))
        prob = torch.sigmoid(self.fc(emb)[:, 0])
        return prob, torch.sigmoid(self.mask(f2)[:, 0]), emb


@pytest.fixture(scope="module")
def tiny_onnx(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("net") / "tiny.onnx"
    torch.manual_seed(0)
    names = ["input", "fake_probability", "mask", "embedding"]
    with warnings.catch_warnings():  # the legacy exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            _TinyNet().eval(),
            (torch.zeros(1, 3, 32, 32),),
            str(path),
            input_names=names[:1],
            output_names=names[1:],
            dynamic_axes={k: {0: "n"} for k in names},
            opset_version=17,
            dynamo=False,
        )
    return path


def _inputs(n: int, seed: int) -> npt.NDArray[np.float32]:
    """Smooth random 'images', normalised: a blurred noise field per channel."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, 3, 8, 8)).astype(np.float32)
    return np.ascontiguousarray(np.repeat(np.repeat(x, 4, axis=2), 4, axis=3))


def _run(path: Path, x: npt.NDArray[np.float32]) -> dict[str, Any]:
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    names = [o.name for o in sess.get_outputs()]
    return dict(zip(names, sess.run(names, {"input": x}), strict=True))


def _weight_types(path: Path) -> dict[str, str]:
    """op name of each Conv/Gemm -> ``int8`` when its weight comes through a DequantizeLinear
    of an int8 initializer, ``float`` when it is a float initializer."""
    model = onnx.load(str(path))
    inits = {i.name: i.data_type for i in model.graph.initializer}
    made_by = {o: n for n in model.graph.node for o in n.output}
    out = {}
    for node in model.graph.node:
        if node.op_type not in ("Conv", "Gemm"):
            continue
        weight = node.input[1]
        if weight in inits:
            out[node.name] = "float" if inits[weight] == onnx.TensorProto.FLOAT else "other"
        else:
            dq = made_by[weight]
            assert dq.op_type == "DequantizeLinear"
            out[node.name] = "int8" if inits[dq.input[0]] == onnx.TensorProto.INT8 else "other"
    return out


def test_quantize_makes_int8_weights_keeps_float_parts_and_outputs(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    calib, held = _inputs(48, 1), _inputs(32, 2)
    dst = tmp_path / "tiny_int8.onnx"
    quantize(tiny_onnx, dst, calib)
    model = onnx.load(str(dst))
    ops = {n.op_type for n in model.graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    kinds = _weight_types(dst)
    # the stem (on the input), the classifier head and the mask head stay float, the rest int8
    assert sorted(kinds.values()) == ["float", "float", "float", "int8", "int8"], kinds
    stem = next(n for n in model.graph.node if n.op_type == "Conv" and "input" in n.input)
    assert kinds[stem.name] == "float"
    gemm = next(n for n in model.graph.node if n.op_type == "Gemm")
    assert kinds[gemm.name] == "float"
    # no graph output comes out of a DequantizeLinear: probabilities are not rounded
    made_by = {o: n.op_type for n in model.graph.node for o in n.output}
    assert all(made_by[o.name] != "DequantizeLinear" for o in model.graph.output)
    assert interface(dst) == interface(tiny_onnx)
    check_interface(tiny_onnx, dst)
    # outputs close to the float model's on inputs never calibrated on
    a, b = _run(tiny_onnx, held), _run(dst, held)
    assert np.abs(a["fake_probability"] - b["fake_probability"]).max() < 0.02
    assert np.abs(a["mask"] - b["mask"]).max() < 0.05
    ea, eb = a["embedding"], b["embedding"]
    cos = (ea * eb).sum(1) / (np.linalg.norm(ea, axis=1) * np.linalg.norm(eb, axis=1))
    assert cos.min() > 0.99
    assert len(np.unique(b["fake_probability"])) == len(held)  # not 256 levels


def test_quantize_is_deterministic_and_the_float_parts_are_an_option(
    tiny_onnx: Path, tmp_path: Path
) -> None:
    calib = _inputs(48, 1)
    first, again, everything = (tmp_path / f"{n}.onnx" for n in ("a", "b", "all"))
    quantize(tiny_onnx, first, calib)
    quantize(tiny_onnx, again, calib)
    assert first.read_bytes() == again.read_bytes()
    quantize(tiny_onnx, everything, calib, QuantSettings(exclude=()))
    assert set(_weight_types(everything).values()) == {"int8"}  # stem, heads too
    other = tmp_path / "other.onnx"
    quantize(tiny_onnx, other, _inputs(48, 7))
    assert other.read_bytes() != first.read_bytes()  # other calibration data, other ranges


def test_exclusion_nodes_name_the_parts(tiny_onnx: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    ops = {n.name: n.op_type for n in model.graph.node}
    stem = exclusion_nodes(model, ["stem"])
    assert len(stem) == 1 and ops[stem[0]] == "Conv"
    head = exclusion_nodes(model, ["head"])
    assert "Gemm" in {ops[n] for n in head} and "ReduceMean" not in {ops[n] for n in head}
    mask = exclusion_nodes(model, ["mask"])
    assert "Conv" in {ops[n] for n in mask} and not set(mask) & set(head)
    assert exclusion_nodes(model, []) == []


def test_check_interface_refuses_a_changed_graph(tiny_onnx: Path, tmp_path: Path) -> None:
    model = onnx.load(str(tiny_onnx))
    model.graph.output[0].name = "renamed"
    model.graph.node[-1].output[0] = "renamed"
    bad = tmp_path / "bad.onnx"
    onnx.save(model, str(bad))
    with pytest.raises(ModelError, match="interface changed"):
        check_interface(tiny_onnx, bad)


# --------------------------------------------------------------------------------------------
# calibration data


def _splits() -> StoreSplits:
    """Set a: 12 train reals (6 media of 2 crops), 6 train fakes; set b: 8 train reals only;
    set c: 5 val crops; 3 crops of set a in val."""
    datasets = ["a"] * 18 + ["b"] * 8 + ["c"] * 5 + ["a"] * 3
    labels = [0] * 12 + [1] * 6 + [0] * 8 + [1, 0, 1, 0, 1] + [0, 1, 0]
    media = [f"a{i // 2}" for i in range(12)] + [f"af{i}" for i in range(6)]
    media += [f"b{i}" for i in range(8)] + [f"c{i}" for i in range(5)] + ["x", "y", "z"]
    splits = ["train"] * 26 + ["val"] * 8
    return StoreSplits(
        None,  # type: ignore[arg-type]  # the picks never read the crops
        np.asarray(datasets),
        np.asarray(labels, np.int64),
        np.asarray(media),
        np.asarray(splits),
    )


def test_calibration_indices_share_sets_and_classes_and_spread_media() -> None:
    data = _splits()
    idx = calibration_indices(data, 11, seed=0)
    assert len(idx) == 11 and (data.splits[idx] == "train").all()
    assert list(idx) == sorted(idx)
    in_a, in_b = idx[data.datasets[idx] == "a"], idx[data.datasets[idx] == "b"]
    assert (len(in_a), len(in_b)) == (6, 5)  # 11 over two sets: 6 + 5
    assert (data.labels[in_a] == 0).sum() == 3 and (data.labels[in_a] == 1).sum() == 3
    assert len(set(data.media[in_a[data.labels[in_a] == 0]])) == 3  # 3 reals of 3 media
    assert np.array_equal(idx, calibration_indices(data, 11, seed=0))
    assert not np.array_equal(idx, calibration_indices(data, 11, seed=1))


def test_val_indices_are_the_val_split_evenly_spaced() -> None:
    data = _splits()
    idx = val_indices(data, per_set=2)
    assert (data.splits[idx] == "val").all()
    assert list(idx) == [31, 33, 26, 30]  # per set (a, then c), the first and last val crop


# --------------------------------------------------------------------------------------------
# a synthesis run's splits


def test_synth_splits_and_test_items_read_the_runs_files(tmp_path: Path) -> None:
    data = tmp_path / "gen"
    rows = [("real/r1.jpg", "real"), ("fake/f1.jpg", "fake"), ("real/r2.jpg", "real")]
    for name, _ in rows:
        (data / name).parent.mkdir(parents=True, exist_ok=True)
        (data / name).write_bytes(b"")
    (data / "MANIFEST.tsv").write_text(
        "file\tlabel\n" + "".join(f"{f}\t{lab}\n" for f, lab in rows)
    )
    splits = tmp_path / "run" / "splits.tsv"
    splits.parent.mkdir()
    splits.write_text("file\tlabel\tsplit\nr1.jpg\t0\ttrain\nf1.jpg\t1\ttrain\nr2.jpg\t0\ttest\n")
    assert synth_split(data, splits, "train") == [
        (data / "real/r1.jpg", 0),
        (data / "fake/f1.jpg", 1),
    ]
    assert synth_split(data, splits, "test") == [(data / "real/r2.jpg", 0)]
    item = MediaItem(
        "gen/real/r2", data / "real/r2.jpg", "real", "gen", "real", ("r2",), None, None
    )
    test = write_manifest([item], tmp_path / "run" / "test.tsv")
    assert synth_test_items(test, data) == [(data / "real/r2.jpg", 0)]
    splits.write_text("file\tlabel\tsplit\nr1.jpg\t1\ttrain\n")  # label disagrees
    with pytest.raises(InputError, match="has label 1"):
        synth_split(data, splits, "train")
    with pytest.raises(ConfigError, match="never read"):
        synth_split(tmp_path / "ffpp_c40_videos", splits, "train")


# --------------------------------------------------------------------------------------------
# the command line, end to end


def test_cli_quantizes_and_measures_a_shipped_face_network(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """effnet-lite0-v4 (the default's member) calibrated on 8 crops of a tiny store: int8 file
    with the float interface, the comparison table and the report."""
    from fakescope.models import asset_path, sha256_file

    store = tiny_store(tmp_path / "store", groups=4, frames=2)
    groups = {"g0": "train", "g1": "train", "g2": "val", "g3": "val"}
    splits = tmp_path / "splits.json"
    splits.write_text(json.dumps({"groups": groups}))
    out = tmp_path / "int8"
    argv = ["--store", str(store.root), "--splits", str(splits), "--out", str(out)]
    argv += ["--models", "effnet_lite0_v4", "--calib-count", "8", "--measure"]
    report = main([*argv, "--val-per-set", "8", "--json", str(tmp_path / "r.json")])
    int8 = out / "effnet_lite0_v4_int8.onnx"
    check_interface(asset_path("effnet_lite0_v4.onnx"), int8)
    # int8 weights: smaller than the float network even with its weights stored in float16
    assert int8.stat().st_size < 0.7 * asset_path("effnet_lite0_v4.onnx").stat().st_size
    result = report["models"]["effnet_lite0_v4"]
    assert result["int8_file"]["sha256"] == sha256_file(int8)
    assert result["sets"]["all"]["n"] == 8 and result["sets"]["all"]["fake"] == 4
    assert result["sets"]["all"]["r_logit"] > 0.9
    assert json.loads((tmp_path / "r.json").read_text()) == json.loads(json.dumps(report))
    printed = capsys.readouterr().out
    assert "calibration: 8 train crops (tiny_videos 4r/4f)" in printed
    assert "effnet_lite0_v4: fp32" in printed and "tiny_videos" in printed
