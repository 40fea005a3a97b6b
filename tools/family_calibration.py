"""Is a ``cnn-v3``-style synthesis weight's generator-family confidence calibrated (issue 28
item 2)? The plain sigmoid of the mean family logit (what a scan shows) against a Platt map
with Platt's smoothed targets (``(N1 + 1) / (N1 + 2)`` and ``1 / (N0 + 2)``, the fix for a
calibration set the scores separate perfectly) fitted on the calib split's generated images,
both measured on the calib split (the map out of fold) and on the test split.

    python3 tools/family_calibration.py src/fakescope/models/assets/synth_cnn_v3_int8.json \
        ../shared/data/stylegan2_ffhq ../shared/data/sd21_faces=diffusion [--json OUT]

Prints, per split: items per family, family AUC, the share named right / ``unknown``,
the mean confidence of the named family and the class-balanced ECE of P(diffusion), with the
calib split's figures from 5-fold cross-validation (folds stratified by family).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.linear_model import LogisticRegression

from fakescope.evaluation import expected_calibration_error, roc_auc
from fakescope.synthesis import CnnSynthesisDetector
from fakescope.training.synthesis_cnn_data import load_gen_set, parse_gen, read_image
from fakescope.types import FAMILY_BAND, GeneratorFamily


def fit_family(z: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> dict[str, float]:
    """``sigmoid(a * z + b)`` by logistic regression on Platt's smoothed targets (each image
    once as diffusion with weight t, once as GAN with 1 - t), both families weighted equally."""
    n1, n0 = int(y.sum()), int(len(y) - y.sum())
    t = np.where(y == 1, (n1 + 1) / (n1 + 2), 1 / (n0 + 2))
    w = np.where(y == 1, len(y) / (2 * n1), len(y) / (2 * n0))
    x = np.concatenate([z, z])[:, None]
    target = np.r_[np.ones(len(y)), np.zeros(len(y))]
    model = LogisticRegression(C=1e4).fit(x, target, sample_weight=np.r_[w * t, w * (1 - t)])
    return {"a": float(model.coef_[0, 0]), "b": float(model.intercept_[0])}


def _apply(fitted: dict[str, float] | None, z: np.ndarray[Any, Any]) -> np.ndarray[Any, Any]:
    if fitted is not None:
        z = fitted["a"] * z + fitted["b"]
    return np.asarray(1 / (1 + np.exp(-z)))


def _figures(p: np.ndarray[Any, Any], y: np.ndarray[Any, Any]) -> dict[str, Any]:
    fams = [GeneratorFamily.from_probability(float(v)) for v in p]
    named = np.asarray([f.name != "unknown" for f in fams])
    right = np.asarray(
        [f.name == ("diffusion" if t else "gan") for f, t in zip(fams, y, strict=True)]
    )
    conf = np.asarray([f.confidence for f in fams])
    return {
        "named_right": round(float(right.mean()), 4),
        "unknown": round(float((~named).mean()), 4),
        "mean_confidence_named": round(float(conf[named].mean()), 4) if named.any() else None,
        "mean_confidence_gan": round(float(conf[y == 0].mean()), 4),
        "mean_confidence_diffusion": round(float(conf[y == 1].mean()), 4),
        "ece_balanced": round(float(expected_calibration_error(y, p, balanced=True)), 4),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("weights", type=Path)
    parser.add_argument("root", type=Path, help="the GAN set split by image (data.root)")
    parser.add_argument("gen", nargs="+", help="SET=FAMILY sets split by prompt group")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    sets = [load_gen_set(args.root, "gan", "image", args.seed)]
    sets += [load_gen_set(r, f, "prompt", args.seed) for r, f in map(parse_gen, args.gen)]
    detector = CnnSynthesisDetector.from_json(args.weights)
    data: dict[str, tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]] = {}
    for split in ("calib", "test"):
        items = [(i, g.family) for g in sets for i in g.of(split, 1)]
        _, fam = detector.score_with_family([read_image(i.path) for i, _ in items])
        if fam is None:
            raise SystemExit(f"{args.weights}: the network has no family output")
        y = np.asarray([f == "diffusion" for _, f in items], dtype=np.int64)
        data[split] = (np.asarray(fam, dtype=np.float64), y)
    z, y = data["calib"]
    fitted = fit_family(z, y)
    rng = np.random.default_rng(args.seed)
    folds = np.zeros(len(y), dtype=np.int64)
    for label in (0, 1):
        idx = np.flatnonzero(y == label)
        folds[idx] = rng.permutation(len(idx)) % 5
    cv = np.zeros(len(y))
    for k in range(5):
        cv[folds == k] = _apply(fit_family(z[folds != k], y[folds != k]), z[folds == k])
    report: dict[str, Any] = {"platt_smoothed": fitted, "band": list(FAMILY_BAND)}
    for split, (zs, ys) in data.items():
        report[split] = {
            "gan": int((ys == 0).sum()),
            "diffusion": int(ys.sum()),
            "family_auc": round(float(roc_auc(ys, zs)), 4),
            "sigmoid": _figures(_apply(None, zs), ys),
            "platt_smoothed": _figures(cv if split == "calib" else _apply(fitted, zs), ys),
        }
    print(json.dumps(report, indent=1))
    if args.json:
        args.json.write_text(json.dumps(report, indent=1) + "\n")


if __name__ == "__main__":
    main()
