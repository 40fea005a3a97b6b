"""Data test on ../shared/data/ffpp_c40_videos (skips when absent): every video gets a verdict;
prints the video-level AUC and the face recall over sampled frames. No figure is pinned."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from fakescope import Scanner, Status

pytestmark = pytest.mark.data


def test_scan_ffpp_c40_videos(shared_data: Path, scanner: Scanner) -> None:
    from sklearn.metrics import roc_auc_score

    root = shared_data / "ffpp_c40_videos"
    with (root / "MANIFEST.tsv").open() as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    labels, scores = [], []
    frames_total = frames_with_face = 0
    for row in rows:
        v = scanner.scan(root / row["file"])
        assert v.status is Status.OK, f"{row['file']}: {v.status} {v.reason}"
        assert v.fake_probability is not None
        labels.append(1 if row["label"] == "fake" else 0)
        scores.append(v.fake_probability)
        frames_total += scanner.config.num_frames
        frames_with_face += len({f.frame_index for t in v.tracks for f in t.frames})
    auc = roc_auc_score(labels, scores)
    recall = frames_with_face / frames_total
    print(
        f"\nffpp_c40_videos: {len(rows)} videos, video-level AUC {auc:.3f}, "
        f"face recall {frames_with_face}/{frames_total} sampled frames ({recall:.1%})"
    )
    assert 0.0 <= auc <= 1.0
