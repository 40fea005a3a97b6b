"""Stages 7-8 of a scan, none of which changes a probability: attribution, other evidence,
identity, heatmaps and thumbnails (:class:`Outputs`, mixed into the Scanner). A failure of one
becomes a note on the verdict, never an error."""

from __future__ import annotations

import dataclasses
import hashlib
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fakescope.config import ScanConfig
from fakescope.inference._evidence import attribute_tracks, identify_tracks, track_evidence
from fakescope.inference._found import _Clock, _Faces
from fakescope.inference._heatmaps import (
    backproject,
    heatmap_figure,
    peak_region,
    write_jpeg,
    write_overlay,
)
from fakescope.models import Attributor, Detector, TrackEvidenceModel
from fakescope.types import Track, TrackVerdict, display_path

if TYPE_CHECKING:
    from fakescope.calibration import Calibrator
    from fakescope.identity import TrackIdentifier

__all__ = ["Outputs", "media_key"]


def media_key(path: Path) -> str:
    """A file-name stem unique to one input: its stem and a hash of its absolute path (so
    ``a/x.mp4`` and ``b/x.mp4`` never overwrite each other's heatmaps or thumbnails)."""
    digest = hashlib.sha1(str(path.resolve()).encode("utf-8", "surrogateescape")).hexdigest()
    stem = display_path(path.stem[:60])[0]  # valid UTF-8 whatever the name's encoding
    return f"{stem}-{digest[:10]}"


class Outputs:
    """The optional stages of a scan (needs the Scanner's models and configuration)."""

    config: ScanConfig
    detector: Detector
    calibrators: dict[str, Calibrator]
    attributor: Attributor | None
    evidence: list[TrackEvidenceModel]
    identifier: TrackIdentifier | None

    def _optional_stages(
        self,
        path: Path,
        tracks: Sequence[Track],
        verdicts: tuple[TrackVerdict, ...],
        faces: _Faces,
        maps: dict[int, npt.NDArray[np.float64]],
        clock: _Clock,
        notes: list[str],
    ) -> tuple[TrackVerdict, ...]:
        """Stages 7-8, none of which changes a face's probability: attribution, other evidence,
        identity, heatmaps, thumbnails. A failure of one adds a note to ``notes`` and leaves
        the verdict as it was; it never turns a finished verdict into an error."""
        start = time.perf_counter()
        stages: list[tuple[str, Callable[[tuple[TrackVerdict, ...]], tuple[TrackVerdict, ...]]]]
        stages = []
        if self.attributor is not None:
            attributor = self.attributor
            stages.append(
                ("attribution", lambda v: attribute_tracks(attributor, tracks, v, faces.crops))
            )
        if self.evidence:
            stages.append(
                (
                    "evidence",
                    lambda v: track_evidence(self.evidence, tracks, v, faces.seen, faces.times),
                )
            )
        if self.identifier is not None:
            identifier = self.identifier
            stages.append(
                ("identity", lambda v: identify_tracks(identifier, tracks, v, faces.seen))
            )
        after = [
            ("heatmaps", lambda v: self.draw_heatmaps(path, tracks, v, faces, maps)),
            ("thumbnails", lambda v: self.write_thumbnails(path, tracks, v, faces)),
        ]
        for k, (name, stage) in enumerate([*stages, *after]):
            if k == len(stages):
                start = clock.add("evidence", start)
            try:
                verdicts = tuple(stage(verdicts))
            except Exception as exc:  # optional: the verdict stands without it
                notes.append(f"{name} failed and were left out: {type(exc).__name__}: {exc}")
        return verdicts

    def draw_heatmaps(
        self,
        path: Path,
        tracks: Sequence[Track],
        verdicts: Sequence[TrackVerdict],
        faces: _Faces,
        maps: dict[int, npt.NDArray[np.float64]],
    ) -> tuple[TrackVerdict, ...]:
        """Stage 7 (optional): per track, the most suspicious frame's map drawn on the frame
        beside the enlarged face, captioned with the track's calibrated probability, written as
        ``<heatmaps_dir>/<media_key>_track<id>.png``."""
        if not maps or self.config.heatmaps_dir is None:
            return tuple(verdicts)
        out_dir = Path(self.config.heatmaps_dir)
        size = self.detector.config.input_size
        done = []
        for track, verdict in zip(tracks, verdicts, strict=True):
            best = max(verdict.frames, key=lambda s: s.raw_score)
            face = next(f for f in track.faces if f.frame_index == best.frame_index)
            frame = faces.images[best.frame_index]
            heat = backproject(
                maps[id(face)], faces.crops[id(face)].matrix, size, (frame.shape[0], frame.shape[1])
            )
            p = verdict.fake_probability
            scale = "calibrated" if self.calibrators else "uncalibrated score"
            caption = f"face {track.track_id + 1}: fake probability {p:.0%} ({scale})"
            png = write_overlay(
                out_dir / f"{media_key(path)}_track{track.track_id}.png",
                heatmap_figure(frame, heat, face.box, p, caption=caption),
            )
            done.append(
                dataclasses.replace(verdict, heatmap=str(png), peak_region=peak_region(heat))
            )
        return tuple(done)

    def write_thumbnails(
        self,
        path: Path,
        tracks: Sequence[Track],
        verdicts: Sequence[TrackVerdict],
        faces: _Faces,
    ) -> tuple[TrackVerdict, ...]:
        """Stage 8 (optional): per track, a small JPEG of the face in its most suspicious frame,
        written as ``<thumbnails_dir>/<media_key>_track<id>.jpg``."""
        if self.config.thumbnails_dir is None:
            return tuple(verdicts)
        out_dir = Path(self.config.thumbnails_dir)
        done = []
        for track, verdict in zip(tracks, verdicts, strict=True):
            best = max(verdict.frames, key=lambda s: s.raw_score)
            face = next(f for f in track.faces if f.frame_index == best.frame_index)
            jpg = write_jpeg(
                out_dir / f"{media_key(path)}_track{track.track_id}.jpg", faces.thumbs[id(face)]
            )
            done.append(dataclasses.replace(verdict, thumbnail=str(jpg)))
        return tuple(done)
