"""Inference sessions: onnxruntime (telemetry off, no spinning threads) and LiteRT.

onnxruntime sessions are built on two loader threads (building one optimises its graph: tens
of milliseconds for an EfficientNet), so a :class:`~fakescope.Scanner`'s models load side by
side and while the first input is decoded and its faces searched; the first call that needs a
session waits for it.
"""

from __future__ import annotations

import contextlib
import os
import sys
import threading
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

from fakescope.errors import ModelError

__all__ = ["BackgroundSession", "build_session", "litert_interpreter", "onnx_session", "rss_bytes"]

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")

_LOADER_THREADS = 2
_loader: ThreadPoolExecutor | None = None
_loader_lock = threading.Lock()


def _loader_pool() -> ThreadPoolExecutor:
    global _loader
    with _loader_lock:
        if _loader is None:
            workers = max(1, min(_LOADER_THREADS, os.cpu_count() or 1))
            _loader = ThreadPoolExecutor(workers, thread_name_prefix="fakescope-load")
        return _loader


class BackgroundSession:
    """An onnxruntime ``InferenceSession`` being built on a loader thread. Every attribute
    (``run``, ``get_inputs``, ...) is the session's own, once it is built; a session that
    fails to build raises :class:`~fakescope.errors.ModelError` there."""

    def __init__(self, path: Path, future: Future[Any]) -> None:
        self._path = path
        self._future = future

    def session(self) -> Any:
        """The built session (waits for it)."""
        try:
            return self._future.result()
        except Exception as exc:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load {self._path.name}: {exc}") from exc

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):  # not set yet (copy, unpickling): never wait
            raise AttributeError(name)
        return getattr(self.session(), name)


def onnx_session(path: Path, threads: int = 0) -> BackgroundSession:
    """An onnxruntime CPU session, built in the background; ``threads=0`` lets onnxruntime
    use every core."""
    return BackgroundSession(path, _loader_pool().submit(build_session, path, threads))


def build_session(model: Path | bytes, threads: int) -> Any:
    """An onnxruntime CPU session built now: ``threads`` intra-op threads, no spinning, all
    graph optimisations. ``model`` is a path or serialised bytes."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    source = model if isinstance(model, bytes) else str(model)
    return ort.InferenceSession(source, opts, providers=["CPUExecutionProvider"])


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence native writes to fd 2 (LiteRT prints an INFO line when it applies XNNPACK and
    has no switch for it); Python-level errors are unaffected once the block ends."""
    sys.stderr.flush()
    saved = os.dup(2)
    try:
        with open(os.devnull, "wb") as devnull:
            os.dup2(devnull.fileno(), 2)
            yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)


def litert_interpreter(path: Path, threads: int = 1) -> Any:
    """An allocated LiteRT interpreter for a ``.tflite`` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    with _quiet_stderr():
        interpreter.allocate_tensors()
    return interpreter


def rss_bytes(pid: int) -> int | None:
    """Resident memory of process ``pid`` (Linux ``/proc``; psutil elsewhere; None when
    unknown)."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as fh:
            return int(fh.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        pass
    try:
        import psutil  # type: ignore[import-untyped, unused-ignore]

        return int(psutil.Process(pid).memory_info().rss)
    except Exception:
        return None
