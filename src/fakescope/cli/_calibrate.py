"""``fakescope calibrate``: fit score calibrators on a held-out ScoreTable, one per level.

- ``video``: on each video item's raw aggregate (the ``raw_score`` of its item-level row: the
  highest of its face tracks' aggregated raw scores), which is exactly what the scan maps
  through the video calibrator;
- ``crop``: on each face crop's raw score (what a photo's face and every frame of a video is
  mapped through).

Each level reports the expected calibration error and log loss before and after, the latter
by k-fold cross-validation grouped by item (so the figure is not measured on the data the
calibrator was fitted on, and crops of one video never sit on both sides), then fits on
everything and writes ``{"calibration": {level: calibrator}, "report": ...}`` as JSON: the
weight config's ``calibration`` field. ``--weights FILE.json`` also writes it into that
weight config (or ensemble JSON, see ``fakescope fuse``) in place.
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["add_calibrate_parser", "fit_level", "run_calibrate"]


def add_calibrate_parser(sub: Any) -> argparse.ArgumentParser:
    from fakescope.models import CALIBRATION_LEVELS

    p: argparse.ArgumentParser = sub.add_parser(
        "calibrate", help="fit score calibrators (video and crop level) on a held-out scores.csv"
    )
    p.add_argument("scores", type=Path, help="scores.csv written by fakescope eval")
    p.add_argument("--detector", help="detector in the table (default: the only one)")
    p.add_argument("--dataset", help="dataset in the table (default: all)")
    p.add_argument(
        "--level",
        action="append",
        choices=CALIBRATION_LEVELS,
        dest="levels",
        help="which calibrator(s) to fit (repeatable; default: video and crop)",
    )
    p.add_argument("--kind", choices=("logit", "isotonic"), default="logit")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("calibration.json"))
    p.add_argument(
        "--weights",
        type=Path,
        help="also store the calibrators in this weight config or ensemble .json (in place)",
    )
    return p


def fit_level(
    y: npt.NDArray[np.int64],
    s: npt.NDArray[np.float64],
    groups: list[str],
    kind: str,
    folds: int,
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Fit one calibrator on raw scores ``s`` with labels ``y``; returns its ``to_dict`` and a
    report (items, ECE and log loss raw and ``folds``-fold cross-validated, grouped by
    ``groups``)."""
    from sklearn.model_selection import StratifiedGroupKFold

    from fakescope.calibration import IsotonicCalibrator, LogitCalibrator
    from fakescope.evaluation import expected_calibration_error, log_loss

    make = LogitCalibrator if kind == "logit" else IsotonicCalibrator
    cv = np.zeros_like(s)
    splitter = StratifiedGroupKFold(folds, shuffle=True, random_state=0)
    for train, test in splitter.split(s, y, groups):
        cv[test] = make().fit(s[train], y[train]).predict_proba(s[test])[:, 1]
    fitted = make().fit(s, y)
    report = {
        "samples": len(y),
        "items": len(set(groups)),
        "ece_raw": expected_calibration_error(y, s),
        f"ece_{folds}fold_cv": expected_calibration_error(y, cv),
        "log_loss_raw": log_loss(y, s),
        f"log_loss_{folds}fold_cv": log_loss(y, cv),
    }
    return fitted.to_dict(), report


def _level_data(
    rows: list[Any], level: str
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[str]]:
    chosen = [
        r
        for r in rows
        if r.is_media_level == (level == "video")
        and r.status == "ok"
        and not math.isnan(r.raw_score)
    ]
    return (
        np.array([r.label for r in chosen], dtype=np.int64),
        np.array([r.raw_score for r in chosen], dtype=np.float64),
        [r.media_id for r in chosen],
    )


def run_calibrate(args: argparse.Namespace) -> int:
    from fakescope._extras import require
    from fakescope.cli._main import UsageError

    require("eval", "fakescope calibrate", ("sklearn", "scipy"))
    from fakescope.evaluation import ScoreTable
    from fakescope.models import CALIBRATION_LEVELS, WeightConfig

    table = ScoreTable.load(args.scores)
    detectors = table.detectors()
    detector = args.detector or (detectors[0] if len(detectors) == 1 else None)
    if detector is None or detector not in detectors:
        raise UsageError(f"choose --detector among: {', '.join(detectors) or 'none'}")
    rows = table.select(detector, args.dataset).rows
    calibration: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    for level in args.levels or CALIBRATION_LEVELS:
        y, s, groups = _level_data(rows, level)
        counts = np.bincount(y, minlength=2) if len(y) else np.zeros(2, dtype=np.int64)
        if min(counts) < args.folds or len(set(groups)) < args.folds:
            raise UsageError(
                f"{level} level: need at least {args.folds} items of each class with a raw "
                f"score, got {counts.tolist()} (score tables from before raw_score have none)"
            )
        try:
            calibration[level], reports[level] = fit_level(y, s, groups, args.kind, args.folds)
        except ValueError as exc:
            raise UsageError(f"{level} level: {exc}") from None
    payload = {
        "calibration": calibration,
        "detector": detector,
        "dataset": args.dataset,
        "scores": str(args.scores),
        "report": reports,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    if args.weights is not None:
        config = json.loads(args.weights.read_text())
        config["calibration"] = calibration
        args.weights.write_text(json.dumps(config, indent=2) + "\n")
        if "members" in config:  # an ensemble (fakescope fuse)
            from fakescope.models._fused import read_ensemble

            read_ensemble(args.weights)  # still a valid ensemble
        else:
            WeightConfig.from_json(args.weights)  # still a valid weight config
    print(json.dumps({k: v for k, v in payload.items() if k != "calibration"}, indent=2))
    return 0
