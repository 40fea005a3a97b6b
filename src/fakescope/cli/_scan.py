"""``fakescope scan``: a rich table (or JSON Lines) with a progress bar on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence

from rich.table import Table

from fakescope.config import ScanConfig
from fakescope.errors import InputError
from fakescope.inference import Scanner
from fakescope.io import expand_inputs
from fakescope.types import Label, Status, Verdict, display_path

__all__ = ["run_scan", "verdict_table"]

_STYLE = {Label.FAKE: "bold red", Label.REAL: "green", Label.UNCERTAIN: "yellow"}


def verdict_table(verdicts: Sequence[Verdict]) -> Table:
    """One row per input: status, decision, probability, faces and the reason."""
    table = Table(title="fakescope scan", show_lines=False)
    for column in ("input", "status", "verdict", "fake prob.", "faces", "reason"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        prob = "-" if v.fake_probability is None else f"{v.fake_probability:.1%}"
        faces = (
            ", ".join(f"face {t.track_id + 1}: {t.fake_probability:.0%}" for t in v.tracks) or "-"
        )
        status_style = "" if v.status is Status.OK else "yellow"
        table.add_row(
            display_path(v.path)[0],
            f"[{status_style}]{v.status}[/]" if status_style else str(v.status),
            f"[{_STYLE[v.label]}]{v.label}[/]",
            prob,
            faces,
            display_path(v.reason)[0],
        )
    return table


def run_scan(paths: Sequence[str], config: ScanConfig, as_json: bool) -> int:
    try:
        files = expand_inputs(paths)
    except InputError as exc:
        from fakescope.cli._main import UsageError

        raise UsageError(str(exc)) from None
    if not files:
        from fakescope.cli._main import UsageError

        raise UsageError("no input files found")
    from fakescope.cli._main import stderr_progress, stdout_console

    scanner = Scanner(config)
    verdicts: list[Verdict] = []
    with stderr_progress() as bar:
        overall = bar.add_task("inputs", total=len(files))
        frames = bar.add_task("frames", total=config.num_frames)
        for path in files:
            bar.update(frames, description=display_path(path.name[:40])[0], completed=0)

            def on_frame(done: int, total: int) -> None:
                bar.update(frames, completed=done, total=max(total, done))

            verdict = scanner.scan(path, progress=on_frame)
            verdicts.append(verdict)
            if as_json:
                sys.stdout.write(json.dumps(verdict.to_dict()) + "\n")
                sys.stdout.flush()
            bar.advance(overall)
    if not as_json:
        stdout_console().print(verdict_table(verdicts))
    return 0
