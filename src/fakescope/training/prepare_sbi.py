"""Cache loosely cropped faces and their FaceMesh landmarks for self-blended training.

Each image goes through fakescope's own face step (MTCNN full scan + FaceMesh); the largest
face is cropped as a square of ``scale`` x its box around the box centre (beyond the image,
its border is replicated, as the scan's ``align_face`` does), resized to ``size``, and its
468 landmarks are mapped into that crop. SBI needs the context around the face (the blend
boundary lies on it), so these are not the aligned model crops.

    python -m fakescope.training.prepare_sbi ../shared/data/utkface_real \\
        ../shared/data/ffpp_face_crops --split train --label real --out cache/sbi_real_256.npz
    python -m fakescope.training.prepare_sbi ../shared/data/ffpp_face_crops --split test \\
        --out cache/ffpp_crops_sbi_val.npz

Writes ``images`` (N, size, size, 3) uint8 RGB, ``landmarks`` (N, 468, 2) float32,
``labels`` (N,) int (1 fake), ``methods``, ``splits`` and ``files``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
from rich.progress import track

from fakescope.data import load_dataset
from fakescope.errors import ConfigError
from fakescope.faces import MTCNNFaceDetector, filter_faces
from fakescope.training.images import read_rgb


def crop_face(
    image: np.ndarray,
    box: tuple[float, float, float, float],
    mesh: np.ndarray,
    size: int,
    scale: float,
) -> tuple[np.ndarray, np.ndarray]:
    """Square crop of ``scale`` x the box around its centre, resized to ``size``, and the
    mesh in crop pixels: :func:`fakescope.cues.loose_crop`, which the scan's cues use too.

    Where the square runs off the image the border pixels are replicated, the same
    ``borderMode`` as :func:`fakescope.faces.align_face` uses for the model crops at scan time
    (zero padding would teach the model black bands it never sees in deployment).
    """
    from fakescope.cues import loose_crop

    return loose_crop(image, box, mesh, size, scale)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("sources", nargs="+", type=Path, help="dataset folders or manifests")
    parser.add_argument("--split", help="keep items of this split (items without one are kept)")
    parser.add_argument("--label", choices=("real", "fake"), help="keep only this label")
    parser.add_argument("--size", type=int, default=256)
    parser.add_argument("--scale", type=float, default=1.6)
    parser.add_argument("--min-face", type=float, default=40.0)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args(argv)

    items = []
    for source in args.sources:
        found = load_dataset("auto", source)
        if args.split:
            found = [i for i in found if i.split in (args.split, None)]
        if args.label:
            found = [i for i in found if i.label == args.label]
        items.extend(found)
    detector = MTCNNFaceDetector(min_face_px=args.min_face)
    images, landmarks, labels, methods, splits, files = [], [], [], [], [], []
    missed = 0
    for item in track(items, description="faces + mesh"):
        try:
            rgb = read_rgb(item.path)
        except ConfigError:
            missed += 1
            continue
        faces = [
            f for f in filter_faces(detector.detect(rgb, 0), args.min_face) if f.mesh is not None
        ]
        if not faces:
            missed += 1
            continue
        face = max(faces, key=lambda f: f.width * f.height)
        assert face.mesh is not None
        crop, points = crop_face(rgb, face.box, face.mesh, args.size, args.scale)
        images.append(crop)
        landmarks.append(points)
        labels.append(1 if item.label == "fake" else 0)
        methods.append(item.method)
        splits.append(item.split or "")
        files.append(str(item.path))
    args.out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(
        args.out,
        images=np.stack(images),
        landmarks=np.stack(landmarks),
        labels=np.asarray(labels, np.int64),
        methods=np.asarray(methods),
        splits=np.asarray(splits),
        files=np.asarray(files),
    )
    print(f"{len(images)} faces written to {args.out}; {missed} images without a usable face")


if __name__ == "__main__":
    main()
