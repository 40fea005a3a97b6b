"""Warm start from a shipped ONNX detector: the network weights of an exported
:class:`~fakescope.training.sbi_net.SBINet` put back into a torch ``SBINet``, or those of an
exported EfficientNet-Lite0 classifier (the synthesis CNN) into an
:class:`~fakescope.training.effnet_lite.EfficientNetLite0`.

The export folds every BatchNorm into the convolution before it (``W' = W * g / s``,
``b' = beta - mean * g / s``), so the BatchNorm statistics cannot be read back.
:func:`state_from_onnx` sets each BatchNorm to the identity plus the folded bias (running
mean 0, running variance ``1 - eps``, weight 1, bias ``b'``): in eval mode the torch network
computes exactly what the ONNX graph does. :func:`refit_batchnorm` then gives each BatchNorm
the mean and variance of its convolution's output over training batches, and the weight and
bias that keep the eval-mode function unchanged, so that training (batch statistics) starts
from the same network and BatchNorm keeps its scale invariance.

Only ONNX initializers are read (protobuf tensors, no pickles)."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from fakescope.errors import ConfigError

if TYPE_CHECKING:
    import torch
    from torch import nn

__all__ = ["refit_batchnorm", "state_from_onnx"]


def _conv_bn_pairs(model: nn.Module) -> list[tuple[nn.Conv2d, nn.BatchNorm2d | None]]:
    """The (Conv2d, BatchNorm2d or None) pairs of an SBINet or an EfficientNetLite0 in the
    order the export runs them: stem, each block's expand / depthwise / project, head, then
    (an SBINet's) the mask head."""
    b: Any = getattr(model, "backbone", model)  # modules' attributes are untyped in torch
    pairs: list[tuple[nn.Conv2d, nn.BatchNorm2d | None]] = [(b._conv_stem, b._bn0)]
    for block in b._blocks:
        if block.has_expand:
            pairs.append((block._expand_conv, block._bn0))
        pairs.append((block._depthwise_conv, block._bn1))
        pairs.append((block._project_conv, block._bn2))
    pairs.append((b._conv_head, b._bn1))
    seg: Any = getattr(model, "seg_head", None)
    if seg is not None:
        pairs.append((seg[0], seg[1]))
        pairs.append((seg[3], None))
    return pairs


def state_from_onnx(model: nn.Module, path: str | Path) -> dict[str, Any]:
    """A ``state_dict`` for ``model`` (an ``SBINet``, or an ``EfficientNetLite0``) holding the
    weights of the ONNX file at ``path`` (an export of the same network: 51 convolutions for
    an SBINet, 49 for the classifier, one Gemm). A linear head with fewer outputs than the
    network's fills its first rows (a one-output detector warm-starts a network that also
    names the generator family: the other rows keep their fresh initialisation). Raises
    :class:`ConfigError` when the graph does not have the network's layout."""
    import torch
    from onnx import numpy_helper

    from fakescope.training.half_weights import load_float

    try:
        graph = load_float(path).graph
    except Exception as exc:  # onnx raises DecodeError and friends
        raise ConfigError(f"model.init_from: cannot read {path}: {exc}") from exc
    weights = {t.name: numpy_helper.to_array(t) for t in graph.initializer}
    convs = [n for n in graph.node if n.op_type == "Conv"]
    gemms = [n for n in graph.node if n.op_type == "Gemm"]
    pairs = _conv_bn_pairs(model)
    if len(convs) != len(pairs) or len(gemms) != 1:
        raise ConfigError(
            f"model.init_from: {path} has {len(convs)} convolutions and {len(gemms)} linear "
            f"layers; an export of this network has {len(pairs)} and 1"
        )
    state = {k: v.clone() for k, v in model.state_dict().items()}
    names = {id(m): n for n, m in model.named_modules()}

    def put(key: str, value: np.ndarray[Any, Any]) -> None:
        if tuple(state[key].shape) != value.shape:
            raise ConfigError(
                f"model.init_from: {path}: {key} has shape {value.shape}, the network "
                f"{tuple(state[key].shape)}"
            )
        state[key] = torch.from_numpy(np.array(value, dtype=np.float32))

    for node, (conv, bn) in zip(convs, pairs, strict=True):
        if len(node.input) < 2 or node.input[1] not in weights:
            raise ConfigError(f"model.init_from: {path}: a convolution without weights")
        put(f"{names[id(conv)]}.weight", weights[node.input[1]])
        bias = weights.get(node.input[2]) if len(node.input) > 2 else None
        if bn is None:
            if bias is None:
                raise ConfigError(f"model.init_from: {path}: the mask output has no bias")
            put(f"{names[id(conv)]}.bias", bias)
            continue
        channels = conv.out_channels
        bias = np.zeros(channels, np.float32) if bias is None else bias
        prefix = names[id(bn)]
        put(f"{prefix}.weight", np.ones(channels, np.float32))
        put(f"{prefix}.bias", bias)
        put(f"{prefix}.running_mean", np.zeros(channels, np.float32))
        put(f"{prefix}.running_var", np.full(channels, 1.0 - bn.eps, np.float32))
    gemm = gemms[0]
    fc_w, fc_b = weights[gemm.input[1]], weights[gemm.input[2]]
    trans_b = any(a.name == "transB" and a.i == 1 for a in gemm.attribute)
    fc_w = fc_w if trans_b else fc_w.T
    fc = "backbone._fc" if hasattr(model, "backbone") else "_fc"
    rows = int(state[f"{fc}.weight"].shape[0])
    if fc_w.shape[0] < rows:
        fc_w = np.concatenate([fc_w, state[f"{fc}.weight"].numpy()[fc_w.shape[0] :]])
        fc_b = np.concatenate([fc_b, state[f"{fc}.bias"].numpy()[fc_b.shape[0] :]])
    put(f"{fc}.weight", fc_w)
    put(f"{fc}.bias", fc_b)
    return state


def refit_batchnorm(model: nn.Module, batches: Iterable[torch.Tensor]) -> int:
    """Re-estimate the BatchNorm statistics of ``model`` (an ``SBINet`` or an
    ``EfficientNetLite0``, e.g. loaded by :func:`state_from_onnx`) over ``batches``
    (normalised NCHW float tensors), keeping its eval-mode function unchanged: a BatchNorm
    computing ``a * z + c`` in eval mode, whose convolution output ``z`` has mean ``m`` and
    variance ``v`` over the batches, gets running statistics ``(m, v)``, weight
    ``a * sqrt(v + eps)`` and bias ``c + a * m``. Returns the number of samples seen."""
    import torch

    pairs = [(conv, bn) for conv, bn in _conv_bn_pairs(model) if bn is not None]
    sums: dict[int, list[Any]] = {}

    def hook(module: nn.Module, _inputs: tuple[torch.Tensor, ...], output: torch.Tensor) -> None:
        z = output.detach().double()
        acc = sums.setdefault(id(module), [0, 0.0, 0.0])
        acc[0] += z.shape[0] * z.shape[2] * z.shape[3]
        acc[1] = acc[1] + z.sum(dim=(0, 2, 3))
        acc[2] = acc[2] + (z * z).sum(dim=(0, 2, 3))

    handles = [conv.register_forward_hook(hook) for conv, _ in pairs]
    was_training = model.training
    model.eval()
    seen = 0
    try:
        with torch.no_grad():
            for batch in batches:
                model(batch)
                seen += int(batch.shape[0])
    finally:
        for handle in handles:
            handle.remove()
        model.train(was_training)
    if seen == 0:
        raise ConfigError("refit_batchnorm: no batches")
    with torch.no_grad():
        for conv, bn in pairs:
            n, total, squares = sums[id(conv)]
            mean = total / n
            var = (squares / n - mean * mean).clamp(min=0.0)
            running_mean, running_var = bn.running_mean, bn.running_var
            assert running_mean is not None and running_var is not None  # tracked (default)
            # the eval-mode BatchNorm is z -> a * z + c; keep it with the new statistics
            a = bn.weight.double() / torch.sqrt(running_var.double() + bn.eps)
            c = bn.bias.double() - a * running_mean.double()
            bn.weight.copy_((a * torch.sqrt(var + bn.eps)).float())
            bn.bias.copy_((c + a * mean).float())
            running_mean.copy_(mean.float())
            running_var.copy_(var.float())
    return seen
