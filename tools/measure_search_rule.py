"""Whole-frame face searches, faces found and CPU time of a scan under two search rules
(issue 30 item 1): ``ScanConfig.full_scan_skip`` ``--before`` (default 0: every
``full_scan_every``-th sampled frame, the old rule) against ``--after`` (default: the
configuration's), each video scanned by both, one after the other, so that load hits both.

    python3 tools/measure_search_rule.py ../shared/data/ffpp_c40_videos \
        ../shared/data/ffpp_c23_videos [--generated] [--json OUT]

Per video and rule: whole-frame searches (the face detector's count: the rule's and those
for a lost face), tracks, tracks of at least ``min_track_frames`` crops, crops scored, the
scan's raw score and label, CPU time and the detect stage. ``--generated`` adds
``fakescope bench``'s two generated clips (one face; five faces) and, with their known
faces, the faces found there / present (the bench's found/present). Without the synthesis
detector unless ``--synthesis`` (it sees whole frames, not faces: the same either way).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from fakescope.cli._bench import (
    CLIP_FACE_HEIGHT,
    FPS,
    _clip_truth,
    _present,
    faces_found,
    sampled_indices,
)
from fakescope.config import ScanConfig
from fakescope.inference import Scanner
from fakescope.io import (
    BENCH_SCENE,
    SceneFace,
    load_example_face,
    make_clip,
    make_scene,
    scene_boxes,
)

GAP_SCENE = (
    SceneFace(300, 150, 240, start=2.2, end=5.0),
    SceneFace(760, 200, 200, start=7.1, end=8.9),
)
"""Two faces, one at a time, with stretches of no face between them (0-2.2 s, 5-7.1 s,
8.9-10 s): where a frame that follows no face is searched."""


def scan_once(scanner: Scanner, path: Path, truth: Any = None) -> dict[str, Any]:
    before = getattr(scanner.face_detector, "searches", 0)
    parts = getattr(scanner.face_detector, "part_searches", 0)
    cpu = time.process_time()
    verdict = scanner.scan(path)
    cpu = time.process_time() - cpu
    searches = getattr(scanner.face_detector, "searches", 0) - before
    parts = getattr(scanner.face_detector, "part_searches", 0) - parts
    enough = scanner.config.min_track_frames
    row: dict[str, Any] = {
        "status": str(verdict.status),
        "searches": searches,
        "part_searches": parts,
        "tracks": len(verdict.tracks),
        "long_tracks": sum(len(t.frames) >= enough for t in verdict.tracks),
        "crops": sum(len(t.frames) for t in verdict.tracks),
        "raw_score": verdict.raw_score,
        "label": None if verdict.label is None else str(verdict.label),
        "cpu_s": round(cpu, 3),
        "detect_ms": round(verdict.timings_ms.get("detect", 0.0), 1),
        "frames": sorted((t.track_id, f.frame_index) for t in verdict.tracks for f in t.frames),
    }
    if truth is not None:
        row["found"], row["present"] = faces_found(verdict, sampled_indices(scanner, path), truth)
    return row


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", type=Path, nargs="*", help="folders of videos, or videos")
    parser.add_argument("--before", type=int, default=0, help="full_scan_skip before")
    parser.add_argument("--after", type=int, default=ScanConfig().full_scan_skip)
    parser.add_argument("--generated", action="store_true")
    parser.add_argument("--synthesis", action="store_true")
    parser.add_argument("--limit", type=int, default=0, help="videos per root (0: all)")
    parser.add_argument("--json", type=Path)
    parser.add_argument(
        "--repeat",
        type=int,
        default=1,
        help="scans per video and rule, interleaved (CPU time: median)",
    )
    args = parser.parse_args()
    base = ScanConfig() if args.synthesis else ScanConfig(synthesis_detector=None)
    rules = {"before": args.before, "after": args.after}
    scanners = {k: Scanner(dataclasses.replace(base, full_scan_skip=v)) for k, v in rules.items()}
    sets: dict[str, list[tuple[Path, Any]]] = {}
    tmp = tempfile.TemporaryDirectory(prefix="search-rule-")
    if args.generated:
        face = load_example_face()
        clip, scene = Path(tmp.name) / "clip.mp4", Path(tmp.name) / "scene.mp4"
        gaps, empty = Path(tmp.name) / "gaps.mp4", Path(tmp.name) / "no_face.mp4"
        make_clip(clip, seconds=10.0, fps=FPS, face=face, face_height=CLIP_FACE_HEIGHT)
        make_scene(scene, face, BENCH_SCENE, seconds=10.0, fps=FPS)
        make_scene(gaps, face, GAP_SCENE, seconds=10.0, fps=FPS, seed=1)
        make_clip(empty, seconds=10.0, fps=FPS)
        sets["generated"] = [
            (clip, _clip_truth(face.shape, 1280, 720, CLIP_FACE_HEIGHT, 1)),
            (scene, lambda i: _present(scene_boxes(BENCH_SCENE, face.shape, i / FPS))),
            (gaps, lambda i: _present(scene_boxes(GAP_SCENE, face.shape, i / FPS))),
            (empty, lambda i: []),
        ]
    for root in args.roots:
        videos = sorted(root.glob("**/*.mp4")) if root.is_dir() else [root]
        sets[root.name] = [(v, None) for v in videos[: args.limit or None]]
    report: dict[str, Any] = {"rules": rules, "sets": {}}
    for name, items in sets.items():
        rows = {}
        for path, truth in items:
            runs: dict[str, list[dict[str, Any]]] = {k: [] for k in scanners}
            for _ in range(args.repeat):
                for k, s in scanners.items():
                    runs[k].append(scan_once(s, path, truth))
            row = {k: runs[k][0] for k in scanners}
            for k in scanners:
                row[k]["cpu_s"] = statistics.median(r["cpu_s"] for r in runs[k])
                row[k]["detect_ms"] = statistics.median(r["detect_ms"] for r in runs[k])
            a, b = row["before"], row["after"]
            same = a["frames"] == b["frames"] and (a["label"], a["raw_score"]) == (
                b["label"],
                b["raw_score"],
            )
            print(
                f"{name}/{path.name}: searches {a['searches']}->{b['searches']} "
                f"({b['part_searches']} of part of the frame), tracks "
                f"{a['tracks']}->{b['tracks']}, long {a['long_tracks']}->{b['long_tracks']}, "
                f"crops {a['crops']}->{b['crops']}, raw {a['raw_score']}->{b['raw_score']}, "
                f"label {a['label']}->{b['label']}, cpu {a['cpu_s']}->{b['cpu_s']} s"
                + ("" if same else "  CHANGED")
                + (f", found {a['found']}/{a['present']}->{b['found']}" if truth else ""),
                flush=True,
            )
            rows[path.name] = row
        report["sets"][name] = rows
        summary = {
            k: {
                "searches": sum(r[k]["searches"] for r in rows.values()),
                "part_searches": sum(r[k]["part_searches"] for r in rows.values()),
                "tracks": sum(r[k]["tracks"] for r in rows.values()),
                "long_tracks": sum(r[k]["long_tracks"] for r in rows.values()),
                "crops": sum(r[k]["crops"] for r in rows.values()),
                "cpu_s_median": statistics.median(r[k]["cpu_s"] for r in rows.values()),
                "detect_ms_median": statistics.median(r[k]["detect_ms"] for r in rows.values()),
            }
            for k in rules
        }
        changed = [
            p
            for p, r in rows.items()
            if r["before"]["frames"] != r["after"]["frames"]
            or r["before"]["label"] != r["after"]["label"]
            or r["before"]["raw_score"] != r["after"]["raw_score"]
        ]
        report["sets"][name + "_summary"] = {**summary, "changed": changed, "videos": len(rows)}
        print(name, json.dumps(report["sets"][name + "_summary"]), flush=True)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    tmp.cleanup()


if __name__ == "__main__":
    main()
