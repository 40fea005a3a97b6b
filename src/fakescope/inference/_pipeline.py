"""The scan pipeline: it only chains the public stages and turns every failure into a status.

media -> frames (io.open_media) -> faces (face detector, filter_faces) -> aligned crops
-> tracks (link_tracks) -> crop scores (detector) -> per-track and per-input verdict.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fakescope.config import ScanConfig
from fakescope.decision import bayes_threshold, decide_label
from fakescope.errors import ConfigError, FakescopeError
from fakescope.faces import FACE_DETECTORS, FaceDetector, align_face, filter_faces, link_tracks
from fakescope.inference._aggregate import AGGREGATORS, frame_max_scores
from fakescope.inference._heatmaps import (
    backproject,
    face_thumbnail,
    overlay,
    peak_region,
    write_jpeg,
    write_overlay,
)
from fakescope.inference._prefetch import prefetch
from fakescope.io import Limits, Sampling, open_media
from fakescope.models import Detector, create_detector
from fakescope.types import (
    CropScore,
    DecisionInfo,
    FaceBox,
    FaceCrop,
    Frame,
    Label,
    MediaInfo,
    Status,
    Track,
    TrackVerdict,
    Verdict,
)

if TYPE_CHECKING:
    from fakescope.calibration import IsotonicCalibrator, LogitCalibrator

__all__ = ["STAGES", "Scanner", "decide_label"]

STAGES = ("decode", "detect", "landmarks", "align", "classify", "total")
RULE_COST = "cost-minimising threshold for the calibrated probability"
RULE_WEIGHT = "fixed threshold from the weight config"
RULE_OVERRIDE = "fixed threshold from --threshold (ScanConfig.threshold)"
Progress = Callable[[int, int], None]


@dataclass
class _Clock:
    ms: dict[str, float] = field(default_factory=lambda: dict.fromkeys(STAGES, 0.0))

    def add(self, stage: str, start: float) -> float:
        now = time.perf_counter()
        self.ms[stage] += (now - start) * 1000.0
        return now


@dataclass
class _Faces:
    """What the per-frame loop collects: faces per frame, their crops, and size facts."""

    per_frame: list[list[FaceBox]] = field(default_factory=list)
    crops: dict[int, FaceCrop] = field(default_factory=dict)  # id(FaceBox) -> crop
    times: dict[int, float] = field(default_factory=dict)  # frame index -> time_s
    frames_seen: int = 0
    largest_small: float = 0.0
    images: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)  # for heatmaps
    thumbs: dict[int, npt.NDArray[np.uint8]] = field(default_factory=dict)  # id(FaceBox) -> RGB


class Scanner:
    """Holds the loaded models and scans inputs one at a time (reuse it for a batch)."""

    def __init__(self, config: ScanConfig | None = None) -> None:
        self.config = config or ScanConfig()
        self.detector: Detector = create_detector(self.config.detector, threads=self.config.threads)
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
        self.video_aggregate = AGGREGATORS.create(self.config.video_aggregator)
        wcfg = self.detector.config
        self.calibrator: LogitCalibrator | IsotonicCalibrator | None = None
        if wcfg.calibration is not None:
            from fakescope.calibration import calibrator_from_dict

            self.calibrator = calibrator_from_dict(wcfg.calibration)
        self.threshold = self._threshold()

    def _threshold(self) -> float:
        cfg = self.config
        if cfg.threshold is not None:
            return cfg.threshold
        if self.calibrator is not None:
            return bayes_threshold(cfg.cost_miss, cfg.cost_false_alarm, cfg.prior_fake)
        return self.detector.config.threshold

    @property
    def decision(self) -> DecisionInfo:
        """The threshold, band and rule this scanner decides labels by (attached to verdicts)."""
        cfg = self.config
        if cfg.threshold is not None:
            rule = RULE_OVERRIDE
        elif self.calibrator is not None:
            rule = RULE_COST
        else:
            rule = RULE_WEIGHT
        return DecisionInfo(
            threshold=self.threshold,
            uncertain_band=cfg.uncertain_band,
            calibrated=self.calibrator is not None,
            cost_miss=cfg.cost_miss,
            cost_false_alarm=cfg.cost_false_alarm,
            prior_fake=cfg.prior_fake,
            rule=rule,
        )

    def calibrate(self, score: float) -> float:
        """The weight's calibrator applied to a track or input score (identity without one)."""
        if self.calibrator is None:
            return score
        return float(self.calibrator.predict_proba([score])[0, 1])

    # -- stages ------------------------------------------------------------------------------
    def open(self, path: Path) -> tuple[MediaInfo, Iterator[Frame]]:
        """Stage 1: probe the input and return its lazily decoded, evenly sampled frames."""
        cfg = self.config
        return open_media(
            path,
            Sampling(num_frames=cfg.num_frames, fps=cfg.fps),
            Limits(
                max_bytes=cfg.max_bytes,
                max_pixels=cfg.max_pixels,
                max_duration_s=cfg.max_duration_s,
            ),
        )

    def find_faces(
        self, frames: Iterator[Frame], clock: _Clock, total: int, progress: Progress | None = None
    ) -> _Faces:
        """Stages 2-4: detect faces (with landmarks), drop noise, align each kept face."""
        cfg = self.config
        wcfg = self.detector.config
        out = _Faces()
        hints: list[FaceBox] = []
        start = time.perf_counter()
        for position, frame in enumerate(frames):
            start = clock.add("decode", start)
            mesh_before = self.face_detector.landmark_seconds
            raw = self.face_detector.detect(
                frame.image,
                frame.index,
                [f.box for f in hints],
                full_scan=position % cfg.full_scan_every == 0,
            )
            kept = filter_faces(raw, cfg.min_face_px)
            kept = sorted(kept, key=lambda f: f.width * f.height, reverse=True)[: cfg.max_faces]
            if raw and not kept:
                out.largest_small = max(out.largest_small, max(f.height for f in raw))
            mesh_s = self.face_detector.landmark_seconds - mesh_before
            start = clock.add("detect", start)
            clock.ms["detect"] -= mesh_s * 1000.0
            clock.ms["landmarks"] += mesh_s * 1000.0
            for face in kept:
                out.crops[id(face)] = align_face(
                    frame.image, face, wcfg.input_size, wcfg.margin, time_s=frame.time_s
                )
                if cfg.thumbnails_dir is not None:  # small, so every face keeps one
                    out.thumbs[id(face)] = face_thumbnail(frame.image, face.box)
            start = clock.add("align", start)
            out.per_frame.append(kept)
            out.times[frame.index] = frame.time_s
            if self.wants_maps and kept:
                out.images[frame.index] = frame.image
            out.frames_seen += 1
            hints = kept
            if progress is not None:
                progress(position + 1, total)
        return out

    @property
    def wants_maps(self) -> bool:
        """Heatmaps were asked for and the detector has a segmentation output."""
        return self.config.heatmaps_dir is not None and self.detector.has_maps

    def score(
        self, tracks: Sequence[Track], faces: _Faces
    ) -> tuple[list[CropScore], dict[int, npt.NDArray[np.float64]]]:
        """Stage 5: run the detector on every aligned crop of every track. Also returns the
        crop-space maps by ``id(FaceBox)`` when heatmaps are wanted (else empty)."""
        members = [(t.track_id, f) for t in tracks for f in t.faces]
        if not members:
            return [], {}
        batch = np.stack([faces.crops[id(f)].image for _, f in members])
        maps: dict[int, npt.NDArray[np.float64]] = {}
        if self.wants_maps:
            probs, crop_maps = self.detector.predict_maps(batch)
            if crop_maps is not None:
                maps = {id(f): m for (_, f), m in zip(members, crop_maps, strict=True)}
        else:
            probs = self.detector.predict(batch)
        scores = [
            CropScore(tid, f.frame_index, faces.times[f.frame_index], f.box, float(p))
            for (tid, f), p in zip(members, probs, strict=True)
        ]
        return scores, maps

    def draw_heatmaps(
        self,
        path: Path,
        tracks: Sequence[Track],
        verdicts: Sequence[TrackVerdict],
        faces: _Faces,
        maps: dict[int, npt.NDArray[np.float64]],
    ) -> tuple[TrackVerdict, ...]:
        """Stage 7 (optional): per track, the most suspicious frame's map drawn on the frame,
        written as ``<heatmaps_dir>/<input stem>_track<id>.png``."""
        if not maps or self.config.heatmaps_dir is None:
            return tuple(verdicts)
        out_dir = Path(self.config.heatmaps_dir)
        size = self.detector.config.input_size
        done = []
        for track, verdict in zip(tracks, verdicts, strict=True):
            best = max(verdict.frames, key=lambda s: s.fake_probability)
            face = next(f for f in track.faces if f.frame_index == best.frame_index)
            frame = faces.images[best.frame_index]
            heat = backproject(
                maps[id(face)], faces.crops[id(face)].matrix, size, (frame.shape[0], frame.shape[1])
            )
            png = write_overlay(
                out_dir / f"{path.stem}_track{track.track_id}.png",
                overlay(frame, heat, face.box, best.fake_probability),
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
        written as ``<thumbnails_dir>/<input stem>_track<id>.jpg``."""
        if self.config.thumbnails_dir is None:
            return tuple(verdicts)
        out_dir = Path(self.config.thumbnails_dir)
        done = []
        for track, verdict in zip(tracks, verdicts, strict=True):
            best = max(verdict.frames, key=lambda s: s.fake_probability)
            face = next(f for f in track.faces if f.frame_index == best.frame_index)
            jpg = write_jpeg(
                out_dir / f"{path.stem}_track{track.track_id}.jpg", faces.thumbs[id(face)]
            )
            done.append(dataclasses.replace(verdict, thumbnail=str(jpg)))
        return tuple(done)

    def decide(
        self, tracks: Sequence[Track], scores: Sequence[CropScore]
    ) -> tuple[float, Label, tuple[TrackVerdict, ...]]:
        """Stage 6: per-track scores, then the input's score from each frame's worst face."""
        band = self.config.uncertain_band
        verdicts = []
        for track in tracks:
            own = tuple(s for s in scores if s.track_id == track.track_id)
            p = self.calibrate(self.track_aggregate([s.fake_probability for s in own]))
            verdicts.append(
                TrackVerdict(track.track_id, p, decide_label(p, self.threshold, band), own)
            )
        overall = self.calibrate(self.video_aggregate(frame_max_scores(scores)))
        return overall, decide_label(overall, self.threshold, band), tuple(verdicts)

    # -- the whole chain ---------------------------------------------------------------------
    def scan(self, path: Path | str, progress: Progress | None = None) -> Verdict:
        """Scan one input. Never raises for bad input: the verdict's status says what happened."""
        path = Path(path)
        clock = _Clock()
        began = time.perf_counter()
        media: MediaInfo | None = None
        model = self.detector.info
        decision = self.decision

        def abstain(status: Status, reason: str) -> Verdict:
            clock.ms["total"] = (time.perf_counter() - began) * 1000.0
            return Verdict(
                str(path),
                status,
                reason,
                model=model,
                media=media,
                timings_ms=dict(clock.ms),
                decision=decision,
            )

        try:
            start = time.perf_counter()
            media, frames = self.open(path)
            clock.add("decode", start)
            total = 1 if media.kind == "image" else self._expected_frames(media)
            if media.kind == "video":
                frames = prefetch(frames)
            faces = self.find_faces(frames, clock, total, progress)
            if faces.frames_seen == 0:
                return abstain(Status.UNDECODABLE, "no frame could be decoded")
            tracks = link_tracks(faces.per_frame)
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
            scores, maps = self.score(tracks, faces)
            clock.add("classify", start)
            overall, label, verdicts = self.decide(tracks, scores)
            verdicts = self.draw_heatmaps(path, tracks, verdicts, faces, maps)
            verdicts = self.write_thumbnails(path, tracks, verdicts, faces)
        except FakescopeError as exc:
            return abstain(exc.status, str(exc))
        except MemoryError:
            return abstain(Status.TOO_LARGE, "ran out of memory while decoding the input")
        except Exception as exc:  # a bad item must never stop a batch; keep the reason
            return abstain(Status.ERROR, f"internal error: {type(exc).__name__}: {exc}")
        clock.ms["total"] = (time.perf_counter() - began) * 1000.0
        n_faces = sum(len(t.faces) for t in tracks)
        reason = (
            f"{len(tracks)} face track(s), {n_faces} face crop(s) in "
            f"{faces.frames_seen} sampled frame(s); threshold {self.threshold:.2f}"
        )
        return Verdict(
            str(path),
            Status.OK,
            reason,
            overall,
            label,
            verdicts,
            model,
            media,
            dict(clock.ms),
            decision,
        )

    def _expected_frames(self, media: MediaInfo) -> int:
        if self.config.fps is not None and media.duration_s:
            return max(1, int(media.duration_s * self.config.fps))
        if media.frame_count:
            return min(self.config.num_frames, media.frame_count)
        return self.config.num_frames
