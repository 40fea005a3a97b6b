"""Raw face scores of the stylegan2_ffhq test split (the synthesis detectors' split, seed 0:
50 FFHQ reals, 26 StyleGAN2 portraits; ``--split calib``: its calib split, as many) per face
detector, to see which face network calls real portraits fake (issue 26):

    python3 tools/ffhq_face_scores.py effnet-lite0-v4 runs/X/weights.json ...

With ``--swaps DIR`` (a set from ``tools/make_oneshot_val.py`` built on the held-out FFHQ
reals, e.g. ``python3 tools/make_oneshot_val.py ../shared/data/stylegan2_ffhq --out DIR
--split-file configs/splits/faces_v5.json --split calib,test --n 30 --side 0``) each detector
also scores those inswapper-like swaps of studio portraits against the set's untouched reals:
a network that only learnt "a clean studio portrait is real" lets them through.

With ``--fuse-with MEMBER`` each detector's raw scores are also fused with MEMBER's as the
default fuses its two members (the mean of the logits) and mapped by the default's crop-level
calibrator (``fused-v4-int8``'s): how many held-out FFHQ reals and swaps such a pair would call
fake (p >= 0.6) or real (p <= 0.4), an estimate of what a default with that member would say
(its own calibration is not fitted).
"""

from __future__ import annotations

import argparse
import json
from functools import cache
from pathlib import Path

import numpy as np

from fakescope import ScanConfig, Scanner
from fakescope.data import load_dataset
from fakescope.evaluation import roc_auc_or_none
from fakescope.models import asset_path
from fakescope.training.synthesis_cnn_data import load_manifest, split_by_image


@cache
def _scanner(detector: str) -> Scanner:
    return Scanner(ScanConfig(detector=detector, synthesis_detector=None))


@cache
def _raw(detector: str, path: Path) -> float | None:
    """The highest raw face score ``detector`` gives the picture (each scanned once)."""
    faces = _scanner(detector).scan(path).to_dict().get("faces") or []
    return max(f["raw_score"] for f in faces) if faces else None


def _logit(p: np.ndarray) -> np.ndarray:
    q = np.clip(p, 1e-6, 1 - 1e-6)
    return np.asarray(np.log(q / (1 - q)))


def _scores(detector: str, paths: list[Path]) -> np.ndarray:
    return np.array([np.nan if (r := _raw(detector, p)) is None else r for p in paths])


def fused_calls(
    detectors: list[str], member: str, sets: dict[str, list[Path]]
) -> dict[str, dict[str, int]]:
    """Per detector and set: items a mean-logit pair with ``member`` calls fake / real."""
    crop = json.loads(asset_path("fused_v4_int8.json").read_text())["calibration"]["crop"]
    out: dict[str, dict[str, int]] = {}
    for det in detectors:
        for name, paths in sets.items():
            z = (_logit(_scores(det, paths)) + _logit(_scores(member, paths))) / 2
            p = 1 / (1 + np.exp(-(crop["a"] * z + crop["b"])))
            out.setdefault(det, {})[f"{name}_fake"] = int((p >= 0.6).sum())
            out[det][f"{name}_real"] = int((p <= 0.4).sum())
            out[det][f"{name}_n"] = len(p)
        print(det, "with", member, json.dumps(out[det]), flush=True)
    return out


def main(
    detectors: list[str], swaps: Path | None = None, split: str = "test"
) -> dict[str, dict[str, float]]:
    items = load_manifest(Path("../shared/data/stylegan2_ffhq"), "gen")
    splits = split_by_image([i.path for i in items], [i.label for i in items])
    test = [i for i, s in zip(items, splits, strict=True) if s == split]
    swap_items = load_dataset("auto", swaps) if swaps else []
    out: dict[str, dict[str, float]] = {}
    for det in detectors:
        raw: dict[int, list[float]] = {0: [], 1: []}
        for item in test:
            score = _raw(det, item.path)
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
            pairs = [(_raw(det, i.path), int(i.label == "fake")) for i in swap_items]
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
    parser.add_argument("--split", default="test", choices=("calib", "test"))
    parser.add_argument("--fuse-with", help="also fuse each detector with this member")
    parser.add_argument("--json", type=Path, help="write the figures here")
    args = parser.parse_args()
    result: dict[str, object] = {"single": main(args.detectors, args.swaps, args.split)}
    if args.fuse_with:
        items = load_manifest(Path("../shared/data/stylegan2_ffhq"), "gen")
        splits = split_by_image([i.path for i in items], [i.label for i in items])
        sets = {
            f"ffhq_{args.split}_real": [
                i.path
                for i, s in zip(items, splits, strict=True)
                if s == args.split and i.label == 0
            ]
        }
        if args.swaps:
            sets["swaps"] = [i.path for i in load_dataset("auto", args.swaps) if i.label == "fake"]
        result["fused"] = fused_calls(args.detectors, args.fuse_with, sets)
    if args.json:
        args.json.write_text(json.dumps(result, indent=1), encoding="utf-8")
