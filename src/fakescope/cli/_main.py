"""Argument parsing and dispatch. Usage errors exit 2 with one line, never a traceback.

A command's parser is built, and its module imported, only when that command runs (every
one of them for ``fakescope --help`` or an unknown command); what the commands share is in
:mod:`fakescope.cli._common`, which no command needs this module for.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any

from fakescope.cli._common import (
    Parser,
    UsageError,
    add_cost_options,
    add_scan_options,
    attribution_type,
    config_overrides,
    detector_type,
    positive_int,
    stderr_progress,
    stdout_console,
    synthesis_detector_type,
)
from fakescope.errors import FakescopeError

__all__ = [
    "UsageError",
    "attribution_type",
    "build_parser",
    "config_overrides",
    "detector_type",
    "main",
    "stderr_progress",
    "stdout_console",
    "synthesis_detector_type",
]

_Parser = Parser  # its name before cli/_common.py (tests/test_batch.py builds one)


def _add_scan(sub: Any) -> None:
    scan = sub.add_parser(
        "scan",
        help="scan videos, photos, folders or globs",
        epilog="A file whose name starts with '-' is read as an option: put it after '--' "
        "(fakescope scan -- -h.jpg) or write its folder (fakescope scan ./-h.jpg). Every "
        "input gets a verdict, also one that is not a regular file (a FIFO, a device, a "
        "broken link) or an empty folder; the exit status is 2 only for a bad command line "
        "or a path that does not exist.",
    )
    scan.add_argument("paths", nargs="+", metavar="PATH")
    scan.add_argument(
        "--json", action="store_true", help="print one JSON object per input (JSON Lines) to stdout"
    )
    add_cost_options(scan, "cost of missing a fake (default 1; used with calibrated models)")
    scan.add_argument(
        "--uncertain-band",
        type=float,
        dest="uncertain_band",
        help="scores within this distance of the threshold are 'uncertain' (0.1)",
    )
    scan.add_argument(
        "--heatmaps",
        dest="heatmaps_dir",
        metavar="DIR",
        help="write a PNG overlay per face track (detectors with a mask head)",
    )
    add_scan_options(scan)


def _add_bench(sub: Any) -> None:
    bench = sub.add_parser(
        "bench",
        help="time each stage (and count the faces found) on a generated 10-s 720p clip "
        "and a generated 5-face scene",
    )
    bench.add_argument("clips", nargs="*", metavar="CLIP", help="extra clips to time")
    bench.add_argument("--repeat", type=positive_int, default=3)
    bench.add_argument(
        "--json", dest="json_out", metavar="FILE", help="also save the table as JSON here"
    )
    bench.add_argument(
        "--sweep",
        action="store_true",
        help="also time versus sampled frames, resolution and faces per frame",
    )
    add_scan_options(bench)


def _add_train(sub: Any) -> None:
    from fakescope.training import add_train_arguments

    train = sub.add_parser(
        "train", help="train a detector (needs the train extra: pip install -e '.[train]')"
    )
    add_train_arguments(train)


def _adder(module: str, function: str, scan_options: bool | None = None) -> Callable[[Any], None]:
    """What adds a command's parser with ``module.function`` (the module is imported only when
    it is called) and, unless ``scan_options`` is None, the scan options (``eval`` takes its
    detectors its own way: False)."""

    def add(sub: Any) -> None:
        parser = getattr(importlib.import_module(module), function)(sub)
        if scan_options is not None:
            add_scan_options(parser, detector=scan_options)

    return add


_COMMANDS: dict[str, Callable[[Any], None]] = {
    "scan": _add_scan,
    "bench": _add_bench,
    "train": _add_train,
    "calibrate": _adder("fakescope.cli._calibrate", "add_calibrate_parser"),
    "fuse": _adder("fakescope.cli._fuse", "add_fuse_parser"),
    "finetune": _adder("fakescope.cli._finetune", "add_finetune_parser"),
    "models": _adder("fakescope.cli._models", "add_models_parser"),
    "people": _adder("fakescope.cli._people", "add_people_parser"),
    "serve": _adder("fakescope.cli._serve", "add_serve_parser", scan_options=True),
    "batch": _adder("fakescope.cli._batch", "add_parser"),  # it adds the scan options itself
    "eval": _adder("fakescope.cli._eval", "add_eval_parser", scan_options=False),
}
"""Each command and what adds its parser, in the order ``fakescope --help`` lists them."""


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """The command line's parser: with ``command``, only that command's parser is built (it
    parses that command's arguments exactly as the whole parser does); without, all of them."""
    parser = _Parser(
        prog="fakescope",
        description="Offline deepfake detector for videos and "
        "photos: a per-face, explained verdict for each input.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)
    for name, add in _COMMANDS.items():
        if command is None or name == command:
            add(sub)
    return parser


def _command(argv: Sequence[str]) -> str | None:
    """The command when the arguments start with one (then argparse takes the rest as that
    command's), else None: the whole parser is built (help, --version, an unknown command)."""
    return argv[0] if argv and argv[0] in _COMMANDS else None


_ARGS_COMMANDS: dict[str, tuple[str, str]] = {
    "calibrate": ("fakescope.cli._calibrate", "run_calibrate"),
    "fuse": ("fakescope.cli._fuse", "run_fuse"),
    "models": ("fakescope.cli._models", "run_models"),
    "people": ("fakescope.cli._people", "run_people"),
    "finetune": ("fakescope.cli._finetune", "run_finetune"),
    "batch": ("fakescope.cli._batch", "run"),
}
"""Commands run as ``function(args)`` (module imported only when the command runs)."""


def _train(
    config: str | None,
    overrides: Sequence[str],
    recipes: bool,
    ship_dir: str | None = None,
    stage: Sequence[str] | None = None,
) -> int:
    """``fakescope train``: the training engine (torch is imported only by recipes that need
    it, never by scanning); with ``stage`` (``[STAGE, RUN_DIR]``) or ``ship_dir`` (= ``ship``),
    one stage on a finished run folder."""
    from fakescope._extras import require

    require("train", "fakescope train", ("torch", "yaml"))
    from fakescope.training.engine import list_recipes, run_stage, train
    from fakescope.training.stages import LATER_STAGES, read_record

    if ship_dir is not None:
        if stage is not None:
            raise UsageError("fakescope train: give --stage ship RUN_DIR or --ship RUN_DIR")
        stage = ["ship", ship_dir]
    if stage is not None:
        name, run_dir = stage
        if config is not None or recipes:
            raise UsageError(
                f"fakescope train --stage {name} RUN_DIR takes no CONFIG, no --recipes"
            )
        if name not in LATER_STAGES:
            raise UsageError(f"--stage: choose among {', '.join(LATER_STAGES)}, got {name!r}")
        from fakescope.models import sha256_file

        result = run_stage(run_dir, name, overrides)
        for key, path in result.outputs.items():
            if name == "ship":
                print(f"shipped {path} (sha256 {sha256_file(path)})")
            else:
                print(f"{key}: {path}")
        return 0
    if recipes:
        for recipe in list_recipes():
            print(f"{recipe.name:<14} {recipe.summary}")
        return 0
    if config is None:
        raise UsageError(
            "fakescope train needs a CONFIG.yaml, --recipes or --ship RUN_DIR / --stage STAGE "
            "RUN_DIR"
        )
    result = train(config, overrides)
    for entry in read_record(result.run_dir).get("stages", []):
        for key, path in entry.get("outputs", {}).items():
            print(f"{entry['stage']} {key}: {path}", file=sys.stderr)
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fakescope`` console script."""
    try:
        arguments = sys.argv[1:] if argv is None else list(argv)
        args = build_parser(_command(arguments)).parse_args(arguments)
        if args.version:
            from importlib.metadata import version

            print(f"fakescope {version('fakescope')}")
            return 0
        if args.command is None:
            raise UsageError(
                "a command is required: scan, eval, batch, bench, serve, models, people, "
                "calibrate, fuse, finetune or train "
                "(fakescope --help)"
            )
        if args.command == "train":
            return _train(args.config, args.overrides, args.recipes, args.ship, args.stage)
        if args.command in _ARGS_COMMANDS:
            module, function = _ARGS_COMMANDS[args.command]
            run: Callable[[argparse.Namespace], int] = getattr(
                importlib.import_module(module), function
            )
            return run(args)
        from fakescope.config import ScanConfig

        config = ScanConfig.from_mapping(config_overrides(args))
        if args.command == "scan":
            from fakescope.cli._scan import run_scan

            return run_scan(args.paths, config, as_json=args.json)
        if args.command == "eval":
            from fakescope.cli._eval import run_eval

            return run_eval(args, config)
        if args.command == "serve":
            from fakescope.cli._serve import run_serve

            return run_serve(args, config)
        from fakescope.cli._bench import run_bench

        return run_bench(
            args.clips, config, repeat=args.repeat, json_out=args.json_out, sweep=args.sweep
        )
    except UsageError as exc:
        print(f"fakescope: error: {exc}{_dash_hint(argv)}", file=sys.stderr)
        return 2
    except FakescopeError as exc:
        print(f"fakescope: error: {exc}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("fakescope: interrupted", file=sys.stderr)
        return 130


def _dash_hint(argv: Sequence[str] | None) -> str:
    """A hint when a rejected argument starting with '-' is also an existing file name."""
    args = sys.argv[1:] if argv is None else argv
    if "--" in args:
        return ""
    for arg in args:
        if arg.startswith("-") and arg != "-" and os.path.lexists(arg):
            return f" (to scan the file {arg!r}, write: fakescope scan -- {arg} or ./{arg})"
    return ""
