"""Decode ahead in a thread: PyAV and the ONNX/LiteRT runtimes release the GIL, so decoding
the next frames overlaps with face detection and scoring of the current one."""

from __future__ import annotations

import queue
import threading
from collections.abc import Iterator
from typing import TypeVar

__all__ = ["prefetch"]

T = TypeVar("T")
_DONE = object()


def prefetch(items: Iterator[T], depth: int = 4) -> Iterator[T]:
    """Yield ``items`` while a daemon thread produces up to ``depth`` ahead. An exception in
    the producer is re-raised here, after the items produced before it."""
    buffer: queue.Queue[object] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def produce() -> None:
        try:
            for item in items:
                while not stop.is_set():
                    try:
                        buffer.put(item, timeout=0.1)
                        break
                    except queue.Full:
                        continue
                if stop.is_set():
                    return
            buffer.put(_DONE)
        except BaseException as exc:  # handed to the consumer, never lost
            buffer.put(exc)

    worker = threading.Thread(target=produce, name="fakescope-decode", daemon=True)
    worker.start()
    try:
        while True:
            item = buffer.get()
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        worker.join(timeout=5)
