"""Build the face-model assets shipped in ``src/fakescope/models/assets`` (run once).

* BlazeFace short-range + FaceMesh ``.tflite`` files are copied unchanged out of the
  ``mediapipe==0.10.21`` wheel (Apache-2.0).
* MTCNN's PNet/RNet/ONet (MIT weights inside the ``facenet-pytorch==2.6.0`` wheel) are rebuilt
  in torch, loaded with ``torch.load(weights_only=True)`` and exported to ONNX.

Usage (needs torch, i.e. ``pip install -e .[train]``)::

    pip download --no-deps mediapipe==0.10.21 facenet-pytorch==2.6.0 -d /tmp/wheels
    python tools/export_face_assets.py /tmp/wheels

Neither wheel is installed; both are only read as zip files.
"""

from __future__ import annotations

import argparse
import hashlib
import io
import zipfile
from pathlib import Path

import torch
from torch import nn

ASSETS = Path(__file__).resolve().parents[1] / "src" / "fakescope" / "models" / "assets"

TFLITE = {
    "mediapipe/modules/face_detection/face_detection_short_range.tflite": "blazeface_short.tflite",
    "mediapipe/modules/face_detection/face_detection_full_range_sparse.tflite": (
        "blazeface_full.tflite"
    ),
    "mediapipe/modules/face_landmark/face_landmark.tflite": "face_landmark.tflite",
}


class PNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 10, kernel_size=3)
        self.prelu1 = nn.PReLU(10)
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(10, 16, kernel_size=3)
        self.prelu2 = nn.PReLU(16)
        self.conv3 = nn.Conv2d(16, 32, kernel_size=3)
        self.prelu3 = nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, kernel_size=1)
        self.conv4_2 = nn.Conv2d(32, 4, kernel_size=1)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.prelu1(self.conv1(x))
        x = self.pool1(x)
        x = self.prelu2(self.conv2(x))
        x = self.prelu3(self.conv3(x))
        prob = torch.softmax(self.conv4_1(x), dim=1)[:, 1]
        return prob, self.conv4_2(x)


class RNet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 28, kernel_size=3)
        self.prelu1 = nn.PReLU(28)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(28, 48, kernel_size=3)
        self.prelu2 = nn.PReLU(48)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(48, 64, kernel_size=2)
        self.prelu3 = nn.PReLU(64)
        self.dense4 = nn.Linear(576, 128)
        self.prelu4 = nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.prelu3(self.conv3(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu4(self.dense4(x.view(x.shape[0], -1)))
        return torch.softmax(self.dense5_1(x), dim=1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, kernel_size=3)
        self.prelu1 = nn.PReLU(32)
        self.pool1 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv2 = nn.Conv2d(32, 64, kernel_size=3)
        self.prelu2 = nn.PReLU(64)
        self.pool2 = nn.MaxPool2d(3, 2, ceil_mode=True)
        self.conv3 = nn.Conv2d(64, 64, kernel_size=3)
        self.prelu3 = nn.PReLU(64)
        self.pool3 = nn.MaxPool2d(2, 2, ceil_mode=True)
        self.conv4 = nn.Conv2d(64, 128, kernel_size=2)
        self.prelu4 = nn.PReLU(128)
        self.dense5 = nn.Linear(1152, 256)
        self.prelu5 = nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = self.pool1(self.prelu1(self.conv1(x)))
        x = self.pool2(self.prelu2(self.conv2(x)))
        x = self.pool3(self.prelu3(self.conv3(x)))
        x = self.prelu4(self.conv4(x))
        x = x.permute(0, 3, 2, 1).contiguous()
        x = self.prelu5(self.dense5(x.view(x.shape[0], -1)))
        prob = torch.softmax(self.dense6_1(x), dim=1)[:, 1]
        return prob, self.dense6_2(x), self.dense6_3(x)


def _find(wheels: Path, prefix: str) -> zipfile.ZipFile:
    (path,) = sorted(wheels.glob(f"{prefix}-*.whl"))
    return zipfile.ZipFile(path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("wheels", type=Path, help="folder holding the two downloaded wheels")
    args = parser.parse_args()
    ASSETS.mkdir(parents=True, exist_ok=True)

    with _find(args.wheels, "mediapipe") as mp:
        for member, name in TFLITE.items():
            (ASSETS / name).write_bytes(mp.read(member))

    with _find(args.wheels, "facenet_pytorch") as fn:
        specs: list[
            tuple[str, nn.Module, tuple[int, ...], list[str], dict[str, dict[int, str]]]
        ] = [
            (
                "pnet",
                PNet(),
                (1, 3, 64, 64),
                ["prob", "reg"],
                {
                    "input": {0: "n", 2: "h", 3: "w"},
                    "prob": {0: "n", 1: "oh", 2: "ow"},
                    "reg": {0: "n", 2: "oh", 3: "ow"},
                },
            ),
            (
                "rnet",
                RNet(),
                (1, 3, 24, 24),
                ["prob", "reg"],
                {"input": {0: "n"}, "prob": {0: "n"}, "reg": {0: "n"}},
            ),
            (
                "onet",
                ONet(),
                (1, 3, 48, 48),
                ["prob", "reg", "points"],
                {"input": {0: "n"}, "prob": {0: "n"}, "reg": {0: "n"}, "points": {0: "n"}},
            ),
        ]
        for name, net, shape, outputs, axes in specs:
            raw = fn.read(f"facenet_pytorch/data/{name}.pt")
            state = torch.load(io.BytesIO(raw), weights_only=True)
            state = {k: v for k, v in state.items() if not k.startswith("softmax")}
            net.load_state_dict(state, strict=True)
            net.eval()
            torch.onnx.export(
                net,
                (torch.zeros(shape),),
                str(ASSETS / f"mtcnn_{name}.onnx"),
                input_names=["input"],
                output_names=outputs,
                dynamic_axes=axes,
                opset_version=17,
                dynamo=False,
            )

    for path in sorted(ASSETS.iterdir()):
        if path.suffix in {".onnx", ".tflite"}:
            print(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {path.name}")


if __name__ == "__main__":
    main()
