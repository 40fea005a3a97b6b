"""Copy an exported ONNX model into the package with its weight config (sha256 included).

    python -m fakescope.training.ship runs/sbi_v4/model.onnx --name effnet-lite0-v4 \
        --file effnet_lite0_v4.onnx --input-size 192 --margin 0.125

With ``--beside`` nothing is copied: the weight config is written next to the ONNX file
(``<run>/weights.json``) so that ``fakescope eval --detector <run>/weights.json`` can measure a
run before it is shipped.
"""

from __future__ import annotations

import argparse
import json
import shutil
from pathlib import Path

from fakescope import __version__
from fakescope.models import asset_path, sha256_file
from fakescope.training.effnet_lite import MEAN, STD


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("onnx", type=Path)
    parser.add_argument("--name", required=True)
    parser.add_argument("--file", help="file name inside models/assets (not with --beside)")
    parser.add_argument(
        "--beside", action="store_true", help="write <onnx folder>/weights.json, copy nothing"
    )
    parser.add_argument("--input-size", type=int, required=True)
    parser.add_argument("--margin", type=float, required=True)
    parser.add_argument("--threshold", type=float, default=0.5)
    parser.add_argument("--version", default=__version__)
    parser.add_argument(
        "--trained-on",
        default="FaceForensics++ face crops, train_ split "
        "(ffpp_face_crops; research-only FF++ Terms of Use)",
    )
    parser.add_argument(
        "--calibration",
        type=Path,
        help="JSON from `fakescope calibrate` to store in the weight config",
    )
    parser.add_argument(
        "--architecture", default="EfficientNet-Lite0 (ImageNet init), sigmoid head"
    )
    args = parser.parse_args()
    if args.beside:
        target = args.onnx
        config_path = args.onnx.parent / "weights.json"
    elif args.file:
        target = asset_path(args.file)
        shutil.copyfile(args.onnx, target)
        config_path = target.with_suffix(".json")
    else:
        parser.error("give --file NAME (ship into the package) or --beside")
    config = {
        "name": args.name,
        "file": target.name,
        "sha256": sha256_file(target),
        "input_size": args.input_size,
        "mean": [float(v) for v in MEAN],
        "std": [float(v) for v in STD],
        "margin": args.margin,
        "alignment": "arcface5",
        "threshold": args.threshold,
        "version": args.version,
        "architecture": args.architecture,
        "trained_on": args.trained_on,
        "license": "Apache-2.0 (code); weights trained on research-only data, see MODEL_CARD",
    }
    if args.calibration is not None:
        config["calibration"] = json.loads(args.calibration.read_text())["calibration"]
    config_path.write_text(json.dumps(config, indent=2) + "\n")
    print(f"shipped {target.name} ({config['sha256']}) and {config_path.name}")


if __name__ == "__main__":
    main()
