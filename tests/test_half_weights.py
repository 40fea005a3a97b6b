"""Half-precision weight storage (fakescope.training.half_weights): smaller files, same
float32 computation, outputs within the weights' rounding."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from fakescope.training.half_weights import compare, half_weights, main


def _mlp(path: Path) -> np.ndarray:
    rng = np.random.default_rng(0)
    w = rng.standard_normal((256, 128)).astype(np.float32) * 0.1
    bias = rng.standard_normal(128).astype(np.float32)  # 128 values: stays float32
    graph = helper.make_graph(
        [
            helper.make_node("MatMul", ["x", "w"], ["h"]),
            helper.make_node("Add", ["h", "b"], ["z"]),
            helper.make_node("Sigmoid", ["z"], ["p"]),
        ],
        "mlp",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, ["n", 256])],
        [helper.make_tensor_value_info("p", TensorProto.FLOAT, ["n", 128])],
        [numpy_helper.from_array(w, "w"), numpy_helper.from_array(bias, "b")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx.save(model, str(path))
    return w


def test_half_weights_keeps_the_interface_and_the_outputs(tmp_path: Path) -> None:
    src = tmp_path / "mlp.onnx"
    w = _mlp(src)
    model = onnx.load(str(src))
    assert half_weights(model, min_elements=1024) == 1  # the bias is too small to bother
    dst = tmp_path / "half.onnx"
    onnx.save(model, str(dst))
    onnx.checker.check_model(onnx.load(str(dst)))
    assert dst.stat().st_size < 0.6 * src.stat().st_size
    kinds = {i.name: i.data_type for i in onnx.load(str(dst)).graph.initializer}
    assert kinds == {"w__fp16": TensorProto.FLOAT16, "b": TensorProto.FLOAT}
    session = ort.InferenceSession(str(dst), providers=["CPUExecutionProvider"])
    assert [(i.name, i.type) for i in session.get_inputs()] == [("x", "tensor(float)")]
    assert session.get_outputs()[0].type == "tensor(float)"
    diff = compare(src, dst)["p"]
    rounding = float(np.abs(w - w.astype(np.float16).astype(np.float32)).max())
    assert 0.0 < diff < 1e-3
    assert rounding > 0.0


def test_main_rewrites_the_file_and_its_sha256_once(tmp_path: Path) -> None:
    _mlp(tmp_path / "net.onnx")
    weights = tmp_path / "net.json"
    weights.write_text(json.dumps({"name": "tiny", "file": "net.onnx", "sha256": "old"}))
    (first,) = main([str(weights)])
    config = json.loads(weights.read_text())
    digest = hashlib.sha256((tmp_path / "net.onnx").read_bytes()).hexdigest()
    assert config["sha256"] == digest == first["sha256"]
    assert first["bytes_after"] < first["bytes_before"]
    (second,) = main([str(weights)])
    assert "skipped" in second
    assert hashlib.sha256((tmp_path / "net.onnx").read_bytes()).hexdigest() == digest


def test_float_weights_undoes_half_weights_for_tools_that_read_initializers(
    tmp_path: Path,
) -> None:
    """The quantizer and warm starts read weights from initializers: a half-stored network
    reads back as a plain float32 graph with the float16-rounded values and the same outputs."""
    from fakescope.training.half_weights import float_weights, load_float

    src = tmp_path / "mlp.onnx"
    w = _mlp(src)
    model = onnx.load(str(src))
    half_weights(model)
    half = tmp_path / "half.onnx"
    onnx.save(model, str(half))
    restored = load_float(half)
    assert [n.op_type for n in restored.graph.node] == ["MatMul", "Add", "Sigmoid"]
    inits = {i.name: numpy_helper.to_array(i) for i in restored.graph.initializer}
    assert set(inits) == {"w", "b"} and inits["w"].dtype == np.float32
    np.testing.assert_array_equal(inits["w"], w.astype(np.float16).astype(np.float32))
    back = tmp_path / "back.onnx"
    onnx.save(restored, str(back))
    assert max(compare(half, back).values()) < 1e-6
    assert float_weights(onnx.load(str(src))) == 0  # a float32 graph is left alone
