"""``fakescope fuse``: fit a fuser over several detectors' scores and write an ensemble JSON.

Reads a scores.csv that ``fakescope eval`` wrote with every member as a ``--detector``, joins
the members' item-level *raw* scores by item (dataset and item id), fits the fuser on them and
writes the ensemble (see :class:`fakescope.models.FusedDetector`). Items every member
abstained on are skipped; an item scored by some members but not all is an error. The fitted
weights and the item-level ROC AUC of each member and of the fusion (on the fitted data, so
optimistic for stacking) are printed as JSON.

The ensemble is then used like any detector: ``fakescope eval DATA --detector ens.json``,
``fakescope calibrate scores.csv --detector ens.json --weights ens.json``.
"""

from __future__ import annotations

import argparse
import json
import math
import os
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = ["add_fuse_parser", "item_matrix", "run_fuse"]


def add_fuse_parser(sub: Any) -> argparse.ArgumentParser:
    from fakescope.fusion import FUSERS

    p: argparse.ArgumentParser = sub.add_parser(
        "fuse", help="fit a fused ensemble of detectors on a held-out scores.csv"
    )
    p.add_argument("scores", type=Path, help="scores.csv written by fakescope eval")
    p.add_argument(
        "--member",
        action="append",
        dest="members",
        required=True,
        metavar="DETECTOR",
        help="a detector of the table, as given to eval's --detector (repeat; at least two)",
    )
    p.add_argument(
        "--kind",
        choices=FUSERS.names(),
        default="stacking",
        help="mean-logit (nothing fitted) or stacking (logistic regression on the members' "
        "logits; default)",
    )
    p.add_argument("--name", required=True, help="the ensemble's name (reported by scans)")
    p.add_argument(
        "--out", type=Path, required=True, metavar="ENSEMBLE.json", help="ensemble JSON to write"
    )
    p.add_argument(
        "--version", default="", dest="ensemble_version", metavar="V", help="ensemble version"
    )
    p.add_argument("--dataset", help="dataset in the table (default: all)")
    return p


def item_matrix(
    rows: list[Any], members: list[str]
) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.int64], int]:
    """Members' item-level raw scores joined by (dataset, item id): ``(X, y, skipped)`` with
    ``X`` (n, members), labels ``y`` and the number of items no member scored. An item some
    members scored and others did not raises ``ValueError``."""
    scored: dict[tuple[str, str], dict[str, float]] = {}
    labels: dict[tuple[str, str], int] = {}
    for r in rows:
        if not r.is_media_level or r.detector not in members:
            continue
        key = (r.dataset, r.media_id)
        if labels.setdefault(key, r.label) != r.label:
            raise ValueError(f"item {r.media_id!r} has different labels for different members")
        scores = scored.setdefault(key, {})
        if r.status == "ok" and not math.isnan(r.raw_score):
            scores[r.detector] = r.raw_score
    keys = sorted(k for k, v in scored.items() if v)
    partial = [k for k in keys if len(scored[k]) < len(members)]
    if partial:
        dataset, media_id = partial[0]
        missing = [m for m in members if m not in scored[partial[0]]]
        raise ValueError(
            f"{len(partial)} item(s) lack a raw score from some member, e.g. {media_id!r} "
            f"({dataset}) from {', '.join(missing)}: every item must be scored by every member "
            "(evaluate all members on the same items; tables from before raw_score have none)"
        )
    X = np.array([[scored[k][m] for m in members] for k in keys], dtype=np.float64)
    y = np.array([labels[k] for k in keys], dtype=np.int64)
    return X.reshape(len(keys), len(members)), y, len(scored) - len(keys)


def _written_member(member: str, out_dir: Path) -> str:
    """A member as the ensemble stores it: a registered name as is, a weight config path
    relative to the ensemble's folder."""
    from fakescope.cli._common import UsageError
    from fakescope.models import DETECTORS, is_ensemble_config

    if member in DETECTORS:
        return member
    path = Path(member)
    if not (member.endswith(".json") and path.is_file()):
        raise UsageError(
            f"member {member!r} is neither a registered detector ({', '.join(DETECTORS.names())})"
            " nor an existing weight config .json (paths as given to fakescope eval)"
        )
    if is_ensemble_config(path):
        raise UsageError(f"member {member!r} is itself an ensemble; list its members instead")
    return Path(os.path.relpath(path.resolve(), out_dir.resolve())).as_posix()


def run_fuse(args: argparse.Namespace) -> int:
    from fakescope._extras import require
    from fakescope.cli._common import UsageError

    require("eval", "fakescope fuse", ("sklearn", "scipy"))
    from fakescope.evaluation import ScoreTable, roc_auc
    from fakescope.fusion import FUSERS
    from fakescope.models import FusedDetector, create_detector

    members: list[str] = args.members
    if len(members) < 2 or len(set(members)) != len(members):
        raise UsageError("give at least two different --member detectors")
    table = ScoreTable.load(args.scores)
    known = table.detectors()
    absent = [m for m in members if m not in known]
    if absent:
        raise UsageError(
            f"not in {args.scores}: {', '.join(absent)} (detectors there: "
            f"{', '.join(known) or 'none'})"
        )
    out_dir = args.out.parent
    written = [_written_member(m, out_dir) for m in members]
    try:
        X, y, skipped = item_matrix(table.select(dataset=args.dataset).rows, members)
    except ValueError as exc:
        raise UsageError(str(exc)) from None
    counts = np.bincount(y, minlength=2)
    if min(counts) < 1:
        raise UsageError(f"fusing needs scored items of both classes, got {counts.tolist()}")
    fuser = FUSERS.create(args.kind)
    try:
        fuser.fit(X, y)
    except ValueError as exc:
        raise UsageError(f"cannot fit {args.kind}: {exc}") from None
    # load the members once: incompatible preprocessing fails here, not at the first scan
    FusedDetector([create_detector(m, threads=1) for m in members], fuser, name=args.name)
    where = f"{args.scores}" + (f" (dataset {args.dataset})" if args.dataset else "")
    ensemble = {
        "name": args.name,
        "version": args.ensemble_version,
        "members": written,
        "fuser": fuser.to_dict(),
        "threshold": 0.5,
        "trained_on": f"{args.kind} fusion fitted on {len(y)} items of {where}",
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(ensemble, indent=2) + "\n")
    fused = fuser.predict_proba(X)
    report: dict[str, Any] = {
        "ensemble": str(args.out),
        "kind": args.kind,
        "items": len(y),
        "items_per_class": counts.tolist(),
        "skipped_unscored_items": skipped,
        "fuser": fuser.to_dict(),
        "weights": _weights(fuser.to_dict(), members),
        "auc_members": {m: roc_auc(y, X[:, i]) for i, m in enumerate(members)},
        "auc_fusion": roc_auc(y, fused),
    }
    print(json.dumps(report, indent=2))
    return 0


def _weights(fitted: dict[str, Any], members: list[str]) -> dict[str, float]:
    """Each member's weight on its logit (mean-logit: the normalised mean weights)."""
    if fitted["kind"] == "stacking":
        return dict(zip(members, fitted["coef"], strict=True))
    w = np.asarray(fitted.get("weights", [1.0] * len(members)), dtype=np.float64)
    return dict(zip(members, (w / w.sum()).tolist(), strict=True))
