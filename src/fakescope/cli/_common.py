"""What the subcommands share: the usage error, the parser class, argument types, the scan
options and the consoles. Subcommands import it, never :mod:`fakescope.cli._main` (which
imports a subcommand only when that command runs), and it imports no subcommand.

rich is imported only when something is shown with it: a JSON scan whose stderr is not a
terminal never loads it.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any, NoReturn, Protocol, Self

if TYPE_CHECKING:
    from rich.console import Console

__all__ = [
    "Parser",
    "ProgressBar",
    "UsageError",
    "add_cost_options",
    "add_scan_options",
    "attribution_type",
    "config_overrides",
    "default_gallery",
    "detector_type",
    "positive_float",
    "positive_int",
    "probability",
    "stderr_progress",
    "stdout_console",
    "synthesis_detector_type",
]


class UsageError(Exception):
    """A bad command line: reported on one line, exit status 2."""


class Parser(argparse.ArgumentParser):
    """An argument parser whose errors raise :class:`UsageError` instead of exiting."""

    def error(self, message: str) -> NoReturn:
        raise UsageError(message)


# -- consoles -------------------------------------------------------------------------------
def stdout_console() -> Console:
    """Rich console for results: the terminal's width, or 200 columns when piped."""
    from rich.console import Console

    out = Console()
    return out if out.is_terminal else Console(width=200)


