"""The scan pipeline: it only chains the public stages and turns every failure into a status.

media -> frames (io.open_media) -> faces (face detector, filter_faces) -> aligned crops
-> tracks (link_tracks) -> crop scores (detector) -> per-track and per-input verdict.
Beside it, up to 4 evenly spread sampled frames (a photo: its one image) are scored whole by
the synthesis detector as they stream past, for the input's synthesis verdict. A video's
crops and synthesis frames are scored on a worker thread while the next frames are searched
(``ScanConfig.overlap``, :mod:`fakescope.inference._overlap`), to the same numbers.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from fakescope.config import ScanConfig
from fakescope.decision import decide_label
from fakescope.errors import ConfigError, FakescopeError
from fakescope.faces import (
    FACE_DETECTORS,
    FaceDetector,
    link_tracks,
)
from fakescope.inference._aggregate import AGGREGATORS
from fakescope.inference._decide import (
    AGGREGATION_RULE,
    Decider,
    load_calibrators,
    valid_scores,
)
from fakescope.inference._evidence import (
    evidence_models,
    track_identifier,
)
from fakescope.inference._finding import SYNTHESIS_FRAMES, FaceFinding, Progress
from fakescope.inference._found import STAGES, FaceMemo, _Clock, _Faces, _SynthesisRun
from fakescope.inference._outputs import Outputs, media_key
from fakescope.inference._overlap import ScoreAhead, Scored, scoring_threads
from fakescope.inference._prefetch import prefetch
from fakescope.io import DecodeReport
from fakescope.models import Detector, create_detector
from fakescope.types import (
    DETECTOR_ERROR,
    Box,
    CropScore,
    FaceBox,
    MediaInfo,
    Status,
    Track,
    TrackVerdict,
    Verdict,
)

if TYPE_CHECKING:
    from fakescope.synthesis import SynthesisDetector

__all__ = [
    "AGGREGATION_RULE",
    "STAGES",
    "SYNTHESIS_FRAMES",
    "Scanner",
    "decide_label",
    "in_source_pixels",
    "media_key",
]


class Scanner(FaceFinding, Decider, Outputs):
    """Holds the loaded models and scans inputs one at a time (reuse it for a batch)."""

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config or ScanConfig()
        self.detector: Detector = create_detector(
            self.config.detector, threads=scoring_threads(self.config)
        )
        self.face_detector: FaceDetector = FACE_DETECTORS.create(
            self.config.face_detector,
            max_side=self.config.detect_max_side,
            min_face_px=self.config.min_face_px,
        )
        if self.config.heatmaps_dir is not None and not self.detector.has_maps:
            raise ConfigError(
                f"detector {self.config.detector!r} has no segmentation output; "
                "heatmaps need a detector with a mask head"
            )
        self.track_aggregate = AGGREGATORS.create(self.config.track_aggregator)
        wcfg = self.detector.config
        self.calibrators = load_calibrators(wcfg.calibration, wcfg.name)
        self.threshold = self._threshold()
        self.synthesis: SynthesisDetector | None = None
        if self.config.synthesis_detector is not None:
            from fakescope.synthesis import create_synthesis_detector

            self.synthesis = create_synthesis_detector(self.config.synthesis_detector)
        self.synthesis_threshold = self._synthesis_threshold()
        self.attributor, self.evidence = evidence_models(self.config, wcfg)
        self.identifier = track_identifier(self.config)

    def score(
        self, tracks: Sequence[Track], faces: _Faces, scored: Scored | None = None
    ) -> tuple[list[CropScore], dict[int, npt.NDArray[np.float64]]]:
        """Stage 5: run the detector on every aligned crop of every track; each crop gets its
        raw score and its crop-level calibrated probability. A crop whose output is not a
        finite number in [0, 1] gets no score (the scan counts it as a ``detector_error``; a
        track left with no score is not scored). Also returns the
        crop-space maps by ``id(FaceBox)`` when heatmaps are wanted (else empty). The crops
        ``scored`` covers (scored beside the search, see :class:`ScoreAhead`) are not scored
        again; with any crop missing, or a failure there, every crop is scored here."""
        members = [(t.track_id, f) for t in tracks for f in t.faces]
        if not members:
            return [], {}
        maps: dict[int, npt.NDArray[np.float64]] = {}
        keys = [id(f) for _, f in members]
        if scored is not None and scored.covers(keys, self.wants_maps):
            raw = np.array([scored.raw[k] for k in keys], dtype=np.float64)
            if self.wants_maps:
                maps = {k: scored.maps[k] for k in keys}
            return self._crop_scores(members, raw, faces), maps
        batch = np.stack([faces.crops[k].image for k in keys])
        if self.wants_maps:
            raw, crop_maps = self.detector.predict_maps(batch)
            if crop_maps is not None:
                maps = {id(f): m for (_, f), m in zip(members, crop_maps, strict=True)}
        else:
            raw = self.detector.predict(batch)
        raw = np.asarray(raw, dtype=np.float64).reshape(-1)
        if raw.shape != (len(members),):
            raise ValueError(f"the detector gave {raw.size} scores for {len(members)} crops")
        return self._crop_scores(members, raw, faces), maps

    def _crop_scores(
        self,
        members: Sequence[tuple[int, FaceBox]],
        raw: npt.NDArray[np.float64],
        faces: _Faces,
    ) -> list[CropScore]:
        """The crop scores of ``members`` ((track id, face) pairs) from their ``raw``
        detector outputs: calibrated at crop level, invalid outputs left out."""
        ok = valid_scores(raw)
        probs = self.calibrate(raw[ok], self.calibration_level("image"))
        kept = [m for m, good in zip(members, ok, strict=True) if good]
        return [
            CropScore(tid, f.frame_index, faces.times[f.frame_index], f.box, float(p), float(r))
            for (tid, f), p, r in zip(kept, probs, raw[ok], strict=True)
        ]

    # -- the whole chain ---------------------------------------------------------------------
    def faces_key(self) -> tuple[Any, ...] | None:
        """What this scanner's face finding depends on (the configuration without the fields
        that only score or decide, and the detector's crop geometry); None when the scan does
        more than find faces on the way, so its faces are never shared (see
        :class:`FaceMemo`)."""
        cfg = self.config
        if (
            self.synthesis is not None
            or self.wants_maps
            or cfg.thumbnails_dir is not None
            or self.evidence
            or self.identifier is not None
        ):
            return None
        scoring_only = dataclasses.replace(
            cfg,
            detector="",
            track_aggregator="",
            threshold=None,
            uncertain_band=0.0,
            cost_miss=1.0,
            cost_false_alarm=1.0,
            prior_fake=0.5,
            threads=0,
            overlap=True,
            attribution=None,
            heatmaps_dir=None,
        )
        wcfg = self.detector.config
        return (scoring_only, wcfg.input_size, wcfg.margin, wcfg.alignment)

    def scan(
        self, path: Path | str, progress: Progress | None = None, memo: FaceMemo | None = None
    ) -> Verdict:
        """Scan one input. Never raises for bad input: the verdict's status says what happened.
        With ``memo``, faces already found in this input by a scanner that finds them the same
        way are reused (see :class:`FaceMemo`)."""
        path = Path(path)
        clock = _Clock()
        began = time.perf_counter()
        media: MediaInfo | None = None
        model = self.detector.info
        faces = _Faces()
        synthesis: _SynthesisRun | None = None
        dropped: dict[str, int] = {}  # this scan's own (faces may be shared through memo)
        notes: list[str] = []

        def abstain(status: Status, reason: str) -> Verdict:
            kind = None if media is None else media.kind
            if faces.damage:
                reason += f"; {faces.damage}"
                notes.append(faces.damage)
            synth = self.synthesis_verdict(synthesis, status, reason, kind)
            clock.ms["total"] = (time.perf_counter() - began) * 1000.0
            return Verdict(
                str(path),
                status,
                reason,
                model=model,
                media=media,
                timings_ms=dict(clock.ms),
                decision=self.decision_for(kind),
                faces_dropped=faces.dropped | dropped,
                synthesis=synth,
                notes=tuple(notes),
            )

        key = self.faces_key()
        shared = None if memo is None or key is None else (str(path.resolve()), key)
        try:
            found = None if shared is None or memo is None else memo.get(shared)
            beside: Scored | None = None
            if found is None:
                media, faces, tracks, synthesis, beside = self._find(path, clock, progress)
                if shared is not None and memo is not None:
                    memo.put(shared, (media, faces, tracks))
            else:
                media, faces, tracks = found
            if faces.frames_seen == 0:
                return abstain(Status.UNDECODABLE, "no frame could be decoded")
            if not tracks:
                if faces.largest_small > 0:
                    return abstain(
                        Status.FACE_TOO_SMALL,
                        f"faces found but all smaller than {self.config.min_face_px:g} px "
                        f"(largest {faces.largest_small:.0f} px high)",
                    )
                return abstain(
                    Status.NO_FACE, f"no face found in {faces.frames_seen} sampled frame(s)"
                )
            start = time.perf_counter()
            scores, maps = self.score(tracks, faces, beside)
            clock.add("classify", start)
            bad = sum(len(t.faces) for t in tracks) - len(scores)
            if bad:
                dropped[DETECTOR_ERROR] = bad
                scored = {s.track_id for s in scores}
                tracks = [t for t in tracks if t.track_id in scored]
                if not tracks:
                    return abstain(
                        Status.ERROR,
                        f"the face detector gave no valid score (a finite number in [0, 1]) "
                        f"for any of the {bad} face crop(s)",
                    )
            overall, label, verdicts = self.decide(tracks, scores, media.kind)
            verdicts = self._optional_stages(path, tracks, verdicts, faces, maps, clock, notes)
            verdicts = in_source_pixels(verdicts, media.frame_scale)
        except FakescopeError as exc:
            return abstain(exc.status, str(exc))
        except MemoryError:
            return abstain(Status.TOO_LARGE, "ran out of memory while decoding the input")
        except Exception as exc:  # a bad item must never stop a batch; keep the reason
            return abstain(Status.ERROR, f"internal error: {type(exc).__name__}: {exc}")
        synth = self.synthesis_verdict(synthesis, Status.OK, "", media.kind)
        if faces.damage:
            notes.append(faces.damage)
        clock.ms["total"] = (time.perf_counter() - began) * 1000.0
        worst = max(verdicts, key=lambda v: v.fake_probability)
        return Verdict(
            str(path),
            Status.OK,
            self.explain(label, verdicts, faces, dropped)
            + ("" if faces.damage is None else f"; {faces.damage}"),
            overall,
            label,
            verdicts,
            model,
            media,
            dict(clock.ms),
            self.decision_for(media.kind),
            raw_score=worst.raw_score,
            faces_dropped=faces.dropped | dropped,
            synthesis=synth,
            notes=tuple(notes),
        )

    def _find(
        self, path: Path, clock: _Clock, progress: Progress | None
    ) -> tuple[MediaInfo, _Faces, list[Track], _SynthesisRun | None, Scored | None]:
        """Stages 1-4 of one input: decode, find and align faces, link them into tracks
        (and score the synthesis detector's frames on the way). With ``overlap``, a video's
        crops are scored meanwhile: their scores come back last (else None)."""
        start = time.perf_counter()
        report = DecodeReport()
        media, frames = self.open(path, report)
        clock.add("decode", start)
        total = 1 if media.kind == "image" else self._expected_frames(media)
        ahead: ScoreAhead | None = None
        if media.kind == "video":
            frames = prefetch(frames)
            if self.config.overlap:
                ahead = ScoreAhead(self.detector, self.wants_maps)
        synthesis = self._synthesis_run(total)
        try:
            faces = self.find_faces(frames, clock, total, progress, synthesis, ahead)
            tracks = link_tracks(faces.in_order()) if faces.frames_seen else []
            if tracks and media.kind == "video":
                tracks = self.look_closer(path, media, tracks, faces, clock, ahead)
            scored = None if ahead is None else ahead.finish()
        finally:
            if ahead is not None:
                ahead.close()
                for stage, ms in ahead.clock.ms.items():
                    clock.ms[stage] += ms
        if synthesis is not None:
            synthesis.complete = True
        if report.damaged:
            faces.damage = (
                f"the video is damaged part-way ({report.detail or 'corrupt data'}): "
                f"{report.describe(media.duration_s)}; only that part was scanned"
            )
        return media, faces, tracks, synthesis, scored

    def _expected_frames(self, media: MediaInfo) -> int:
        if self.config.fps is not None and media.duration_s:
            return max(1, int(media.duration_s * self.config.fps))
        if media.frame_count:
            return min(self.config.num_frames, media.frame_count)
        return self.config.num_frames


def _unscale(box: Box, scale: float) -> Box:
    return (box[0] / scale, box[1] / scale, box[2] / scale, box[3] / scale)


def in_source_pixels(verdicts: Sequence[TrackVerdict], scale: float) -> tuple[TrackVerdict, ...]:
    """``verdicts`` with their boxes (per frame and ``peak_region``) mapped from the pixels of
    frames decoded at ``scale`` times the input's size back to the input's own pixels."""
    if scale == 1.0:
        return tuple(verdicts)
    return tuple(
        dataclasses.replace(
            v,
            frames=tuple(dataclasses.replace(f, box=_unscale(f.box, scale)) for f in v.frames),
            peak_region=None if v.peak_region is None else _unscale(v.peak_region, scale),
        )
        for v in verdicts
    )
