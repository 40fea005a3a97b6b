"""Milliseconds per 512 px photo of whole-image synthesis detectors, the network call alone
(``score`` on one photo at a time, 20 FFHQ photos of stylegan2_ffhq, median of 3 passes, one
process, onnxruntime's default threads). Names or weight ``.json`` paths:

    python3 tools/time_synthesis.py cnn-v3-int8 cnn-v3 [OLD/synth_cnn_v2_int8.json ...]
"""

import sys
import time
from pathlib import Path

from fakescope.synthesis import create_synthesis_detector
from fakescope.training.synthesis_cnn_data import load_manifest, read_image

S = Path(__file__).resolve().parents[2] / "shared" / "data"


def main() -> None:
    reals = [i.path for i in load_manifest(S / "stylegan2_ffhq", "gen") if i.label == 0][:20]
    images = [read_image(p) for p in reals]
    for name in sys.argv[1:] or ["cnn-v3-int8", "cnn-v3"]:
        detector = create_synthesis_detector(name)
        detector.score(images[:2])  # warm-up
        passes = []
        for _ in range(3):
            start = time.perf_counter()
            for image in images:
                detector.score([image])
            passes.append((time.perf_counter() - start) / len(images) * 1000)
        print(f"{name} ({detector.info.name}): {sorted(passes)[1]:.1f} ms per photo", flush=True)


if __name__ == "__main__":
    main()
