"""Training from a face store: identity splits, class- and set-balanced sampling, validation
per source set.

Used by :func:`fakescope.training.train_sbi.train` when ``data.store`` is set:

* :func:`load_store_data` opens the store (:mod:`fakescope.training.store`), assigns every
  identity group to train/val/calib/test (:func:`~fakescope.training.store.split_groups`) and
  writes that assignment to the run folder (``splits.json``);
* :class:`BalancedSampler` draws each training sample by first picking a source set (weights
  ``data.set_weights``), then the class (fake with probability 1/2), then, for a fake, a
  self-blended pseudo-fake made from one of the set's reals (probability
  ``data.pseudo_fraction``, always for a set without fakes) or one of its supervised fakes.
  A set named in ``data.reals_only`` gives only reals (never a fake, never a pseudo-fake of
  its own faces): its share of the draws is all real, and the other sets draw fakes a little
  more often so that the classes stay balanced. A set named in ``data.supervised_only``
  gives its own supervised fakes only (never a pseudo-fake of its reals);
* :func:`validate_sets` scores the validation split per source set: frame AUC, and for video
  sets the video AUC of the mean crop probability per video. Its ``val_score`` (the mean over
  sets of the video AUC where there is one, else the frame AUC) picks the epoch.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.data import load_dataset, write_manifest
from fakescope.errors import ConfigError
from fakescope.evaluation import roc_auc_or_none
from fakescope.training.store import FaceStore, grouped_items, split_groups

__all__ = [
    "BalancedSampler",
    "StoreData",
    "load_store_data",
    "parse_set_weights",
    "pinned_split",
    "validate_sets",
    "write_pinned_manifests",
    "write_split_manifests",
]


@dataclass(frozen=True)
class StoreData:
    """The store's crops with their split (``train``/``val``/``calib``/``test``) per crop."""

    store: FaceStore
    labels: npt.NDArray[np.int64]
    methods: npt.NDArray[np.str_]
    datasets: npt.NDArray[np.str_]
    media_ids: npt.NDArray[np.str_]
    splits: npt.NDArray[np.str_]


def pinned_split(path: str | Path, groups: Sequence[str]) -> dict[str, str]:
    """The ``{group: split}`` assignment of a ``splits.json`` file for the store's ``groups``;
    groups the file does not name get ``unassigned`` (in no split)."""
    try:
        pinned = json.loads(Path(path).read_text(encoding="utf-8"))["groups"]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise ConfigError(f"data.split_file: cannot read a splits.json from {path}: {exc}") from exc
    if not isinstance(pinned, dict) or not all(
        v in ("train", "val", "calib", "test") for v in pinned.values()
    ):
        raise ConfigError(f"data.split_file: {path}: groups must map to train/val/calib/test")
    return {g: str(pinned.get(g, "unassigned")) for g in groups}


def load_store_data(
    root: str | Path,
    ratios: tuple[float, float, float],
    seed: int,
    run_dir: Path | None,
    split_file: str | Path | None = None,
) -> StoreData:
    """Open the store at ``root`` and split it by identity group (seeded, or as pinned by
    ``split_file``: :func:`pinned_split`); with ``run_dir``, write the assignment (and the crop
    counts per set and split) to ``run_dir/splits.json``."""
    store = FaceStore.open(Path(root))
    if len(store) == 0:
        raise ConfigError(f"data.store {root} holds no crops")
    if split_file is None:
        assignment = split_groups(store.rows, ratios, seed)
    else:
        assignment = pinned_split(split_file, sorted({r["group"] for r in store.rows}))
    splits = np.array([assignment[r["group"]] for r in store.rows])
    datasets = store.column("dataset")
    if run_dir is not None:
        pairs = sorted({(r["media_id"], r["group"]) for r in store.rows})
        (run_dir / "store.json").write_text(
            json.dumps({"store": str(root), "media_groups": pairs}), encoding="utf-8"
        )
        counts: dict[str, dict[str, int]] = {}
        for d, s in zip(datasets.tolist(), splits.tolist(), strict=True):
            counts.setdefault(d, {}).setdefault(s, 0)
            counts[d][s] += 1
        (run_dir / "splits.json").write_text(
            json.dumps(
                {"ratios": list(ratios), "seed": seed, "crops": counts, "groups": assignment},
                indent=1,
                sort_keys=True,
            ),
            encoding="utf-8",
        )
    return StoreData(
        store=store,
        labels=store.column("labels"),
        methods=store.column("method"),
        datasets=datasets,
        media_ids=store.column("media_id"),
        splits=splits,
    )


