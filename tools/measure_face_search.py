"""Recall and time of the whole-frame face search (issue 30 item 1): each registered face
detector's search for new faces, against ``hybrid``'s (MTCNN), on frames of real videos.

    python3 tools/measure_face_search.py ../shared/data/ffpp_c40_videos \
        ../shared/data/ffpp_c23_videos [--frames 4] [--detector blazeface] [--json OUT]

For each video, ``--frames`` frames evenly spread; on each, both searches run on the whole
frame (no hints: what a scan does every ``full_scan_every`` sampled frames) and end in FaceMesh
as a scan does. A face ``hybrid`` finds counts as found by the other search when a face of
the other overlaps it (IoU > 0.3); the table gives those counts, the faces only the other
finds, and the median milliseconds a frame of each search (landmarks included).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import av
import numpy as np

from fakescope.faces import FACE_DETECTORS, iou


def frames_of(video: Path, n: int) -> list[np.ndarray[Any, Any]]:
    with av.open(str(video)) as container:
        stream = container.streams.video[0]
        total = stream.frames or 0
        picks = set(np.linspace(0, max(total - 1, 0), n).round().astype(int).tolist())
        out = []
        for i, frame in enumerate(container.decode(stream)):
            if i in picks:
                out.append(np.ascontiguousarray(frame.to_ndarray(format="rgb24")))
            if len(out) == len(picks):
                break
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", type=Path, nargs="+")
    parser.add_argument("--frames", type=int, default=4)
    parser.add_argument("--detector", default="blazeface")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    base = FACE_DETECTORS.create("hybrid")
    other = FACE_DETECTORS.create(args.detector)
    rows: dict[str, Any] = {}
    for root in args.roots:
        found = kept = extra = n_frames = 0
        t_base: list[float] = []
        t_other: list[float] = []
        missed: list[str] = []
        for video in sorted(root.glob("**/*.mp4")):
            for k, frame in enumerate(frames_of(video, args.frames)):
                n_frames += 1
                t0 = time.perf_counter()
                want = base.detect(frame, 0, [], full_scan=True)
                t1 = time.perf_counter()
                got = other.detect(frame, 0, [], full_scan=True)
                t2 = time.perf_counter()
                t_base.append(t1 - t0)
                t_other.append(t2 - t1)
                found += len(want)
                hit = [f for f in want if any(iou(f.box, g.box) > 0.3 for g in got)]
                kept += len(hit)
                extra += sum(all(iou(g.box, f.box) <= 0.3 for f in want) for g in got)
                for f in want:
                    if f not in hit:
                        side = round(f.box[2] - f.box[0])
                        missed.append(
                            f"{video.name}#{k} ({frame.shape[1]}x{frame.shape[0]}, {side} px)"
                        )
        rows[root.name] = {
            "frames": n_frames,
            "hybrid_faces": found,
            f"{args.detector}_also": kept,
            f"{args.detector}_only": extra,
            "missed": missed,
            "ms_hybrid": 1000 * float(np.median(t_base)),
            f"ms_{args.detector}": 1000 * float(np.median(t_other)),
        }
    d = args.detector
    print(f"| set | frames | hybrid finds | also found by {d} | only by {d} | ms hybrid | ms {d} |")
    print("|---|---|---|---|---|---|---|")
    for name, r in rows.items():
        cells = [r["frames"], r["hybrid_faces"], r[f"{d}_also"], r[f"{d}_only"]]
        cells += [f"{r['ms_hybrid']:.0f}", f"{r[f'ms_{d}']:.0f}"]
        print(f"| {name} | " + " | ".join(str(c) for c in cells) + " |")
        for m in r["missed"]:
            print(f"    missed: {m}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
