"""Inference sessions: onnxruntime (telemetry off, no spinning threads) and LiteRT."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

__all__ = ["litert_interpreter", "onnx_session"]

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")


def onnx_session(path: Path, threads: int = 0) -> Any:
    """An onnxruntime CPU session; ``threads=0`` lets onnxruntime use every core."""
    import onnxruntime as ort

    ort.set_default_logger_severity(3)
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    opts.inter_op_num_threads = 1
    opts.add_session_config_entry("session.intra_op.allow_spinning", "0")
    opts.add_session_config_entry("session.inter_op.allow_spinning", "0")
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])


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
