"""Cache aligned training crops made by fakescope's own face step.

Runs the same detector (MTCNN full scan + FaceMesh), noise filter and 5-point alignment as
``fakescope scan`` on every image of a MANIFEST.tsv data set (read by
:func:`fakescope.data.load_dataset`), so crops match what the pipeline feeds a model. Writes
one ``.npz`` (uint8 crops, labels, methods, splits, files): the input of ``tools/try_int8.py``.

    python -m fakescope.training.prepare ../shared/data/ffpp_face_crops \
        --size 192 --margin 0.125 --out cache/crops_m0125.npz
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.progress import track

from fakescope.data import load_dataset
from fakescope.errors import ConfigError
from fakescope.faces import MTCNNFaceDetector, align_face, filter_faces
from fakescope.training.images import read_rgb


def method_of(name: str) -> str:
    """``train_Deepfakes_roi_3.jpg`` -> ``Deepfakes``; real crops -> ``real``."""
    for method in ("Deepfakes", "Face2Face", "FaceSwap", "NeuralTextures"):
        if method in name:
            return method
    return "real"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("root", type=Path)
    parser.add_argument("--size", type=int, default=192)
    parser.add_argument("--margin", type=float, default=0.0)
    parser.add_argument("--min-face", type=float, default=40.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    detector = MTCNNFaceDetector(min_face_px=args.min_face)
    items = load_dataset("manifest", args.root)
    crops, labels, methods, splits, files = [], [], [], [], []
    missed = 0
    for item in track(items, description="aligning"):
        try:
            rgb = read_rgb(item.path)
        except ConfigError:
            missed += 1
            continue
        faces = filter_faces(detector.detect(rgb, 0), args.min_face)
        if not faces:
            missed += 1
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        crops.append(align_face(rgb, face, args.size, args.margin).image)
        labels.append(1 if item.label == "fake" else 0)
        name = item.path.name
        methods.append(method_of(name))
        splits.append(name.split("_", 1)[0])
        files.append(item.path.relative_to(args.root).as_posix())
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out,
        crops=np.stack(crops),
        labels=np.asarray(labels, dtype=np.int64),
        methods=np.asarray(methods),
        splits=np.asarray(splits),
        files=np.asarray(files),
    )
    print(f"{len(crops)} crops written to {args.out}; {missed} images without a usable face")


if __name__ == "__main__":
    main()
