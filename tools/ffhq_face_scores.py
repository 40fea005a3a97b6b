"""Raw face scores of the stylegan2_ffhq test split (the synthesis detectors' split, seed 0:
50 FFHQ reals, 26 StyleGAN2 portraits) per face detector, to see which face network calls real
portraits fake (issue 26):

    python3 tools/ffhq_face_scores.py effnet-lite0-v4 runs/X/weights.json ...

With ``--swaps DIR`` (a set from ``tools/make_oneshot_val.py`` built on the held-out FFHQ
reals, e.g. ``python3 tools/make_oneshot_val.py ../shared/data/stylegan2_ffhq --out DIR
--split-file configs/splits/faces_v5.json --split calib,test --n 30 --side 0``) each detector
also scores those inswapper-like swaps of studio portraits against the set's untouched reals:
a network that only learnt "a clean studio portrait is real" lets them through.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from fakescope import ScanConfig, Scanner
from fakescope.data import load_dataset
from fakescope.evaluation import roc_auc_or_none
from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image


def _raw(scanner: Scanner, path: Path) -> float | None:
    faces = scanner.scan(path).to_dict().get("faces") or []
    return max(f["raw_score"] for f in faces) if faces else None


def main(detectors: list[str], swaps: Path | None = None) -> dict[str, dict[str, float]]:
    items = load_manifest(Path("../shared/data/stylegan2_ffhq"), "gen")
    splits = split_by_image([i.path for i in items], [i.label for i in items])
    test = [i for i, s in zip(items, splits, strict=True) if s == "test"]
    swap_items = load_dataset("auto", swaps) if swaps else []
    out: dict[str, dict[str, float]] = {}
    for det in detectors:
        scanner = Scanner(ScanConfig(detector=det, synthesis_detector=None))
        raw: dict[int, list[float]] = {0: [], 1: []}
        for item in test:
            score = _raw(scanner, item.path)
            if score is not None:
                raw[item.label].append(score)
        real, gen = np.array(raw[0]), np.array(raw[1])
        out[det] = {
            "ffhq_real_n": len(real),
            "ffhq_real_mean_raw": round(float(real.mean()), 4),
            "ffhq_real_median_raw": round(float(np.median(real)), 4),
            "ffhq_real_raw_gt_0.5": int((real > 0.5).sum()),
            "sg2_n": len(gen),
            "sg2_mean_raw": round(float(gen.mean()), 4),
        }
        if swap_items:
            pairs = [(_raw(scanner, i.path), int(i.label == "fake")) for i in swap_items]
            scored = [(s, y) for s, y in pairs if s is not None]
            s = np.array([p[0] for p in scored])
            y = np.array([p[1] for p in scored])
            out[det].update(
                {
                    "swaps_n": int(y.sum()),
                    "swaps_auc": roc_auc_or_none(y, s, ndigits=4) or float("nan"),
                    "swaps_mean_raw": round(float(s[y == 1].mean()), 4),
                    "swaps_raw_gt_0.5": int((s[y == 1] > 0.5).sum()),
                    "swap_set_reals_raw_gt_0.5": int((s[y == 0] > 0.5).sum()),
                }
            )
        print(det, json.dumps(out[det]), flush=True)
    return out


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("detectors", nargs="+", help="registered names or weights.json files")
    parser.add_argument("--swaps", type=Path, help="a make_oneshot_val.py set of FFHQ swaps")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result = main(args.detectors, args.swaps)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
