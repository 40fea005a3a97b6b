"""Inference cost of the SBI network on each EfficientNet-Lite backbone and input size.

    nice -n 5 python3 tools/bench_backbones.py --threads 1 --int8

exports the SBI network (ImageNet backbone, fresh heads: the cost does not depend on the
trained values) for each ``--case`` (``variant@size``; default lite0@192, lite2@192, lite2@224,
lite2@256) into a temporary folder, quantizes it as the training engine's quantize stage does
(:func:`fakescope.training.quantize.quantize`, default settings, calibrated on ``--calib``
random inputs: ranges, not speed, depend on the data) when ``--int8``, and prints the median
ms per crop through fakescope's runtime session (:func:`fakescope._runtime.build_session`)
with ``--threads`` intra-op threads at batch ``--batch`` (the scan's detectors run 16 at a
time), rounds interleaved so that a shared machine's load hits every network alike. The
shipped int8 members of ``fused-v4-int8`` are timed beside them as today's reference.

    python3 tools/bench_backbones.py --store cache/faces_v2 --sizes 192 224 256

instead checks that a face store's crops carry each input size (no timing): over ``--sample``
random store crops, the scale of the alignment (input px per store px: above 1 means the
network input is up-sampled from the store) and the share of the aligned crop that falls
outside the store crop (filled by border replication), at ``--margin``.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from fakescope._assets import asset_path
from fakescope._runtime import build_session
from fakescope.training.effnet_lite import Variant
from fakescope.training.quantize import quantize
from fakescope.training.sbi_net import SBINet, export_onnx

SHIPPED = ("effnet_lite0_sbi_int8.onnx", "effnet_lite0_v4_int8.onnx")


def store_check(store_dir: str, sizes: list[int], margin: float, sample: int) -> None:
    import cv2

    from fakescope.faces import alignment_matrix, five_points
    from fakescope.training.store import FaceStore

    store = FaceStore.open(Path(store_dir))
    rng = np.random.default_rng(0)
    idx = rng.choice(len(store.landmarks), min(sample, len(store.landmarks)), replace=False)
    height, width = store.images[0].shape[:2]
    print(f"{store_dir}: {len(store.landmarks)} crops of {width}x{height}, {len(idx)} sampled")
    for size in sizes:
        grid = np.stack(np.meshgrid(np.arange(0, size, 4) + 0.5, np.arange(0, size, 4) + 0.5), -1)
        points = grid.reshape(-1, 2)
        scales, outside = [], []
        for i in idx:
            matrix = alignment_matrix(five_points(store.landmarks[int(i)]), size, margin)
            scales.append(float(np.hypot(matrix[0, 0], matrix[1, 0])))
            inv = cv2.invertAffineTransform(matrix)
            src = points @ inv[:, :2].T + inv[:, 2]
            out = (
                (src[:, 0] < 0)
                | (src[:, 0] > width - 1)
                | (src[:, 1] < 0)
                | (src[:, 1] > height - 1)
            )
            outside.append(float(out.mean()))
        sc, ou = np.array(scales), np.array(outside)
        print(
            f"{size} px: scale median {np.median(sc):.2f}, p95 {np.percentile(sc, 95):.2f},"
            f" up-sampled (>1) {np.mean(sc > 1):.1%}; outside the store crop median"
            f" {np.median(ou):.1%}, p95 {np.percentile(ou, 95):.1%}"
        )


def parse_case(text: str) -> tuple[Variant, int]:
    variant, size = text.split("@")
    if variant not in ("lite0", "lite1", "lite2"):
        raise SystemExit(f"unknown variant {variant!r}")
    return variant, int(size)  # type: ignore[return-value]


def build(variant: Variant, size: int, folder: Path, int8: bool, calib: int) -> list[Path]:
    torch.manual_seed(0)
    model = SBINet(pretrained=True, variant=variant)
    fp32 = export_onnx(model, size, folder / f"{variant}_{size}.onnx")
    if not int8:
        return [fp32]
    rng = np.random.default_rng(0)
    inputs = rng.standard_normal((calib, 3, size, size)).astype(np.float32)
    dst = folder / f"{variant}_{size}_int8.onnx"
    quantize(fp32, dst, inputs)
    return [fp32, dst]


def time_models(
    paths: list[Path], sizes: list[int], threads: int, batch: int, rounds: int
) -> list[float]:
    sessions = [build_session(p, threads) for p in paths]
    rng = np.random.default_rng(1)
    feeds = [{"input": rng.standard_normal((batch, 3, s, s)).astype(np.float32)} for s in sizes]
    for sess, feed in zip(sessions, feeds, strict=True):
        for _ in range(2):
            sess.run(None, feed)
    times: list[list[float]] = [[] for _ in sessions]
    for _ in range(rounds):
        for sess, feed, t in zip(sessions, feeds, times, strict=True):
            start = time.perf_counter()
            sess.run(None, feed)
            t.append((time.perf_counter() - start) * 1000 / batch)
    return [float(np.median(t)) for t in times]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--case", nargs="+", default=["lite0@192", "lite2@192", "lite2@224", "lite2@256"]
    )
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--batch", type=int, default=16)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--int8", action="store_true", help="also quantize and time int8")
    parser.add_argument("--calib", type=int, default=16, help="random calibration inputs")
    parser.add_argument("--store", help="check this face store's crops instead of timing")
    parser.add_argument("--sizes", type=int, nargs="+", default=[192, 224, 256])
    parser.add_argument("--margin", type=float, default=0.125)
    parser.add_argument("--sample", type=int, default=2000)
    args = parser.parse_args()
    if args.store:
        store_check(args.store, args.sizes, args.margin, args.sample)
        return
    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as tmp:
        paths: list[Path] = [asset_path(name) for name in SHIPPED]
        sizes = [192, 192]
        names = [f"shipped {name}" for name in SHIPPED]
        for case in args.case:
            variant, size = parse_case(case)
            built = build(variant, size, Path(tmp), args.int8, args.calib)
            paths += built
            sizes += [size] * len(built)
            names += [f"{case} {'int8' if p.stem.endswith('int8') else 'float'}" for p in built]
        ms = time_models(paths, sizes, args.threads, args.batch, args.rounds)
    ref = ms[0] + ms[1]
    print(f"threads {args.threads}, batch {args.batch}, median of {args.rounds} rounds")
    print(f"today (the two shipped int8 members, 192 px): {ref:.2f} ms per crop")
    for name, m in zip(names, ms, strict=True):
        print(f"{name:40s} {m:7.2f} ms/crop  {m / ref:5.2f}x today")


if __name__ == "__main__":
    main()
