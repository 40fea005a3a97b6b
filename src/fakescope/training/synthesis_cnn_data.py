"""The data side of :mod:`fakescope.training.synthesis_cnn`: generated-image sets with their
generator family and split, the decoded training pools, and the training batches (the same
random rescale / crop / resize / blur / JPEG or H.264 degradations for both classes).

A set's split rule is ``image`` (:func:`split_by_image`, stratified by label: the ``data.root``
set, so cnn-v1's stylegan2_ffhq split is kept image for image) or ``prompt``
(:func:`split_by_group` over :func:`prompt_group`: every image of one prompt lands in one
split; the ``data.gen`` sets, e.g. sd21_faces). Sets are read by :func:`load_manifest` (through
:mod:`fakescope.data`), images by :func:`~fakescope.training.images.read_rgb`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.data import load_dataset
from fakescope.synthesis import limit_side
from fakescope.training.degrade import jpeg_roundtrip
from fakescope.training.images import read_rgb

__all__ = [
    "FAMILIES",
    "MAX_SIDE",
    "SPLIT_RULES",
    "Augment",
    "Degradation",
    "GenSet",
    "Item",
    "Pools",
    "degrade_image",
    "generator_upsample",
    "load_gen_set",
    "load_manifest",
    "parse_gen",
    "prompt_group",
    "read_image",
    "read_video_frames",
    "real_videos",
    "rescale",
    "sample_batch",
    "split_by_group",
    "split_by_image",
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


@dataclass(frozen=True)
class Item:
    """One source image: ``group`` is the source set (``gen`` for the generated-image set, or
    the real-only set's folder name), ``label`` 1 = generated."""

    path: str
    label: int
    group: str
    split: str = "train"


def load_manifest(root: Path, group: str) -> list[Item]:
    """Items of a set's ``MANIFEST.tsv`` (``file`` relative to ``root``, ``label`` real/fake),
    sorted by path, as :func:`fakescope.data.load_dataset` reads it (its ``manifest`` adapter:
    a row whose file is missing is skipped with a :class:`~fakescope.data.DatasetWarning`)."""
    items = [
        Item(str(m.path), int(m.label == "fake"), group)
        for m in load_dataset("manifest", Path(root))
    ]
    return sorted(items, key=lambda i: i.path)


def split_by_image(
    files: Sequence[str],
    labels: Sequence[int],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> list[str]:
    """``train`` / ``calib`` / ``test`` per file, stratified by label: each class's files, in
    sorted order, are shuffled with ``seed`` and cut at the fractions. The same files give
    the same split whatever order they come in."""
    if len(files) != len(labels) or len(set(files)) != len(files):
        raise ValueError("need one label per file and unique files")
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError("fractions must be >= 0 and sum to 1")
    out: dict[str, str] = {}
    for label in sorted(set(labels)):
        members = sorted(f for f, lab in zip(files, labels, strict=True) if lab == label)
        order = np.random.default_rng([seed, int(label)]).permutation(len(members))
        n_train = round(fractions[0] * len(members))
        n_calib = round(fractions[1] * len(members))
        for rank, index in enumerate(order):
            split = "train" if rank < n_train else "calib" if rank < n_train + n_calib else "test"
            out[members[index]] = split
    return [out[f] for f in files]


def prompt_group(file: str) -> str:
    """The prompt group of a generated image's file name: the part of its name before the
    first comma (SDFD's ``anB-107,3.jpg`` -> ``anB-107``); a name without a comma is its own
    group (its stem)."""
    name = Path(file).name
    head, comma, _ = name.partition(",")
    return head if comma else Path(name).stem


def split_by_group(
    files: Sequence[str],
    groups: Sequence[str],
    seed: int = 0,
    fractions: tuple[float, float, float] = (0.6, 0.2, 0.2),
) -> list[str]:
    """``train`` / ``calib`` / ``test`` per file such that all files of one group (e.g. one
    prompt, :func:`prompt_group`) share a split: the groups, in sorted order, are shuffled with
    ``seed`` and filled into train until it holds ``fractions[0]`` of the files, then calib
    until train + calib hold ``fractions[0] + fractions[1]``, the rest test. Not stratified by
    label (a group may mix labels). The same files give the same split whatever their order."""
    if len(files) != len(groups) or len(set(files)) != len(files):
        raise ValueError("need one group per file and unique files")
    if abs(sum(fractions) - 1.0) > 1e-9 or min(fractions) < 0:
        raise ValueError("fractions must be >= 0 and sum to 1")
    members: dict[str, list[str]] = {}
    for f, g in zip(files, groups, strict=True):
        members.setdefault(g, []).append(f)
    names = sorted(members)
    order = np.random.default_rng([seed, 23]).permutation(len(names))
    n_train = round(fractions[0] * len(files))
    n_calib = round((fractions[0] + fractions[1]) * len(files))
    out: dict[str, str] = {}
    done = 0
    for index in order:
        group = members[names[index]]
        split = "train" if done < n_train else "calib" if done < n_calib else "test"
        out.update((f, split) for f in group)
        done += len(group)
    return [out[f] for f in files]


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
    """``SET=FAMILY`` (``data.gen``): a set folder and its generator family."""
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
    the same columns as cnn-v1's ``splits.tsv``, which :mod:`fakescope.training.quantize` reads."""
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


def generator_upsample(img: _U8, factor: int, mode: str, rng: np.random.Generator) -> _U8:
    """A self-made fake: ``img`` downscaled by ``factor`` (area) and up-sampled back like a
    generator's last layers: ``transposed`` (zero insertion, then a fixed random kernel of
    ``factor + 1`` taps whose overlaps are uneven, as a stride-``factor`` transposed
    convolution leaves), ``nearest`` or ``bilinear``. Output size: the input's, rounded down
    to a multiple of ``factor``."""
    h, w = (img.shape[0] // factor) * factor, (img.shape[1] // factor) * factor
    small = cv2.resize(img[:h, :w], (w // factor, h // factor), interpolation=cv2.INTER_AREA)
    if mode == "nearest":
        return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_NEAREST))
    if mode == "bilinear":
        return np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR))
    if mode != "transposed":
        raise ValueError(f"unknown up-sampling mode {mode!r}")
    taps = rng.uniform(0.3, 1.0, size=factor + 1)
    taps *= factor / taps.sum()  # every output phase keeps the mean brightness on average
    kernel = np.outer(taps, taps).astype(np.float32)
    zeros = np.zeros((h, w, 3), dtype=np.float32)
    zeros[::factor, ::factor] = small.astype(np.float32)
    out = cv2.filter2D(zeros, -1, kernel, borderType=cv2.BORDER_REFLECT)
    return np.asarray(np.clip(np.rint(out), 0, 255), dtype=np.uint8)


@dataclass(frozen=True)
class Degradation:
    """The random degradations applied alike to both classes (each step with its probability)."""

    p_crop: float = 0.5
    crop_min: float = 0.6  # smallest kept fraction of each side
    p_resize: float = 0.5
    resize_min: float = 0.5
    resize_max: float = 1.5
    p_blur: float = 0.25
    blur_max: float = 1.0  # Gaussian sigma, px
    p_jpeg: float = 0.7
    jpeg_min: int = 30
    jpeg_max: int = 95


def degrade_image(img: _U8, rng: np.random.Generator, min_side: int, cfg: Degradation) -> _U8:
    """Random crop -> resize -> blur -> JPEG, never below ``min_side`` px."""
    h, w = img.shape[:2]
    if rng.random() < cfg.p_crop:
        fy, fx = rng.uniform(cfg.crop_min, 1.0, size=2)
        ch, cw = max(min_side, round(h * fy)), max(min_side, round(w * fx))
        ch, cw = min(ch, h), min(cw, w)
        y, x = int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1))
        img, h, w = img[y : y + ch, x : x + cw], ch, cw
    if rng.random() < cfg.p_resize:
        lo = max(cfg.resize_min, min_side / min(h, w))
        if lo <= cfg.resize_max:
            s = rng.uniform(lo, cfg.resize_max)
            size = (max(min_side, round(w * s)), max(min_side, round(h * s)))
            inter = cv2.INTER_AREA if s < 1 else cv2.INTER_LINEAR
            img = np.asarray(cv2.resize(img, size, interpolation=inter), np.uint8)
    if rng.random() < cfg.p_blur:
        img = np.asarray(cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, cfg.blur_max)), np.uint8)
    if rng.random() < cfg.p_jpeg:
        img = jpeg_roundtrip(img, int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1)))
    return np.ascontiguousarray(img, dtype=np.uint8)


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
    gan_share: float | None = None
    """Share of the generated images (not self-made) drawn from the GAN family when both
    families are trained; None: the families drawn evenly (cnn-v2)."""


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


