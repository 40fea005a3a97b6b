"""One exception hierarchy for fakescope.

Every error that reaches a user maps to a :class:`~fakescope.types.Status` so that
a batch can record it and move on instead of crashing.
"""

from __future__ import annotations

from fakescope.types import Status

__all__ = [
    "AlignmentError",
    "ConfigError",
    "CropMismatch",
    "DecodeError",
    "FakescopeError",
    "InputError",
    "ModelError",
    "TooLarge",
    "UnsupportedMedia",
]


class FakescopeError(Exception):
    """Base class of every fakescope error; ``status`` says how a verdict reports it."""

    status: Status = Status.ERROR


class InputError(FakescopeError):
    """The input path is missing, unreadable or otherwise unusable."""

    status = Status.ERROR


class UnsupportedMedia(InputError):
    """The content is not a video or image type fakescope can read."""

    status = Status.UNSUPPORTED


class DecodeError(InputError):
    """The content claims a supported type but cannot be decoded (truncated, corrupt)."""

    status = Status.UNDECODABLE


class TooLarge(InputError):
    """The input exceeds a configured limit (file size, pixels, duration)."""

    status = Status.TOO_LARGE


class ModelError(FakescopeError):
    """A model asset is missing, fails its sha256 check, or cannot be run."""

    status = Status.ERROR


class ConfigError(FakescopeError, ValueError):
    """A configuration key or value is unknown or invalid."""

    status = Status.ERROR


class AlignmentError(FakescopeError):
    """One face's landmarks cannot be aligned (degenerate or not finite). The scan drops that
    face and counts it; it never decides a whole input."""

    status = Status.ERROR


class CropMismatch(ConfigError):
    """Two models that must read the same face crops (an attribution head and the detector
    whose crops it reads) crop faces differently: size, margin or alignment."""
