"""Stages 1-4b of a scan, mixed into the :class:`~fakescope.inference.Scanner`: open the
input, find, filter and align the faces of each sampled frame (the whole-frame search and its
rule, the look back after a search finds a newcomer, the look closer around brief tracks), and
score the synthesis detector's frames on the way."""

from __future__ import annotations

import dataclasses
import functools
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from fakescope.config import ScanConfig
from fakescope.errors import AlignmentError, FakescopeError
from fakescope.faces import FaceDetector, FullScan, align_face, iou, link_tracks, split_faces
from fakescope.inference._closer import extra_times, spread
from fakescope.inference._decide import synthesis_scores
from fakescope.inference._evidence import IDENTITY_SLOT
from fakescope.inference._found import _Clock, _Faces, _SynthesisRun
from fakescope.inference._heatmaps import face_thumbnail
from fakescope.inference._overlap import ScoreAhead
from fakescope.inference._search import SearchRule
from fakescope.io import DecodeReport, Limits, Sampling, open_media
from fakescope.models import Detector, TrackEvidenceModel
from fakescope.types import FaceBox, Frame, MediaInfo, Track

if TYPE_CHECKING:
    from fakescope.identity import TrackIdentifier
    from fakescope.synthesis import SynthesisDetector

__all__ = ["SYNTHESIS_FRAMES", "FaceFinding", "Progress"]

SYNTHESIS_FRAMES = 4
"""At most this many sampled frames of a video are scored by the synthesis detector."""
Progress = Callable[[int, int], None]