def parse_set_weights(items: tuple[str, ...], datasets: set[str]) -> dict[str, float]:
    """``("dfdc_faces=0.4", ...)`` -> weights for ``datasets`` (unnamed sets get 1.0; a name
    that is not in the store is an error, so a typo cannot silently drop a set)."""
    weights = dict.fromkeys(sorted(datasets), 1.0)
    for item in items:
        name, sep, raw = item.partition("=")
        if not sep or name not in datasets:
            raise ConfigError(
                f"data.set_weights: {item!r} must be NAME=WEIGHT with NAME one of "
                f"{sorted(datasets)}"
            )
        try:
            weights[name] = float(raw)
        except ValueError:
            raise ConfigError(f"data.set_weights: {item!r} has no numeric weight") from None
        if not weights[name] >= 0:
            raise ConfigError(f"data.set_weights: {item!r} must not be negative")
    if sum(weights.values()) <= 0:
        raise ConfigError("data.set_weights: at least one weight must be positive")
    return weights


class BalancedSampler:
    """Draws ``(crop index, pseudo-fake probability)`` pairs for
    :func:`~fakescope.training.train_sbi.make_sample`: a real index with probability 1.0 is a
    pseudo-fake, with 0.0 the (self-blending-augmented) real; a fake index is that fake."""

    def __init__(
        self,
        data: StoreData,
        weights: dict[str, float],
        pseudo_fraction: float,
        supervised_fakes: bool = True,
        reals_only: Sequence[str] = (),
        supervised_only: Sequence[str] = (),
    ) -> None:
        train = data.splits == "train"
        self.reals: dict[str, npt.NDArray[np.int64]] = {}
        self.fakes: dict[str, npt.NDArray[np.int64]] = {}
        for name in sorted(set(data.datasets[train].tolist())):
            in_set = train & (data.datasets == name)
            self.reals[name] = np.nonzero(in_set & (data.labels == 0))[0]
            fakes = np.nonzero(in_set & (data.labels == 1))[0]
            self.fakes[name] = fakes if supervised_fakes else fakes[:0]
        # a set without reals cannot give reals or pseudo-fakes: only fakes-only sets drop out
        self.sets = [s for s in self.reals if len(self.reals[s]) and weights.get(s, 0) > 0]
        if not self.sets:
            raise ConfigError("the training split has no set with real faces and a weight > 0")
        unknown = sorted(set(reals_only) - set(self.reals))
        if unknown:
            raise ConfigError(f"data.reals_only: {unknown} name no set of the training split")
        lacking = sorted(s for s in supervised_only if not len(self.fakes.get(s, ())))
        if lacking:
            raise ConfigError(
                f"data.supervised_only: {lacking} have no supervised fakes in the training split"
            )
        self.supervised_only = frozenset(supervised_only)
        w = np.array([weights[s] for s in self.sets], np.float64)
        self.probs = w / w.sum()
        self.pseudo_fraction = pseudo_fraction
        self.reals_only = frozenset(reals_only)
        # P(fake | a set that gives fakes), so that half of all draws stay fake
        share = float(
            sum(p for s, p in zip(self.sets, self.probs, strict=True) if s in self.reals_only)
        )
        if share > 0.5:
            raise ConfigError(
                f"data.reals_only: those sets draw {share:.0%} of the samples; more than half "
                "would leave too few sets to draw the fakes from"
            )
        self.p_fake = 0.5 / (1.0 - share)

    def __len__(self) -> int:
        return int(sum(len(self.reals[s]) + len(self.fakes[s]) for s in self.sets))

    def new_epoch(self, rng: np.random.Generator) -> None:
        """Draws are independent: nothing to reshuffle."""

    def batch(self, rng: np.random.Generator, step: int, size: int) -> list[tuple[int, float]]:
        return self.draw(rng, size)

    def draw(self, rng: np.random.Generator, n: int) -> list[tuple[int, float]]:
        out: list[tuple[int, float]] = []
        for _ in range(n):
            name = self.sets[int(rng.choice(len(self.sets), p=self.probs))]
            reals, fakes = self.reals[name], self.fakes[name]
            if name in self.reals_only or rng.random() >= self.p_fake:
                out.append((int(rng.choice(reals)), 0.0))
            elif len(fakes) == 0 or (
                name not in self.supervised_only and rng.random() < self.pseudo_fraction
            ):
                out.append((int(rng.choice(reals)), 1.0))
            else:
                out.append((int(rng.choice(fakes)), 0.0))
        return out


