"""Issue 28 figures of the shipped CNN synthesis detectors: AUC on the stylegan2_ffhq test split
(clean, JPEG-50) and on the sd21_faces test split (prompt groups held out, against the same FFHQ
test photos), the share of SD portraits called generated, FFHQ test photos called generated,
and the family named for the images called generated.

    python3 tools/measure_synthesis.py
"""

from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from fakescope.synthesis import create_synthesis_detector
from fakescope.training.degrade import jpeg_roundtrip as jpeg
from fakescope.training.synthesis_cnn_data import (
    load_gen_set,
    load_manifest,
    read_image,
    split_by_image,
)

S = Path(__file__).resolve().parents[1].parent / "shared" / "data"
items = load_manifest(S / "stylegan2_ffhq", "gen")
sp = split_by_image([i.path for i in items], [i.label for i in items], seed=0)
test = [i for i, s in zip(items, sp, strict=True) if s == "test"]
y = [i.label for i in test]
imgs = [read_image(i.path) for i in test]
fakes = load_gen_set(S / "sd21_faces", "diffusion", "prompt", 0).of("test", 1)
reals = [i for i in test if i.label == 0]
sdimgs = [read_image(i.path) for i in [*fakes, *reals]]
ysd = [1] * len(fakes) + [0] * len(reals)
for name in ("cnn-v3", "cnn-v3-int8"):
    d = create_synthesis_detector(name)
    c = roc_auc_score(y, d.score(imgs))
    j = roc_auc_score(y, d.score([jpeg(im, 50) for im in imgs]))
    raw, fam = d.score_with_family(sdimgs)
    sd = roc_auc_score(ysd, raw)
    sdj = roc_auc_score(ysd, d.score([jpeg(im, 50) for im in sdimgs]))
    p = d.probability(raw)
    called = p[: len(fakes)] >= 0.6
    out = f"{name} ({d.info.name}): SG2 {c:.4f} jpeg50 {j:.4f} | SD {sd:.4f} jpeg50 {sdj:.4f} | SD called {called.mean():.3f} | FFHQ test reals >=0.5 {(p[len(fakes) :] >= 0.5).mean():.3f}, >=0.6 {(p[len(fakes) :] >= 0.6).mean():.3f}"  # noqa: E501
    if fam is not None:
        pd = d.family_probability(fam[: len(fakes)])[called]
        out += f" | diffusion named {(pd >= 0.75).mean():.3f}"
        praw, pfam = d.score_with_family(imgs)
        pg = d.probability(praw)
        gf = np.array([i.label for i in test]) == 1
        cg = (pg >= 0.6) & gf
        out += f" | SG2 called {cg.sum()}/{gf.sum()}, named gan {(d.family_probability(pfam)[cg] <= 0.25).mean():.3f}"  # noqa: E501
    print(out, flush=True)
