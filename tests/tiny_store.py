"""Test helper: a tiny face store of synthetic videos, and a tiny detector network exported to
ONNX with the shipped detectors' outputs (``fake_probability``, ``mask``, ``embedding``)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import numpy.typing as npt
import pytest

from conftest import write_store
from fakescope.training.store import FaceStore, StoreParams

# 5-point ArcFace template (112 px) and the FaceMesh indices five_points() reads
_TEMPLATE = np.array(
    [[38.29, 51.70], [73.53, 51.50], [56.03, 71.74], [41.55, 92.37], [70.73, 92.20]]
)
_FIVE = [(33, 133, 159, 145), (362, 263, 386, 374), (1,), (61,), (291,)]


def mesh(rng: np.random.Generator, side: int, face: float) -> npt.NDArray[np.float32]:
    """468 points spread over a face of ``face`` px centred in a ``side`` crop, with eyes,
    nose and mouth where the ArcFace template puts them."""
    c = side / 2
    pts = c + rng.uniform(-0.45, 0.45, (468, 2)) * face
    for idx, p in zip(_FIVE, _TEMPLATE, strict=True):
        pts[list(idx)] = c + (p / 112.0 - 0.5) * face + rng.normal(0, 0.3, 2)
    return pts.astype(np.float32)


def tiny_detector(path: Path) -> Path:
    """A 3x3 conv + linear network on 32 px crops, exported to ``path`` (skips without
    torch)."""
    torch = pytest.importorskip("torch")

    class TinyDetector(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.conv = torch.nn.Conv2d(3, 6, 3, stride=4)
            self.fc = torch.nn.Linear(6, 1)

        def forward(self, x):  # type: ignore[no-untyped-def]
            f = torch.relu(self.conv(x))
            emb = f.mean(dim=(2, 3))
            return torch.sigmoid(self.fc(emb)[:, 0]), torch.sigmoid(f[:, 0]), emb

    torch.manual_seed(0)
    with warnings.catch_warnings():  # the legacy exporter's deprecation notices
        warnings.simplefilter("ignore", DeprecationWarning)
        torch.onnx.export(
            TinyDetector().eval(),
            (torch.zeros(1, 3, 32, 32),),
            str(path),
            input_names=["input"],
            output_names=["fake_probability", "mask", "embedding"],
            dynamic_axes={k: {0: "n"} for k in ("input", "fake_probability", "mask", "embedding")},
            opset_version=17,
            dynamo=False,
        )
    return path


def tiny_store(root: Path, groups: int = 8, frames: int = 8) -> FaceStore:
    """``groups`` identity groups, each one real and one fake video of ``frames`` 64 px
    frames (stored out of order); a fake frame is its real texture made brighter."""
    rng = np.random.default_rng(0)
    params = StoreParams(size=64, frames_per_video=frames)
    images, marks, rows = [], [], []
    for g in range(groups):
        for label in ("real", "fake"):
            media = f"vids/{label}/{g:03d}"
            texture = rng.integers(0, 256, (64, 64, 3), dtype=np.uint8)
            for f in reversed(range(frames)):  # stored out of order on purpose
                img = np.roll(texture, f, axis=0)
                if label == "fake":
                    img = np.clip(img.astype(np.int16) + 40, 0, 255).astype(np.uint8)
                images.append(img)
                marks.append(mesh(rng, 64, 36.0))
                rows.append(
                    {
                        "media_id": media,
                        "dataset": "tiny_videos",
                        "label": label,
                        "method": "Deepfakes" if label == "fake" else "real",
                        "group": f"g{g}",
                        "split": "",
                        "frame": f * 3,
                    }
                )
    write_store(root, images, marks, rows, params.size, params.frames_per_video)
    return FaceStore.open(root)
