"""``fakescope bench``: per-stage time, peak RSS and frames/s beside the decode-only floor,
on a generated 10-s 720p clip with one face, on a generated 10-s 720p scene of five faces
(a brief one, a small one, one entering late: :data:`~fakescope.io.BENCH_SCENE`), on given
clips, and (``--sweep``) versus number of sampled frames, resolution and faces per frame.
Beside the time, the faces found in the sampled frames against the faces present where they
are known (the generated clips), and their ratio, the recall. Every run can be saved as
JSON."""

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
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from fakescope.config import ScanConfig
from fakescope.inference import STAGES, Scanner
from fakescope.io import (
    BENCH_SCENE,
    clip_face_boxes,
    load_example_face,
    make_clip,
    make_scene,
    scene_boxes,
)
from fakescope.types import Box, Verdict

__all__ = ["bench_clip", "decode_floor_ms", "faces_found", "peak_rss", "run_bench"]

Truth = Callable[[int], list[Box]]
"""Frame index -> where the faces present in that frame are (pixels of the input)."""
CLIP_FACE_HEIGHT = 220
FPS = 30

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


def sampled_indices(scanner: Scanner, path: Path) -> list[int]:
    """The frame numbers of the frames a scan samples (its first pass)."""
    _, frames = scanner.open(path)
    return [frame.index for frame in frames]


def faces_found(verdict: Verdict, sampled: Sequence[int], truth: Truth) -> tuple[int, int]:
    """(found, present): over the ``sampled`` frames, the faces present (``truth``) and
    those of them a scored face of ``verdict`` marks (its box's centre inside the face's
    box; one scored face marks one face)."""
    boxes: dict[int, list[Box]] = {}
    for track in verdict.tracks:
        for crop in track.frames:
            boxes.setdefault(crop.frame_index, []).append(crop.box)
    found = present = 0
    for index in sampled:
        unused = list(boxes.get(index, []))
        for x1, y1, x2, y2 in truth(index):
            present += 1
            for box in unused:
                cx, cy = (box[0] + box[2]) / 2, (box[1] + box[3]) / 2
                if x1 <= cx <= x2 and y1 <= cy <= y2:
                    unused.remove(box)
                    found += 1
                    break
    return found, present


def bench_clip(
    scanner: Scanner, path: Path, repeat: int, truth: Truth | None = None
) -> dict[str, Any]:
    """Median per-stage milliseconds over ``repeat`` scans (after one warm-up scan), and
    the faces the warm-up scan found in the sampled frames: against those present when
    ``truth`` knows them (``recall``), else all it scored there."""
    warm = scanner.scan(path)
    runs, cpu = [], []
    with peak_rss() as rss:
        for _ in range(repeat):
            began = time.process_time()  # every thread of the process
            runs.append(scanner.scan(path))
            cpu.append(1000.0 * (time.process_time() - began))
    floors = [decode_floor_ms(scanner, path) for _ in range(repeat)]
    stages = {s: statistics.median(r.timings_ms.get(s, 0.0) for r in runs) for s in STAGES}
    frames = len({f.frame_index for t in warm.tracks for f in t.frames})
    total = stages["total"]
    cores, cpu_ms = os.cpu_count() or 1, statistics.median(cpu)
    floor = statistics.median(floors)
    sampled = sampled_indices(scanner, path)
    if truth is None:
        kept = set(sampled)
        found = sum(f.frame_index in kept for t in warm.tracks for f in t.frames)
        present: int | None = None
    else:
        found, present = faces_found(warm, sampled, truth)
    return {
        "clip": str(path),
        "status": str(warm.status),
        "width": warm.media.width if warm.media else None,
        "height": warm.media.height if warm.media else None,
        "frames_with_faces": frames,
        "faces": sum(len(t.frames) for t in warm.tracks),
        "sampled_frames": len(sampled),
        "faces_found": found,
        "faces_present": present,
        "recall": round(found / present, 3) if present else None,
        "stages_ms": {k: round(v, 1) for k, v in stages.items()},
        "decode_only_ms": round(floor, 1),
        "total_over_decode": round(total / floor, 2) if floor else None,
        # the scan's CPU time over all its threads, and the total/decode ratio that it would
        # give if every core were busy all along: no overlap can go below it
        "cpu_ms": round(cpu_ms, 1),
        "cores": cores,
        "cpu_floor_over_decode": round(cpu_ms / cores / floor, 2) if floor else None,
        "frames_per_s": round(scanner.config.num_frames / (total / 1000.0), 1) if total else None,
        "peak_rss_mb": round(rss[0], 1),
    }


