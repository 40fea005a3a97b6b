"""Try int8 dynamic quantization of a shipped detector: frame AUC on the cached FF++ crop
test split and time per 32-crop batch, float vs int8 (kept only if AUC drops <= 0.005 and it
is faster). Usage: python tools/try_int8.py cache/ffpp_crops_192.npz"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import QuantType, quantize_dynamic
from sklearn.metrics import roc_auc_score

from fakescope.models import OnnxDetector, asset_path, create_detector, sha256_file


def measure(det: OnnxDetector, crops: np.ndarray, labels: np.ndarray) -> tuple[float, float]:
    auc = roc_auc_score(labels, det.predict(crops))
    det.predict(crops[:32])
    start = time.perf_counter()
    for _ in range(5):
        det.predict(crops[:32])
    return float(auc), (time.perf_counter() - start) / 5 * 1000


def main() -> None:
    data = np.load(sys.argv[1])
    test = data["splits"] == "test"
    crops, labels = data["crops"][test], data["labels"][test]
    base = create_detector()
    assert isinstance(base, OnnxDetector)
    auc, ms = measure(base, crops, labels)
    print(f"float32: AUC {auc:.4f}, {ms:.0f} ms / 32 crops")
    with tempfile.TemporaryDirectory() as tmp:
        q = Path(tmp) / "int8.onnx"
        quantize_dynamic(
            str(asset_path(base.config.file)),
            str(q),
            weight_type=QuantType.QUInt8,
            op_types_to_quantize=["Conv", "MatMul", "Gemm"],
        )
        cfg = base.config.__class__(
            **{**base.config.__dict__, "file": str(q), "sha256": sha256_file(q)}
        )
        auc_q, ms_q = measure(OnnxDetector(cfg), crops, labels)
        float_mb = asset_path(base.config.file).stat().st_size / 2**20
        print(
            f"int8 dynamic: AUC {auc_q:.4f} ({auc_q - auc:+.4f}), {ms_q:.0f} ms / 32 crops, "
            f"{q.stat().st_size / 2**20:.1f} MB vs {float_mb:.1f} MB"
        )


if __name__ == "__main__":
    main()
