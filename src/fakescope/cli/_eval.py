"""``fakescope eval``: score datasets with one or more detectors and write a report folder."""

from __future__ import annotations

import argparse
import dataclasses
from pathlib import Path
from typing import TYPE_CHECKING

from fakescope.config import ScanConfig

if TYPE_CHECKING:
    from fakescope.data import MediaItem

__all__ = ["add_eval_parser", "run_eval"]


def add_eval_parser(sub: argparse._SubParsersAction) -> argparse.ArgumentParser:  # type: ignore[type-arg]
    p: argparse.ArgumentParser = sub.add_parser(
        "eval", help="evaluate detectors on datasets; writes metrics, tables, plots, HTML"
    )
    p.add_argument(
        "sources",
        nargs="*",
        metavar="SOURCE",
        help="dataset folders or manifest files (layout detected)",
    )
    from fakescope.cli._main import detector_type
    from fakescope.models import DETECTORS

    p.add_argument(
        "--detector",
        action="append",
        dest="detectors",
        type=detector_type,
        metavar="NAME|WEIGHTS.json",
        help=f"detector to evaluate: {', '.join(DETECTORS.names())} or a weight config file "
        "(repeat for a side-by-side; default: the default)",
    )
    p.add_argument("--dataset", help="force the adapter (ffpp, celebdf, dfdc, ...)")
    p.add_argument(
        "--split", help="keep only items of this split, e.g. test (items without a split are kept)"
    )
    p.add_argument("--limit", type=int, help="at most this many items per source")
    p.add_argument("--out", type=Path, default=Path("eval-report"), help="report folder")
    p.add_argument(
        "--from-scores",
        type=Path,
        dest="from_scores",
        help="recompute metrics and plots from a saved scores.csv",
    )
    p.add_argument(
        "--abstain",
        choices=("worst", "exclude"),
        default="worst",
        help="how abstentions count (default worst: against the detector)",
    )
    p.add_argument("--bootstrap", type=int, default=1000, help="bootstrap resamples for CIs")
    p.add_argument("--cost-miss", type=float, default=1.0, dest="c_miss")
    p.add_argument("--cost-false-alarm", type=float, default=1.0, dest="c_fa")
    p.add_argument("--prior-fake", type=float, default=0.5, dest="p_target")
    p.add_argument("--no-figures", action="store_true", dest="no_figures")
    return p


def _items(args: argparse.Namespace) -> list[MediaItem]:
    from fakescope.data import detect_layout, load_dataset

    items: list[MediaItem] = []
    for source in args.sources:
        root = Path(source)
        name = args.dataset or detect_layout(root)
        found = load_dataset(name, root)
        if args.split:  # items of datasets without any split are kept
            found = [i for i in found if i.split in (args.split, None)]
        items.extend(found[: args.limit] if args.limit else found)
    return items


def run_eval(args: argparse.Namespace, config: ScanConfig) -> int:
    from rich.markdown import Markdown

    from fakescope.cli._main import UsageError, stderr_progress, stdout_console
    from fakescope.evaluation import (
        Failure,
        ScoreTable,
        compute_metrics,
        headline_markdown,
        score_items,
        write_report,
    )
    from fakescope.inference import Scanner
    from fakescope.types import Verdict

    failures: list[Failure] = []
    if args.from_scores:
        table = ScoreTable.load(args.from_scores)
    else:
        if not args.sources:
            raise UsageError("give at least one SOURCE or --from-scores")
        items = _items(args)
        if not items:
            raise UsageError("no items found in the given sources (check --split/--dataset)")
        names = args.detectors or [config.detector]
        scanners = {n: Scanner(dataclasses.replace(config, detector=n)) for n in names}
        with stderr_progress() as bar:
            task = bar.add_task("scanning", total=len(items) * len(scanners))

            def advance(item: MediaItem, detector: str, verdict: Verdict) -> None:
                bar.update(task, advance=1, description=item.media_id[-40:])

            table, failures = score_items(items, scanners, on_item=advance)
    metrics = compute_metrics(
        table,
        policy=args.abstain,
        n_boot=args.bootstrap,
        c_miss=args.c_miss,
        c_fa=args.c_fa,
        p_target=args.p_target,
    )
    run_config = {
        "sources": args.sources,
        "detectors": table.detectors(),
        "split": args.split,
        "limit": args.limit,
        "scan": dataclasses.asdict(config),
    }
    paths = write_report(
        args.out,
        table,
        failures,
        metrics,
        policy=args.abstain,
        config=run_config,
        figures=not args.no_figures,
    )
    out = stdout_console()
    out.print(Markdown(headline_markdown(metrics)))
    out.print(f"{len(failures)} abstained/failed item(s); report: {paths['index']}")
    return 0
