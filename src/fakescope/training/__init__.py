"""Training (needs the ``train`` extra: torch). Never imported by scanning.

This package's ``__init__`` stays free of torch and yaml so the command line can describe
``fakescope train`` without them.
"""

from __future__ import annotations

import argparse


def add_train_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """The arguments of ``fakescope train`` (the one training engine,
    :mod:`fakescope.training.engine`)."""
    parser.add_argument(
        "config",
        type=str,
        nargs="?",
        metavar="CONFIG.yaml",
        help="YAML config naming its recipe (e.g. configs/sbi_v4_lite0.yaml; recipe: sbi when "
        "it names none)",
    )
    parser.add_argument("--recipes", action="store_true", help="list the training recipes and exit")
    parser.add_argument(
        "--stage",
        nargs=2,
        metavar=("STAGE", "RUN_DIR"),
        help="run one stage after fit on a finished run (instead of training), by its saved "
        "config.yaml and --set: quantize (model_int8.onnx), calibrate (the run's calibrators) "
        "or ship; it runs whatever the section's enabled says, and records itself in the "
        "run's result.json",
    )
    parser.add_argument(
        "--ship",
        metavar="RUN_DIR",
        help="= --stage ship RUN_DIR: ship a finished run by the ship section of its "
        "config.yaml: into the package's models/assets, or with --set ship.beside=true a "
        "weights.json next to the run's model",
    )
    parser.add_argument(
        "--set",
        dest="overrides",
        action="extend",
        nargs="+",
        default=[],
        metavar="KEY=VALUE",
        help="override config fields, e.g. --set optim.lr=3e-4 run.out=runs/x, or with --stage "
        "ship.name=X quantize.calib_count=500 (repeatable)",
    )
    return parser