def _pick_fake(
    pools: Pools, rng: np.random.Generator, gan_share: float | None = None
) -> tuple[_U8, int]:
    """A generated image: a family drawn evenly (or GAN with probability ``gan_share`` when
    both are there), then a set of it evenly, then an image."""
    families = sorted(f for f, sets in pools.fakes.items() if any(sets))
    if gan_share is not None and len(families) == 2:
        family = "gan" if rng.random() < gan_share else "diffusion"
    else:
        family = families[int(rng.integers(len(families)))]
    sets = [s for s in pools.fakes[family] if s]
    images = sets[int(rng.integers(len(sets)))]
    return images[int(rng.integers(len(images)))], FAMILIES.index(family)


def sample_batch(
    pools: Pools, rng: np.random.Generator, n: int, size: int, aug: Augment
) -> tuple[_U8, npt.NDArray[np.float32], npt.NDArray[np.float32]]:
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
                img, family = _pick_fake(pools, rng, aug.gan_share)
            labels.append(1)
        else:
            pool = pools.gen_real if rng.random() < 0.5 else pools.other_real
            img = pool[int(rng.integers(len(pool)))]
            labels.append(0)
        families.append(family)
        if min(img.shape[:2]) < size:  # a small real: up-scaling would add traces, pad instead
            pad_y, pad_x = max(0, size - img.shape[0]), max(0, size - img.shape[1])
            img = np.asarray(
                cv2.copyMakeBorder(img, 0, pad_y, 0, pad_x, cv2.BORDER_REFLECT), np.uint8
            )
        if rng.random() < aug.p_rescale:
            img = rescale(img, rng, size, aug.rescale_min)
        if rng.random() < aug.p_h264:
            img = degrade_image(img, rng, size + 16, no_jpeg)
            img = _h264_window(img, rng, size, int(rng.integers(aug.crf[0], aug.crf[1] + 1)))
        else:
            img = degrade_image(img, rng, size, aug.degradation)
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
