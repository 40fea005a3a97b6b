"""``fakescope calibrate``: fit a score calibrator on a held-out ScoreTable (item level).

Reports the expected calibration error before and after, the latter by k-fold
cross-validation so the figure is not measured on the data the calibrator was fitted on,
then fits on everything and writes the calibrator as JSON (the weight config's
``calibration`` field; ``python -m fakescope.training.ship --calibration FILE``)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

__all__ = ["add_calibrate_parser", "run_calibrate"]


def add_calibrate_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "calibrate", help="fit a score calibrator on a held-out scores.csv"
    )
    p.add_argument("scores", type=Path, help="scores.csv written by fakescope eval")
    p.add_argument("--detector", help="detector in the table (default: the only one)")
    p.add_argument("--dataset", help="dataset in the table (default: all)")
    p.add_argument("--kind", choices=("logit", "isotonic"), default="logit")
    p.add_argument("--folds", type=int, default=5)
    p.add_argument("--out", type=Path, default=Path("calibration.json"))
    return p


def run_calibrate(args: argparse.Namespace) -> int:
    from sklearn.model_selection import StratifiedKFold

    from fakescope.calibration import IsotonicCalibrator, LogitCalibrator
    from fakescope.cli._main import UsageError
    from fakescope.evaluation import ScoreTable, expected_calibration_error, item_scores, log_loss

    table = ScoreTable.load(args.scores)
    detectors = table.detectors()
    detector = args.detector or (detectors[0] if len(detectors) == 1 else None)
    if detector is None or detector not in detectors:
        raise UsageError(f"choose --detector among: {', '.join(detectors) or 'none'}")
    rows = table.select(detector, args.dataset).media_rows()
    y, s, _, _, abstained = item_scores(rows, "exclude")
    if len(set(y.tolist())) < 2 or min(np.bincount(y)) < args.folds:
        raise UsageError(f"need at least {args.folds} items of each class, got {np.bincount(y)}")
    make = LogitCalibrator if args.kind == "logit" else IsotonicCalibrator
    cv = np.zeros_like(s)
    for train, test in StratifiedKFold(args.folds, shuffle=True, random_state=0).split(s, y):
        cv[test] = make().fit(s[train], y[train]).predict_proba(s[test])[:, 1]
    fitted = make().fit(s, y)
    report = {
        "calibration": fitted.to_dict(),
        "detector": detector,
        "dataset": args.dataset,
        "items": len(y),
        "abstained_excluded": abstained,
        "ece_raw": expected_calibration_error(y, s),
        f"ece_{args.folds}fold_cv": expected_calibration_error(y, cv),
        "log_loss_raw": log_loss(y, s),
        f"log_loss_{args.folds}fold_cv": log_loss(y, cv),
    }
    args.out.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps({k: v for k, v in report.items() if k != "calibration"}, indent=2))
    return 0
