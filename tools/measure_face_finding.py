"""Face finding on pictures a face fills, and no false faces where there is none (issue 29
item 1).

    python3 tools/measure_face_finding.py --faces ../shared/data/dfdc_faces \
        --split-file configs/splits/faces_v2.json --split val \
        --backgrounds ../shared/data/ffpp_c23_videos [--json OUT]

``--faces``: every image of the split (identity groups of the pinned split file) is scanned
by the default :class:`~fakescope.Scanner`; the table counts each status (``ok``, ``no_face``,
``face_too_small`` ...), with a Wilson 95% interval on the share without a verdict.
``--backgrounds``: pictures with no face, cut from video frames: for three frames a video,
the widest strip of the frame (left, right, above or below) that stays clear of every face the
default face detector finds there (each box widened by half its side), at least 96 px on each
side; plus flat, gradient, noise and checkerboard images. Every face found in them is a false
face; ``--save-hits DIR`` writes them for a look.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path
from typing import Any

import av
import cv2
import numpy as np
import numpy.typing as npt

from fakescope import ScanConfig, Scanner
from fakescope.faces import FACE_DETECTORS
from fakescope.training.store import grouped_items
from overall_dev import wilson  # run as a script, tools/ is on sys.path

Image = npt.NDArray[np.uint8]
_MIN_SIDE = 96


def split_items(root: Path, split_file: Path, split: str) -> list[Path]:
    """The media of ``root`` whose identity group the pinned split puts in ``split``."""
    groups_of = json.loads(split_file.read_text())["groups"]
    items, groups = grouped_items([root])
    return [i.path for i, g in zip(items, groups, strict=True) if groups_of.get(g) == split]


def statuses(paths: list[Path]) -> dict[str, Any]:
    scanner = Scanner(ScanConfig())
    counts: Counter[str] = Counter()
    missed: list[str] = []
    for path in paths:
        verdict = scanner.scan(path)
        counts[str(verdict.status)] += 1
        if str(verdict.status) != "ok":
            missed.append(path.name)
    n = len(paths)
    k = n - counts["ok"]
    lo, hi = wilson(k, n)
    return {
        "images": n,
        "statuses": dict(counts),
        "no_verdict_share": k / n if n else math.nan,
        "no_verdict_ci95": [lo, hi],
        "no_verdict": missed,
    }


def _clear_strip(frame: Image, boxes: list[tuple[float, float, float, float]]) -> Image | None:
    """The widest strip of ``frame`` beside, above or below every (widened) face box."""
    h, w = frame.shape[:2]
    left, top, right, bottom = w, h, 0, 0
    for x0, y0, x1, y1 in boxes:
        pad = 0.5 * max(x1 - x0, y1 - y0)
        left, top = min(left, int(x0 - pad)), min(top, int(y0 - pad))
        right, bottom = max(right, int(x1 + pad)), max(bottom, int(y1 + pad))
    if not boxes:
        return frame
    strips = [
        frame[:, : max(0, left)],
        frame[:, min(w, right) :],
        frame[: max(0, top)],
        frame[min(h, bottom) :],
    ]
    strips = [s for s in strips if min(s.shape[:2]) >= _MIN_SIDE]
    return max(strips, key=lambda s: s.shape[0] * s.shape[1]) if strips else None


def background_pictures(root: Path, frames_per_video: int = 3) -> list[tuple[str, Image]]:
    """Face-free strips of video frames, and synthetic pictures without a face."""
    finder = FACE_DETECTORS.create("hybrid")
    out: list[tuple[str, Image]] = []
    for video in sorted(root.glob("**/*.mp4")):
        with av.open(str(video)) as container:
            frames = [f.to_ndarray(format="rgb24") for f in container.decode(video=0)]
        picks = np.linspace(0, len(frames) - 1, frames_per_video).round().astype(int)
        for k in picks:
            frame = np.ascontiguousarray(frames[int(k)])
            boxes = [f.box for f in finder.detect(frame, 0, [], full_scan=True)]
            strip = _clear_strip(frame, boxes)
            if strip is not None:
                out.append((f"{video.stem}@{k}", np.ascontiguousarray(strip)))
    rng = np.random.default_rng(0)
    for side in (128, 224, 512):
        grad = np.linspace(0, 255, side, dtype=np.float32)
        out.append((f"flat{side}", np.full((side, side, 3), 128, np.uint8)))
        out.append(
            (
                f"gradient{side}",
                np.repeat(grad[None, :, None], side, 0).repeat(3, 2).astype(np.uint8),
            )
        )
        out.append((f"noise{side}", rng.integers(0, 256, (side, side, 3), dtype=np.uint8)))
        check = ((np.indices((side, side)).sum(0) // 16) % 2 * 255).astype(np.uint8)
        out.append((f"checker{side}", np.repeat(check[:, :, None], 3, 2)))
        blobs = cv2.GaussianBlur(
            rng.integers(0, 256, (side, side, 3), dtype=np.uint8), (0, 0), side / 16
        )
        out.append((f"blobs{side}", np.asarray(blobs, dtype=np.uint8)))
    return out


def false_faces(pictures: list[tuple[str, Image]], save: Path | None) -> dict[str, Any]:
    finder = FACE_DETECTORS.create("hybrid")
    hits: list[str] = []
    for name, picture in pictures:
        found = finder.detect(picture, 0, [], full_scan=True)
        if found:
            hits.append(name)
            if save is not None:
                save.mkdir(parents=True, exist_ok=True)
                cv2.imwrite(str(save / f"{name}.png"), cv2.cvtColor(picture, cv2.COLOR_RGB2BGR))
    lo, hi = wilson(len(hits), len(pictures))
    return {
        "pictures": len(pictures),
        "with_a_false_face": len(hits),
        "false_face_ci95": [lo, hi],
        "hits": hits,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--faces", type=Path)
    parser.add_argument("--split-file", type=Path, default=Path("configs/splits/faces_v2.json"))
    parser.add_argument("--split", default="val")
    parser.add_argument("--backgrounds", type=Path)
    parser.add_argument("--save-hits", type=Path)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    out: dict[str, Any] = {}
    if args.faces:
        out["faces"] = statuses(split_items(args.faces, args.split_file, args.split))
        f = out["faces"]
        lo, hi = f["no_verdict_ci95"]
        print(f"{args.faces.name} {args.split}: {f['images']} images, {f['statuses']}")
        print(f"  no verdict {f['no_verdict_share']:.2%} [{lo:.2%}, {hi:.2%}]")
    if args.backgrounds:
        out["backgrounds"] = false_faces(background_pictures(args.backgrounds), args.save_hits)
        b = out["backgrounds"]
        print(f"no-face pictures: {b['pictures']}, with a false face: {b['with_a_false_face']}")
    if args.json:
        args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
