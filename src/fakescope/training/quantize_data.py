"""The data of the quantizer (:mod:`fakescope.training.quantize`): calibration and validation
crops of a face store by a run's identity-group splits, and the images and patches of a
synthesis run's splits, each normalised exactly as the detector that reads them.

Picks are spread over source media (every medium gives one before any gives two) and drawn
with a fixed seed, so the same command gives the same inputs. The FF++ c40 development set is
never read.
"""

from __future__ import annotations

import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError, InputError
from fakescope.training.images import read_rgb

if TYPE_CHECKING:
    from fakescope.models import WeightConfig
    from fakescope.synthesis import CnnSynthesisDetector
    from fakescope.training.store import FaceStore

__all__ = [
    "NEVER_READ",
    "SEED",
    "Normaliser",
    "StoreSplits",
    "calibration_indices",
    "load_splits",
    "synth_calibration_patches",
    "synth_normalise",
    "synth_split",
    "synth_test_items",
    "synth_weights_json",
    "val_indices",
]

NEVER_READ = "ffpp_c40_videos"
"""The FF++ c40 development set: refused wherever a path names it."""
SEED = 0

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]
_I64 = npt.NDArray[np.int64]
_S = npt.NDArray[np.str_]


# --------------------------------------------------------------------------------------------
# face crops of a store


@dataclass(frozen=True)
class StoreSplits:
    """A face store's crops with each crop's source set, label (1 fake), medium and split."""

    store: FaceStore
    datasets: _S
    labels: _I64
    media: _S
    splits: _S


def load_splits(store_root: Path, splits_file: Path) -> StoreSplits:
    """The store's crops with each crop's split from ``splits_file`` (by identity group).
    Crops whose group the file does not know get split ``""`` (never used); development-only
    sets (FF++ c40) get ``"dev"`` (never used)."""
    from fakescope.training.store import DEV_ONLY, FaceStore

    store = FaceStore.open(store_root)
    info = json.loads(splits_file.read_text(encoding="utf-8"))
    groups: dict[str, str] = info["groups"]
    datasets = store.column("dataset")
    splits = np.array([groups.get(r["group"], "") for r in store.rows])
    splits[np.isin(datasets, sorted(DEV_ONLY))] = "dev"
    unknown = int((splits == "").sum())
    if unknown:
        print(f"warning: {unknown} crops of groups not in {splits_file}: not used", file=sys.stderr)
    # the file also records crop counts per set and split: they must match this store
    for name, per_split in info.get("crops", {}).items():
        for split, n in per_split.items():
            have = int(((datasets == name) & (splits == split)).sum())
            if have != n:
                print(
                    f"warning: {splits_file} counts {n} {name} crops in {split}, store has {have}",
                    file=sys.stderr,
                )
    return StoreSplits(
        store, datasets, store.column("labels"), store.column("media_id"), splits.astype(str)
    )


def _spread(idx: _I64, media: _S, rng: np.random.Generator) -> list[int]:
    """``idx`` shuffled, then reordered so that the first picks come from distinct media."""
    order = rng.permutation(idx)
    seen: dict[str, int] = {}
    rank = []
    for i in order:
        m = str(media[i])
        rank.append(seen.get(m, 0))
        seen[m] = seen.get(m, 0) + 1
    return [int(order[k]) for k in np.argsort(rank, kind="stable")]


def calibration_indices(data: StoreSplits, count: int, seed: int = SEED) -> _I64:
    """``count`` train crops: equal shares per source set, and within a set per class present
    (a set with reals only gives reals), spread over media, fixed ``seed``."""
    rng = np.random.default_rng(seed)
    train = data.splits == "train"
    names = sorted(set(data.datasets[train].tolist()))
    out: list[int] = []
    for k, name in enumerate(names):
        share = count // len(names) + (k < count % len(names))
        pools = [
            np.nonzero(train & (data.datasets == name) & (data.labels == c))[0] for c in (0, 1)
        ]
        pools = [p for p in pools if len(p)]
        for j, pool in enumerate(pools):
            n = share // len(pools) + (j < share % len(pools))
            out.extend(_spread(pool, data.media, rng)[:n])
    return np.sort(np.array(out, np.int64))


def val_indices(data: StoreSplits, per_set: int) -> _I64:
    """The ``val`` crops, at most ``per_set`` per source set, evenly spaced (as the trainer's
    validation picks them)."""
    out = []
    for name in sorted(set(data.datasets.tolist())):
        idx = np.nonzero((data.datasets == name) & (data.splits == "val"))[0]
        if len(idx) > per_set:
            idx = idx[np.linspace(0, len(idx) - 1, per_set).round().astype(np.int64)]
        out.append(idx)
    return np.concatenate(out) if out else np.zeros(0, np.int64)


