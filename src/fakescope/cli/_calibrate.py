"""``fakescope calibrate``: fit score calibrators on a held-out ScoreTable, one per level.

- ``video``: on each video item's raw aggregate (the ``raw_score`` of its item-level row: the
  highest of its face tracks' aggregated raw scores), which is exactly what the scan maps
  through the video calibrator; only videos (items with two or more scored frames): a photo's
  row is left out and counted (``photos_left_out``), since photos go through the crop level;
- ``crop``: on each face crop's raw score (what a photo's face and every frame of a video is
  mapped through).

Each level reports the expected calibration error and log loss before and after, the latter
by k-fold cross-validation grouped by item (so the figure is not measured on the data the
calibrator was fitted on, and crops of one video never sit on both sides), or by identity
group with ``--identity-groups SOURCE`` (no person on both sides), then fits on everything
and writes ``{"calibration": {level: calibrator}, "report": ...}`` as JSON: the weight
config's ``calibration`` field. With several ``--kind``, each level keeps the map with the
lowest class-balanced cross-validated log loss (the loss the class-balanced fit minimises).
``--bootstrap N`` adds 95% intervals (items resampled within each class) for the map's
parameters and for the ECE. Each stored calibrator records the data it saw under
``fitted_on`` (``--fitted-on``, item counts per class, the map, the command). Rows of a
development-only dataset (:data:`fakescope.data.DEV_ONLY`, the FF++ c40 dev set) are refused
at both levels. ``--weights FILE.json`` also writes the fitted levels into that weight config
(or ensemble JSON, see ``fakescope fuse``) in place; levels not fitted keep their calibrator.
"""

from __future__ import annotations

import argparse
import json
import math
import shlex
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["add_calibrate_parser", "run_calibrate"]


def add_calibrate_parser(sub: Any) -> argparse.ArgumentParser:
    from fakescope.calibration import KINDS
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
    p.add_argument(
        "--kind",
        action="append",
        choices=KINDS,
        dest="kinds",
        help="calibration map (default logit; temperature = logit without bias, one "
        "parameter; identity = the raw score, nothing fitted; constant = one probability for "
        "every score); repeat to keep, per level, the one with the lowest class-balanced "
        "cross-validated log loss (a kind that would invert the detector is refused)",
    )
    p.add_argument("--folds", type=int, default=5)
    p.add_argument(
        "--identity-groups",
        action="append",
        type=Path,
        metavar="SOURCE",
        help="dataset folder or manifest of the scored items: cross-validation folds are "
        "grouped by their identity group (fakescope.data.identity_groups), not by item "
        "(repeatable; items not found are their own group)",
    )
    p.add_argument(
        "--bootstrap",
        type=int,
        default=0,
        metavar="N",
        help="resamples for 95%% intervals of the parameters and the ECE (default 0: none)",
    )
    p.add_argument(
        "--min-videos",
        type=int,
        default=0,
        metavar="N",
        help="refuse to fit the video level on fewer than N videos (items with two or more "
        "scored frames)",
    )
    p.add_argument(
        "--fitted-on",
        metavar="TEXT",
        help="what the scores are, recorded in each calibrator's fitted_on (default: the "
        "scores.csv path)",
    )
    p.add_argument("--out", type=Path, default=Path("calibration.json"))
    p.add_argument(
        "--weights",
        type=Path,
        help="also store the calibrators in this weight config or ensemble .json (in place)",
    )
    return p


def _level_data(
    rows: list[Any], level: str, videos: set[str]
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[str]]:
    """Labels, raw scores and item ids the ``level`` is fitted on: every scored crop, or
    (video level) the item-level rows of ``videos``, the items that are videos."""
    chosen = [
        r
        for r in rows
        if r.is_media_level == (level == "video")
        and r.status == "ok"
        and not math.isnan(r.raw_score)
    ]
    if level == "video":
        chosen = [r for r in chosen if r.media_id in videos]
    return (
        np.array([r.label for r in chosen], dtype=np.int64),
        np.array([r.raw_score for r in chosen], dtype=np.float64),
        [r.media_id for r in chosen],
    )


def _video_ids(rows: list[Any]) -> set[str]:
    """The items of ``rows`` that are videos: two or more of their frames were scored."""
    frames: dict[str, set[int]] = {}
    for r in rows:
        if not r.is_media_level:
            frames.setdefault(r.media_id, set()).add(r.frame_index)
    return {m for m, seen in frames.items() if len(seen) >= 2}


def _identity_groups(sources: list[Path]) -> dict[str, str]:
    """media_id -> identity group of the items of ``sources``."""
    from fakescope.data import identity_groups, load_dataset

    found = [item for source in sources for item in load_dataset("auto", source)]
    return {item.media_id: group for item, group in zip(found, identity_groups(found), strict=True)}


