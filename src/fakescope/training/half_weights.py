"""Store a float network's weights in half precision, computing in float32 as before.

Every float32 initializer with at least ``min_elements`` values is stored as float16 and cast
back to float32 by a ``Cast`` node at the head of the graph; onnxruntime folds those casts into
float32 constants when it builds the session, so a scan runs the same float32 kernels at the
same speed and the file is about half as large. The outputs move by the rounding of the
weights (about 1e-4 in probability for the shipped EfficientNet-Lite0 networks);
:func:`compare` measures it on random inputs before a file is replaced.

    python3 -m fakescope.training.half_weights src/fakescope/models/assets/effnet_lite0_v4.json

rewrites the weight JSON's ONNX file in place (only if it still holds float32 weights) and the
JSON's ``sha256``, and prints the size and the largest output change.
"""

from __future__ import annotations

import argparse
import hashlib
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

__all__ = ["compare", "float_weights", "half_weights", "load_float", "main"]

_SUFFIX = "__fp16"


def half_weights(model: onnx.ModelProto, min_elements: int = 1024) -> int:
    """Turn ``model``'s float32 initializers of at least ``min_elements`` values into float16
    ones feeding a ``Cast`` to float32 under the old name (in place); returns how many. Values
    beyond float16's range would overflow, so such a tensor is left in float32."""
    graph = model.graph
    halves: list[onnx.TensorProto] = []
    casts: list[onnx.NodeProto] = []
    for init in list(graph.initializer):
        if init.data_type != TensorProto.FLOAT or int(np.prod(init.dims)) < min_elements:
            continue
        values = numpy_helper.to_array(init)
        if not np.all(np.abs(values) <= np.finfo(np.float16).max):
            continue
        half = numpy_helper.from_array(values.astype(np.float16), init.name + _SUFFIX)
        halves.append(half)
        casts.append(
            helper.make_node(
                "Cast", [half.name], [init.name], to=TensorProto.FLOAT, name=init.name + "_cast"
            )
        )
        graph.initializer.remove(init)
    graph.initializer.extend(halves)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend([*casts, *nodes])
    return len(halves)


def float_weights(model: onnx.ModelProto) -> int:
    """Undo :func:`half_weights` (in place): every float16 initializer that feeds a ``Cast`` to
    float32 becomes a float32 initializer under the cast's output name and the cast goes;
    returns how many. Tools that read weights from initializers (the int8 quantizer, warm
    starts) see a plain float32 graph again; the values are the float16-rounded ones."""
    graph = model.graph
    halves = {i.name: i for i in graph.initializer if i.data_type == TensorProto.FLOAT16}
    casts = [
        n
        for n in graph.node
        if n.op_type == "Cast"
        and len(n.input) == 1
        and n.input[0] in halves
        and helper.get_attribute_value(n.attribute[0]) == TensorProto.FLOAT
    ]
    for node in casts:
        values = numpy_helper.to_array(halves[node.input[0]]).astype(np.float32)
        graph.initializer.remove(halves.pop(node.input[0]))
        graph.initializer.append(numpy_helper.from_array(values, node.output[0]))
        graph.node.remove(node)
    return len(casts)


def load_float(path: str | Path) -> onnx.ModelProto:
    """``onnx.load`` with the weights in float32 (:func:`float_weights`)."""
    model = onnx.load(str(path))
    float_weights(model)
    return model


def compare(before: Path, after: Path, batch: int = 4, seed: int = 0) -> dict[str, float]:
    """Largest absolute difference of every output of two networks with the same interface,
    on ``batch`` inputs drawn from a standard normal (dynamic dimensions set to ``batch``)."""
    import onnxruntime as ort

    a = ort.InferenceSession(str(before), providers=["CPUExecutionProvider"])
    b = ort.InferenceSession(str(after), providers=["CPUExecutionProvider"])
    rng = np.random.default_rng(seed)
    feeds: dict[str, Any] = {}
    for spec in a.get_inputs():
        shape = [d if isinstance(d, int) else batch for d in spec.shape]
        feeds[spec.name] = rng.standard_normal(shape).astype(np.float32)
    names = [o.name for o in a.get_outputs()]
    out_a = a.run(names, feeds)
    out_b = b.run(names, feeds)
    return {
        name: float(np.max(np.abs(np.asarray(x, np.float64) - np.asarray(y, np.float64))))
        for name, x, y in zip(names, out_a, out_b, strict=True)
    }


def _convert(weights: Path, min_elements: int) -> dict[str, Any]:
    config = json.loads(weights.read_text())
    onnx_path = weights.parent / config["file"]
    model = onnx.load(str(onnx_path))
    if any(i.name.endswith(_SUFFIX) for i in model.graph.initializer):
        return {"weights": str(weights), "skipped": "already stored in half precision"}
    size_before = onnx_path.stat().st_size
    n = half_weights(model, min_elements)
    tmp = onnx_path.with_suffix(".half.onnx")
    onnx.save(model, str(tmp))
    diff = compare(onnx_path, tmp)
    tmp.replace(onnx_path)
    digest = hashlib.sha256(onnx_path.read_bytes()).hexdigest()
    config["sha256"] = digest
    weights.write_text(json.dumps(config, indent=2) + "\n")
    return {
        "weights": str(weights),
        "tensors": n,
        "bytes_before": size_before,
        "bytes_after": onnx_path.stat().st_size,
        "sha256": digest,
        "max_abs_diff": diff,
    }


def main(argv: Sequence[str] | None = None) -> list[dict[str, Any]]:
    parser = argparse.ArgumentParser(
        prog="python3 -m fakescope.training.half_weights", description=__doc__.split("\n")[0]
    )
    parser.add_argument("weights", nargs="+", type=Path, help="weight JSON files")
    parser.add_argument("--min-elements", type=int, default=1024)
    args = parser.parse_args(argv)
    results = [_convert(w, args.min_elements) for w in args.weights]
    for r in results:
        print(json.dumps(r))
    return results


if __name__ == "__main__":
    main()
