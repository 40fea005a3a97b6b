"""The data side of :mod:`fakescope.training.synthesis_cnn`: generated-image sets with their
generator family and split, the decoded training pools, and the training batches (the same
random rescale / crop / resize / blur / JPEG or H.264 degradations for both classes).

A set's split rule is ``image`` (:func:`~fakescope.training.synthesis.split_by_image`,
stratified by label: the ``--data`` set, so cnn-v1's stylegan2_ffhq split is kept image for
image) or ``prompt`` (:func:`~fakescope.training.synthesis.split_by_group` over
:func:`~fakescope.training.synthesis.prompt_group`: every image of one prompt lands in one
split; the ``--gen`` sets, e.g. sd21_faces).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.synthesis import limit_side
from fakescope.training.images import read_rgb
from fakescope.training.synthesis import (
    Degradation,
    Item,
    degrade,
    generator_upsample,
    load_manifest,
    prompt_group,
    split_by_group,
    split_by_image,
)

__all__ = [
    "FAMILIES",
    "MAX_SIDE",
    "SPLIT_RULES",
    "Augment",
    "GenSet",
    "Pools",
    "load_gen_set",
    "parse_gen",
    "read_image",
    "read_video_frames",
    "real_videos",
    "rescale",
    "sample_batch",
    "write_manifests",
    "write_splits",
]

_U8 = npt.NDArray[np.uint8]
FAMILIES = ("gan", "diffusion")
"""Generator families, in the order of the family target (0 = GAN, 1 = diffusion)."""
SPLIT_RULES = ("image", "prompt")
MAX_SIDE = 1024
_MODES = ("transposed", "nearest", "bilinear")
_RESCALE_MODES = (cv2.INTER_LANCZOS4, cv2.INTER_AREA, cv2.INTER_LINEAR, cv2.INTER_CUBIC)


def read_image(path: str) -> _U8:
    """An image file as RGB uint8 (:func:`~fakescope.training.images.read_rgb`), shorter side
    area-limited to :data:`MAX_SIDE`."""
    return limit_side(read_rgb(path), MAX_SIDE)


def read_video_frames(path: str, count: int) -> list[_U8]:
    """``count`` frames spread evenly over a video (RGB, shorter side at most 1024)."""
    cap = cv2.VideoCapture(path)
    try:
        total = int(cap.get(cv2.CAP_PROP_FRAME_COUNT))
        out: list[_U8] = []
        for index in np.linspace(0, max(total - 1, 0), count).round().astype(int):
            cap.set(cv2.CAP_PROP_POS_FRAMES, int(index))
            ok, bgr = cap.read()
            if ok:
                rgb = np.asarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB), dtype=np.uint8)
                out.append(limit_side(rgb, MAX_SIDE))
        return out
    finally:
        cap.release()


def real_videos(root: Path) -> list[str]:
    """The ``real`` rows of a video set's MANIFEST.tsv (:func:`load_manifest`), sorted."""
    return [i.path for i in load_manifest(root, root.name) if i.label == 0]


def parse_gen(text: str) -> tuple[Path, str]:
    """``SET=FAMILY`` (``--gen``): a set folder and its generator family."""
    root, sep, family = text.rpartition("=")
    if not sep or not root or family not in FAMILIES:
        raise ValueError(f"{text!r}: expected SET=FAMILY with FAMILY one of {', '.join(FAMILIES)}")
    return Path(root), family


@dataclass
class GenSet:
    """A generated-image set: its items (``MANIFEST.tsv``), generator family, split rule and
    each item's split (``train`` / ``calib`` / ``test``)."""

    root: Path
    family: str
    rule: str
    items: list[Item]
    splits: list[str]

    @property
    def name(self) -> str:
        return self.root.name

    def group(self, item: Item) -> str:
        """The unit the split keeps together: the prompt group, or the image itself."""
        return prompt_group(item.path) if self.rule == "prompt" else item.path

    def of(self, split: str, label: int | None = None) -> list[Item]:
        return [
            i
            for i, s in zip(self.items, self.splits, strict=True)
            if s == split and (label is None or i.label == label)
        ]

    def counts(self) -> dict[str, dict[str, int]]:
        return {
            s: {"real": len(self.of(s, 0)), "generated": len(self.of(s, 1))}
            for s in ("train", "calib", "test")
        }


