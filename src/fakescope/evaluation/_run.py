"""Run detectors over dataset items into a :class:`ScoreTable`; nothing is dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fakescope.data import MediaItem
from fakescope.evaluation._scores import MEDIA_LEVEL, ScoreRow, ScoreTable
from fakescope.inference import Scanner
from fakescope.types import Status, Verdict

__all__ = ["Failure", "score_items", "verdict_rows"]


@dataclass(frozen=True)
class Failure:
    """An item a detector abstained on, with the reason (reported, never silently dropped)."""

    detector: str
    dataset: str
    media_id: str
    path: str
    status: str
    reason: str


def verdict_rows(item: MediaItem, detector: str, verdict: Verdict) -> list[ScoreRow]:
    """The item-level row plus one row per scored face crop (calibrated ``score`` and
    ``raw_score`` each; the item's compression level on every row)."""
    label = 1 if item.label == "fake" else 0
    p = verdict.fake_probability
    ok = verdict.status is Status.OK and p is not None
    score = p if ok and p is not None else float("nan")
    raw = verdict.raw_score if ok and verdict.raw_score is not None else float("nan")
    compression = item.compression or ""
    rows = [
        ScoreRow(
            item.media_id,
            MEDIA_LEVEL,
            MEDIA_LEVEL,
            detector,
            float(score),
            label,
            item.method,
            item.dataset,
            str(verdict.status),
            compression,
            float(raw),
        )
    ]
    for track in verdict.tracks:
        rows.extend(
            ScoreRow(
                item.media_id,
                track.track_id,
                s.frame_index,
                detector,
                s.fake_probability,
                label,
                item.method,
                item.dataset,
                compression=compression,
                raw_score=s.raw_score,
            )
            for s in track.frames
        )
    return rows


def score_items(
    items: Sequence[MediaItem],
    scanners: Mapping[str, Scanner],
    on_item: Callable[[MediaItem, str, Verdict], None] | None = None,
) -> tuple[ScoreTable, list[Failure]]:
    """Scan every item with every detector. Abstentions become NaN rows and Failures."""
    table = ScoreTable()
    failures: list[Failure] = []
    for item in items:
        for name, scanner in scanners.items():
            verdict = scanner.scan(item.path)
            table.extend(verdict_rows(item, name, verdict))
            if verdict.status is not Status.OK:
                failures.append(
                    Failure(
                        name,
                        item.dataset,
                        item.media_id,
                        str(item.path),
                        str(verdict.status),
                        verdict.reason,
                    )
                )
            if on_item is not None:
                on_item(item, name, verdict)
    return table, failures
