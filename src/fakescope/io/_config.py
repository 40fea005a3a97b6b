"""Ingest settings: resource limits and frame sampling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fakescope.errors import ConfigError

__all__ = ["Limits", "Sampling"]


@dataclass(frozen=True)
class Limits:
    """Inputs beyond any of these raise :class:`~fakescope.errors.TooLarge`."""

    max_bytes: int = 4 * 1024**3
    max_pixels: int = 8192 * 8192
    max_duration_s: float = 4 * 3600

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be positive, got {self.max_pixels}")
        if not self.max_duration_s > 0:
            raise ConfigError(f"max_duration_s must be positive, got {self.max_duration_s}")


@dataclass(frozen=True)
class Sampling:
    """Which frames of a video to keep.

    By default ``num_frames`` frames spread evenly over the whole video; when ``fps``
    is set, one frame every ``1 / fps`` seconds instead (``num_frames`` is then unused).
    """

    num_frames: int = 32
    fps: float | None = None
    decoder_threads: str = "NONE"
    """FFmpeg threading: "NONE" (one core; fastest here for <=1080p H.264, and it leaves the
    other core to the models while the pipeline prefetches), "SLICE", "FRAME" or "AUTO"."""

    def __post_init__(self) -> None:
        if self.decoder_threads not in {"NONE", "SLICE", "FRAME", "AUTO"}:
            raise ConfigError(
                f"decoder_threads must be NONE, SLICE, FRAME or AUTO, got {self.decoder_threads!r}"
            )
        if isinstance(self.num_frames, bool) or self.num_frames < 1:
            raise ConfigError(f"num_frames must be >= 1, got {self.num_frames}")
        if self.fps is not None and not (self.fps > 0 and math.isfinite(self.fps)):
            raise ConfigError(f"fps must be a positive number, got {self.fps}")