def load_gen_set(root: Path, family: str, rule: str, seed: int) -> GenSet:
    """Read ``root``'s MANIFEST.tsv and split it by ``rule`` with ``seed`` (60/20/20)."""
    if family not in FAMILIES or rule not in SPLIT_RULES:
        raise ValueError(f"family {family!r} / split rule {rule!r} unknown")
    items = load_manifest(root, "gen")
    paths = [i.path for i in items]
    if rule == "image":
        splits = split_by_image(paths, [i.label for i in items], seed)
    else:
        splits = split_by_group(paths, [prompt_group(p) for p in paths], seed)
    return GenSet(root, family, rule, items, splits)


def write_splits(gen: GenSet, path: Path) -> Path:
    """``file`` (its name), ``label`` (0/1), ``split``, and for a prompt-split set ``group``:
    the same columns as cnn-v1's ``splits.tsv``, which tools/quantize_detectors.py reads."""
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("w") as fh:
        fh.write("file\tlabel\tsplit" + ("\tgroup" if gen.rule == "prompt" else "") + "\n")
        for item, split in zip(gen.items, gen.splits, strict=True):
            extra = f"\t{gen.group(item)}" if gen.rule == "prompt" else ""
            fh.write(f"{Path(item.path).name}\t{item.label}\t{split}{extra}\n")
    return path


def write_manifests(sets: Sequence[GenSet], out: Path) -> list[Path]:
    """``fakescope eval`` manifests of the calib and test splits: ``<out>/calib.tsv`` and
    ``<out>/test.tsv`` hold every set's split; ``<out>/sets/<set>/{calib,test}.tsv`` one set's,
    plus, for a set without reals of its own (sd21_faces), the other sets' reals of that split
    (the FFHQ photos), so each measures a generator against the same real photos."""
    from fakescope.data import MediaItem, load_dataset, write_manifest

    def media(gen: GenSet) -> dict[Path, tuple[MediaItem, str, int]]:
        of = {
            Path(i.path).resolve(): (s, i.label) for i, s in zip(gen.items, gen.splits, strict=True)
        }
        return {
            p: (m, *of[p])
            for m in load_dataset("manifest", gen.root)
            if (p := Path(m.path).resolve()) in of
        }

    rows = {g.name: media(g) for g in sets}
    written = []
    for split in ("calib", "test"):
        every = [m for g in sets for m, s, _ in rows[g.name].values() if s == split]
        written.append(write_manifest(every, out / f"{split}.tsv"))
        reals = [m for g in sets for m, s, y in rows[g.name].values() if s == split and y == 0]
        for g in sets:
            own = [m for m, s, _ in rows[g.name].values() if s == split]
            if not any(y == 0 for _, s, y in rows[g.name].values() if s == split):
                own += reals
            written.append(write_manifest(own, out / "sets" / g.name / f"{split}.tsv"))
    return written


@dataclass
class Pools:
    """Decoded training images by role (RGB uint8): generated ones by family and set, the
    reals of the generated-image sets' train split, and the other reals."""

    fakes: dict[str, list[list[_U8]]]
    gen_real: list[_U8]
    other_real: list[_U8]


@dataclass(frozen=True)
class Augment:
    """What :func:`sample_batch` does to every sample, of either class alike."""

    degradation: Degradation = field(default_factory=Degradation)
    p_rescale: float = 0.75
    """Probability of the first random rescale (0.5-1.0, Lanczos / area / bilinear / bicubic):
    sd21_faces carry a 2/3 Lanczos down-scale the FFHQ reals do not, so resampling traces
    must not tell the classes apart."""
    rescale_min: float = 0.5
    p_h264: float = 0.2
    """Probability that the codec step is an H.264 intra frame (CRF ``crf``) instead of the
    degradation's JPEG 30-95 (``fakescope.training.degrade.h264_roundtrip``)."""
    crf: tuple[int, int] = (20, 38)
    pseudo_share: float = 0.2
    """Share of generated samples that are self-made (real images up-sampled back)."""


