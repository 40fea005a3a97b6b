"""Synthesis detectors side by side on the calib and test splits of stylegan2_ffhq (by image,
seed 0) and sd21_faces (by prompt group, seed 0): AUC of StyleGAN2 and of SD 2.1 portraits
against the split's FFHQ photos, clean and after JPEG-50, and the share called generated
(calibrated p >= 0.6) of each class. The calib split chooses between networks; test reports.

    python3 tools/compare_synthesis.py cnn-v3 runs/synth_cnn_v3_gan/weights.json
"""

import sys
from pathlib import Path

import numpy as np
import numpy.typing as npt
from sklearn.metrics import roc_auc_score

from fakescope.synthesis import create_synthesis_detector
from fakescope.training.degrade import jpeg_roundtrip as jpeg
from fakescope.training.synthesis_cnn_data import (
    load_gen_set,
    load_manifest,
    read_image,
    split_by_image,
)

S = Path(__file__).resolve().parents[2] / "shared" / "data"


def auc(kind: npt.NDArray[np.str_], score: npt.NDArray[np.float64], fake: str) -> float:
    m = (kind == "real") | (kind == fake)
    return float(roc_auc_score(kind[m] == fake, score[m]))


def main() -> None:
    items = load_manifest(S / "stylegan2_ffhq", "gen")
    sp = split_by_image([i.path for i in items], [i.label for i in items], seed=0)
    dets = {n: create_synthesis_detector(n) for n in sys.argv[1:]}
    for split in ("calib", "test"):
        its = [i for i, s in zip(items, sp, strict=True) if s == split]
        sd = load_gen_set(S / "sd21_faces", "diffusion", "prompt", 0).of(split, 1)
        imgs = [read_image(i.path) for i in its] + [read_image(i.path) for i in sd]
        kind = np.array([("sg2" if i.label else "real") for i in its] + ["sd"] * len(sd))
        for n, d in dets.items():
            raw = d.score(imgs)
            rj = d.score([jpeg(im, 50) for im in imgs])
            p = d.probability(raw)
            called = {k: float((p[kind == k] >= 0.6).mean()) for k in ("sg2", "sd", "real")}
            print(
                f"{split} {n}: SG2 {auc(kind, raw, 'sg2'):.3f} (j50 {auc(kind, rj, 'sg2'):.3f}) "
                f"SD {auc(kind, raw, 'sd'):.3f} (j50 {auc(kind, rj, 'sd'):.3f}) | called "
                f"(p >= 0.6): SG2 {called['sg2']:.2f} SD {called['sd']:.2f} "
                f"reals {called['real']:.2f}",
                flush=True,
            )


if __name__ == "__main__":
    main()
