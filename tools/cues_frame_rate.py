"""Issue 27: do the hand-crafted track cues separate the FF++ c23 clips better when read from
dense frames? Reads the cue values of the JSON that `fakescope scan --json --evidence
cues-svm-v1` wrote for every clip (the face with the most frames), and reports each cue's AUC
and the identity-grouped out-of-fold AUC of an RBF SVM and a logistic regression, over five
fold seeds (groups: `fakescope.data.identity_groups`, as the cue recipe's folds).

    R=../shared/data/ffpp_c23_videos
    fakescope scan --json --frames 160 --threads 1 --evidence cues-svm-v1 --no-synthesis \\
        $(tail -n +2 $R/MANIFEST.tsv | cut -f1 | sed "s|^|$R/|") > /tmp/cues160.json   # 16 min
    python3 tools/cues_frame_rate.py /tmp/cues160.json
"""

import json
import sys
from pathlib import Path

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.model_selection import StratifiedGroupKFold
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from fakescope.data import identity_groups, load_dataset


def _values(verdict: dict) -> dict[str, float] | None:
    best: tuple[int, dict[str, float]] | None = None
    for face in verdict.get("faces") or []:
        for ev in face.get("evidence") or []:
            if ev.get("values"):
                n = len(face.get("frames") or [])
                if best is None or n > best[0]:
                    best = (n, ev["values"])
    return None if best is None else best[1]


def main() -> None:
    text = Path(sys.argv[1]).read_text()
    verdicts = [json.loads(line) for line in text.splitlines() if line.strip()]
    by_name = {Path(v["path"]).name: _values(v) for v in verdicts}
    root = Path(__file__).resolve().parents[2] / "shared" / "data" / "ffpp_c23_videos"
    items = load_dataset("manifest", str(root))
    groups = dict(zip([Path(i.path).name for i in items], identity_groups(items), strict=True))
    labels = {Path(i.path).name: int(i.label == "fake") for i in items}
    names = sorted(n for n, v in by_name.items() if v)
    cues = sorted({k for n in names for k in by_name[n]})
    x = np.array(
        [[np.nan if by_name[n].get(k) is None else by_name[n][k] for k in cues] for n in names]
    )
    x = np.where(np.isnan(x), np.nanmedian(x, axis=0), x)
    y = np.array([labels[n] for n in names])
    g = np.array([groups[n] for n in names])
    print(f"{len(by_name)} clips, {len(names)} with cues, {len(set(g))} identity groups")
    for k, cue in enumerate(cues):
        a = roc_auc_score(y, x[:, k])
        print(f"  {cue}: AUC {max(a, 1 - a):.3f}")
    models = {
        "SVM C=1 (cues-svm-v1's)": lambda: SVC(C=1.0, gamma="scale", class_weight="balanced"),
        "SVM C=0.3": lambda: SVC(C=0.3, gamma="scale", class_weight="balanced"),
        "logistic C=0.3": lambda: LogisticRegression(C=0.3, class_weight="balanced"),
    }
    for label, make in models.items():
        aucs = []
        for seed in range(5):
            oof = np.zeros(len(y))
            folds = StratifiedGroupKFold(5, shuffle=True, random_state=seed).split(x, y, g)
            for tr, te in folds:
                model = make_pipeline(StandardScaler(), make()).fit(x[tr], y[tr])
                oof[te] = model.decision_function(x[te])
            aucs.append(roc_auc_score(y, oof))
        print(f"{label}: out-of-fold AUC {np.mean(aucs):.3f} (seeds {np.round(aucs, 3).tolist()})")


if __name__ == "__main__":
    main()
