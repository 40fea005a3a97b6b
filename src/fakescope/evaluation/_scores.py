"""ScoreTable: every score an evaluation produced, kept so metrics and plots can be recomputed
(and detectors or runs compared) without running the models again."""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import numpy.typing as npt

from fakescope.errors import InputError

__all__ = ["MEDIA_LEVEL", "ScoreRow", "ScoreTable"]

MEDIA_LEVEL = -1
"""``track_id`` and ``frame_index`` of the row that holds an item's own (video-level) score."""


@dataclass(frozen=True)
class ScoreRow:
    """One score: a face crop's (track, frame) or, with ``MEDIA_LEVEL`` ids, the whole item's.

    ``score`` is the probability the scan reports (calibrated when the weight is): NaN when
    the item abstained (``status`` other than ``ok``); ``raw_score`` is the uncalibrated value
    behind it (a crop's network output, or an item's raw aggregate: what calibrators are fitted
    on; NaN when unknown); ``label`` is 1 for fake, 0 for real.
    """

    media_id: str
    track_id: int
    frame_index: int
    detector: str
    score: float
    label: int
    method: str
    dataset: str
    status: str = "ok"
    compression: str = ""
    raw_score: float = float("nan")

    @property
    def is_media_level(self) -> bool:
        return self.track_id == MEDIA_LEVEL and self.frame_index == MEDIA_LEVEL


_COLUMNS = [f.name for f in fields(ScoreRow)]


def _parse(raw: dict[str, str]) -> ScoreRow:
    return ScoreRow(
        media_id=raw["media_id"],
        track_id=int(raw["track_id"]),
        frame_index=int(raw["frame_index"]),
        detector=raw["detector"],
        score=float(raw["score"]),
        label=int(raw["label"]),
        method=raw["method"],
        dataset=raw["dataset"],
        status=raw["status"],
        compression=raw.get("compression") or "",
        raw_score=float(raw.get("raw_score") or "nan"),
    )


class ScoreTable:
    """An append-only list of :class:`ScoreRow` with CSV I/O and level/group selection."""

    def __init__(self, rows: Iterable[ScoreRow] = ()) -> None:
        self.rows: list[ScoreRow] = list(rows)

    def __len__(self) -> int:
        return len(self.rows)

    def extend(self, rows: Iterable[ScoreRow]) -> None:
        self.rows.extend(rows)

    def save(self, path: Path) -> Path:
        """Write CSV (one header line, one row per score; NaN for abstentions)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        with path.open("w", newline="") as fh:
            writer = csv.DictWriter(fh, fieldnames=_COLUMNS)
            writer.writeheader()
            for row in self.rows:
                writer.writerow(asdict(row))
        return path

    @classmethod
    def load(cls, path: Path) -> ScoreTable:
        """Read a table written by :meth:`save`; a missing column is an error."""
        try:
            with path.open(newline="") as fh:
                reader = csv.DictReader(fh)
                missing = (
                    set(_COLUMNS) - set(reader.fieldnames or []) - {"compression", "raw_score"}
                )
                if missing:
                    raise InputError(f"{path} is not a score table (missing {sorted(missing)})")
                rows = [_parse(raw) for raw in reader]
        except OSError as exc:
            raise InputError(f"cannot read score table {path}: {exc}") from exc
        return cls(rows)

    def detectors(self) -> list[str]:
        return sorted({r.detector for r in self.rows})

    def datasets(self) -> list[str]:
        return sorted({r.dataset for r in self.rows})

    def select(self, detector: str | None = None, dataset: str | None = None) -> ScoreTable:
        return ScoreTable(
            r
            for r in self.rows
            if (detector is None or r.detector == detector)
            and (dataset is None or r.dataset == dataset)
        )

    def raw(self) -> ScoreTable:
        """The networks' own scores: each row's ``score`` replaced by its ``raw_score``
        (abstentions stay NaN). A detector none of whose scored rows carries a raw score
        (e.g. the overall verdict) is left out. Rank metrics (AUC,
        EER, min DCF) of a detector whose calibration is not strictly increasing, e.g. a
        constant map, are only meaningful here."""
        has_raw = {r.detector for r in self.rows if not math.isnan(r.raw_score)}
        return ScoreTable(
            replace(r, score=r.raw_score if r.status == "ok" else r.score)
            for r in self.rows
            if r.detector in has_raw and (r.status != "ok" or not math.isnan(r.raw_score))
        )

    def media_rows(self) -> list[ScoreRow]:
        """The item-level rows, abstentions included."""
        return [r for r in self.rows if r.is_media_level]

    def frame_scores(
        self,
    ) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.float64], list[str], list[str]]:
        """Frame level: per item and frame, the most suspicious face. Returns labels, scores,
        the item id of each frame (for a cluster bootstrap) and the method."""
        best: dict[tuple[str, int], ScoreRow] = {}
        for r in self.rows:
            if r.is_media_level or math.isnan(r.score):
                continue
            key = (r.media_id, r.frame_index)
            if key not in best or r.score > best[key].score:
                best[key] = r
        chosen: Sequence[ScoreRow] = [best[k] for k in sorted(best)]
        return (
            np.array([r.label for r in chosen], dtype=np.int64),
            np.array([r.score for r in chosen], dtype=np.float64),
            [r.media_id for r in chosen],
            [r.method for r in chosen],
        )
