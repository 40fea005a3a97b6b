"""Issue 27: do two mouth-texture cues lift the cue SVM past 0.80 on the 82 FF++ c23 clips?

Not shipped; a measurement. A helper's exploration (not kept) scored about 280 candidate
hand-crafted cues of the face store's c23 tracks: thin colour, sharpness and noise bands inside
and outside the face oval, gradients across the contour, chroma noise, mouth and eye texture,
frame-to-frame texture persistence. Only two mouth cues carried anything beyond the 13 of
``cues-svm-v1``, and only as a distance from the real clips' range (Deepfakes and FaceSwap push
them opposite ways). This script computes exactly those two, frozen, and reports:

- ``mouth_texture_std``: the std over the track's frames of mean(Laplacian^2) /
  mean(|gradient|^2) inside the inner-lip polygon of the 256 px store crop (how much the mouth's
  fine texture changes from frame to frame);
- ``mouth_persistence``: the median over consecutive frame pairs of the correlation of the fine
  detail (grey - Gaussian blur sigma 1) inside the outer-lip polygon, after aligning frame t+1
  on frame t by a similarity fitted to 16 inner-face landmarks (how much the mouth keeps its own
  texture);

each as log1p(|x - median of the training fold's reals| / their IQR), beside the 13 cues, in
identity-grouped 5-fold out-of-fold AUC over 20 fold seeds (RBF SVM C = 1, gamma "scale", as
``cues-svm-v1``; logistic C = 0.3). The two cues and the transform were chosen after looking at
all 82 clips, so the figures are optimistic.

    D=../shared/data
    python3 -m fakescope.training.store $D/dfdc_faces $D/ffpp_c23_videos $D/ffpp_face_crops \
        $D/utkface_real --out cache/faces_v2 --workers 2
    OMP_NUM_THREADS=1 python3 tools/cues_mouth.py cache/faces_v2    # about 30 s
"""

import sys
from pathlib import Path

import cv2
import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from fakescope.training.cue_tracks import load_tracks
from fakescope.training.store import FaceStore

INNER_LIPS = (78, 191, 80, 81, 82, 13, 312, 311, 310, 415, 308, 324, 318, 402, 317, 14, 87)
INNER_LIPS += (178, 88, 95)
OUTER_LIPS = (61, 185, 40, 39, 37, 0, 267, 269, 270, 409, 291, 375, 321, 405, 314, 17, 84)
OUTER_LIPS += (181, 91, 146)
INNER_FACE = (33, 133, 362, 263, 168, 6, 197, 195, 5, 4, 1, 98, 327, 61, 291, 0)
MODELS = {
    "RBF SVM (cues-svm-v1's)": lambda: SVC(C=1.0, gamma="scale", class_weight="balanced"),
    "logistic C=0.3": lambda: LogisticRegression(C=0.3, class_weight="balanced", max_iter=2000),
}


def _mask(shape: tuple[int, int], points: np.ndarray) -> np.ndarray:
    m = np.zeros(shape, np.uint8)
    cv2.fillPoly(m, [np.round(points).astype(np.int32)], (1,))
    return m.astype(bool)


def _fine(crop: np.ndarray) -> np.ndarray:
    g = cv2.cvtColor(crop, cv2.COLOR_RGB2GRAY).astype(np.float32)
    return g - cv2.GaussianBlur(g, (0, 0), 1.0)


