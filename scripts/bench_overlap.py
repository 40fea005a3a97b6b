#!/usr/bin/env python3
"""Paired benchmark of ``ScanConfig.overlap`` (issue 30 item 2): the same clips scanned by a
sequential scanner (crops scored after the face search) and by overlapped ones, in interleaved
rounds (the order rotating each round) after one warm-up scan each, with the decode-only time
of the same sampled frames taken in every round too. A busy machine slows every variant of a
round alike, so the per-round ratios to the sequential scan are steadier than the times; the
script prints their median and range, and each variant's total/decode-only.

    python3 scripts/bench_overlap.py      # generated 10-s 720p clip and 5-face scene, 5 rounds
    python3 scripts/bench_overlap.py --rounds 7 ../shared/data/ffpp_c40_videos/real/youtube_183.mp4
    python3 scripts/bench_overlap.py --variants sequential,overlap,overlap-2threads --json out.json
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS: dict[str, dict[str, Any]] = {
    "sequential": {"overlap": False},
    "overlap": {"overlap": True},
    "overlap-2threads": {"overlap": True, "threads": 2},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "clips", nargs="*", type=Path, help="videos (default: those fakescope bench generates)"
    )
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--variants", default="sequential,overlap")
    parser.add_argument("--json", type=Path, help="also save every run here")
    args = parser.parse_args(argv)

    from fakescope import ScanConfig, Scanner
    from fakescope.cli._bench import decode_floor_ms
    from fakescope.io import load_example_face, make_clip, make_scene

    names = args.variants.split(",")
    unknown = [n for n in names if n not in VARIANTS]
    if unknown or names[0] != "sequential":
        parser.error(f"variants: the first must be sequential; known: {', '.join(VARIANTS)}")
    scanners = {n: Scanner(ScanConfig(**VARIANTS[n])) for n in names}
    clips = list(args.clips)
    with tempfile.TemporaryDirectory() as tmp:
        if not clips:
            face = load_example_face()
            clips = [Path(tmp) / "generated_720p_10s.mp4", Path(tmp) / "scene_5faces_720p.mp4"]
            make_clip(clips[0], face=face, face_height=220)
            make_scene(clips[1], face)
        report: dict[str, Any] = {"cpus": os.cpu_count(), "clips": {}}
        for clip in clips:
            runs: dict[str, list[dict[str, float]]] = {n: [] for n in (*names, "decode-only")}
            for scanner in scanners.values():
                scanner.scan(clip)
            order = [*names, "decode-only"]
            for r in range(args.rounds):
                load = os.getloadavg()[0]
                for name in order[r % len(order) :] + order[: r % len(order)]:
                    cpu, wall = time.process_time(), time.perf_counter()
                    if name == "decode-only":
                        decode_floor_ms(scanners["sequential"], clip)
                    else:
                        verdict = scanners[name].scan(clip)
                        assert str(verdict.status) == "ok", verdict.reason
                    runs[name].append(
                        {
                            "wall_ms": (time.perf_counter() - wall) * 1000.0,
                            "cpu_ms": (time.process_time() - cpu) * 1000.0,
                            "load": load,
                        }
                    )
            report["clips"][str(clip)] = runs
            _print(clip, names, runs)
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0


def _print(clip: Path, names: list[str], runs: dict[str, list[dict[str, float]]]) -> None:
    floor = [r["wall_ms"] for r in runs["decode-only"]]
    base = [r["wall_ms"] for r in runs["sequential"]]
    loads = [r["load"] for r in runs["sequential"]]
    print(
        f"\n{clip.name}: {len(base)} rounds, 1-min load average {min(loads):.1f}-{max(loads):.1f}"
    )
    spread = f"{min(floor):.0f}-{max(floor):.0f}"
    print(f"  decode-only: median {statistics.median(floor):.0f} ms ({spread})")
    for name in names:
        wall = [r["wall_ms"] for r in runs[name]]
        cpu = [r["cpu_ms"] for r in runs[name]]
        ratio = [w / b for w, b in zip(wall, base, strict=True)]
        over = [w / f for w, f in zip(wall, floor, strict=True)]
        print(
            f"  {name:18s} wall median {statistics.median(wall):5.0f} ms "
            f"({min(wall):.0f}-{max(wall):.0f}), cpu {statistics.median(cpu):5.0f} ms; "
            f"/sequential {statistics.median(ratio):.2f} ({min(ratio):.2f}-{max(ratio):.2f}); "
            f"total/decode-only {statistics.median(over):.2f} ({min(over):.2f}-{max(over):.2f})"
        )


if __name__ == "__main__":
    sys.exit(main())
