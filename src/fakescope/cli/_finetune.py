"""``fakescope finetune``: adapt a CNN synthesis detector to a new generator from a few
labelled images (frozen backbone, L2-SP head; see :mod:`fakescope.training.finetune`)."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

__all__ = ["add_finetune_parser", "run_finetune"]


def add_finetune_parser(sub: Any) -> argparse.ArgumentParser:
    p: argparse.ArgumentParser = sub.add_parser(
        "finetune",
        help="adapt a synthesis detector to a new generator from N labelled images per class",
    )
    p.add_argument("base", help="CNN synthesis detector: a registered name or a weight .json")
    p.add_argument("--fakes", type=Path, required=True, help="folder of the new generator's images")
    p.add_argument("--reals", type=Path, required=True, help="folder of real images")
    p.add_argument("--shots", type=int, default=50, help="images drawn per class (default 50)")
    p.add_argument(
        "--l2sp",
        type=_strength,
        default=1.0,
        metavar="STRENGTH|auto",
        help="pull of the new head towards the base head (larger forgets less of the generators "
        "the base knew; default 1); auto: the value of 1, 0.1, 0.01, 0.001 that ranks the shots "
        "best out of fold, which may forget much more",
    )
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--name", default="", help="the new detector's name (default BASE-ftN)")
    p.add_argument("--out", type=Path, required=True, metavar="WEIGHTS.json")
    return p


def _strength(text: str) -> float | None:
    """``--l2sp``: a number >= 0, or ``auto`` (None: chosen on the shots)."""
    if text == "auto":
        return None
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is neither a number nor auto") from None
    if not value >= 0:
        raise argparse.ArgumentTypeError(f"{text!r} must be >= 0")
    return value


def run_finetune(args: argparse.Namespace) -> int:
    from fakescope._extras import require

    require("train", "fakescope finetune", ("onnx", "sklearn", "scipy"))
    from fakescope.training.finetune import finetune, list_images

    path, summary = finetune(
        args.base,
        list_images(args.fakes),
        list_images(args.reals),
        args.out,
        shots=args.shots,
        l2sp=args.l2sp,
        seed=args.seed,
        name=args.name,
    )
    print(json.dumps({"weights": str(path), **summary}, indent=2))
    return 0
