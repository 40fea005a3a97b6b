"""Try int8 dynamic quantization of a shipped detector: frame AUC (raw scores) on the cached
FF++ crop test split and time per 32-crop batch, float vs int8 (worth shipping only if AUC drops
<= 0.005 and it is faster). The cache must hold crops made with the detector's own size and
margin:

    python3 -m fakescope.training.prepare ../shared/data/ffpp_face_crops --size 192 \\
        --margin 0.125 --out cache/crops_m0125.npz
    python3 tools/try_int8.py cache/crops_m0125.npz effnet-lite0-sbi
"""

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
    base = create_detector(sys.argv[2] if len(sys.argv) > 2 else "effnet-lite0-sbi")
    assert isinstance(base, OnnxDetector)
    if crops.shape[1] != base.config.input_size:
        sys.exit(
            f"cache crops are {crops.shape[1]} px; {base.config.name} wants "
            f"{base.config.input_size}"
        )
    print(f"{base.config.name} (margin {base.config.margin}): {len(crops)} test crops")
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