def rescale(img: _U8, rng: np.random.Generator, min_side: int, lowest: float = 0.5) -> _U8:
    """Down-scale by a random factor in ``[lowest, 1]`` (never below ``min_side``) with a
    random interpolation (Lanczos, area, bilinear, bicubic); unchanged when it cannot shrink."""
    h, w = img.shape[:2]
    lo = max(lowest, min_side / min(h, w))
    if lo >= 1.0:
        return img
    s = rng.uniform(lo, 1.0)
    size = (max(min_side, round(w * s)), max(min_side, round(h * s)))
    mode = _RESCALE_MODES[int(rng.integers(len(_RESCALE_MODES)))]
    return np.asarray(cv2.resize(img, size, interpolation=mode), dtype=np.uint8)


def _h264_window(img: _U8, rng: np.random.Generator, size: int, crf: int) -> _U8:
    """A random even-sided window a little larger than the patch, through one H.264 intra
    frame (so the macroblock grid falls anywhere in the patch cut from it)."""
    from fakescope.training.degrade import h264_roundtrip

    side = size + 16 + size % 2
    h, w = img.shape[:2]
    wh, ww = min(side, h - h % 2), min(side, w - w % 2)
    y, x = int(rng.integers(0, h - wh + 1)), int(rng.integers(0, w - ww + 1))
    return h264_roundtrip(np.ascontiguousarray(img[y : y + wh, x : x + ww]), crf)


def _pick_fake(pools: Pools, rng: np.random.Generator) -> tuple[_U8, int]:
    """A generated image: a family drawn evenly, then a set of it evenly, then an image."""
    families = sorted(f for f, sets in pools.fakes.items() if any(sets))
    family = families[int(rng.integers(len(families)))]
    sets = [s for s in pools.fakes[family] if s]
    images = sets[int(rng.integers(len(sets)))]
    return images[int(rng.integers(len(images)))], FAMILIES.index(family)


def sample_batch(
    pools: Pools, rng: np.random.Generator, n: int, size: int, aug: Augment
) -> tuple[Any, Any, Any]:
    """One batch: (n, size, size, 3) uint8 patches, labels (1 = generated) and family
    targets (0 GAN, 1 diffusion, -1 for reals and self-made fakes, which belong to neither).
    Half generated (``aug.pseudo_share`` of those self-made), half real (half of those from
    the generated-image sets' reals)."""
    images: list[_U8] = []
    labels: list[int] = []
    families: list[int] = []
    reals = pools.gen_real + pools.other_real
    no_jpeg = dataclasses.replace(aug.degradation, p_jpeg=0.0)
    for k in range(n):
        family = -1
        if k % 2 == 0:
            if rng.random() < aug.pseudo_share or not any(any(s) for s in pools.fakes.values()):
                src = reals[int(rng.integers(len(reals)))]
                factor = 2 if rng.random() < 0.7 else 4
                mode = _MODES[int(rng.integers(len(_MODES)))]
                img = generator_upsample(src, factor, mode, rng)
            else:
                img, family = _pick_fake(pools, rng)
            labels.append(1)
        else:
            pool = pools.gen_real if rng.random() < 0.5 else pools.other_real
            img = pool[int(rng.integers(len(pool)))]
            labels.append(0)
        families.append(family)
        if min(img.shape[:2]) < size:  # a small real: up-scaling would add traces, pad instead
            img = cv2.copyMakeBorder(
                img,
                0,
                max(0, size - img.shape[0]),
                0,
                max(0, size - img.shape[1]),
                cv2.BORDER_REFLECT,
            )
        if rng.random() < aug.p_rescale:
            img = rescale(img, rng, size, aug.rescale_min)
        if rng.random() < aug.p_h264:
            img = degrade(img, rng, size + 16, no_jpeg)
            img = _h264_window(img, rng, size, int(rng.integers(aug.crf[0], aug.crf[1] + 1)))
        else:
            img = degrade(img, rng, size, aug.degradation)
        y = int(rng.integers(0, img.shape[0] - size + 1))
        x = int(rng.integers(0, img.shape[1] - size + 1))
        patch = img[y : y + size, x : x + size]
        if rng.random() < 0.5:
            patch = patch[:, ::-1]
        images.append(np.ascontiguousarray(patch))
    return (
        np.stack(images),
        np.asarray(labels, dtype=np.float32),
        np.asarray(families, dtype=np.float32),
    )
