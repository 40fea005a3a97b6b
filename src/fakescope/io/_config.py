"""Ingest settings: resource limits and frame sampling."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fakescope.errors import ConfigError

__all__ = ["Limits", "Sampling"]


@dataclass(frozen=True)
class Limits:
    """What an input may be; checked from the file and its headers before pixels are decoded.

    Beyond ``max_bytes`` (file size), ``max_pixels`` (width x height of one image or video
    frame), ``max_duration_s``, ``max_bit_depth`` (bits per colour sample of a video's
    pixel format) or ``max_frame_bytes`` (one decoded video frame in its own pixel format)
    an input raises :class:`~fakescope.errors.TooLarge`; a frame longer than
    ``max_aspect_ratio`` times its other side raises
    :class:`~fakescope.errors.UnsupportedMedia`. ``decode_max_side`` is not a limit: frames
    whose longer side exceeds it are scaled down to it while they are converted to RGB, so
    a scan holds frames of at most that size.
    """

    max_bytes: int = 4 * 1024**3
    max_pixels: int = 8192 * 8192
    max_duration_s: float = 4 * 3600
    max_aspect_ratio: float = 20.0
    max_bit_depth: int = 12
    max_frame_bytes: int = 128 * 1024**2
    decode_max_side: int = 4096

    def __post_init__(self) -> None:
        if self.max_bytes <= 0:
            raise ConfigError(f"max_bytes must be positive, got {self.max_bytes}")
        if self.max_pixels <= 0:
            raise ConfigError(f"max_pixels must be positive, got {self.max_pixels}")
        if not self.max_duration_s > 0:
            raise ConfigError(f"max_duration_s must be positive, got {self.max_duration_s}")
        if not (self.max_aspect_ratio >= 1 and math.isfinite(self.max_aspect_ratio)):
            raise ConfigError(f"max_aspect_ratio must be >= 1, got {self.max_aspect_ratio}")
        if self.max_bit_depth < 8:
            raise ConfigError(f"max_bit_depth must be >= 8, got {self.max_bit_depth}")
        if self.max_frame_bytes <= 0:
            raise ConfigError(f"max_frame_bytes must be positive, got {self.max_frame_bytes}")
        if self.decode_max_side < 64:
            raise ConfigError(f"decode_max_side must be >= 64, got {self.decode_max_side}")


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


@dataclass
class DecodeReport:
    """What decoding a video met, filled in as its frames stream past: ``damaged`` when
    decoding stopped at corrupt or missing data before the end, or the stream ended well
    before the duration its header gives (the frames before are still yielded),
    ``decoded_until_s`` the time of the last frame decoded, ``frames`` how many were decoded,
    ``detail`` what the decoder said. Pass one to :func:`~fakescope.io.open_media` to learn it."""

    damaged: bool = False
    decoded_until_s: float | None = None
    detail: str = ""
    frames: int = 0

    def describe(self, duration_s: float | None) -> str:
        """``decoded 0-7.3 s of 12.0 s`` (or ``of an unknown length``)."""
        until = 0.0 if self.decoded_until_s is None else self.decoded_until_s
        whole = "an unknown length" if not duration_s else f"{duration_s:.1f} s"
        return f"decoded 0-{until:.1f} s of {whole}"
