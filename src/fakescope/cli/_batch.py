"""``fakescope batch``: scan an archive into a results folder that resumes after a crash."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.progress import (
    BarColumn,
    MofNCompleteColumn,
    Progress,
    ProgressColumn,
    Task,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
)
from rich.table import Table
from rich.text import Text

if TYPE_CHECKING:  # fakescope.batch is imported only when the command runs
    from fakescope.batch import BatchProgress, BatchSummary

__all__ = ["add_parser", "run"]

_FAILED_EXIT = 1
"""Exit status when some items are left without a result after their retries."""


def add_parser(sub: Any) -> argparse.ArgumentParser:
    """Add ``fakescope batch`` (with the scan options) to the subcommands ``sub``."""
    from fakescope.cli._common import add_scan_options, positive_float, positive_int

    p: argparse.ArgumentParser = sub.add_parser(
        "batch",
        help="scan an archive into a resumable results folder (Parquet + JSON Lines)",
        description="Scan many inputs with worker processes, writing results as they come to "
        "--out: ScoreTable Parquet shards (scores/), the full verdicts as JSON Lines "
        "(verdicts/) and, at the end, scores.csv of the labelled items for 'fakescope eval "
        "--from-scores'. Run it again with the same --out to resume: items already done "
        "(same content, models and settings) are skipped, failed ones retried.",
        epilog="INPUT is a media file, a folder (searched for media files), a glob, a "
        "manifest (.csv/.tsv/.jsonl with a 'path' column and optional label, method, "
        "dataset, compression, media_id) or a list file (.txt/.lst: one path per line). "
        "Exit status: 0 when every item got a result (abstentions such as no_face "
        "included), 1 when some failed (error, crash, timeout, memory) after their "
        "retries, 2 on a bad command line.",
    )
    p.add_argument("inputs", nargs="+", metavar="INPUT")
    p.add_argument("--out", type=Path, required=True, metavar="DIR", help="results folder")
    p.add_argument("--workers", type=positive_int, default=1, help="scan processes (default 1)")
    p.add_argument(
        "--retries",
        type=int,
        default=1,
        help="more attempts for an item that failed, counted across runs (default 1)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=600.0,
        dest="timeout_s",
        metavar="S",
        help="seconds one item may take before its worker is killed (default 600)",
    )
    p.add_argument(
        "--max-memory-mb",
        type=positive_float,
        dest="max_memory_mb",
        metavar="M",
        help="resident memory a worker may use while scanning; beyond it the worker is "
        "killed and the item recorded 'memory' (default: no limit)",
    )
    p.add_argument(
        "--shard-size",
        type=positive_int,
        default=100,
        dest="shard_size",
        help="items per Parquet shard (default 100)",
    )
    p.add_argument(
        "--ray",
        metavar="auto|ADDRESS",
        help="run on Ray actors instead of local processes: 'auto' (the running cluster), "
        "'local' (start one here) or a cluster address (needs the batch extra)",
    )
    p.add_argument(
        "--json", action="store_true", help="print the summary as one JSON object on stdout"
    )
    p.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
    add_scan_options(p)
    return p


class _RateColumn(ProgressColumn):
    """Items scanned per second in this run and the counts per status."""

    def render(self, task: Task) -> Text:
        state: BatchProgress | None = task.fields.get("state")
        if state is None:
            return Text("")
        rate = state.scanned / max(state.elapsed_s, 1e-9)
        counts = " ".join(f"{k} {v}" for k, v in sorted(state.counts.items()))
        extra = f" skipped {state.skipped}" if state.skipped else ""
        return Text(f"{rate:.2f} it/s{extra}  {counts}", style="cyan")


def summary_table(summary: BatchSummary) -> Table:
    """Counts per final status, throughput and where the results are."""
    data = summary.to_dict()
    table = Table(title="fakescope batch", show_header=True)
    table.add_column("status")
    table.add_column("items", justify="right")
    for status, count in data["counts"].items():
        style = "red" if status in ("error", "crash", "timeout", "memory") else ""
        table.add_row(f"[{style}]{status}[/]" if style else status, str(count))
    table.add_section()
    table.add_row("items", str(data["items"]))
    table.add_row("skipped (done before)", str(data["skipped"]))
    table.add_row("scanned this run", f"{data['scanned']} ({data['retried']} retries)")
    table.add_row("items/min", f"{data['items_per_min']:.1f} ({data['workers']} worker(s))")
    table.add_row("elapsed", f"{data['elapsed_s']:.1f} s")
    table.add_row("results", f"{data['out']}/ (scores/*.parquet, verdicts/*.jsonl)")
    return table


def run(args: argparse.Namespace) -> int:
    """``fakescope batch``: 0 when every item got a result, 1 when some failed."""
    from fakescope._extras import require

    # Parquet output always; Ray only with --ray (the backend names the extra itself)
    require("batch", "fakescope batch", ("pyarrow",))
    from fakescope.batch import BatchOptions, collect_items, run_batch
    from fakescope.cli._common import UsageError, config_overrides
    from fakescope.config import ScanConfig
    from fakescope.errors import InputError

    if args.retries < 0:
        raise UsageError("--retries must be >= 0")
    config = ScanConfig.from_mapping(config_overrides(args))
    try:
        items = collect_items(args.inputs)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not items:
        raise UsageError("no input files found")
    flags = ("workers", "retries", "timeout_s", "max_memory_mb", "shard_size", "ray")
    options = BatchOptions(**{name: getattr(args, name) for name in flags})
    err = Console(stderr=True)
    columns = (
        TextColumn("batch"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        TextColumn("eta"),
        TimeRemainingColumn(),
        _RateColumn(),
    )
    with Progress(*columns, console=err, disable=args.quiet or not err.is_terminal) as bar:
        task = bar.add_task("batch", total=len(items), state=None)

        def show(state: BatchProgress) -> None:
            bar.update(task, completed=state.finished, state=state)

        summary = run_batch(items, config, args.out, options, on_progress=show)
    if args.json:
        sys.stdout.write(json.dumps(summary.to_dict()) + "\n")
    else:
        from fakescope.cli._common import stdout_console

        stdout_console().print(summary_table(summary))
    return 0 if summary.ok else _FAILED_EXIT
