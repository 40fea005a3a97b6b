"""Run detectors over dataset items into a :class:`ScoreTable`; nothing is dropped."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from fakescope.data import MediaItem
from fakescope.evaluation._scores import MEDIA_LEVEL, ScoreRow, ScoreTable
from fakescope.inference import FaceMemo, Scanner
from fakescope.types import Status, Verdict

__all__ = [
    "EVIDENCE_PREFIX",
    "OVERALL_PREFIX",
    "SYNTHESIS_PREFIX",
    "Failure",
    "evidence_rows",
    "overall_row",
    "score_items",
    "synthesis_row",
    "verdict_rows",
]

SYNTHESIS_PREFIX = "synthesis:"
"""A whole-image synthesis verdict is a detector of its own in the score table:
``synthesis:<model name>`` (one item-level row per item, scored once whatever the face
detectors)."""

EVIDENCE_PREFIX = "evidence:"
"""A track evidence model is a detector of its own in the score table: ``evidence:<name>``,
one item-level row per item (the highest probability among the item's face tracks, as for
the face verdict), NaN when it abstained or could not judge any track."""


OVERALL_PREFIX = "overall:"
"""The overall verdict is a detector of its own in the score table: ``overall:<face
detector>`` (one item-level row per item and face detector, when the scan also ran the
synthesis detector): the probability that the media is not authentic, NaN for
``no_verdict``; its label counts any fake (manipulated or generated) as positive."""


@dataclass(frozen=True)
class Failure:
    """An item a detector abstained on, with the reason (reported, never silently dropped)."""

    detector: str
    dataset: str
    media_id: str
    path: str
    status: str
    reason: str


def _item_row(
    item: MediaItem, detector: str, status: object, score: float | None, raw: float | None
) -> ScoreRow:
    """The item-level row of ``item`` for ``detector`` (NaN for a missing score)."""
    return ScoreRow(
        item.media_id,
        MEDIA_LEVEL,
        MEDIA_LEVEL,
        detector,
        float("nan") if score is None else float(score),
        1 if item.label == "fake" else 0,
        item.method,
        item.dataset,
        str(status),
        item.compression or "",
        float("nan") if raw is None else float(raw),
    )


def verdict_rows(item: MediaItem, detector: str, verdict: Verdict) -> list[ScoreRow]:
    """The item-level row plus one row per scored face crop (calibrated ``score`` and
    ``raw_score`` each; the item's compression level on every row)."""
    ok = verdict.status is Status.OK and verdict.fake_probability is not None
    head = _item_row(
        item,
        detector,
        verdict.status,
        verdict.fake_probability if ok else None,
        verdict.raw_score if ok else None,
    )
    rows = [head]
    for track in verdict.tracks:
        rows.extend(
            ScoreRow(
                item.media_id,
                track.track_id,
                s.frame_index,
                detector,
                s.fake_probability,
                head.label,
                item.method,
                item.dataset,
                compression=head.compression,
                raw_score=s.raw_score,
            )
            for s in track.frames
        )
    return rows


def evidence_rows(item: MediaItem, verdict: Verdict, names: Sequence[str]) -> list[ScoreRow]:
    """The item-level row of each evidence model ``names`` (those the scan ran): the highest
    of its track probabilities; NaN with the verdict's status when the scan abstained, with
    ``error`` when the model scored no track."""
    rows = []
    for name in names:
        found = [
            e.fake_probability
            for t in verdict.tracks
            for e in t.evidence
            if e.name == name and e.fake_probability is not None
        ]
        best = max(found) if found else None
        status = Status.ERROR if verdict.status is Status.OK and not found else verdict.status
        rows.append(_item_row(item, EVIDENCE_PREFIX + name, status, best, best))
    return rows


def synthesis_row(item: MediaItem, verdict: Verdict) -> ScoreRow | None:
    """The item-level row of ``verdict``'s synthesis block (None when it has none): the
    calibrated "generated" probability, NaN when the synthesis detector abstained."""
    synth = verdict.synthesis
    if synth is None:
        return None
    ok = synth.status is Status.OK and synth.fake_probability is not None
    name = synth.model.name if synth.model is not None else "unknown"
    return _item_row(
        item,
        SYNTHESIS_PREFIX + name,
        synth.status,
        synth.fake_probability if ok else None,
        synth.raw_score if ok else None,
    )


def overall_row(item: MediaItem, detector: str, verdict: Verdict) -> ScoreRow | None:
    """The item-level row of ``verdict``'s overall verdict under face detector ``detector``
    (None when the scan had no synthesis verdict: the overall verdict is then the face
    verdict's own row). Its status is ``ok`` whenever the overall verdict has a probability
    (one of the two questions was answered), else the input's status."""
    if verdict.synthesis is None:
        return None
    p = verdict.overall.probability
    return _item_row(
        item, OVERALL_PREFIX + detector, Status.OK if p is not None else verdict.status, p, p
    )


def _failure(item: MediaItem, detector: str, status: str, reason: str) -> Failure:
    return Failure(detector, item.dataset, item.media_id, str(item.path), status, reason)


def score_items(
    items: Sequence[MediaItem],
    scanners: Mapping[str, Scanner],
    on_item: Callable[[MediaItem, str, Verdict], None] | None = None,
) -> tuple[ScoreTable, list[Failure]]:
    """Scan every item with every detector. Abstentions become NaN rows and Failures.
    Scanners that find faces the same way find them once per item (:class:`FaceMemo`)."""
    table = ScoreTable()
    failures: list[Failure] = []
    for item in items:
        synthesis_done: set[str] = set()
        memo = FaceMemo()
        for name, scanner in scanners.items():
            verdict = scanner.scan(item.path, memo=memo)
            table.extend(verdict_rows(item, name, verdict))
            whole = overall_row(item, name, verdict)
            table.extend([] if whole is None else [whole])
            for row in evidence_rows(item, verdict, scanner.config.evidence):
                if row.detector not in synthesis_done:  # once per item, like synthesis
                    synthesis_done.add(row.detector)
                    table.extend([row])
            synth = synthesis_row(item, verdict)
            if synth is not None and synth.detector not in synthesis_done:
                synthesis_done.add(synth.detector)
                table.extend([synth])
                if synth.status != str(Status.OK) and verdict.synthesis is not None:
                    failures.append(
                        _failure(item, synth.detector, synth.status, verdict.synthesis.reason)
                    )
            if verdict.status is not Status.OK:
                failures.append(_failure(item, name, str(verdict.status), verdict.reason))
            if on_item is not None:
                on_item(item, name, verdict)
    return table, failures
