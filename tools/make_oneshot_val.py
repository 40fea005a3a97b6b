"""An inswapper-like development set: real one-shot-style face swaps between identities of the
pinned val split, and as many untouched reals (issue 29 item 2, its dev-set aim).

    python3 tools/make_oneshot_val.py --out /tmp/oneshot_val \
        ../shared/data/dfdc_faces ../shared/data/utkface_real
    fakescope eval /tmp/oneshot_val --out /tmp/oneshot_eval

The recipe is deliberately *not* the training one (self-blended images, see
``fakescope.training.sbi``): the pasted face is another person's. For each target face A and
source face B (another identity group of the same set, the closest in pose among a few random
candidates), as insightface's ``inswapper_128`` is used by roop, FaceFusion and Deep-Live-Cam:

1. both faces found by fakescope's own face detector (``FACE_DETECTORS.create("hybrid")``;
   the largest face, with its 5 landmarks and 468-point mesh);
2. B aligned into a 128 px crop by a similarity transform on its 5 landmarks (the ArcFace
   template with insightface's 8 px border; ``cv2.warpAffine``, bilinear, so a larger face is
   down-sampled with its aliasing), A aligned likewise;
3. Reinhard colour transfer (per-channel LAB mean and std) from A's crop to B's, over the skin
   both face meshes cover;
4. B's crop pasted into A's frame through the inverse of A's transform (so B's face is
   up-sampled from 128 px back to A's size) with a feathered mask: the region both meshes
   cover (hulls of the mesh without the upper forehead), eroded by 2-6 % and blurred by a
   Gaussian of sigma 2-5 % of A's face size;
5. the picture resized to 224 px and saved as JPEG q90, like every real of the set.

Only reals of ``--split`` (identity groups of ``--split-file``) are used: the targets, the
sources and the reals are disjoint images, and a target and its source never share an
identity group. Images where the detector finds no face are left out of every role (counted
in ``BUILD.json``), so the reals pass the same filter as the fakes. The output folder holds
``real/`` and ``fake/``, ``MANIFEST.tsv`` with the columns of the shared sets (``fakescope
eval`` reads it: the ``manifest`` layout) and ``BUILD.json`` (parameters, counts, pairs).

``--recipe train`` makes *training* fakes instead (``TRAIN``, a :class:`SwapRecipe` the dev
sets do not share: aligned crop of 128, 160 or 224 px, colour transfer half the time, wider
erosion and feathering, a drawn upper edge of the region): every face of ``--split`` is kept
as a real and is the target of ``--per-target`` swaps, for ``configs/sbi_v5q10_lite0.yaml``:

    python3 tools/make_oneshot_val.py ../shared/data/stylegan2_ffhq --out /tmp/ffhq_swaps_train \
        --split-file configs/splits/faces_v5.json --split train --side 0 --recipe train \
        --per-target 2 --seed 2026

The sources are research-only data sets: ``--out`` must lie outside the repository.
"""

from __future__ import annotations

import argparse
import csv
import json
import math
import sys
from collections import Counter
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.data import load_dataset
from fakescope.faces import FACE_DETECTORS, FaceDetector, alignment_matrix
from fakescope.training.store import grouped_items

Image = npt.NDArray[np.uint8]
F64 = npt.NDArray[np.float64]

REPO = Path(__file__).resolve().parents[1]
CROP = 128  # inswapper's face crop
MARGIN = 1.0 / 14.0  # the 112 px ArcFace template inside 128 px: insightface's 8 px border
OUT_SIDE = 224
JPEG_QUALITY = 90
CANDIDATES = 24  # random sources per target, the closest in pose is used
COLUMNS = ("file", "label", "source_repo", "commit", "original_path", "kind", "generator_method")
# Mesh points higher than this share of the eye-to-mouth distance above the eyes (the upper
# forehead) are left out of the swap region: hair and hairline stay the target's.
ABOVE_EYES = 0.45


