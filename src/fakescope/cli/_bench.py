"""``fakescope bench``: per-stage time, peak RSS and frames/s beside the decode-only floor,
on a generated 10-s 720p clip, on given clips, and (``--sweep``) versus number of sampled
frames, resolution and faces per frame. Every run can be saved as JSON."""

from __future__ import annotations

import dataclasses
import json
import os
import platform
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fakescope.config import ScanConfig
from fakescope.inference import STAGES, Scanner
from fakescope.io import load_example_face, make_clip

__all__ = ["bench_clip", "decode_floor_ms", "peak_rss", "run_bench"]

SWEEP_FRAMES = (8, 16, 32, 64)
SWEEP_SIZES = ((640, 360), (1280, 720), (1920, 1080))
SWEEP_FACES = (1, 2, 4)


def _rss_bytes() -> int:
    from fakescope._runtime import rss_bytes

    return rss_bytes(os.getpid()) or 0


@contextmanager
def peak_rss() -> Iterator[list[float]]:
    """Sample this process's resident memory every 5 ms; yields a list whose single item is
    the peak in MB once the block ends."""
    result: list[float] = []
    peak = _rss_bytes()
    stop = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not stop.wait(0.005):
            peak = max(peak, _rss_bytes())

    worker = threading.Thread(target=sample, daemon=True)
    worker.start()
    try:
        yield result
    finally:
        stop.set()
        worker.join()
        result.append(max(peak, _rss_bytes()) / 2**20)


def decode_floor_ms(scanner: Scanner, path: Path) -> float:
    """Time to open the clip and decode the same sampled frames, doing nothing else."""
    start = time.perf_counter()
    _, frames = scanner.open(path)
    for _ in frames:
        pass
    return (time.perf_counter() - start) * 1000.0


def bench_clip(scanner: Scanner, path: Path, repeat: int) -> dict[str, Any]:
    """Median per-stage milliseconds over ``repeat`` scans (after one warm-up scan)."""
    warm = scanner.scan(path)
    with peak_rss() as rss:
        runs = [scanner.scan(path) for _ in range(repeat)]
    floors = [decode_floor_ms(scanner, path) for _ in range(repeat)]
    stages = {s: statistics.median(r.timings_ms.get(s, 0.0) for r in runs) for s in STAGES}
    frames = len({f.frame_index for t in warm.tracks for f in t.frames})
    total = stages["total"]
    floor = statistics.median(floors)
    return {
        "clip": str(path),
        "status": str(warm.status),
        "width": warm.media.width if warm.media else None,
        "height": warm.media.height if warm.media else None,
        "frames_with_faces": frames,
        "faces": sum(len(t.frames) for t in warm.tracks),
        "stages_ms": {k: round(v, 1) for k, v in stages.items()},
        "decode_only_ms": round(floor, 1),
        "total_over_decode": round(total / floor, 2) if floor else None,
        "frames_per_s": round(scanner.config.num_frames / (total / 1000.0), 1) if total else None,
        "peak_rss_mb": round(rss[0], 1),
    }


def _table(title: str, rows: Sequence[dict[str, Any]], key: str) -> Table:
    table = Table(title=title)
    table.add_column(key, overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("faces", justify="right")
    for col in (*STAGES, "decode-only", "total/decode", "frames/s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows:
        table.add_row(
            str(r[key]),
            f"{r['width']}x{r['height']}",
            str(r["faces"]),
            *(f"{r['stages_ms'][s]:.0f}" for s in STAGES),
            f"{r['decode_only_ms']:.0f}",
            f"{r['total_over_decode']}",
            f"{r['frames_per_s']}",
            f"{r['peak_rss_mb']:.0f}",
        )
    return table


def _sweep(config: ScanConfig, repeat: int, tmp: Path, err: Console) -> list[dict[str, Any]]:
    face = load_example_face()
    rows: list[dict[str, Any]] = []
    cases: list[tuple[str, Any, int, int, int, int]] = [
        *(("frames", n, 1280, 720, 1, n) for n in SWEEP_FRAMES),
        *(("resolution", f"{w}x{h}", w, h, 1, config.num_frames) for w, h in SWEEP_SIZES),
        *(("faces", k, 1280, 720, k, config.num_frames) for k in SWEEP_FACES),
    ]
    clips: dict[tuple[int, int, int], Path] = {}
    for variable, value, w, h, faces, frames in cases:
        clip = clips.get((w, h, faces))
        if clip is None:
            clip = tmp / f"sweep_{w}x{h}_{faces}faces.mp4"
            make_clip(
                clip,
                width=w,
                height=h,
                seconds=10.0,
                fps=30,
                face=face,
                face_height=round(h * 0.45),
                num_faces=faces,
            )
            clips[(w, h, faces)] = clip
        err.print(f"sweep: {variable} = {value}")
        scanner = Scanner(dataclasses.replace(config, num_frames=frames))
        row = bench_clip(scanner, clip, repeat)
        rows.append({"variable": variable, "value": value, **row})
    return rows


def run_bench(
    clips: Sequence[str],
    config: ScanConfig,
    repeat: int,
    json_out: str | None,
    sweep: bool = False,
) -> int:
    err = Console(stderr=True)
    from fakescope.cli._common import stdout_console

    out = stdout_console()
    scanner = Scanner(config)
    rows: list[dict[str, Any]] = []
    sweep_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as tmp_name:
        tmp = Path(tmp_name)
        generated = tmp / "synthetic_720p_10s.mp4"
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
            row = bench_clip(scanner, clip, repeat)
            rows.append({**row, "clip": Path(row["clip"]).name})
        if sweep:
            sweep_rows = _sweep(config, repeat, tmp, err)
    out.print(
        _table(
            f"fakescope bench: median ms per scan of {config.num_frames} sampled "
            "frames (decode = time waiting for the prefetching decoder)",
            rows,
            "clip",
        )
    )
    if sweep_rows:
        out.print(
            _table(
                "sweep (generated 10-s clips)",
                [{**r, "case": f"{r['variable']}={r['value']}"} for r in sweep_rows],
                "case",
            )
        )
    report = {
        "config": dataclasses.asdict(config),
        "repeat": repeat,
        "results": rows,
        "sweep": sweep_rows,
        "python": sys.version.split()[0],
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform()},
        "time": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if json_out:
        Path(json_out).write_text(json.dumps(report, indent=2) + "\n")
    return 0