def validate_sets(
    probs: npt.NDArray[np.float32],
    labels: npt.NDArray[np.int64],
    datasets: npt.NDArray[np.str_],
    media_ids: npt.NDArray[np.str_],
) -> dict[str, Any]:
    """Validation figures per source set (see the module docstring) and ``val_score``."""
    per_set: dict[str, dict[str, float | None]] = {}
    primary: list[float] = []
    for name in sorted(set(datasets.tolist())):
        keep = datasets == name
        entry: dict[str, float | None] = {
            "frame_auc": roc_auc_or_none(labels[keep], probs[keep], ndigits=4)
        }
        ids = media_ids[keep]
        if len(set(ids.tolist())) < keep.sum():  # several crops per item: a video set
            uniq, inverse = np.unique(ids, return_inverse=True)
            mean = np.bincount(inverse, probs[keep]) / np.bincount(inverse)
            first = np.zeros(len(uniq), np.int64)
            first[inverse] = labels[keep]
            entry["video_auc"] = roc_auc_or_none(first, mean.astype(np.float32), ndigits=4)
        per_set[name] = entry
        best = entry.get("video_auc", entry["frame_auc"])
        if best is not None:
            primary.append(best)
    return {
        "val_auc": roc_auc_or_none(labels, probs, ndigits=4),
        "val_sets": per_set,
        "val_score": round(float(np.mean(primary)), 4) if primary else None,
    }


def write_split_manifests(run_dir: Path, roots: Sequence[Path]) -> dict[str, Path]:
    """Write ``run_dir/<split>.tsv`` manifests (:func:`fakescope.data.write_manifest`) of the
    media whose crops the run put in each split (``splits.json``), from the dataset ``roots``
    the store was built from, so that ``fakescope eval run/calib.tsv`` scores the calibration
    split through the real scan pipeline and ``fakescope eval run/val.tsv`` the validation
    split. Media without a stored face are in no manifest."""
    split_of_group: dict[str, str] = json.loads(
        (run_dir / "splits.json").read_text(encoding="utf-8")
    )["groups"]
    store_cfg = json.loads((run_dir / "store.json").read_text(encoding="utf-8"))
    split_of_media = {
        r_media: split_of_group[r_group] for r_media, r_group in store_cfg["media_groups"]
    }
    by_split: dict[str, list[Any]] = {}
    for root in roots:
        for item in load_dataset("auto", root):
            split = split_of_media.get(item.media_id)
            if split is not None and split != "unassigned":
                by_split.setdefault(split, []).append(item)
    return {
        split: write_manifest(items, run_dir / f"{split}.tsv")
        for split, items in sorted(by_split.items())
    }


def write_pinned_manifests(
    split_file: Path, roots: Sequence[Path], out_dir: Path
) -> dict[str, Path]:
    """Write ``out_dir/<split>.tsv`` manifests of the media of ``roots`` by the split a pinned
    ``splits.json`` (``data.split_file``, :func:`pinned_split`) gives their identity group
    (:func:`fakescope.data.identity_groups` over all of ``roots``, as the store names them).
    No store or run folder is needed, so media the store never held a face of are kept: e.g.
    the ``ffpp_c23_videos`` clips of the val and calib groups, which the video-level
    calibrators are fitted on. Items of groups the file does not name are in no manifest;
    the development set (``ffpp_c40_videos``) is refused."""
    items, groups = grouped_items([Path(r) for r in roots], "it is never split")
    assignment = pinned_split(split_file, sorted(set(groups)))
    by_split: dict[str, list[Any]] = {}
    for item, group in zip(items, groups, strict=True):
        split = assignment[group]
        if split != "unassigned":
            by_split.setdefault(split, []).append(item)
    return {
        split: write_manifest(its, out_dir / f"{split}.tsv")
        for split, its in sorted(by_split.items())
    }


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description="Write a store run's split manifests (train/val/calib/test .tsv)."
    )
    parser.add_argument(
        "run",
        type=Path,
        help="training run folder (holds splits.json); with --split-file, the folder to "
        "write the manifests to",
    )
    parser.add_argument("roots", nargs="+", type=Path, help="the store's dataset folders")
    parser.add_argument(
        "--split-file",
        type=Path,
        help="split by this pinned splits.json (e.g. configs/splits/faces_v2.json) instead "
        "of the run's: every item of ROOTS by its identity group, no store needed",
    )
    args = parser.parse_args(argv)
    if args.split_file is not None:
        written = write_pinned_manifests(args.split_file, args.roots, args.run)
    else:
        written = write_split_manifests(args.run, args.roots)
    for split, path in written.items():
        print(f"{split}: {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