class ProgressBar(Protocol):
    """What the commands use of a rich ``Progress``: a context manager with tasks."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...

    def add_task(self, description: str, *, total: float | None = ..., **fields: Any) -> Any: ...

    def update(self, task_id: Any, **changes: Any) -> None: ...

    def advance(self, task_id: Any, advance: float = ...) -> None: ...


class _HiddenProgress:
    """A progress bar that is never shown (stderr is not a terminal): rich is not needed."""

    def __enter__(self) -> _HiddenProgress:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        return None

    def add_task(self, description: str, *, total: float | None = 100.0, **fields: Any) -> int:
        return 0

    def update(self, task_id: Any, **changes: Any) -> None:
        return None

    def advance(self, task_id: Any, advance: float = 1) -> None:
        return None


def _stderr_may_be_terminal() -> bool:
    """False only when rich would certainly find stderr not to be a terminal (rich's own
    order: ``TTY_COMPATIBLE=0``/``1``, then ``FORCE_COLOR``, then ``isatty``); True when it
    may, and rich then decides as always."""
    tty_compatible = os.environ.get("TTY_COMPATIBLE", "")
    if tty_compatible == "0":
        return False
    if tty_compatible == "1" or os.environ.get("FORCE_COLOR") is not None:
        return True
    isatty = getattr(sys.stderr, "isatty", None)
    try:
        return False if isatty is None else bool(isatty())
    except ValueError:  # a closed stderr
        return False


def stderr_progress() -> ProgressBar:
    """A transient progress bar on stderr, shown only when stderr is a terminal."""
    if not _stderr_may_be_terminal():
        return _HiddenProgress()
    from rich.console import Console
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    err = Console(stderr=True)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
    )
    return Progress(*columns, console=err, transient=True, disable=not err.is_terminal)


# -- argument types -------------------------------------------------------------------------
def _name_or_file(module: str, check: str, doc: str) -> Callable[[str], str]:
    """An argparse type that checks its text with ``module.check`` (imported when an argument
    is parsed), its ``ValueError`` reported as a usage error."""

    def argument_type(text: str) -> str:
        try:
            return str(getattr(importlib.import_module(module), check)(text))
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    argument_type.__doc__ = doc
    return argument_type


detector_type = _name_or_file(
    "fakescope.models",
    "detector_argument",
    "argparse type of ``--detector``: a registered name or a weight-config ``.json`` file.",
)
attribution_type = _name_or_file(
    "fakescope.models",
    "attributor_argument",
    "argparse type of ``--attribution``: a registered attributor or a head ``.json``.",
)
synthesis_detector_type = _name_or_file(
    "fakescope.synthesis",
    "synthesis_detector_argument",
    "argparse type of ``--synthesis-detector``: a registered name or a weight ``.json``.",
)


def positive_int(text: str) -> int:
    """argparse type: an integer >= 1."""
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be >= 1, got {text}")
    return value


def non_negative_int(text: str) -> int:
    """argparse type: an integer >= 0."""
    value = int(text)
    if value < 0:
        raise argparse.ArgumentTypeError(f"must be >= 0, got {text}")
    return value


def positive_float(text: str) -> float:
    """argparse type: a number > 0."""
    value = float(text)
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be > 0, got {text}")
    return value


def probability(text: str) -> float:
    """argparse type: a number strictly between 0 and 1."""
    value = float(text)
    if not 0.0 < value < 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0, 1), got {text}")
    return value


# -- the scan options -----------------------------------------------------------------------
def add_cost_options(p: argparse.ArgumentParser, cost_miss_help: str) -> None:
    """``--cost-miss``, ``--cost-false-alarm`` and ``--prior-fake`` (``scan`` and ``eval``)."""
    p.add_argument("--cost-miss", type=positive_float, dest="cost_miss", help=cost_miss_help)
    p.add_argument(
        "--cost-false-alarm",
        type=positive_float,
        dest="cost_false_alarm",
        help="cost of calling a real face fake (default 1)",
    )
    p.add_argument(
        "--prior-fake",
        type=probability,
        dest="prior_fake",
        help="expected share of fakes among inputs (default 0.5)",
    )


def add_scan_options(p: argparse.ArgumentParser, detector: bool = True) -> None:
    """The options of every command that scans (``scan``, ``bench``, ``serve``, ``batch``,
    ``eval``; ``eval`` takes its detectors its own way: ``detector=False``)."""
    from fakescope.faces import FACE_DETECTORS
    from fakescope.inference import AGGREGATORS
    from fakescope.models import DETECTORS
    from fakescope.synthesis import DEFAULT_SYNTHESIS_DETECTOR, SYNTHESIS_DETECTORS

    p.add_argument(
        "--frames",
        type=positive_int,
        dest="num_frames",
        help="frames sampled evenly over each video (default 32)",
    )
    p.add_argument("--fps", type=positive_float, help="sample at this rate instead")
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
        type=positive_int,
        dest="full_scan_every",
        metavar="N",
        help="search the whole frame for new faces every N sampled frames (default 4; "
        "larger is faster and finds faces that stay briefly less often)",
    )
    p.add_argument(
        "--face-search-skip",
        type=non_negative_int,
        dest="full_scan_skip",
        metavar="K",
        help="skip up to K such searches in a row while the frame shows no change outside "
        "the faces followed, and search a frame that follows no face only at those points "
        "(default 3; 0 searches every Nth sampled frame and every frame without a face)",
    )
    p.add_argument(
        "--min-face",
        type=positive_float,
        dest="min_face_px",
        help="smallest face height in pixels (default 40)",
    )
    p.add_argument(
        "--threshold",
        type=probability,
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
    p.add_argument(
        "--no-overlap",
        action="store_true",
        dest="no_overlap",
        help="score face crops after the face search, not beside it (same scores; slower "
        "on two or more cores)",
    )


def default_gallery() -> Path:
    """The ``fakescope people`` gallery folder when ``--gallery`` is not given."""
    if os.environ.get("FAKESCOPE_GALLERY"):
        return Path(os.environ["FAKESCOPE_GALLERY"])
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "fakescope" / "people"


def config_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """The :class:`~fakescope.config.ScanConfig` fields set on the command line."""
    keys = (
        "num_frames",
        "fps",
        "detector",
        "face_detector",
        "full_scan_every",
        "full_scan_skip",
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
        out["gallery"] = str(default_gallery())
    if getattr(args, "evidence", None):
        out["evidence"] = tuple(args.evidence)
    if getattr(args, "no_synthesis", False):
        out["synthesis_detector"] = None
    if getattr(args, "no_overlap", False):
        out["overlap"] = False
    return out
