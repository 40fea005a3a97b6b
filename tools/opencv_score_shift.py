"""Raw face scores of the first c40 dev videos with whatever OpenCV is importable, to compare
two OpenCV builds (issue 31: the bound on opencv-python-headless):

    python3 tools/opencv_score_shift.py > a.json
    pip install --no-deps --target /tmp/cv5 opencv-python-headless==5.1.0.95
    PYTHONPATH=/tmp/cv5 python3 tools/opencv_score_shift.py > b.json
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2

from fakescope import ScanConfig, Scanner


def main(videos: int = 6) -> None:
    paths = sorted(Path("../shared/data/ffpp_c40_videos").rglob("*.mp4"))[:videos]
    scores: dict[str, float | None] = {}
    for detector in ("fused-v4-int8", "fused-v4"):
        scanner = Scanner(ScanConfig(detector=detector, synthesis_detector=None))
        for path in paths:
            faces = scanner.scan(str(path)).to_dict().get("faces") or []
            scores[f"{detector}:{path.name}"] = faces[0]["raw_score"] if faces else None
    json.dump({"opencv": cv2.__version__, "raw_scores": scores}, sys.stdout, indent=1)


if __name__ == "__main__":
    main()