@dataclass(frozen=True)
class Face:
    path: Path
    dataset: str
    group: str
    image: Image
    landmarks: npt.NDArray[np.float32]  # (5, 2)
    mesh: npt.NDArray[np.float32]  # (468, 2)

    @property
    def size(self) -> float:
        span = self.mesh.max(axis=0) - self.mesh.min(axis=0)
        return float(span.mean())


def read_rgb(path: Path) -> Image:
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    if bgr is None:
        raise OSError(f"cannot read {path}")
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)


def find_face(detector: FaceDetector, path: Path, dataset: str, group: str) -> Face | None:
    image = read_rgb(path)
    faces = [f for f in detector.detect(image, 0, [], full_scan=True) if f.mesh is not None]
    if not faces:
        return None
    best = max(faces, key=lambda f: f.width * f.height)
    assert best.mesh is not None
    return Face(
        path,
        dataset,
        group,
        image,
        np.asarray(best.landmarks, np.float32),
        np.ascontiguousarray(best.mesh[:, :2], np.float32),
    )


def pose_distance(a: Face, b: Face) -> float:
    """Residual of the best similarity fit of B's mesh onto A's, in A's face sizes."""
    matrix, _ = cv2.estimateAffinePartial2D(b.mesh, a.mesh, method=cv2.LMEDS)
    if matrix is None:
        return math.inf
    moved = b.mesh @ matrix[:, :2].T + matrix[:, 2]
    return float(np.sqrt(np.mean(np.sum((moved - a.mesh) ** 2, axis=1)))) / max(1.0, a.size)


def _transform(points: npt.NDArray[np.float32], matrix: F64) -> F64:
    return np.asarray(points, np.float64) @ matrix[:, :2].T + matrix[:, 2]


@dataclass(frozen=True)
class SwapRecipe:
    """How a swap is made. ``DEV`` is the dev sets' recipe (the module docstring); ``TRAIN``
    makes training fakes with other settings, so that the dev sets stay a recipe the
    network never saw: the aligned crop's side drawn from ``crops``, Reinhard colour transfer
    with probability ``p_color``, erosion and blur drawn from wider ranges, and the upper
    edge of the swapped region drawn too. A value with one choice draws nothing from the
    generator (``DEV`` draws only ``erode`` and ``sigma``, as it always did)."""

    crops: tuple[int, ...] = (CROP,)
    p_color: float = 1.0
    erode: tuple[float, float] = (0.02, 0.06)
    sigma: tuple[float, float] = (0.02, 0.05)
    above_eyes: tuple[float, float] = (ABOVE_EYES, ABOVE_EYES)


DEV = SwapRecipe()
TRAIN = SwapRecipe(
    crops=(128, 160, 224),
    p_color=0.5,
    erode=(0.0, 0.08),
    sigma=(0.01, 0.06),
    above_eyes=(0.25, 0.6),
)
RECIPES = {"dev": DEV, "train": TRAIN}


def _region(
    mesh_in_crop: F64, five_in_crop: F64, side: int, above_eyes: float = ABOVE_EYES
) -> Image:
    """Filled hull of the mesh below the upper forehead, in an upright ``side`` px crop."""
    eyes_y = float(five_in_crop[:2, 1].mean())
    mouth_y = float(five_in_crop[3:, 1].mean())
    keep = mesh_in_crop[:, 1] >= eyes_y - above_eyes * (mouth_y - eyes_y)
    hull = cv2.convexHull(np.round(mesh_in_crop[keep] * 16).astype(np.int32))
    canvas = np.zeros((side, side), np.uint8)
    cv2.fillConvexPoly(canvas, hull, (255,), lineType=cv2.LINE_AA, shift=4)
    return canvas


def reinhard(source: Image, target: Image, where: npt.NDArray[np.bool_]) -> Image:
    """``source`` with each LAB channel's mean and std over ``where`` set to ``target``'s."""
    src = cv2.cvtColor(source.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    tgt = cv2.cvtColor(target.astype(np.float32) / 255.0, cv2.COLOR_RGB2LAB)
    s_mean, s_std = src[where].mean(axis=0), src[where].std(axis=0)
    t_mean, t_std = tgt[where].mean(axis=0), tgt[where].std(axis=0)
    lab = (src - s_mean) * (t_std / np.maximum(s_std, 1e-3)) + t_mean
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = np.asarray(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB), np.float32)
    return np.asarray(np.clip(np.rint(rgb * 255.0), 0, 255), np.uint8)