def mouth_cues(crops: np.ndarray, marks: np.ndarray) -> tuple[float, float]:
    """``(mouth_texture_std, mouth_persistence)`` of one track (crops in frame order)."""
    ratios, corrs = [], []
    for i, crop in enumerate(crops):
        g = cv2.cvtColor(np.ascontiguousarray(crop), cv2.COLOR_RGB2GRAY).astype(np.float32)
        lap = cv2.Laplacian(g, cv2.CV_32F, ksize=1)
        grad = (cv2.Sobel(g, cv2.CV_32F, 1, 0, ksize=3) / 8) ** 2
        grad += (cv2.Sobel(g, cv2.CV_32F, 0, 1, ksize=3) / 8) ** 2
        m = _mask(g.shape, marks[i][list(INNER_LIPS)])
        if m.sum() >= 20:
            ratios.append(float(np.mean(lap[m] ** 2)) / (float(np.mean(grad[m])) + 1e-3))
        if i + 1 < len(crops):
            p, q = marks[i].astype(np.float32), marks[i + 1].astype(np.float32)
            warp, _ = cv2.estimateAffinePartial2D(q[list(INNER_FACE)], p[list(INNER_FACE)])
            if warp is None:
                continue
            h, w = g.shape
            nxt = cv2.warpAffine(
                np.ascontiguousarray(crops[i + 1]), warp, (w, h), borderMode=cv2.BORDER_REPLICATE
            )
            m = _mask(g.shape, p[list(OUTER_LIPS)])
            if m.sum() >= 30:
                a, b = _fine(np.ascontiguousarray(crop))[m], _fine(nxt)[m]
                a, b = a - a.mean(), b - b.mean()
                corrs.append(float(np.sum(a * b) / (np.sqrt(np.sum(a * a) * np.sum(b * b)) + 1e-9)))
    std = float(np.std(ratios)) if len(ratios) >= 3 else np.nan
    return std, float(np.median(corrs)) if corrs else np.nan


def _dev(ref: np.ndarray, x: np.ndarray) -> np.ndarray:
    q1, med, q3 = np.percentile(ref, [25, 50, 75], axis=0)
    return np.log1p(np.abs(x - med) / (q3 - q1 + 1e-9))


def main() -> None:
    store = FaceStore.open(Path(sys.argv[1] if len(sys.argv) > 1 else "cache/faces_v2"))
    data_root = Path("../shared/data")
    tracks = load_tracks(store, ["ffpp_c23_videos"], data_root=data_root)
    rows: dict[str, list[int]] = {}
    for i, row in enumerate(store.rows):
        if row["dataset"] == "ffpp_c23_videos":
            rows.setdefault(str(row["media_id"]), []).append(i)
    new = []
    for media in tracks.media_id:
        idx = sorted(rows[str(media)], key=lambda i: int(store.rows[i]["frame"]))
        new.append(mouth_cues(np.asarray(store.images.take(idx)), store.landmarks[idx]))
    z = np.array(new)
    z = np.where(np.isnan(z), np.nanmedian(z, axis=0), z)
    x0, y, g, method = tracks.x, tracks.label, tracks.group, tracks.method
    print(f"{len(y)} tracks ({int(y.sum())} fake), {len(set(g))} identity groups")
    real = method == "real"
    for j, name in enumerate(("mouth_texture_std", "mouth_persistence")):
        d = _dev(z[real, j], z[:, j])
        per = []
        for m in ("Deepfakes", "Face2Face", "FaceSwap"):
            yy = np.r_[np.ones((method == m).sum()), np.zeros(real.sum())]
            per.append(f"{m} {roc_auc_score(yy, np.r_[d[method == m], d[real]]):.2f}")
        print(f"  {name}: raw AUC {roc_auc_score(y, z[:, j]):.3f}, as |dev| (in-sample reals)")
        print(f"    {roc_auc_score(y, d):.3f} ({', '.join(per)})")
    for label, with_new in (("13 cues", False), ("13 cues + 2 mouth |dev|", True)):
        for model, make in MODELS.items():
            aucs = []
            for seed in range(20):
                oof = np.zeros(len(y))
                folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed)
                for tr, te in folds.split(x0, y, g):
                    ref = z[tr][y[tr] == 0]
                    xtr, xte = x0[tr], x0[te]
                    if with_new:
                        xtr, xte = np.c_[xtr, _dev(ref, z[tr])], np.c_[xte, _dev(ref, z[te])]
                    fit = make_pipeline(StandardScaler(), make()).fit(xtr, y[tr])
                    oof[te] = fit.decision_function(xte)
                aucs.append(roc_auc_score(y, oof))
            print(f"{label:26s} {model:24s} OOF AUC mean {np.mean(aucs):.3f}, min {min(aucs):.3f}")


if __name__ == "__main__":
    main()
