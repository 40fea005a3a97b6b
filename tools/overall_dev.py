"""Dev figures of the overall verdict (issue 26): how often generated and real portraits of
the stylegan2_ffhq test split are called "not authentic", and the overall labels per class.

    python3 tools/overall_dev.py ../shared/data/stylegan2_ffhq [--split test] [--json OUT] \
        [--synthesis-detector NAME] [--detector NAME]

``--detector`` swaps the face detector (default: the scan's default), to see which face network
the overall verdict's false alarms on real portraits come from.

The split is the synthesis detectors' own (``fakescope.training.synthesis_cnn_data.split_by_image``,
seed 0: 50 real / 26 generated test images), so no image the whole-image detector was trained
or calibrated on is counted. Every figure comes with a Wilson 95% interval.
"""

from __future__ import annotations

import argparse
import json
import math
from collections import Counter
from pathlib import Path

from fakescope import ScanConfig, Scanner
from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image

NOT_AUTHENTIC = {"manipulated", "generated"}


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    """Wilson score interval of a proportion ``k / n``."""
    if n == 0:
        return (math.nan, math.nan)
    p = k / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return (max(0.0, centre - half), min(1.0, centre + half))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("data", type=Path)
    parser.add_argument("--split", default="test", choices=("train", "calib", "test"))
    parser.add_argument("--json", type=Path)
    parser.add_argument("--synthesis-detector", help="default: the scan's default")
    parser.add_argument("--detector", help="face detector; default: the scan's default")
    args = parser.parse_args()
    items = load_manifest(args.data, "gen")
    splits = split_by_image([i.path for i in items], [i.label for i in items])
    chosen = [i for i, s in zip(items, splits, strict=True) if s == args.split]
    overrides = {"synthesis_detector": args.synthesis_detector, "detector": args.detector}
    config = ScanConfig(**{k: v for k, v in overrides.items() if v})
    scanner = Scanner(config)
    labels: dict[int, Counter[str]] = {0: Counter(), 1: Counter()}
    for item in chosen:
        labels[item.label][str(scanner.scan(item.path).overall.label)] += 1
    classes: dict[str, object] = {}
    out: dict[str, object] = {
        "model": scanner.detector.info.name,
        "synthesis_model": scanner.synthesis.info.name if scanner.synthesis else None,
        "split": args.split,
        "classes": classes,
    }
    for cls, name in ((1, "generated"), (0, "real")):
        n = sum(labels[cls].values())
        k = sum(labels[cls][lab] for lab in NOT_AUTHENTIC)
        other = n - labels[cls]["authentic"]  # any label but `authentic` (uncertain included)
        lo, hi = wilson(k, n)
        classes[name] = {
            "n": n,
            "not_authentic": k,
            "not_labelled_authentic": other,
            "rate": k / n if n else math.nan,
            "ci95": [lo, hi],
            "labels": dict(labels[cls]),
        }
        print(
            f"{name:9s} n={n:3d}  not authentic {k:3d} ({k / max(n, 1):.1%}, "
            f"95% CI {lo:.1%}-{hi:.1%}); any label but authentic {other} "
            f"({other / max(n, 1):.1%})  labels {dict(labels[cls])}"
        )
    if args.json:
        args.json.write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
