"""``fakescope bench``: per-stage time, peak RSS and frames/s, beside the decode-only floor."""

from __future__ import annotations

import json
import resource
import statistics
import sys
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fakescope.config import ScanConfig
from fakescope.inference import STAGES, Scanner
from fakescope.io import load_example_face, make_clip

__all__ = ["bench_clip", "decode_floor_ms", "run_bench"]


def decode_floor_ms(scanner: Scanner, path: Path) -> float:
    """Time to open the clip and decode the same sampled frames, doing nothing else."""
    start = time.perf_counter()
    _, frames = scanner.open(path)
    for _ in frames:
        pass
    return (time.perf_counter() - start) * 1000.0


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0


def bench_clip(scanner: Scanner, path: Path, repeat: int) -> dict[str, Any]:
    """Median per-stage milliseconds over ``repeat`` scans (after one warm-up scan)."""
    warm = scanner.scan(path)
    runs = [scanner.scan(path) for _ in range(repeat)]
    floors = [decode_floor_ms(scanner, path) for _ in range(repeat)]
    stages = {s: statistics.median(r.timings_ms.get(s, 0.0) for r in runs) for s in STAGES}
    frames = (
        len({f.frame_index for t in warm.tracks for f in t.frames}) or scanner.config.num_frames
    )
    total = stages["total"]
    floor = statistics.median(floors)
    return {
        "clip": str(path),
        "status": str(warm.status),
        "width": warm.media.width if warm.media else None,
        "height": warm.media.height if warm.media else None,
        "sampled_frames": frames,
        "faces": sum(len(t.frames) for t in warm.tracks),
        "stages_ms": {k: round(v, 1) for k, v in stages.items()},
        "decode_only_ms": round(floor, 1),
        "total_over_decode": round(total / floor, 2) if floor else None,
        "frames_per_s": round(frames / (total / 1000.0), 1) if total else None,
        "peak_rss_mb": round(_peak_rss_mb(), 1),
    }


def _table(rows: Sequence[dict[str, Any]]) -> Table:
    table = Table(
        title="fakescope bench (median ms per scan; decode = time waiting for the "
        "prefetching decoder)"
    )
    table.add_column("clip", overflow="fold")
    table.add_column("size", justify="right")
    for col in (*STAGES, "decode-only", "total/decode", "frames/s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            Path(r["clip"]).name,
            f"{r['width']}x{r['height']}",
            *(f"{r['stages_ms'][s]:.0f}" for s in STAGES),
            f"{r['decode_only_ms']:.0f}",
            f"{r['total_over_decode']}",
            f"{r['frames_per_s']}",
            f"{r['peak_rss_mb']:.0f}",
        )
    return table


def run_bench(clips: Sequence[str], config: ScanConfig, repeat: int, json_out: str | None) -> int:
    err = Console(stderr=True)
    scanner = Scanner(config)
    rows = []
    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as tmp:
        generated = Path(tmp) / "synthetic_720p_10s.mp4"
        err.print("generating a 10-s 1280x720 H.264 clip ...")
        make_clip(
            generated,
            width=1280,
            height=720,
            seconds=10.0,
            fps=30,
            face=load_example_face(),
            face_height=220,
        )
        for clip in [generated, *map(Path, clips)]:
            err.print(f"timing {clip.name} ...")
            rows.append(bench_clip(scanner, clip, repeat))
    out = Console()
    if not out.is_terminal:
        out = Console(width=200)
    out.print(_table(rows))
    report = {
        "config": config.__dict__,
        "repeat": repeat,
        "results": rows,
        "python": sys.version.split()[0],
    }
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2))
    return 0
