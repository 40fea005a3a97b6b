"""ONNX graph surgery of the quantizer (:mod:`fakescope.training.quantize`): which nodes stay in
float, graph outputs taken from before their Q/DQ pair, the interface check, and the pre-sigmoid
score exposed for measuring."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fakescope.errors import ModelError

if TYPE_CHECKING:
    from onnx import ModelProto, NodeProto

__all__ = [
    "EXCLUDE_CHOICES",
    "check_interface",
    "exclusion_nodes",
    "float_outputs",
    "interface",
    "with_logit",
]

EXCLUDE_CHOICES = ("stem", "head", "mask")
"""The parts :func:`exclusion_nodes` knows (all three stay in float by default)."""


def _producers(model: ModelProto) -> dict[str, NodeProto]:
    """Tensor name -> the node that writes it."""
    return {o: n for n in model.graph.node for o in n.output}


def _ancestors(model: ModelProto, tensor: str) -> set[str]:
    """Names of the nodes ``tensor`` depends on."""
    prod = _producers(model)
    seen: set[str] = set()
    stack = [tensor]
    while stack:
        node = prod.get(stack.pop())
        if node is None or node.name in seen:
            continue
        seen.add(node.name)
        stack.extend(node.input)
    return seen


def exclusion_nodes(model: ModelProto, parts: Sequence[str]) -> list[str]:
    """Node names of the named parts of ``model``: ``stem`` the first conv and the nodes
    between it and the graph input (e.g. the synthesis CNN's neighbouring-pixel residual),
    ``head`` the classifier after the pooled features (the last ReduceMean), ``mask``
    the nodes only the ``mask`` output needs."""
    names: set[str] = set()
    nodes = list(model.graph.node)
    outputs = [o.name for o in model.graph.output]
    score = outputs[0]  # fake_probability / logit
    if "stem" in parts:  # the first conv, and what computes its input from the graph's
        first = next(n for n in nodes if n.op_type == "Conv")
        names |= {first.name} | _ancestors(model, first.input[0])
    if "head" in parts:
        pooled = [n for n in nodes if n.op_type == "ReduceMean"][-1]
        names |= _ancestors(model, score) - _ancestors(model, pooled.output[0])
    if "mask" in parts and "mask" in outputs:
        shared = set().union(*(_ancestors(model, o) for o in outputs if o != "mask"))
        names |= _ancestors(model, "mask") - shared
    return sorted(n for n in names if n)


def interface(path: Path) -> list[tuple[str, list[int | str]]]:
    """The graph inputs then outputs of the ONNX file at ``path``: name and shape (a dimension
    is its size or its symbolic name)."""
    import onnx

    g = onnx.load(str(path), load_external_data=False).graph
    return [
        (v.name, [d.dim_value or d.dim_param for d in v.type.tensor_type.shape.dim])
        for v in [*g.input, *g.output]
    ]


def float_outputs(path: Path) -> int:
    """Rewrite ``path`` so that no graph output is the output of a DequantizeLinear: the
    quantizer puts a Q/DQ pair on graph outputs (the probability and mask of the output
    Sigmoids, the embedding when the Gemm after it is quantized), which rounds them to 256
    levels. The output then comes straight from the float tensor before the pair; consumers
    inside the graph keep reading the DQ. Returns how many outputs were rewired."""
    import onnx

    model = onnx.load(str(path))
    nodes = list(model.graph.node)
    prod = {o: n for n in nodes for o in n.output}
    changed = 0
    for out in model.graph.output:
        dq = prod.get(out.name)
        if dq is None or dq.op_type != "DequantizeLinear":
            continue
        q = prod.get(dq.input[0])
        if q is None or q.op_type != "QuantizeLinear":
            continue
        x, dq_name = q.input[0], out.name + "_dq"
        for n in nodes:  # in-graph readers of the output go on reading the DQ
            n.input[:] = [dq_name if i == out.name else i for i in n.input]
        dq.output[0] = dq_name
        for n in nodes:  # the float tensor takes the output's name
            n.input[:] = [out.name if i == x else i for i in n.input]
            n.output[:] = [out.name if o == x else o for o in n.output]
        changed += 1
    if changed:
        onnx.checker.check_model(model)
        onnx.save(model, str(path))
    return changed


def check_interface(fp32: Path, int8: Path) -> None:
    """The int8 file must have the float file's inputs and outputs: names, order, shapes;
    raises :class:`~fakescope.errors.ModelError` otherwise."""
    a, b = interface(fp32), interface(int8)
    if a != b:
        raise ModelError(f"{int8}: interface changed: {b} != {a}")


def with_logit(path: Path) -> tuple[bytes, str | None]:
    """The model with the pre-sigmoid score added as an output (for the logit correlation),
    and that output's name (None if the score output is not a Sigmoid)."""
    import onnx

    model = onnx.load(str(path))
    score = model.graph.output[0].name
    node = _producers(model).get(score)
    if node is None or node.op_type != "Sigmoid":
        return model.SerializeToString(), None
    logit = node.input[0]
    model.graph.output.append(onnx.helper.make_empty_tensor_value_info(logit))
    return model.SerializeToString(), logit