class FaceFinding:
    """Opening the input and finding its faces (mixed into the Scanner)."""

    config: ScanConfig
    detector: Detector
    face_detector: FaceDetector
    synthesis: SynthesisDetector | None
    evidence: list[TrackEvidenceModel]
    identifier: TrackIdentifier | None

    @property
    def limits(self) -> Limits:
        """The input limits of the scan configuration (bytes, pixels, duration, shape, bit
        depth, frame memory) and the size frames are decoded at."""
        names = [f.name for f in dataclasses.fields(Limits)]  # ScanConfig has each
        return Limits(**{name: getattr(self.config, name) for name in names})

    # -- stages ------------------------------------------------------------------------------
    def open(
        self, path: Path, report: DecodeReport | None = None
    ) -> tuple[MediaInfo, Iterator[Frame]]:
        """Stage 1: probe the input and return its lazily decoded, evenly sampled frames
        (``report`` learns whether a video broke off early, see :class:`DecodeReport`)."""
        cfg = self.config
        return open_media(
            path,
            Sampling(num_frames=cfg.num_frames, fps=cfg.fps),
            self.limits,
            report,
        )

    def _faces_in(
        self,
        frame: Frame,
        hints: Sequence[FaceBox],
        full_scan: FullScan,
        out: _Faces,
        clock: _Clock,
        merge: bool = False,
        ahead: ScoreAhead | None = None,
    ) -> list[FaceBox]:
        """Detect, filter and align the faces of one frame into ``out``; returns them (and
        hands their crops to ``ahead``, when given, to be scored). With ``merge``, the frame was
        looked at before: only faces that overlap none of its known ones are added (and
        returned)."""
        cfg = self.config
        wcfg = self.detector.config
        start = time.perf_counter()
        mesh_before = self.face_detector.landmark_seconds
        raw = self.face_detector.detect(
            frame.image, frame.index, [f.box for f in hints], full_scan=full_scan
        )
        known = out.per_frame.get(frame.index, []) if merge else []
        if known:
            raw = [f for f in raw if all(iou(f.box, k.box) <= 0.3 for k in known)]
        split = split_faces(raw, cfg.min_face_px, cfg.confirm_presence)
        kept = sorted(split.kept, key=lambda f: f.width * f.height, reverse=True)
        out.drop("too_small", split.too_small)
        out.drop("noise", split.noise)
        out.drop("over_max_faces", max(0, len(kept) - cfg.max_faces))
        kept = kept[: cfg.max_faces]
        if raw and not kept and split.too_small:
            out.largest_small = max(out.largest_small, max(f.height for f in raw))
        mesh_s = self.face_detector.landmark_seconds - mesh_before
        start = clock.add("detect", start)
        clock.ms["detect"] -= mesh_s * 1000.0
        clock.ms["landmarks"] += mesh_s * 1000.0
        aligned: list[FaceBox] = []
        for face in kept:
            try:
                out.crops[id(face)] = align_face(
                    frame.image,
                    face,
                    wcfg.input_size,
                    wcfg.margin,
                    time_s=frame.time_s,
                    alignment=wcfg.alignment,
                )
            except AlignmentError:
                out.drop("unalignable")
                continue
            aligned.append(face)
            if cfg.thumbnails_dir is not None:  # small, so every face keeps one
                out.thumbs[id(face)] = face_thumbnail(frame.image, face.box)
            for k, model in enumerate(self.evidence):
                out.seen[(k, id(face))] = model.observe(frame.image, face)
            if self.identifier is not None:
                out.seen[(IDENTITY_SLOT, id(face))] = self.identifier.observe(frame.image, face)
        clock.add("align", start)
        if ahead is not None:
            ahead.crops(aligned, out.crops)
        out.per_frame[frame.index] = known + aligned
        out.times[frame.index] = frame.time_s
        if full_scan:  # a grid point SearchRule may skip counts too: checked, found unchanged
            out.full_scans.append(frame.index)
        if self.wants_maps and aligned:
            out.images[frame.index] = frame.image
        return aligned

    def find_faces(
        self,
        frames: Iterator[Frame],
        clock: _Clock,
        total: int,
        progress: Progress | None = None,
        synthesis: _SynthesisRun | None = None,
        ahead: ScoreAhead | None = None,
    ) -> _Faces:
        """Stages 2-4: detect faces (with landmarks), drop detection errors (counted), align
        each kept face. A whole-frame search runs every ``full_scan_every`` sampled frames, unless
        :class:`SearchRule` finds nothing changed since the last one.
        With ``synthesis``, the frames it picked are scored whole on the way. With ``ahead``,
        the crops (and the synthesis detector's frames) are scored on its thread meanwhile."""
        out = _Faces()
        hints: list[FaceBox] = []
        recent: list[Frame] = []  # sampled frames since the last whole-frame search
        rule = SearchRule(self.config.full_scan_skip, self.config.min_face_px)
        start = time.perf_counter()
        for position, frame in enumerate(frames):
            clock.add("decode", start)
            # With the rule off, a frame that follows no face is searched whole, as before
            # issue 30; with it on, only at grid points (a face found there is looked for
            # again in the frames since the last one, _look_back), and the last sampled
            # frame is one when it follows no face (for a face that came after the grid).
            grid = position % self.config.full_scan_every == 0 or (
                bool(rule.skip) and not hints and position == total - 1
            )
            full: FullScan = grid or (not hints and not rule.skip)
            if grid and rule.skip:  # decided once the faces followed into it are found
                full = functools.partial(rule.due, frame.image)
            searches = self.face_detector.searches
            found = self._faces_in(frame, hints, full, out, clock, ahead=ahead)
            searched = self.face_detector.searches != searches
            if searched:
                rule.searched(frame.image, [f.box for f in found])
            if grid:  # searched, or unchanged since the last search (rule.due)
                new = [f for f in found if all(iou(f.box, h.box) <= 0.3 for h in hints)]
                if searched and new and recent:
                    self._look_back(recent, new, out, clock, ahead)
                recent = []
            else:
                recent.append(frame)
            hints = found
            out.frames_seen += 1
            if synthesis is not None and ahead is not None:
                if position in synthesis.picks:
                    ahead.job(functools.partial(self._score_synthesis, synthesis, position, frame))
            elif synthesis is not None:
                self._score_synthesis(synthesis, position, frame, clock)
            if progress is not None:
                progress(position + 1, total)
            start = time.perf_counter()
        return out

    # -- whole-image synthesis ---------------------------------------------------------------
    def _synthesis_run(self, total: int) -> _SynthesisRun | None:
        """What the synthesis detector will score among ``total`` expected sampled frames:
        up to :data:`SYNTHESIS_FRAMES` spread evenly over them (None when it is off)."""
        if self.synthesis is None:
            return None
        count = max(1, min(SYNTHESIS_FRAMES, total))
        return _SynthesisRun(frozenset(spread(max(total, 1), count)))

    def _score_synthesis(
        self, run: _SynthesisRun, position: int, frame: Frame, clock: _Clock
    ) -> None:
        """Score ``frame`` whole when ``run`` picked its position. A failure of the synthesis
        detector is recorded in ``run`` and never reaches the face verdict."""
        if self.synthesis is None or run.error is not None or position not in run.picks:
            return
        start = time.perf_counter()
        side = min(frame.height, frame.width)
        min_side = int(self.synthesis.min_side)
        try:
            if side < min_side:
                run.too_small = (side, min_side)
            else:
                raw, family = synthesis_scores(self.synthesis, frame.image)
                run.raw.append(raw)
                if family is not None:
                    run.family.append(family)
        except Exception as exc:  # a second line of evidence: never fail the scan for it
            run.error = f"{type(exc).__name__}: {exc}"
        clock.add("synthesis", start)

    def _look_back(
        self,
        recent: Sequence[Frame],
        new: Sequence[FaceBox],
        out: _Faces,
        clock: _Clock,
        ahead: ScoreAhead | None = None,
    ) -> None:
        """A whole-frame search found ``new`` faces: look for them in the sampled frames since
        the previous search (newest first, around their boxes), so a face that entered between
        two searches is scored from its first sampled frame; stop at the first frame without
        them."""
        hints = list(new)
        for frame in reversed(recent):
            hints = self._faces_in(frame, hints, False, out, clock, merge=True, ahead=ahead)
            if not hints:
                return

    def look_closer(
        self,
        path: Path,
        media: MediaInfo,
        tracks: list[Track],
        faces: _Faces,
        clock: _Clock,
        ahead: ScoreAhead | None = None,
    ) -> list[Track]:
        """Stage 4b (videos): decode extra frames around brief face tracks, find the faces
        in them (around the track's nearest box) and link every face again. A track is never
        dropped for being brief; it gets more frames instead."""
        wanted = extra_times(self.config, tracks, faces, media.fps)  # times, faces near them
        if not wanted:
            return tracks
        from fakescope.io import read_frames_at  # videos only: PyAV is not loaded for photos

        start = time.perf_counter()
        try:
            extra = read_frames_at(path, sorted(wanted), self.limits)
        except FakescopeError:
            return tracks  # the first pass stands; a second look is a bonus
        clock.add("decode", start)
        for frame in extra:
            if frame.index in faces.per_frame:
                continue
            target = min(wanted, key=lambda t: abs(t - frame.time_s))
            self._faces_in(frame, wanted[target], False, faces, clock, ahead=ahead)
            faces.extra_frames += 1
        return link_tracks(faces.in_order())

    @property
    def wants_maps(self) -> bool:
        """Heatmaps were asked for and the detector has a segmentation output."""
        return self.config.heatmaps_dir is not None and self.detector.has_maps
