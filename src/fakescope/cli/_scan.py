"""``fakescope scan``: a rich table (or JSON Lines) with a progress bar on stderr."""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from typing import TYPE_CHECKING

from fakescope.cli._common import UsageError, stderr_progress, stdout_console
from fakescope.config import ScanConfig
from fakescope.errors import InputError
from fakescope.inference import Scanner
from fakescope.io import expand_inputs
from fakescope.types import Label, OverallLabel, Status, Verdict, display_path

if TYPE_CHECKING:  # rich is imported when a table is printed, not for --json
    from rich.table import Table

__all__ = ["run_scan", "synthesis_cell", "track_lines", "verdict_table"]

_STYLE = {Label.FAKE: "bold red", Label.REAL: "green", Label.UNCERTAIN: "yellow"}


def synthesis_cell(verdict: Verdict) -> str:
    """The synthesis column: its label and probability (and, for a generated image, the
    generator family it resembles, without a percentage: every one shown is a probability of
    fake), its status when it abstained, "-"
    when the synthesis detector was off."""
    synth = verdict.synthesis
    if synth is None:
        return "-"
    if synth.status is not Status.OK or synth.fake_probability is None:
        return f"[yellow]{synth.status}[/]"
    cell = f"[{_STYLE[synth.label]}]{synth.label}[/] {synth.fake_probability:.1%}"
    if synth.family is not None:
        cell += f"\nfamily: {synth.family.name}"
    return cell


def track_lines(verdict: Verdict) -> list[str]:
    """Per face, what else was said about it: the manipulation family a fake face resembles
    (``--attribution``), whose face it is (``--identity``/``--gallery``) and each evidence
    model's judgement with its top findings."""
    lines: list[str] = []
    for t in verdict.tracks:
        face = f"face {t.track_id + 1}"
        if t.attribution is not None:
            a = t.attribution
            lines.append(f"{face} resembles {a.family} ({a.method})")
        if t.identity is not None:
            i = t.identity
            who = f"person {i.person + 1}"
            if i.name is not None and i.same_person_probability is not None:
                who += (
                    f", looks like {i.name} "
                    f"({i.same_person_probability:.0%} probability it is the same person)"
                )
            elif i.closest is not None:
                who += f", not in the gallery (closest {i.closest}, distance {i.distance:.2f})"
            lines.append(f"{face} is {who}")
        for e in t.evidence:
            p = "no score" if e.fake_probability is None else f"{e.fake_probability:.0%} fake"
            found = "; ".join(e.findings[:3])
            lines.append(f"{face} {e.name}: {p}" + (f" - {found}" if found else ""))
    return lines


_OVERALL_STYLE = {
    OverallLabel.MANIPULATED: "bold red",
    OverallLabel.GENERATED: "bold red",
    OverallLabel.AUTHENTIC: "green",
    OverallLabel.UNCERTAIN: "yellow",
    OverallLabel.NO_VERDICT: "dim",
}


def verdict_table(verdicts: Sequence[Verdict]) -> Table:
    """One row per input: first the overall verdict (is the media authentic, and if not,
    manipulated or generated?) and its probability of not being authentic; then the face
    question (label, probability of manipulation, faces), the whole-image synthesis question,
    the input's status and the reasons. Every percentage is a probability of fake."""
    from rich.markup import escape
    from rich.table import Table

    table = Table(title="fakescope scan", show_lines=False)
    synthesis = any(v.synthesis is not None for v in verdicts)
    columns = ["input", "verdict", "not authentic", "face manipulated", "faces"]
    columns += ["generated (whole image)"] if synthesis else []
    for column in (*columns, "status", "reason"):
        table.add_column(column, overflow="fold")
    for v in verdicts:
        overall = v.overall
        o_prob = "-" if overall.probability is None else f"{overall.probability:.1%}"
        face = (
            "-"
            if v.fake_probability is None
            else f"[{_STYLE[v.label]}]{v.label}[/] {v.fake_probability:.1%}"
        )
        faces = (
            ", ".join(f"face {t.track_id + 1}: {t.fake_probability:.0%}" for t in v.tracks) or "-"
        )
        status_style = "" if v.status is Status.OK else "yellow"
        reason = escape(display_path(v.reason)[0])
        if v.synthesis is not None:
            reason += f"\nsynthesis: {escape(display_path(v.synthesis.reason)[0])}"
        reason += "".join(f"\n{escape(line)}" for line in track_lines(v))
        reason += "".join(f"\nnote: {escape(display_path(n)[0])}" for n in v.notes)
        table.add_row(
            display_path(v.path)[0],
            f"[{_OVERALL_STYLE[overall.label]}]{overall.label}[/]",
            o_prob,
            face,
            faces,
            *([synthesis_cell(v)] if synthesis else []),
            f"[{status_style}]{v.status}[/]" if status_style else str(v.status),
            reason,
        )
    return table


def run_scan(paths: Sequence[str], config: ScanConfig, as_json: bool) -> int:
    try:
        files = expand_inputs(paths)
    except InputError as exc:
        raise UsageError(str(exc)) from None
    if not files:
        raise UsageError("no input files found")
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