def _clip_truth(
    face_shape: tuple[int, ...], width: int, height: int, face_height: int, num_faces: int
) -> Truth:
    """Where :func:`~fakescope.io.make_clip` put its faces, by frame index (at ``FPS``)."""

    def truth(index: int) -> list[Box]:
        return clip_face_boxes(
            face_shape,
            index / FPS,
            width=width,
            height=height,
            face_height=face_height,
            num_faces=num_faces,
        )

    return truth


def _present(boxes: Sequence[Box | None]) -> list[Box]:
    return [b for b in boxes if b is not None]


def _table(title: str, rows: Sequence[dict[str, Any]], key: str) -> Table:
    table = Table(title=title)
    table.add_column(key, overflow="fold")
    table.add_column("size", justify="right")
    table.add_column("faces", justify="right")
    table.add_column("found/present", justify="right")
    table.add_column("recall", justify="right")
    for col in (*STAGES, "decode-only", "total/decode", "frames/s", "peak RSS MB"):
        table.add_column(col, justify="right")
    for r in rows:
        present = r.get("faces_present")
        table.add_row(
            str(r[key]),
            f"{r['width']}x{r['height']}",
            str(r["faces"]),
            f"{r.get('faces_found', '-')}/{'?' if present is None else present}",
            "-" if r.get("recall") is None else f"{r['recall']:.3f}",
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
                fps=FPS,
                face=face,
                face_height=round(h * 0.45),
                num_faces=faces,
            )
            clips[(w, h, faces)] = clip
        err.print(f"sweep: {variable} = {value}")
        scanner = Scanner(dataclasses.replace(config, num_frames=frames))
        truth = _clip_truth(face.shape, w, h, round(h * 0.45), faces)
        row = bench_clip(scanner, clip, repeat, truth)
        rows.append({"variable": variable, "value": value, **row})
    return rows


def run_bench(
    clips: Sequence[str],
    config: ScanConfig,
    repeat: int,
    json_out: str | None,
    sweep: bool = False,
    *,
    seconds: float = 10.0,
) -> int:
    """Time the generated clip, the generated scene and ``clips`` (``seconds`` long, the
    generated ones) and print the table (and the sweep's, with ``sweep``)."""
    err = Console(stderr=True)
    from fakescope.cli._common import stdout_console

    out = stdout_console()
    scanner = Scanner(config)
    rows: list[dict[str, Any]] = []
    sweep_rows: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="fakescope-bench-") as tmp_name:
        tmp = Path(tmp_name)
        face = load_example_face()
        length = f"{seconds:g}s"
        generated = tmp / f"synthetic_720p_{length}.mp4"
        scene = tmp / f"scene_5faces_720p_{length}.mp4"
        err.print(f"generating a {seconds:g}-s 1280x720 H.264 clip and a 5-face scene ...")
        make_clip(
            generated,
            seconds=seconds,
            fps=FPS,
            face=face,
            face_height=CLIP_FACE_HEIGHT,
        )
        make_scene(scene, face, BENCH_SCENE, seconds=seconds, fps=FPS)
        cases: list[tuple[Path, Truth | None]] = [
            (generated, _clip_truth(face.shape, 1280, 720, CLIP_FACE_HEIGHT, 1)),
            (scene, lambda index: _present(scene_boxes(BENCH_SCENE, face.shape, index / FPS))),
            *((Path(c), None) for c in clips),
        ]
        for clip, truth in cases:
            err.print(f"timing {clip.name} ...")
            row = bench_clip(scanner, clip, repeat, truth)
            rows.append({**row, "clip": Path(row["clip"]).name})
        if sweep:
            sweep_rows = _sweep(config, repeat, tmp, err)
    out.print(
        _table(
            f"fakescope bench: median ms per scan of {config.num_frames} sampled "
            "frames (decode = time waiting for the prefetching decoder; classify and "
            "synthesis run beside detect when overlapped); found/present: faces found in "
            "the sampled frames / faces there (? = not known)",
            rows,
            "clip",
        )
    )
    floors = ", ".join(
        f"{r['clip']} {r['cpu_floor_over_decode']} ({r['cpu_ms']:.0f} ms on {r['cores']})"
        for r in rows
    )
    out.print(
        "CPU floor, the total/decode a scan's CPU time (all its threads) would give with "
        f"every core busy all along, which no overlap can beat: {floors}"
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
