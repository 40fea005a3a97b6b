"""The SBI face detector network: an EfficientNet-Lite (Lite0 by default; Lite1, Lite2) with a
blend-mask segmentation head (:class:`SBINet`), and its ONNX export (:class:`SBIExport`,
:func:`export_onnx`): what :mod:`fakescope.training.train_sbi` trains and ships as
``effnet-lite0-v4``."""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from fakescope.training.effnet_lite import (
    EfficientNetLite,
    EfficientNetLite0,
    Variant,
    imagenet_lite,
)

__all__ = ["SEG_BLOCK", "SBIExport", "SBINet", "export_onnx"]

SEG_BLOCK = 10
"""Index of Lite0's MBConv block whose output (112 ch, stride 16) feeds the segmentation head
(in general the backbone's ``stride16_block``: 14 in Lite1 and Lite2, 112 and 120 ch)."""


class SBINet(nn.Module):
    """An EfficientNet-Lite (``variant``, default Lite0) with a classification logit and a
    blend-mask segmentation head on the last stride-16 block's output.

    ``forward(x)`` -> ``(logit (N,), mask_logits (N, S/16, S/16))``. The stem and the first
    ``freeze_blocks`` MBConv blocks are frozen and kept in eval mode (BatchNorm statistics too);
    with ``freeze_bn`` every BatchNorm stays in eval mode (its affine parameters still train).
    """

    def __init__(
        self,
        pretrained: bool = True,
        dropout: float = 0.2,
        freeze_blocks: int = 3,
        freeze_bn: bool = False,
        variant: Variant = "lite0",
    ):
        super().__init__()
        self.freeze_bn = freeze_bn
        backbone: EfficientNetLite
        if pretrained:
            backbone = imagenet_lite(1, variant)
        elif variant == "lite0":
            backbone = EfficientNetLite0(1, dropout)
        else:
            backbone = EfficientNetLite(1, dropout, variant)
        backbone._dropout = nn.Dropout(dropout)
        self.backbone = backbone
        self.seg_block = backbone.stride16_block
        self.seg_head = nn.Sequential(
            nn.Conv2d(backbone.stride16_channels, 64, 3, padding=1, bias=False),
            nn.BatchNorm2d(64, eps=1e-3, momentum=0.01),
            nn.ReLU6(inplace=True),
            nn.Conv2d(64, 1, 1),
        )
        self.freeze_blocks = freeze_blocks
        for module in self.frozen_modules():
            for p in module.parameters():
                p.requires_grad = False

    def frozen_modules(self) -> list[nn.Module]:
        b = self.backbone
        return [b._conv_stem, b._bn0, *b._blocks[: self.freeze_blocks]]

    def train(self, mode: bool = True) -> SBINet:
        super().train(mode)
        for module in self.frozen_modules():
            module.eval()
        if self.freeze_bn:
            for module in self.modules():
                if isinstance(module, nn.BatchNorm2d):
                    module.eval()
        return self

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        logit, seg, _ = self.forward_all(x)
        return logit, seg

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """``(logit (N,), mask_logits (N, S/16, S/16), embedding (N, 1280))``: the embedding is
        the pooled head feature the logit is read from (the attribution head's input)."""
        b = self.backbone
        x = b.act(b._bn0(b._conv_stem(x)))
        mid = x
        for i, block in enumerate(b._blocks):
            x = block(x)
            if i == self.seg_block:
                mid = x
        pooled = b.act(b._bn1(b._conv_head(x))).mean(dim=(2, 3))
        logit = b._fc(b._dropout(pooled))[:, 0]
        return logit, self.seg_head(mid)[:, 0], pooled


class SBIExport(nn.Module):
    """The exported graph: normalised NCHW float -> (fake probability (N,), mask (N, h, w),
    embedding (N, 1280))."""

    def __init__(self, model: SBINet) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        logit, seg, emb = self.model.forward_all(x)
        return torch.sigmoid(logit), torch.sigmoid(seg), emb


def export_onnx(model: SBINet, size: int, path: Path) -> Path:
    """Export ``model`` (eval mode) as :class:`SBIExport` to ``path`` for ``size`` px crops:
    input ``input``, outputs ``fake_probability``, ``mask`` and ``embedding``, any batch."""
    model.eval()
    with warnings.catch_warnings():  # the legacy (dynamo=False) exporter is deprecated
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            SBIExport(model).eval(),  # else the exporter restores train mode after
            (torch.zeros(1, 3, size, size),),
            str(path),
            input_names=["input"],
            output_names=["fake_probability", "mask", "embedding"],
            dynamic_axes={
                "input": {0: "n"},
                "fake_probability": {0: "n"},
                "mask": {0: "n"},
                "embedding": {0: "n"},
            },
            opset_version=17,
            dynamo=False,
        )
    return path
