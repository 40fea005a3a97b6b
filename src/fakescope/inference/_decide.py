"""Stage 6 of a scan: from crop scores to calibrated track and input verdicts, and the
whole-image synthesis verdict. :class:`Decider` holds the thresholds and calibrators a
:class:`~fakescope.inference.Scanner` decides with.

Calibration rules (each probability maps the aggregate its calibrator was fitted on):

- every crop (a photo's face, each frame of a video) goes through the weight's ``crop`` level;
- a video's face track seen in at least ``ScanConfig.min_track_frames`` crops goes through the
  ``video`` level (fitted on whole-video aggregates); a briefer track goes through the
  ``crop`` level, so a mean of 3 crops is never read as confidently as a mean of 32;
- a calibrated weight must bring both levels (:data:`~fakescope.models.CALIBRATION_LEVELS`):
  a missing one is a :class:`~fakescope.errors.ConfigError` at load, never a silent fallback;
- a crop score that is not a finite number in [0, 1] is a detector error for that face: it is
  left out and counted (``faces_dropped["detector_error"]``), never averaged in.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fakescope.config import ScanConfig
from fakescope.decision import bayes_threshold, decide_label
from fakescope.errors import ConfigError
from fakescope.inference._aggregate import Aggregator
from fakescope.models import CALIBRATION_LEVELS, Detector
from fakescope.types import (
    CropScore,
    DecisionInfo,
    GeneratorFamily,
    Label,
    Status,
    SynthesisVerdict,
    Track,
    TrackVerdict,
)

if TYPE_CHECKING:
    from fakescope.calibration import Calibrator
    from fakescope.inference._found import _Faces, _SynthesisRun
    from fakescope.synthesis import SynthesisDetector

__all__ = ["AGGREGATION_RULE", "BRIEF_LEVEL", "Decider", "synthesis_scores", "valid_scores"]

RULE_COST = "cost-minimising threshold for the calibrated probability"
RULE_WEIGHT = "fixed threshold from the weight config"
RULE_OVERRIDE = "fixed threshold from --threshold (ScanConfig.threshold)"
AGGREGATION_RULE = (
    "input: the highest calibrated fake probability among its face tracks, so one confidently "
    "fake face makes the input fake; face track: the calibrated {track} of its crops' raw "
    "scores ({level} level; a video's track of fewer than {brief} crops: the less confident "
    "of the crop and video levels)"
)
BRIEF_LEVEL = "brief"  # a video's brief track: the less confident of the crop and video maps


def valid_scores(raw: npt.ArrayLike) -> npt.NDArray[np.bool_]:
    """Which raw detector outputs are usable scores: finite and in [0, 1]."""
    r = np.asarray(raw, dtype=np.float64)
    return np.isfinite(r) & (r >= 0.0) & (r <= 1.0)


def synthesis_scores(
    detector: SynthesisDetector, image: npt.NDArray[np.uint8]
) -> tuple[float, float | None]:
    """One whole image's raw synthesis score and, when the detector names generator families
    (a :class:`~fakescope.synthesis.FamilySynthesisDetector` whose weight has the output), its
    family logit from the same network call; else None. A non-finite or missing value raises
    ValueError."""
    from fakescope.synthesis import FamilySynthesisDetector

    family: npt.NDArray[np.float64] | None = None
    if isinstance(detector, FamilySynthesisDetector):
        raw_out, family_out = detector.score_with_family([image])
        raw = np.asarray(raw_out, dtype=np.float64)
        if family_out is not None:
            family = np.asarray(family_out, dtype=np.float64)
    else:
        raw = np.asarray(detector.score([image]), dtype=np.float64)
    if raw.shape != (1,) or not np.isfinite(raw[0]):
        raise ValueError(f"expected one finite raw score, got {raw!r}")
    if family is not None and (family.shape != (1,) or not np.isfinite(family[0])):
        raise ValueError(f"expected one finite family logit, got {family!r}")
    return float(raw[0]), None if family is None else float(family[0])


def generator_family(family_logits: Sequence[float]) -> GeneratorFamily:
    """The family of a photo's or video's scored frames: P(diffusion | generated) is the
    sigmoid of their mean family logit, named by :data:`~fakescope.types.FAMILY_BAND`."""
    z = float(np.mean(family_logits))
    return GeneratorFamily.from_probability(0.5 * (1.0 + float(np.tanh(0.5 * z))))


def load_calibrators(calibration: dict[str, object] | None, name: str) -> dict[str, Calibrator]:
    """The weight's calibrators by level; both levels or none (else :class:`ConfigError`)."""
    if not calibration:
        return {}
    missing = [level for level in CALIBRATION_LEVELS if level not in calibration]
    if missing:
        raise ConfigError(
            f"detector {name!r} is calibrated but lacks the {', '.join(missing)} level "
            f"(a calibrated weight needs {' and '.join(CALIBRATION_LEVELS)}: crops and photos "
            "go through the crop level, videos' face tracks through the video level)"
        )
    from fakescope.calibration import calibrator_from_dict

    return {level: calibrator_from_dict(data) for level, data in calibration.items()}  # type: ignore[arg-type]


