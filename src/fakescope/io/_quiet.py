"""Keep stderr for fakescope's own messages: silence the media libraries' logging.

FFmpeg (through PyAV) and OpenCV log through their own loggers, which are turned off:
OpenCV's here, FFmpeg's whenever fakescope opens or writes a video (PyAV is imported then, so
a photo scan never loads it). libpng and libjpeg print warnings on corrupt input with
``fprintf(stderr, ...)`` from C, past any Python-level redirection; :func:`c_stderr_silenced`
points file descriptor 2 at ``/dev/null`` around such a call.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator

import cv2

__all__ = ["c_stderr_silenced", "silence_library_logs"]

_FD_LOCK = threading.Lock()


def silence_library_logs() -> None:
    """Turn off FFmpeg's and OpenCV's log output (idempotent; imports PyAV)."""
    import av.logging

    av.logging.set_level(None)  # None: FFmpeg logs nothing at all
    _silence_opencv()


def _silence_opencv() -> None:
    utils = getattr(cv2, "utils", None)
    cv_logging = getattr(utils, "logging", None)
    if cv_logging is not None:
        cv_logging.setLogLevel(cv_logging.LOG_LEVEL_SILENT)


@contextlib.contextmanager
def c_stderr_silenced() -> Iterator[None]:
    """Send what C code writes to file descriptor 2 to ``/dev/null`` inside the block.

    Keep the block short (one decode call): while it runs, writes to stderr from any other
    thread are dropped too. Calls are serialised by a lock, so nested or concurrent uses
    restore the real stderr correctly. Where fd 2 cannot be duplicated (closed stderr) the
    block runs unchanged.
    """
    with _FD_LOCK:
        with contextlib.suppress(Exception):
            sys.stderr.flush()
        try:
            saved = os.dup(2)
        except OSError:
            yield
            return
        try:
            devnull = os.open(os.devnull, os.O_WRONLY)
            try:
                os.dup2(devnull, 2)
            finally:
                os.close(devnull)
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


_silence_opencv()