def _command(args: argparse.Namespace) -> str:
    """The calibrate command line that reproduces this fit (from the parsed options)."""
    parts = ["fakescope", "calibrate", str(args.scores)]
    for flag, value in (("--detector", args.detector), ("--dataset", args.dataset)):
        if value is not None:
            parts += [flag, value]
    parts += [x for level in args.levels or () for x in ("--level", level)]
    parts += [x for kind in args.kinds or () for x in ("--kind", kind)]
    parts += ["--folds", str(args.folds)]
    parts += [x for src in args.identity_groups or () for x in ("--identity-groups", str(src))]
    if args.bootstrap:
        parts += ["--bootstrap", str(args.bootstrap)]
    if args.min_videos:
        parts += ["--min-videos", str(args.min_videos)]
    if args.fitted_on is not None:
        parts += ["--fitted-on", args.fitted_on]
    parts += ["--out", str(args.out)]
    if args.weights is not None:
        parts += ["--weights", str(args.weights)]
    return shlex.join(parts)


def _store(weights: Path, calibration: dict[str, Any]) -> None:
    """Write the fitted levels into the weight config or ensemble JSON ``weights`` (one
    read-modify-write; its other keys and levels are kept) and check it still loads."""
    from fakescope.models import WeightConfig

    config = json.loads(weights.read_text())
    levels = config.get("calibration") or {}
    if "kind" in levels:  # the 0.1 layout: one calibrator, the crop level
        levels = {"crop": levels}
    config["calibration"] = {**levels, **calibration}
    weights.write_text(json.dumps(config, indent=2) + "\n")
    if "members" in config:  # an ensemble (fakescope fuse)
        from fakescope.models import read_ensemble

        read_ensemble(weights)  # still a valid ensemble
    else:
        WeightConfig.from_json(weights)  # still a valid weight config


def run_calibrate(args: argparse.Namespace) -> int:
    from fakescope._extras import require
    from fakescope.cli._common import UsageError

    require("eval", "fakescope calibrate", ("sklearn", "scipy"))
    from fakescope.calibration import FITTED_ON
    from fakescope.data import DEV_ONLY
    from fakescope.evaluation import ScoreTable, fit_level, fitted_on_record
    from fakescope.models import CALIBRATION_LEVELS

    table = ScoreTable.load(args.scores)
    detectors = table.detectors()
    detector = args.detector or (detectors[0] if len(detectors) == 1 else None)
    if detector is None or detector not in detectors:
        raise UsageError(f"choose --detector among: {', '.join(detectors) or 'none'}")
    rows = table.select(detector, args.dataset).rows
    dev = sorted({r.dataset for r in rows} & DEV_ONLY)
    if dev:
        raise UsageError(
            f"{', '.join(dev)} is a development set: never calibrated on (choose other "
            "items with --dataset, or score held-out ones)"
        )
    identity = _identity_groups(args.identity_groups) if args.identity_groups else None
    kinds = args.kinds or ["logit"]
    calibration: dict[str, Any] = {}
    reports: dict[str, Any] = {}
    video_ids = _video_ids(rows)
    for level in args.levels or CALIBRATION_LEVELS:
        y, s, items = _level_data(rows, level, video_ids)
        groups = items if identity is None else [identity.get(m, m) for m in items]
        counts = np.bincount(y, minlength=2) if len(y) else np.zeros(2, dtype=np.int64)
        if min(counts) < args.folds or len(set(groups)) < args.folds:
            raise UsageError(
                f"{level} level: need at least {args.folds} items of each class with a raw "
                f"score and {args.folds} cross-validation groups, got {counts.tolist()} and "
                f"{len(set(groups))} (score tables from before raw_score have none)"
            )
        videos = len(set(items)) if level == "video" else None
        if videos is not None and videos < args.min_videos:
            raise UsageError(
                f"video level: {videos} videos (items with two or more scored frames), "
                f"fewer than --min-videos {args.min_videos}"
            )
        try:
            fitted, report = fit_level(
                y, s, groups, kinds, args.folds, items=items, bootstrap=args.bootstrap
            )
        except ValueError as exc:
            raise UsageError(f"{level} level: {exc}") from None
        report["cv_grouped_by"] = "identity group" if identity is not None else "item"
        seen = fitted_on_record(
            report, args.fitted_on or str(args.scores), args.folds, _command(args), videos
        )
        if videos is not None:
            report["videos"] = videos
            # the item-level rows the video level would have taken before it took videos only
            every_item = _level_data(rows, level, {r.media_id for r in rows})[2]
            report["photos_left_out"] = len(set(every_item) - video_ids)
        calibration[level] = {**fitted, FITTED_ON: seen}
        reports[level] = report
    payload = {
        "calibration": calibration,
        "detector": detector,
        "dataset": args.dataset,
        "scores": str(args.scores),
        "report": reports,
    }
    args.out.write_text(json.dumps(payload, indent=2) + "\n")
    if args.weights is not None:
        _store(args.weights, calibration)
    print(json.dumps({k: v for k, v in payload.items() if k != "calibration"}, indent=2))
    return 0