class Decider:
    """Thresholds, calibrators and the decision rules of a scan (mixed into the Scanner)."""

    config: ScanConfig
    detector: Detector
    calibrators: dict[str, Calibrator]
    threshold: float
    synthesis: SynthesisDetector | None
    synthesis_threshold: float
    track_aggregate: Aggregator

    def _synthesis_threshold(self) -> float:
        """The synthesis label's threshold: the cost-minimising one (the scan's costs and
        prior) for a calibrated synthesis detector, else its own. ``--threshold`` is the face
        detector's and does not move it."""
        cfg = self.config
        if self.synthesis is None or self.synthesis.calibrated:
            return bayes_threshold(cfg.cost_miss, cfg.cost_false_alarm, cfg.prior_fake)
        return float(self.synthesis.threshold)

    def _threshold(self) -> float:
        cfg = self.config
        if cfg.threshold is not None:
            return cfg.threshold
        if self.calibrators:
            return bayes_threshold(cfg.cost_miss, cfg.cost_false_alarm, cfg.prior_fake)
        return self.detector.config.threshold

    def calibration_level(self, kind: str | None, crops: int | None = None) -> str | None:
        """The calibration a face track of ``crops`` crops of a ``kind`` ("video"/"image")
        input goes through: ``video`` for a video's track of at least ``min_track_frames``
        crops (any length when ``crops`` is None); ``brief`` for a video's shorter track (the
        less confident of the crop and video maps, :meth:`calibrate`); else ``crop`` (photos,
        and weights without a video level); None when uncalibrated."""
        if not self.calibrators:
            return None
        if kind == "video" and "video" in self.calibrators:
            brief = crops is not None and crops < self.config.min_track_frames
            return BRIEF_LEVEL if brief else "video"
        return "crop"

    def decision_for(self, kind: str | None) -> DecisionInfo:
        """The threshold, band, calibration and rules labels are decided by for an input of
        ``kind`` (attached to its verdict; ``kind`` None when the input never opened).
        ``calibration_level`` is the level of a full-length face track; each track says its
        own."""
        cfg = self.config
        if cfg.threshold is not None:
            rule = RULE_OVERRIDE
        elif self.calibrators:
            rule = RULE_COST
        else:
            rule = RULE_WEIGHT
        level = self.calibration_level(kind)
        return DecisionInfo(
            threshold=self.threshold,
            uncertain_band=cfg.uncertain_band,
            calibrated=bool(self.calibrators),
            cost_miss=cfg.cost_miss,
            cost_false_alarm=cfg.cost_false_alarm,
            prior_fake=cfg.prior_fake,
            rule=rule,
            aggregation=AGGREGATION_RULE.format(
                track=cfg.track_aggregator,
                level=level or "uncalibrated",
                brief=cfg.min_track_frames,
            ),
            calibration_level=level,
        )

    @property
    def decision(self) -> DecisionInfo:
        """:meth:`decision_for` a video."""
        return self.decision_for("video")

    def calibrate(
        self, scores: Sequence[float] | npt.NDArray[np.float64], level: str | None
    ) -> npt.NDArray[np.float64]:
        """Raw scores mapped through the weight's ``level`` calibrator (unchanged when
        ``level`` is None, i.e. an uncalibrated weight). The ``brief`` level maps each score
        through both the crop and the video calibrators and keeps the one nearer 0.5: the mean
        of a few crops is neither one crop nor a full track, so it is read no more confidently
        than either map reads it, and a brief track never outranks a full-length track of the
        same raw mean as fake."""
        raw = np.asarray(scores, dtype=np.float64)
        if level is None or raw.size == 0:
            return raw
        if level == BRIEF_LEVEL:
            crop = self.calibrate(raw, "crop")
            video = self.calibrate(raw, "video")
            nearer = np.abs(crop - 0.5) <= np.abs(video - 0.5)
            return np.where(nearer, crop, video)
        return np.asarray(self.calibrators[level].predict_proba(raw)[:, 1], dtype=np.float64)

    def synthesis_verdict(
        self,
        run: _SynthesisRun | None,
        status: Status,
        reason: str,
        kind: str | None = None,
    ) -> SynthesisVerdict | None:
        """The input's synthesis verdict from what ``run`` scored: the calibrated probability
        of its mean raw score, labelled by :func:`decide_label` with
        :attr:`synthesis_threshold` and the scan's uncertain band. When the sampled frames
        never all streamed past (the input could not be opened or decoded), it abstains
        with the input's own ``status`` and ``reason``. None when the detector is off."""
        detector = self.synthesis
        if detector is None:
            return None
        model = detector.info
        if run is None or not run.complete:
            return SynthesisVerdict(status, reason, model=model)
        if run.error is not None:
            return SynthesisVerdict(
                Status.ERROR, f"synthesis detector failed: {run.error}", model=model
            )
        if not run.raw:
            if run.too_small is not None:
                side, need = run.too_small
                return SynthesisVerdict(
                    Status.UNSUPPORTED,
                    f"image too small for the synthesis detector ({side} px, needs {need})",
                    model=model,
                )
            return SynthesisVerdict(Status.UNDECODABLE, "no frame could be decoded", model=model)
        raw = float(np.mean(run.raw))
        try:
            p = float(np.asarray(detector.probability(np.array([raw])), dtype=np.float64)[0])
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"probability {p!r} is not in [0, 1]")
        except Exception as exc:
            return SynthesisVerdict(
                Status.ERROR,
                f"synthesis detector failed: {type(exc).__name__}: {exc}",
                model=model,
            )
        band = self.config.uncertain_band
        label = decide_label(p, self.synthesis_threshold, band)
        n = len(run.raw)
        where = "the photo" if kind == "image" else f"{n} sampled frame{'s' if n != 1 else ''}"
        thr = f"threshold {self.synthesis_threshold:.2f}"
        family = None
        if label is Label.FAKE and run.family and len(run.family) == len(run.raw):
            family = generator_family(run.family)
        if label is Label.FAKE:
            text = (
                f"the whole image looks generated ({p:.0%} likely generated, from {where}, {thr})"
            )
            if family is not None and family.name != "unknown":
                kind = "a GAN" if family.name == "gan" else "a diffusion model"
                text += f"; it most resembles {kind}"
            elif family is not None:
                text += (
                    "; generator family unknown (neither a GAN nor a diffusion model stands out)"
                )
        elif label is Label.REAL:
            text = (
                f"no sign that the whole image was generated ({p:.0%} likely generated, from "
                f"{where}; {thr})"
            )
        else:
            text = (
                f"uncertain whether the whole image was generated ({p:.0%} likely generated, "
                f"from {where}, "
                f"within ±{band:.2f} of the {thr})"
            )
        return SynthesisVerdict(Status.OK, text, p, label, raw, model, n, family)

    def decide(
        self, tracks: Sequence[Track], scores: Sequence[CropScore], kind: str = "video"
    ) -> tuple[float, Label, tuple[TrackVerdict, ...]]:
        """Each track's calibrated probability (its crops' raw scores aggregated by
        ``track_aggregator``, then the calibrator for its length and the input's ``kind``, see
        :meth:`calibration_level`); the input's probability is the highest track's, so its
        label is ``fake`` as soon as one face is confidently fake. Scores must be valid (see
        :func:`valid_scores`; the scan leaves out invalid ones first): a non-finite or
        out-of-range one is a ``ValueError``, whatever the order of the tracks."""
        band = self.config.uncertain_band
        bad = [s for s in scores if not valid_scores([s.raw_score])[0]]
        if bad:
            raise ValueError(
                f"{len(bad)} crop score(s) are not finite numbers in [0, 1] "
                f"(face {bad[0].track_id + 1}: {bad[0].raw_score!r})"
            )
        verdicts = []
        for track in tracks:
            own = tuple(s for s in scores if s.track_id == track.track_id)
            if not own:
                raise ValueError(f"face track {track.track_id} has no crop score")
            raw = self.track_aggregate([s.raw_score for s in own])
            level = self.calibration_level(kind, len(own))
            p = float(self.calibrate([raw], level)[0])
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"calibrated probability {p!r} is not in [0, 1]")
            label = decide_label(p, self.threshold, band)
            verdicts.append(
                TrackVerdict(track.track_id, p, label, own, raw, calibration_level=level)
            )
        if not verdicts:
            raise ValueError("decide needs at least one face track")
        overall = max(v.fake_probability for v in verdicts)
        return overall, decide_label(overall, self.threshold, band), tuple(verdicts)

    def explain(
        self,
        label: Label,
        verdicts: Sequence[TrackVerdict],
        faces: _Faces,
        dropped: dict[str, int] | None = None,
    ) -> str:
        """The verdict's reason: which face decided it, then what was looked at and dropped.
        Faces are numbered from 1 for people (face ``n`` is ``track_id`` ``n - 1``), as on the
        page and in heatmap captions. ``dropped`` adds this scan's own dropped faces (e.g.
        detector errors) to those found while finding faces."""
        worst = max(verdicts, key=lambda v: v.fake_probability)
        n = len(worst.frames)
        where = f"in {n} frame{'s' if n != 1 else ''}"
        thr = f"threshold {self.threshold:.2f}"
        if label is Label.FAKE:
            p = worst.fake_probability
            head = (
                f"face {worst.track_id + 1} looks manipulated ({p:.0%} likely manipulated, "
                f"{where}, {thr})"
            )
            others = sum(v.label is Label.FAKE for v in verdicts) - 1
            if others:
                head += f"; {others} other face track(s) too"
        elif label is Label.UNCERTAIN:
            head = (
                f"face {worst.track_id + 1} is uncertain ({worst.fake_probability:.0%} likely "
                f"manipulated, {where}, "
                f"within ±{self.config.uncertain_band:.2f} of the {thr})"
            )
        else:
            head = (
                f"every face looks authentic (most suspicious: face {worst.track_id + 1}, "
                f"{worst.fake_probability:.0%} likely manipulated, {where}; {thr})"
            )
        n_crops = sum(len(v.frames) for v in verdicts)
        looked = f"{faces.frames_seen} sampled frame(s)"
        if faces.extra_frames:
            looked += f" + {faces.extra_frames} extra around brief tracks"
        text = f"{head}. {len(verdicts)} face track(s), {n_crops} face crop(s) in {looked}"
        lost = faces.dropped | (dropped or {})
        if lost:
            parts = ", ".join(f"{n} {k.replace('_', ' ')}" for k, n in sorted(lost.items()))
            text += f"; faces not scored: {parts}"
        return text
