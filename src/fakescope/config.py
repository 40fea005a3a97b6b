"""Typed scan configuration. Precedence: defaults < the weight's own config < explicit
overrides (CLI flags or ``ScanConfig.from_mapping``). Unknown keys are errors."""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from fakescope.errors import ConfigError

if TYPE_CHECKING:
    from fakescope.types import Verdict

DEFAULT_DETECTOR = "fused-v4-int8"
"""The registered face-manipulation detector a scan uses unless told otherwise (re-exported
as ``fakescope.models.DEFAULT_DETECTOR``)."""

__all__ = ["DEFAULT_DETECTOR", "ScanConfig", "ScannerLike"]


@dataclass(frozen=True)
class ScanConfig:
    """Everything ``fakescope scan`` can be told.

    ``threshold=None`` means: for a calibrated weight, the threshold that minimises the expected
    cost for ``cost_miss``, ``cost_false_alarm`` and ``prior_fake``; for an uncalibrated one, the
    weight's own threshold. A score within ``uncertain_band`` of it is labelled ``uncertain``.

    Faces: a whole-frame search for new faces may run on every ``full_scan_every``-th sampled
    frame (the grid), and runs whenever a followed face is lost; a grid search is skipped
    while the frame shows no change outside the faces followed since the last search, at most
    ``full_scan_skip`` grid points in a row, and a frame that follows no face waits for the
    grid (0: every grid point and every frame that follows no face is searched, the rule
    before issue 30; see :mod:`fakescope.inference._search`); a face whose FaceMesh presence
    is at least ``confirm_presence`` is always scored when it is ``min_face_px`` high, a less
    certain one must also pass the noise rule; a face track seen in fewer than
    ``min_track_frames`` sampled frames gets extra frames decoded around it (at most
    ``max_extra_frames`` per input).

    Inputs (see :class:`fakescope.io.Limits`): beyond ``max_bytes`` (file size), ``max_pixels``
    (pixels of one image or video frame), ``max_duration_s``, ``max_bit_depth`` (bits per
    colour sample of a video) or ``max_frame_bytes`` (one decoded video frame in memory) an
    input is ``too_large``; a frame longer than ``max_aspect_ratio`` times its other side is
    ``unsupported``. Frames whose longer side exceeds ``decode_max_side`` are scaled down to
    it while decoding (boxes in verdicts stay in the input's own pixels).

    ``synthesis_detector`` names the whole-image synthesis detector (a registered name of
    :data:`fakescope.synthesis.SYNTHESIS_DETECTORS` or a weight ``.json``) whose verdict
    each input gets beside the face verdict (``Verdict.synthesis``); None turns it off.

    ``attribution`` names a method-attribution head (:data:`fakescope.models.ATTRIBUTORS` or a
    head ``.json``): every face track labelled fake then says which family of manipulation it
    resembles (``TrackVerdict.attribution``); None (the default) turns it off. ``evidence``
    names track evidence models (:data:`fakescope.models.EVIDENCE_MODELS`) whose judgement
    each face track also gets (``TrackVerdict.evidence``); neither changes a label.

    ``overlap`` scores a video's face crops (and the synthesis detector's frames) on a second
    thread while the next sampled frames are searched for faces; the scores are the same
    numbers either way (False scores them after the search, one stage after another). With
    ``threads`` 0 and ``overlap``, the scoring networks run on one thread each, beside the
    face search, rather than on every core.

    ``identity`` gives every face track an identity (``TrackVerdict.identity``: tracks of one
    person share a number); ``gallery`` (a ``fakescope people`` folder, implies ``identity``)
    also names known people. ``reference`` (a person in the ``gallery``) adds the reference
    check to every face track's evidence: is this face consistent with that person's real
    references (:class:`fakescope.identity.ReferenceCheck`)?
    """

    num_frames: int = 32
    fps: float | None = None
    face_detector: str = "hybrid"
    detector: str = DEFAULT_DETECTOR
    min_face_px: float = 40.0
    detect_max_side: int = 960
    full_scan_every: int = 4
    full_scan_skip: int = 3
    max_faces: int = 8
    confirm_presence: float = 0.9
    min_track_frames: int = 8
    max_extra_frames: int = 32
    track_aggregator: str = "mean"
    threshold: float | None = None
    uncertain_band: float = 0.1
    cost_miss: float = 1.0
    cost_false_alarm: float = 1.0
    prior_fake: float = 0.5
    max_bytes: int = 4 * 1024**3
    max_pixels: int = 8192 * 8192
    max_duration_s: float = 4 * 3600.0
    max_aspect_ratio: float = 20.0
    max_bit_depth: int = 12
    max_frame_bytes: int = 128 * 1024**2
    decode_max_side: int = 4096
    threads: int = 0
    overlap: bool = True
    heatmaps_dir: str | None = None
    thumbnails_dir: str | None = None
    synthesis_detector: str | None = "cnn-v3-int8"
    attribution: str | None = None
    evidence: tuple[str, ...] = ()
    identity: bool = False
    gallery: str | None = None
    reference: str | None = None

    def __post_init__(self) -> None:
        if self.num_frames < 1:
            raise ConfigError("num_frames must be >= 1")
        if self.fps is not None and self.fps <= 0:
            raise ConfigError("fps must be > 0")
        if self.full_scan_every < 1:
            raise ConfigError("full_scan_every must be >= 1")
        if self.full_scan_skip < 0:
            raise ConfigError("full_scan_skip must be >= 0")
        if not 0.0 <= self.uncertain_band < 0.5:
            raise ConfigError("uncertain_band must be in [0, 0.5)")
        if self.threshold is not None and not 0.0 < self.threshold < 1.0:
            raise ConfigError("threshold must be in (0, 1)")
        if not (self.cost_miss > 0 and self.cost_false_alarm > 0):
            raise ConfigError("cost_miss and cost_false_alarm must be positive")
        if not 0.0 < self.prior_fake < 1.0:
            raise ConfigError("prior_fake must be in (0, 1)")
        if self.min_face_px <= 0 or self.max_faces < 1:
            raise ConfigError("min_face_px and max_faces must be positive")
        if not 0.0 <= self.confirm_presence <= 1.0:
            raise ConfigError("confirm_presence must be in [0, 1]")
        if self.min_track_frames < 1 or self.max_extra_frames < 0:
            raise ConfigError("min_track_frames must be >= 1 and max_extra_frames >= 0")
        if not (self.max_aspect_ratio >= 1 and math.isfinite(self.max_aspect_ratio)):
            raise ConfigError("max_aspect_ratio must be >= 1")
        if self.max_bit_depth < 8:
            raise ConfigError("max_bit_depth must be >= 8")
        if self.max_bytes <= 0 or self.max_pixels <= 0 or self.max_frame_bytes <= 0:
            raise ConfigError("max_bytes, max_pixels and max_frame_bytes must be positive")
        if not self.max_duration_s > 0:
            raise ConfigError("max_duration_s must be positive")
        if self.decode_max_side < 64:
            raise ConfigError("decode_max_side must be >= 64")
        if self.synthesis_detector is not None and not self.synthesis_detector.strip():
            raise ConfigError("synthesis_detector must be a name, a .json file or None (off)")
        if self.attribution is not None and not str(self.attribution).strip():
            raise ConfigError("attribution must be a name, a .json file or None (off)")
        if isinstance(self.evidence, str) or not all(
            isinstance(e, str) and e.strip() for e in self.evidence
        ):
            raise ConfigError("evidence must be a list of evidence model names")
        object.__setattr__(self, "evidence", tuple(dict.fromkeys(self.evidence)))
        if self.gallery is not None and not str(self.gallery).strip():
            raise ConfigError("gallery must be a folder or None")
        if self.reference is not None and (self.gallery is None or not self.reference.strip()):
            raise ConfigError("reference needs a person's name and a gallery that holds them")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any], base: ScanConfig | None = None) -> ScanConfig:
        """``base`` (or the defaults) overridden by ``values``; unknown keys raise."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown config key(s): {', '.join(unknown)}")
        return dataclasses.replace(base or cls(), **dict(values))


class ScannerLike(Protocol):
    """What a batch or server worker needs from :class:`fakescope.inference.Scanner` (tests
    pass fakes)."""

    config: ScanConfig

    def scan(
        self, path: Path | str, progress: Callable[[int, int], None] | None = None
    ) -> Verdict: ...
