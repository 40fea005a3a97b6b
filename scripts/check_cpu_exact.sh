#!/usr/bin/env bash
# Do the int8 networks give their float twins' scores, here and on an x86 CPU without VNNI?
# (Not run by CI: it needs qemu-user, `apt-get install qemu-user`, and takes a minute or two.)
#
# The same Python runs natively and under `qemu-x86_64 -cpu Haswell` (AVX2, no AVX512: what
# MLAS does on an AVX2-only EPYC). For each it prints whether fakescope thinks u8 x s8 is exact
# there, what the default int8 names resolve to, and the scores of an int8 network (forced with
# FAKESCOPE_INT8=always) and its float twin on six aligned face crops. Expected: natively on a
# VNNI CPU int8 ~ float (|delta p| < 0.05); under Haswell the forced int8 drifts (up to ~0.3),
# int8_exact is False, the default resolves to the float twin and gives the float scores.
#
#   scripts/check_cpu_exact.sh [QEMU_CPU]        # default Haswell; e.g. EPYC-Rome, max
set -euo pipefail
cd "$(dirname "$0")/.."
cpu="${1:-Haswell}"
python="$(python3 -c 'import sys; print(sys.executable)')"  # the ELF, not a pyenv/venv shim
qemu="$(command -v qemu-x86_64 || true)"
if [ -z "$qemu" ]; then
    echo "qemu-x86_64 not found: apt-get install qemu-user" >&2
    exit 2
fi
work="$(mktemp -d)"
trap 'rm -rf "$work"' EXIT

"$python" - "$work/crops.npy" <<'EOF'
import sys

import cv2
import numpy as np

from fakescope.faces import FACE_DETECTORS, align_face
from fakescope.io import load_example_face

image = load_example_face()
(face,) = FACE_DETECTORS.create("hybrid").detect(image, 0)
base = align_face(image, face, 192, 0.125).image
small = cv2.resize(base, (24, 24), interpolation=cv2.INTER_AREA)
pixelated = cv2.resize(small, (192, 192))
pasted = base.copy()
inner = pasted[60:150, 50:142].astype(np.float64) * [1.2, 0.9, 0.8]
pasted[60:150, 50:142] = np.clip(inner, 0, 255).astype(np.uint8)
noise = np.random.default_rng(0).integers(0, 255, (192, 192, 3), dtype=np.uint8)
crops = [base, base[:, ::-1], pixelated, pasted, noise, cv2.GaussianBlur(noise, (9, 9), 3)]
np.save(sys.argv[1], np.ascontiguousarray(np.stack(crops)))
EOF

cat >"$work/probe.py" <<'EOF'
import json
import os
import sys

import numpy as np

from fakescope._cpu import INT8_ENV, int8_exact
from fakescope.models import DETECTORS, create_detector
from fakescope.synthesis import SYNTHESIS_DETECTORS

crops = np.load(sys.argv[1])
os.environ.pop(INT8_ENV, None)
out = {
    "int8_exact": int8_exact(),
    "resolves": {
        name: registry.resolve(name)[0]
        for registry in (DETECTORS, SYNTHESIS_DETECTORS)
        for name in registry.names()
        if registry.float_twin(name)
    },
}
default = create_detector("fused-v4-int8", threads=1)
out["fused-v4-int8 (default)"] = {
    "ran": default.info.name,
    "resolved_from": default.info.resolved_from,
    "p": default.predict(crops).round(5).tolist(),
}
for name in ("fused-v4", "effnet-lite0-v4"):
    out[name] = DETECTORS.create(name, threads=1).predict(crops).round(5).tolist()
os.environ[INT8_ENV] = "always"
for name in ("fused-v4-int8", "effnet-lite0-v4-int8"):
    out[name + " (always)"] = create_detector(name, threads=1).predict(crops).round(5).tolist()
print(json.dumps(out))
EOF

echo "native ($(grep -o -m1 'avx512_vnni\|avx_vnni' /proc/cpuinfo || echo 'no VNNI flag'))..." >&2
"$python" "$work/probe.py" "$work/crops.npy" >"$work/native.json"
echo "qemu-x86_64 -cpu $cpu..." >&2
"$qemu" -cpu "$cpu" "$python" "$work/probe.py" "$work/crops.npy" >"$work/emulated.json" \
    2> >(grep -v "TCG doesn't support" >&2)

"$python" - "$work/native.json" "$work/emulated.json" "$cpu" <<'EOF'
import json
import sys

import numpy as np

runs = {"native": json.load(open(sys.argv[1])), f"qemu {sys.argv[3]}": json.load(open(sys.argv[2]))}
failed = False
for where, r in runs.items():
    fused = r["fused-v4-int8 (default)"]
    print(f"{where}: int8_exact={r['int8_exact']}; default fused-v4-int8 ran {fused['ran']}")
    print(f"  resolves: {r['resolves']}")
    for int8, twin in (("fused-v4-int8", "fused-v4"), ("effnet-lite0-v4-int8", "effnet-lite0-v4")):
        d = np.abs(np.subtract(r[int8 + " (always)"], r[twin]))
        print(f"  {int8} (always) vs {twin}: max |dp| {d.max():.3f}, mean {d.mean():.3f}")
    d_default = np.abs(np.subtract(fused["p"], r["fused-v4"])).max()
    print(f"  default vs fused-v4: max |dp| {d_default:.3g}")
    if not r["int8_exact"] and (fused["ran"] != "fused-v4" or d_default > 0):
        failed = True
    if r["int8_exact"] and d_default > 0.15:
        failed = True
a, b = runs.values()
d = np.abs(np.subtract(a["fused-v4"], b["fused-v4"])).max()
print(f"float fused-v4, native vs emulated: max |dp| {d:.3g}")
print("FAILED" if failed else "ok: the default gives float-twin scores wherever int8 is not exact")
sys.exit(1 if failed else 0)
EOF
