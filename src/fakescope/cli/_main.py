"""Argument parsing and dispatch. Usage errors exit 2 with one line, never a traceback."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence
from typing import Any, NoReturn

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

from fakescope.errors import FakescopeError
from fakescope.training import add_train_arguments

__all__ = [
    "UsageError",
    "attribution_type",
    "detector_type",
    "main",
    "stderr_progress",
    "stdout_console",
    "synthesis_detector_type",
]


def stdout_console() -> Console:
    """Rich console for results: the terminal's width, or 200 columns when piped."""
    out = Console()
    return out if out.is_terminal else Console(width=200)


def stderr_progress() -> Progress:
    """A transient progress bar on stderr, shown only when stderr is a terminal."""
    err = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


class UsageError(Exception):
    """A bad command line: reported on one line, exit status 2."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


def detector_type(text: str) -> str:
    """argparse type of ``--detector``: a registered name or a weight-config ``.json`` file."""
    from fakescope.models import detector_argument

    try:
        return detector_argument(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def attribution_type(text: str) -> str:
    """argparse type of ``--attribution``: a registered attributor or a head ``.json``."""
    from fakescope.models import attributor_argument

    try:
        return attributor_argument(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def synthesis_detector_type(text: str) -> str:
    """argparse type of ``--synthesis-detector``: a registered name or a weight ``.json``."""
    from fakescope.synthesis import synthesis_detector_argument

    try:
        return synthesis_detector_argument(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def _probability(text: str) -> float:
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


def _add_scan_options(p: argparse.ArgumentParser, detector: bool = True) -> None:
    from fakescope.faces import FACE_DETECTORS
    from fakescope.inference import AGGREGATORS
    from fakescope.models import DETECTORS
    from fakescope.synthesis import DEFAULT_SYNTHESIS_DETECTOR, SYNTHESIS_DETECTORS

    p.add_argument(
        "--frames",
        type=_positive_int,
        dest="num_frames",
        help="frames sampled evenly over each video (default 32)",
    )
    p.add_argument("--fps", type=_positive_float, help="sample at this rate instead")
    if detector:
        p.add_argument(
            "--detector",
            type=detector_type,
            metavar="NAME|WEIGHTS.json",
            help=f"deepfake detector: {', '.join(DETECTORS.names())} or a weight config file",
        )
    p.add_argument("--face-detector", choices=FACE_DETECTORS.names(), dest="face_detector")
    whole = p.add_mutually_exclusive_group()
    whole.add_argument(
        "--synthesis-detector",
        type=synthesis_detector_type,
        dest="synthesis_detector",
        metavar="NAME|FILE.json",
        help="whole-image synthesis detector whose verdict each input also gets (the "
        f"'synthesis' block): {', '.join(SYNTHESIS_DETECTORS.names())} or a weight file "
        f"(default {DEFAULT_SYNTHESIS_DETECTOR})",
    )
    whole.add_argument(
        "--no-synthesis",
        action="store_true",
        dest="no_synthesis",
        help="do not ask whether the whole image was generated ('synthesis': null)",
    )
    from fakescope.models import ATTRIBUTORS, EVIDENCE_MODELS

    p.add_argument(
        "--attribution",
        type=attribution_type,
        metavar="NAME|HEAD.json",
        help="say which family of manipulation each fake face resembles: "
        f"{', '.join(ATTRIBUTORS.names())} or a head file (default off)",
    )
    p.add_argument(
        "--evidence",
        action="append",
        choices=EVIDENCE_MODELS.names(),
        help="also judge every face track with this evidence model (repeatable; default none)",
    )
    p.add_argument(
        "--identity",
        action="store_true",
        default=None,
        help="say whose face each track is: tracks of one person share a number",
    )
    p.add_argument(
        "--gallery",
        metavar="DIR",
        help="name known people from this 'fakescope people' gallery (implies --identity)",
    )
    p.add_argument(
        "--reference",
        metavar="NAME",
        help="check every face against NAME's real references in the gallery (--gallery, "
        "else $FAKESCOPE_GALLERY or XDG data): a face that is not NAME's scores as fake",
    )
    p.add_argument(
        "--face-search-every",
        type=_positive_int,
        dest="full_scan_every",
        metavar="N",
        help="search the whole frame for new faces every N sampled frames (default 4; "
        "larger is faster and finds faces that stay briefly less often)",
    )
    p.add_argument(
        "--min-face",
        type=_positive_float,
        dest="min_face_px",
        help="smallest face height in pixels (default 40)",
    )
    p.add_argument(
        "--threshold",
        type=_probability,
        help="decision threshold (default: the detector weight's own)",
    )
    p.add_argument(
        "--track-aggregate",
        choices=AGGREGATORS.names(),
        dest="track_aggregator",
        help="how a face track's crop scores combine (default mean); the input then takes "
        "its most suspicious track",
    )
    p.add_argument("--threads", type=int, help="inference threads (0 = all cores)")


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="fakescope",
        description="Offline deepfake detector for videos and "
        "photos: a per-face, explained verdict for each input.",
    )
    parser.add_argument("--version", action="store_true", help="print the version and exit")
    sub = parser.add_subparsers(dest="command", parser_class=_Parser)

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
    scan.add_argument(
        "--cost-miss",
        type=_positive_float,
        dest="cost_miss",
        help="cost of missing a fake (default 1; used with calibrated models)",
    )
    scan.add_argument(
        "--cost-false-alarm",
        type=_positive_float,
        dest="cost_false_alarm",
        help="cost of calling a real face fake (default 1)",
    )
    scan.add_argument(
        "--prior-fake",
        type=_probability,
        dest="prior_fake",
        help="expected share of fakes among inputs (default 0.5)",
    )
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
    _add_scan_options(scan)

    bench = sub.add_parser("bench", help="time each stage on a generated 10-s 720p clip")
    bench.add_argument("clips", nargs="*", metavar="CLIP", help="extra clips to time")
    bench.add_argument("--repeat", type=_positive_int, default=3)
    bench.add_argument(
        "--json", dest="json_out", metavar="FILE", help="also save the table as JSON here"
    )
    bench.add_argument(
        "--sweep",
        action="store_true",
        help="also time versus sampled frames, resolution and faces per frame",
    )
    _add_scan_options(bench)

    train = sub.add_parser(
        "train", help="train a detector (needs the train extra: pip install -e '.[train]')"
    )
    add_train_arguments(train)

    from fakescope.cli._calibrate import add_calibrate_parser
    from fakescope.cli._eval import add_eval_parser
    from fakescope.cli._finetune import add_finetune_parser
    from fakescope.cli._fuse import add_fuse_parser
    from fakescope.cli._models import add_models_parser
    from fakescope.cli._people import add_people_parser
    from fakescope.cli._serve import add_serve_parser

    add_calibrate_parser(sub)
    add_fuse_parser(sub)
    add_finetune_parser(sub)
    add_models_parser(sub)
    add_people_parser(sub)
    _add_scan_options(add_serve_parser(sub))
    from fakescope.cli._batch import add_parser as add_batch_parser

    add_batch_parser(sub)  # it adds the scan options itself

    _add_scan_options(add_eval_parser(sub), detector=False)
    return parser


_ARGS_COMMANDS: dict[str, tuple[str, str]] = {
    "calibrate": ("fakescope.cli._calibrate", "run_calibrate"),
    "fuse": ("fakescope.cli._fuse", "run_fuse"),
    "models": ("fakescope.cli._models", "run_models"),
    "people": ("fakescope.cli._people", "run_people"),
    "finetune": ("fakescope.cli._finetune", "run_finetune"),
    "batch": ("fakescope.cli._batch", "run"),
}
"""Commands run as ``function(args)`` (module imported only when the command runs)."""


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    keys = (
        "num_frames",
        "fps",
        "detector",
        "face_detector",
        "full_scan_every",
        "min_face_px",
        "threshold",
        "track_aggregator",
        "threads",
        "heatmaps_dir",
        "cost_miss",
        "cost_false_alarm",
        "prior_fake",
        "uncertain_band",
        "synthesis_detector",
        "attribution",
        "identity",
        "gallery",
        "reference",
    )
    out = {k: getattr(args, k) for k in keys if getattr(args, k, None) is not None}
    if out.get("reference") is not None and out.get("gallery") is None:
        from fakescope.cli._people import default_gallery

        out["gallery"] = str(default_gallery())
    if getattr(args, "evidence", None):
        out["evidence"] = tuple(args.evidence)
    if getattr(args, "no_synthesis", False):
        out["synthesis_detector"] = None
    return out


def _train(config: str, overrides: Sequence[str]) -> int:
    """``fakescope train``: torch is imported only here, never by scanning."""
    from fakescope._extras import require

    require("train", "fakescope train", ("torch", "yaml"))
    from fakescope.training.train_sbi import main as train_main

    train_main([config, "--set", *overrides] if overrides else [config])
    return 0


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``fakescope`` console script."""
    try:
        args = build_parser().parse_args(argv)
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
            return _train(args.config, args.overrides)
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


def _entry() -> NoReturn:
    sys.exit(main())
