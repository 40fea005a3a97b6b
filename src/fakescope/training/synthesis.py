"""Data of the whole-image synthesis detectors (``synthesis_cnn``, ``finetune``, tools): the
sets' manifests and splits, self-made generator up-sampling and the random degradations
applied alike to both classes. (The frequency branch ``freq-v1`` trained here is no longer
shipped, and its trainer left with it: CHANGELOG.md.)
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt

__all__ = [
    "Degradation",
    "Item",
    "degrade",
    "generator_upsample",
    "jpeg",
    "load_manifest",
    "prompt_group",
    "split_by_group",
    "split_by_image",
]

_U8 = npt.NDArray[np.uint8]


@dataclass(frozen=True)
class Item:
    """One source image: ``group`` is the source set (``gen`` for the generated-image set, or
    the real-only set's folder name), ``label`` 1 = generated."""

    path: str
    label: int
    group: str
    split: str = "train"


def load_manifest(root: Path, group: str) -> list[Item]:
    """Items of a set's ``MANIFEST.tsv`` (``file`` relative to ``root``, ``label`` real/fake)."""
    with (root / "MANIFEST.tsv").open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    items = []
    for row in rows:
        label = row["label"].strip().lower()
        if label not in ("real", "fake"):
            raise ValueError(f"{root}/MANIFEST.tsv: label {label!r} is not real/fake")
        items.append(Item(str(root / row["file"]), int(label == "fake"), group))
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


def jpeg(img: _U8, quality: int) -> _U8:
    """JPEG round trip of an RGB image at ``quality`` (OpenCV's libjpeg, 4:2:0)."""
    ok, buf = cv2.imencode(
        ".jpg", cv2.cvtColor(img, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, int(quality)]
    )
    if not ok:
        raise ValueError("JPEG encoding failed")
    return np.asarray(cv2.cvtColor(cv2.imdecode(buf, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB))


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


def degrade(img: _U8, rng: np.random.Generator, min_side: int, cfg: Degradation) -> _U8:
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
            img = cv2.resize(img, size, interpolation=inter)
    if rng.random() < cfg.p_blur:
        img = cv2.GaussianBlur(img, (0, 0), rng.uniform(0.3, cfg.blur_max))
    if rng.random() < cfg.p_jpeg:
        img = jpeg(img, int(rng.integers(cfg.jpeg_min, cfg.jpeg_max + 1)))
    return np.ascontiguousarray(img, dtype=np.uint8)
