"""Inference sessions: onnxruntime (telemetry off, no spinning threads) and LiteRT."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

__all__ = ["litert_interpreter", "onnx_session"]

os.environ.setdefault("ORT_DISABLE_TELEMETRY", "1")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # LiteRT: no "Created XNNPACK delegate" line


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


def litert_interpreter(path: Path, threads: int = 1) -> Any:
    """An allocated LiteRT interpreter for a ``.tflite`` file."""
    from ai_edge_litert.interpreter import Interpreter

    interpreter = Interpreter(model_path=str(path), num_threads=threads)
    interpreter.allocate_tensors()
    return interpreter