def _draw(rng: np.random.Generator, span: tuple[float, float]) -> float:
    return span[0] if span[0] == span[1] else float(rng.uniform(*span))


def swap(
    target: Face, source: Face, rng: np.random.Generator, recipe: SwapRecipe = DEV
) -> tuple[Image, dict[str, Any]]:
    """``source``'s face in ``target``'s picture, inswapper-style (module docstring)."""
    h, w = target.image.shape[:2]
    side = recipe.crops[0] if len(recipe.crops) == 1 else int(rng.choice(recipe.crops))
    color = recipe.p_color >= 1.0 or (recipe.p_color > 0.0 and rng.random() < recipe.p_color)
    above = _draw(rng, recipe.above_eyes)
    m_t = alignment_matrix(target.landmarks, side, MARGIN)
    m_s = alignment_matrix(source.landmarks, side, MARGIN)
    crop_t = cv2.warpAffine(
        target.image, m_t, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    crop_s = cv2.warpAffine(
        source.image, m_s, (side, side), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE
    )
    region_t = _region(_transform(target.mesh, m_t), _transform(target.landmarks, m_t), side, above)
    region_s = _region(_transform(source.mesh, m_s), _transform(source.landmarks, m_s), side, above)
    both = (region_t > 127) & (region_s > 127)
    if int(both.sum()) < 200 * (side / CROP) ** 2:
        raise ValueError("the two faces barely overlap in the aligned crop")
    crop_s8 = np.asarray(crop_s, np.uint8)
    matched = reinhard(crop_s8, np.asarray(crop_t, np.uint8), both) if color else crop_s8
    pasted = cv2.warpAffine(
        matched,
        m_t,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    hard = cv2.warpAffine(
        both.astype(np.uint8) * 255,
        m_t,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
    )
    erode = _draw(rng, recipe.erode) * target.size
    sigma = _draw(rng, recipe.sigma) * target.size
    inside = (hard > 127).astype(np.uint8)
    depth = cv2.distanceTransform(inside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE)
    core = (depth > erode).astype(np.float32)
    if not core.any():
        raise ValueError("the swap region vanished after erosion")
    mask = cv2.GaussianBlur(core, (0, 0), max(0.5, sigma), borderType=cv2.BORDER_CONSTANT)
    mask = np.clip(mask / max(1e-6, float(mask.max())), 0.0, 1.0)[:, :, None]
    out = pasted.astype(np.float32) * mask + target.image.astype(np.float32) * (1.0 - mask)
    info = {
        "crop": side,
        "color_transfer": color,
        "above_eyes": round(above, 4),
        "down_scale": round(float(np.hypot(m_s[0, 0], m_s[1, 0])), 4),
        "up_scale": round(1.0 / float(np.hypot(m_t[0, 0], m_t[1, 0])), 4),
        "erode_face": round(erode / target.size, 4),
        "sigma_face": round(sigma / target.size, 4),
    }
    return np.clip(np.rint(out), 0, 255).astype(np.uint8), info


def to_jpeg(image: Image, path: Path, side: int = OUT_SIDE) -> None:
    """Saves ``image`` as JPEG, resized to ``side`` x ``side`` first (0: as it is)."""
    h, w = image.shape[:2]
    if side and (h, w) != (side, side):
        shrink = max(h, w) > side
        image = np.asarray(
            cv2.resize(
                image,
                (side, side),
                interpolation=cv2.INTER_AREA if shrink else cv2.INTER_CUBIC,
            ),
            np.uint8,
        )
    path.parent.mkdir(parents=True, exist_ok=True)
    ok = cv2.imwrite(
        str(path),
        cv2.cvtColor(image, cv2.COLOR_RGB2BGR),
        [cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY],
    )
    if not ok:
        raise OSError(f"cannot write {path}")


def shared_rows(root: Path) -> dict[str, dict[str, str]]:
    """A shared set's MANIFEST.tsv rows by file path (relative to the set)."""
    with (root / "MANIFEST.tsv").open(newline="", encoding="utf-8") as fh:
        return {row["file"]: row for row in csv.DictReader(fh, delimiter="\t")}


def _name(face: Face) -> str:
    return f"{face.dataset}_{face.path.stem.replace('.', '_')}"


def build(
    roots: list[Path],
    out: Path,
    split_file: Path,
    split: str,
    n: int,
    seed: int,
    side: int = OUT_SIDE,
    recipe: str = "dev",
    per_target: int = 1,
) -> dict[str, Any]:
    """The dev recipe: ``n`` swaps and ``n`` other untouched reals, targets, reals and sources
    disjoint. The train recipe (:data:`TRAIN`): every face of the split is a real *and* the
    target of ``per_target`` swaps (each from another source), so a training run sees each
    portrait both untouched and swapped."""
    how = RECIPES[recipe]
    out = out.resolve()
    if out == REPO or REPO in out.parents:
        raise SystemExit(f"--out {out} is inside the repository: the sources are research-only")
    if (out / "MANIFEST.tsv").exists():
        raise SystemExit(f"{out} already holds a set; remove it first")
    groups_of = json.loads(split_file.read_text(encoding="utf-8"))["groups"]
    items, groups = grouped_items(roots)
    pool = [
        (item, group)
        for item, group in zip(items, groups, strict=True)
        if item.label == "real" and groups_of.get(group) in split.split(",")
    ]
    rows_of = {root.resolve(): shared_rows(root) for root in roots}
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(pool))
    detector = FACE_DETECTORS.create("hybrid")

    # Walk the shuffled pool: the dev recipe takes the first n images with a face as targets,
    # the next n as reals, the rest as sources; the train recipe takes every face in each role.
    found: list[Face] = []
    no_face: Counter[str] = Counter()
    for k in order:
        item, group = pool[int(k)]
        face = find_face(detector, item.path, item.dataset, group)
        if face is None:
            no_face[item.dataset] += 1
        else:
            found.append(face)
    if recipe == "train":
        targets, reals, rest = found, found, found
    else:
        targets, reals, rest = found[:n], found[n : 2 * n], found[2 * n :]
    sources: dict[str, list[Face]] = {}
    for face in rest:
        sources.setdefault(face.dataset, []).append(face)
    print(f"faces: {len(targets)} targets, {len(reals)} reals, no face {dict(no_face)}")
    if recipe == "dev" and len(reals) < n:
        raise SystemExit(f"only {len(targets)} + {len(reals)} faces in the split; lower --n")

    size = f"{side} px face picture" if side else "picture at its own size"
    kind = f"image ({size}, JPEG q{JPEG_QUALITY})"
    manifest: list[dict[str, str]] = []
    pairs: list[dict[str, Any]] = []
    failed: list[str] = []
    for face in reals:
        file = f"real/{_name(face)}.jpg"
        to_jpeg(face.image, out / file, side)
        shared = _shared_row(rows_of, face)
        manifest.append(
            {
                "file": file,
                "label": "real",
                "source_repo": shared["source_repo"],
                "commit": shared["commit"],
                "original_path": shared["original_path"],
                "kind": kind,
                "generator_method": "none (untouched real, resized and re-encoded like the fakes)",
            }
        )

    def jobs() -> Iterator[tuple[Face, Face]]:
        """Each target's sources, drawn lazily: a target's swaps are made before the next
        target's sources are drawn, the order of generator draws the dev sets were built in."""
        for target in targets:
            pool_b = [s for s in sources.get(target.dataset, []) if s.group != target.group]
            if not pool_b:
                failed.append(f"{target.path.name}: no source of another identity")
                continue
            picks = rng.choice(len(pool_b), size=min(CANDIDATES, len(pool_b)), replace=False)
            ranked = sorted((pool_b[int(i)] for i in picks), key=lambda s: pose_distance(target, s))
            yield from ((target, source) for source in ranked[:per_target])

    for target, source in jobs():
        try:
            fake, info = swap(target, source, rng, how)
        except ValueError as exc:
            failed.append(f"{target.path.name}: {exc}")
            continue
        file = f"fake/{_name(target)}__{_name(source)}.jpg"
        to_jpeg(fake, out / file, side)
        t_row, s_row = _shared_row(rows_of, target), _shared_row(rows_of, source)
        manifest.append(
            {
                "file": file,
                "label": "fake",
                "source_repo": t_row["source_repo"],
                "commit": t_row["commit"],
                "original_path": t_row["original_path"],
                "kind": kind,
                "generator_method": (
                    f"inswapper-like {info['crop']} px swap (tools/make_oneshot_val.py, "
                    f"recipe {recipe}, seed {seed}): "
                    f"face of {s_row['source_repo']}:{s_row['original_path']} pasted"
                ),
            }
        )
        pairs.append(
            {
                "file": file,
                "target": str(target.path),
                "source": str(source.path),
                "pose_distance": round(pose_distance(target, source), 4),
                **info,
            }
        )
    out.mkdir(parents=True, exist_ok=True)
    with (out / "MANIFEST.tsv").open("w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, COLUMNS, delimiter="\t", lineterminator="\n")
        writer.writeheader()
        writer.writerows(manifest)
    counts = Counter(row["label"] for row in manifest)
    report: dict[str, Any] = {
        "command": " ".join(sys.argv),
        "roots": [str(r) for r in roots],
        "split_file": str(split_file),
        "split": split,
        "seed": seed,
        "side": side,
        "recipe": {"name": recipe, **asdict(how), "per_target": per_target},
        "pool_reals": len(pool),
        "no_face": dict(no_face),
        "counts": dict(counts),
        "by_set": {
            "fake": dict(Counter(Path(p["target"]).parent.parent.name for p in pairs)),
            "real": dict(Counter(f.dataset for f in reals)),
        },
        "failed": failed,
        "pairs": pairs,
        "terms": "research-only sources: never copy into the repository",
    }
    (out / "BUILD.json").write_text(json.dumps(report, indent=1), encoding="utf-8")
    return report


def _shared_row(rows_of: dict[Path, dict[str, dict[str, str]]], face: Face) -> dict[str, str]:
    for root, rows in rows_of.items():
        if root in face.path.resolve().parents:
            return rows[face.path.resolve().relative_to(root).as_posix()]
    raise KeyError(face.path)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("roots", nargs="+", type=Path, help="shared face sets (reals are used)")
    parser.add_argument("--out", type=Path, required=True, help="new folder outside the repo")
    parser.add_argument("--split-file", type=Path, default=REPO / "configs/splits/faces_v2.json")
    parser.add_argument("--split", default="val", help="split(s) of the reals, comma-separated")
    parser.add_argument(
        "--side", type=int, default=OUT_SIDE, help="output side in px (0: keep each size)"
    )
    parser.add_argument("--n", type=int, default=200, help="fakes, and as many reals")
    parser.add_argument("--seed", type=int, default=12345)
    parser.add_argument(
        "--recipe",
        choices=sorted(RECIPES),
        default="dev",
        help="dev: the dev sets' recipe; train: training fakes made otherwise (SwapRecipe)",
    )
    parser.add_argument(
        "--per-target", type=int, default=1, help="train recipe: swaps per target face"
    )
    args = parser.parse_args()
    cv2.setNumThreads(1)
    report = build(
        args.roots,
        args.out,
        args.split_file,
        args.split,
        args.n,
        args.seed,
        args.side,
        args.recipe,
        args.per_target,
    )
    items = load_dataset("auto", args.out)
    labels = Counter(item.label for item in items)
    print(
        f"{args.out}: {labels['fake']} fakes, {labels['real']} reals "
        f"(no face: {report['no_face']}, failed: {len(report['failed'])})"
    )


if __name__ == "__main__":
    main()
