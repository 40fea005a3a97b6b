#!/usr/bin/env python3
"""Start-up benchmark: ``fakescope scan --json`` of one photo, process start to exit, against a
bare ``python -c "import numpy, av, cv2, onnxruntime"`` on the same interpreter (aim: within
2x, issues 14 and 30). The commands run in interleaved rounds (their order rotating each
round), after one unmeasured warm-up run each; a command's ratio to the bare import is the
median of its per-round ratios of wall time. Also shown: the ratio of the fastest runs and
the CPU time (user + system) of each run, less disturbed than wall time on a busy machine.

    python3 scripts/bench_startup.py     # 5 rounds, a photo cut from examples/astronaut.mp4
    python3 scripts/bench_startup.py --rounds 11 --photo /tmp/photo.jpg --json out.json
    python3 scripts/bench_startup.py --table      # also the scan that prints the rich table
    # before/after in the same rounds: the scan of another source tree (here the last commit)
    git archive HEAD src | tar -x -C /tmp/base && python3 scripts/bench_startup.py \\
        --compare /tmp/base/src
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
AIM = 2.0
BARE = "bare import (numpy, av, cv2, onnxruntime)"


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


def timed(command: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall and CPU (user + system) seconds of one run of ``command``."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    start = time.perf_counter()
    subprocess.run(
        command, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env
    )
    wall = time.perf_counter() - start
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = after.ru_utime - before.ru_utime + after.ru_stime - before.ru_stime
    return wall, cpu


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--rounds",
        "--pairs",
        dest="rounds",
        type=int,
        default=5,
        help="interleaved rounds, each running every command once (default 5)",
    )
    parser.add_argument("--photo", type=Path, help="photo to scan (default: cut from the example)")
    parser.add_argument(
        "--table", action="store_true", help="also time 'fakescope scan' printing its table"
    )
    parser.add_argument(
        "--compare",
        type=Path,
        metavar="SRC",
        help="also time the --json scan with PYTHONPATH=SRC (another tree's src/ folder)",
    )
    parser.add_argument("--json", dest="json_out", type=Path, help="also save the table here")
    args = parser.parse_args()
    py = sys.executable
    with tempfile.TemporaryDirectory() as tmp:
        photo = args.photo or example_photo(Path(tmp))
        scan = [py, "-m", "fakescope", "scan"]
        commands: dict[str, tuple[list[str], dict[str, str]]] = {
            BARE: ([py, "-c", "import numpy, av, cv2, onnxruntime"], ENV),
            f"fakescope scan --json {photo.name}": ([*scan, "--json", str(photo)], ENV),
        }
        if args.compare is not None:
            other = {**ENV, "PYTHONPATH": str(args.compare.resolve())}
            name = f"  the same, PYTHONPATH={args.compare}"
            commands[name] = ([*scan, "--json", str(photo)], other)
        if args.table:
            commands[f"fakescope scan {photo.name} (table)"] = ([*scan, str(photo)], ENV)
        for command, env in commands.values():  # warm-up: page cache, .pyc files, hashes
            timed(command, env)
        names = list(commands)
        times: dict[str, list[float]] = {name: [] for name in names}
        cpu: dict[str, list[float]] = {name: [] for name in names}
        for i in range(args.rounds):
            k = i % len(names)
            for name in names[k:] + names[:k]:
                wall, used = timed(*commands[name])
                times[name].append(wall)
                cpu[name].append(used)
    ratios = {
        name: statistics.median(t / b for t, b in zip(times[name], times[BARE], strict=True))
        for name in names
    }
    fastest = {name: min(times[name]) / min(times[BARE]) for name in names}
    print(f"start-up, {args.rounds} interleaved rounds, {py}")
    print(
        f"{'command':<58} {'median s':>9} {'min s':>7} {'max s':>7} {'cpu s':>7} "
        f"{'x bare':>7} {'min x':>7}"
    )
    for name in names:
        values = times[name]
        print(
            f"{name:<58} {statistics.median(values):9.3f} {min(values):7.3f} "
            f"{max(values):7.3f} {statistics.median(cpu[name]):7.3f} {ratios[name]:7.2f} "
            f"{fastest[name]:7.2f}"
        )
    print(
        "(x bare: median of the per-round ratios of wall time; min x: fastest run over the "
        "fastest bare import; cpu s: median user + system time)"
    )
    ratio = ratios[names[1]]
    verdict = "met" if ratio <= AIM else "missed"
    print(
        f"scan --json / bare import: {ratio:.2f}x (median of rounds; aim <= {AIM:.0f}x: {verdict})"
    )
    if args.json_out:
        table = {
            "rounds": args.rounds,
            "photo": str(photo),
            "seconds": times,
            "cpu_seconds": cpu,
            "ratios": ratios,
            "ratios_of_fastest": fastest,
            "ratio": ratio,
            "aim": AIM,
        }
        args.json_out.write_text(json.dumps(table, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
