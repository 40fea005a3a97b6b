#!/usr/bin/env python3
"""Start-up benchmark: ``fakescope scan`` of one photo, process start to exit, against a bare
``python -c "import numpy, av, cv2, onnxruntime"`` on the same interpreter (issue 14's aim:
within 2x). The commands run in interleaved pairs (their order alternating), after one
unmeasured warm-up run each; the ratio is the median of the per-pair ratios.

    python3 scripts/bench_startup.py     # 5 pairs, a photo cut from examples/astronaut.mp4
    python3 scripts/bench_startup.py --pairs 11 --photo /tmp/photo.jpg --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIM = 2.0


def example_photo(folder: Path) -> Path:
    """The first frame of examples/astronaut.mp4 (1280x720) as a JPEG."""
    import av
    import cv2

    out = folder / "photo.jpg"
    with av.open(str(REPO / "examples" / "astronaut.mp4")) as container:
        frame = next(container.decode(video=0)).to_ndarray(format="bgr24")
    if not cv2.imwrite(str(out), frame):
        raise SystemExit(f"cannot write {out}")
    return out


# Bytecode is written (and then read) as for an installed package, whose .pyc files pip
# writes: with PYTHONDONTWRITEBYTECODE a source checkout would be compiled on every start.
ENV = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}


def timed(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=ENV
    )
    return time.perf_counter() - start


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=5, help="interleaved pairs (default 5)")
    parser.add_argument("--photo", type=Path, help="photo to scan (default: cut from the example)")
    parser.add_argument("--json", dest="json_out", type=Path, help="also save the table here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo or example_photo(Path(tmp))
        py = sys.executable
        commands = {
            "bare import (numpy, av, cv2, onnxruntime)": [
                py,
                "-c",
                "import numpy, av, cv2, onnxruntime",
            ],
            f"fakescope scan {photo.name}": [py, "-m", "fakescope", "scan", str(photo)],
        }
        bare, scan = commands.values()
        for command in (bare, scan):  # warm-up: page cache, .pyc files
            timed(command)
        times: dict[str, list[float]] = {name: [] for name in commands}
        names = list(commands)
        for i in range(args.pairs):
            order = names if i % 2 == 0 else names[::-1]
            for name in order:
                times[name].append(timed(commands[name]))
    ratios = [s / b for b, s in zip(*times.values(), strict=True)]
    ratio = statistics.median(ratios)
    print(f"start-up, {args.pairs} interleaved pairs, {py}")
    print(f"{'command':<45} {'median s':>9} {'min s':>7} {'max s':>7}")
    for name, values in times.items():
        print(f"{name:<45} {statistics.median(values):9.3f} {min(values):7.3f} {max(values):7.3f}")
    verdict = "met" if ratio <= AIM else "missed"
    print(f"scan / bare import: {ratio:.2f}x (median of pairs; aim <= {AIM:.0f}x: {verdict})")
    if args.json_out:
        table = {"pairs": args.pairs, "seconds": times, "ratio": ratio, "aim": AIM}
        args.json_out.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
