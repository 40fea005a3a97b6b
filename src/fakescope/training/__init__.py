"""Training (needs the ``train`` extra: torch). Never imported by scanning.

This package's ``__init__`` stays free of torch and yaml so the command line can describe
``fakescope train`` without them.
"""

from __future__ import annotations

import argparse


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``fakescope train`` and ``python -m fakescope.training.train_sbi``."""
    parser.add_argument(
        "config", type=str, metavar="CONFIG.yaml", help="YAML config (e.g. configs/sbi_lite0.yaml)"
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config fields, e.g. --set optim.lr=3e-4 run.out=runs/x (repeatable)",
    )
    return parser
