"""Raw face scores of the stylegan2_ffhq test split (the synthesis detectors' split, seed 0:
50 FFHQ reals, 26 StyleGAN2 portraits) per face detector, to see which face network calls real
portraits fake (issue 26):

    python3 tools/ffhq_face_scores.py effnet-lite0-v4 runs/X/weights.json ...
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

from fakescope import ScanConfig, Scanner
from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image


def main(detectors: list[str]) -> dict[str, dict[str, float]]:
    items = load_manifest(Path("../shared/data/stylegan2_ffhq"), "gen")
    splits = split_by_image([i.path for i in items], [i.label for i in items])
    test = [i for i, s in zip(items, splits, strict=True) if s == "test"]
    out: dict[str, dict[str, float]] = {}
    for det in detectors:
        scanner = Scanner(ScanConfig(detector=det, synthesis_detector=None))
        raw: dict[int, list[float]] = {0: [], 1: []}
        for item in test:
            faces = scanner.scan(item.path).to_dict().get("faces") or []
            if faces:
                raw[item.label].append(max(f["raw_score"] for f in faces))
        real, gen = np.array(raw[0]), np.array(raw[1])
        out[det] = {
            "ffhq_real_n": len(real),
            "ffhq_real_mean_raw": round(float(real.mean()), 4),
            "ffhq_real_median_raw": round(float(np.median(real)), 4),
            "ffhq_real_raw_gt_0.5": int((real > 0.5).sum()),
            "sg2_n": len(gen),
            "sg2_mean_raw": round(float(gen.mean()), 4),
        }
        print(det, json.dumps(out[det]), flush=True)
    return out


if __name__ == "__main__":
    main(sys.argv[1:])