class Normaliser:
    """The exact input transform of :meth:`fakescope.models.OnnxDetector._run`: uint8 RGB
    crops -> normalised NCHW float32."""

    def __init__(self, config: WeightConfig) -> None:
        self.size = config.input_size
        self._mean = np.asarray(config.mean, dtype=np.float32) * 255.0
        self._inv_std = 1.0 / (np.asarray(config.std, dtype=np.float32) * 255.0)

    def __call__(self, crops: _U8) -> _F32:
        batch = crops.astype(np.float32) - self._mean
        batch *= self._inv_std
        return batch.transpose(0, 3, 1, 2).copy()


# --------------------------------------------------------------------------------------------
# images and patches of a synthesis run


def _guard(path: Path) -> Path:
    if NEVER_READ in Path(path).as_posix():
        raise ConfigError(f"{path}: the FF++ c40 development set is never read")
    return path


def synth_split(data_root: Path, splits_file: Path, split: str) -> list[tuple[Path, int]]:
    """(path, label) of the images of ``split`` in a synthesis run's ``splits.tsv`` (``file``
    name, ``label``, ``split``; :func:`~fakescope.training.synthesis_cnn_data.write_splits`),
    in the file's order; names resolved through ``data_root``'s MANIFEST.tsv."""
    import csv

    from fakescope.training.synthesis_cnn_data import load_manifest

    known: dict[str, tuple[Path, int]] = {}
    for item in load_manifest(_guard(data_root), "gen"):
        path = Path(item.path)
        if path.name in known:
            raise InputError(f"{data_root}: file name {path.name} is not unique")
        known[path.name] = (path, item.label)
    with _guard(splits_file).open(newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh, delimiter="\t") if r["split"] == split]
    out = []
    for r in rows:
        path, label = known[r["file"]]
        if label != int(r["label"]):
            raise InputError(f"{splits_file}: {r['file']} has label {r['label']}, manifest {label}")
        out.append((_guard(path), label))
    return out


def synth_test_items(test_file: Path, data_root: Path) -> list[tuple[Path, int]]:
    """(path, label) of a run's ``test.tsv`` (:func:`fakescope.data.read_manifest`). A path
    that does not exist here (the run was made in another work tree) is taken relative to
    ``data_root`` when the item's dataset is its folder."""
    from fakescope.data import read_manifest

    out = []
    for item in read_manifest(_guard(test_file)):
        path = item.path
        if not path.is_file():
            parts = path.parts
            if item.dataset != data_root.name or item.dataset not in parts:
                raise InputError(f"{test_file}: cannot find {path}")
            k = len(parts) - 1 - parts[::-1].index(item.dataset)
            path = data_root.joinpath(*parts[k + 1 :])
        out.append((_guard(path), int(item.label == "fake")))
    return out


def synth_normalise(detector: CnnSynthesisDetector, patches: _U8) -> _F32:
    """The exact input transform of :meth:`CnnSynthesisDetector._run`."""
    x = (patches.transpose(0, 3, 1, 2).astype(np.float32) - detector._mean) / detector._std
    return np.ascontiguousarray(x, dtype=np.float32)


def synth_calibration_patches(
    detector: CnnSynthesisDetector, items: list[tuple[Path, int]], count: int, seed: int = SEED
) -> tuple[_U8, list[str]]:
    """``count`` patches of ``items`` cut by ``detector.patches``: half (rounded up) from
    real, half from generated images; within a class, picks are spread over images (every
    image gives one patch before any gives two), fixed ``seed``. Returns the patches (real
    ones first) and a summary per class."""
    rng = np.random.default_rng(seed)
    cut = {i: detector.patches(read_rgb(path)) for i, (path, _) in enumerate(items)}
    labels = np.array([label for _, label in items], np.int64)
    picks: list[tuple[int, int]] = []
    summary = []
    for c in (0, 1):
        n = count // 2 + (c == 0 and count % 2 == 1)
        pool = [(int(i), k) for i in np.nonzero(labels == c)[0] for k in range(len(cut[int(i)]))]
        owner = np.array([f"{i}" for i, _ in pool])
        order = _spread(np.arange(len(pool), dtype=np.int64), owner, rng)[:n]
        chosen = sorted(pool[j] for j in order)
        picks += chosen
        summary.append(
            f"{len(chosen)} {'real' if c == 0 else 'generated'} patches of "
            f"{len({i for i, _ in chosen})} images"
        )
    return np.stack([cut[i][k] for i, k in picks]), summary


def synth_weights_json(src_json: Path, int8: Path, dst_json: Path) -> Path:
    """A copy of the weight config ``src_json`` for the network ``int8`` (its file name
    relative to ``dst_json``'s folder when it is there, else absolute; its sha256)."""
    from fakescope.models import sha256_file

    data = json.loads(src_json.read_text(encoding="utf-8"))
    file = int8.name if int8.parent.resolve() == dst_json.parent.resolve() else str(int8.resolve())
    data.update(
        file=file,
        sha256=sha256_file(int8),
        name=f"{data['name']}-int8",
        architecture=f"{data['architecture']}; static INT8 (QDQ) of {data['file']}",
    )
    dst_json.write_text(json.dumps(data, indent=2) + "\n", encoding="utf-8")
    return dst_json
