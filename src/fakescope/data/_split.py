"""Identity-disjoint train/val/test splits (union-find over shared identities)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np

from fakescope.data._items import SPLITS, MediaItem
from fakescope.errors import ConfigError


class _UnionFind:
    def __init__(self) -> None:
        self.parent: dict[str, str] = {}

    def find(self, key: str) -> str:
        self.parent.setdefault(key, key)
        root = key
        while self.parent[root] != root:
            root = self.parent[root]
        while self.parent[key] != root:  # path compression
            self.parent[key], key = root, self.parent[key]
        return root

    def union(self, a: str, b: str) -> None:
        ra, rb = self.find(a), self.find(b)
        if ra != rb:
            self.parent[rb] = ra


def identity_groups(items: Sequence[MediaItem]) -> list[str]:
    """The identity group of each item (same order): items sharing an identity, directly or
    through a chain (a swap links its target and source), get the same group name, the
    smallest identity key of the component (``"<dataset>:<id>"``; an item without
    identities is its own group, ``"<dataset>:item:<media_id>"``). FF++ sets share one id
    space, so ``ffpp_c23_videos`` and ``ffpp_c40_videos`` ids meet in the same groups."""
    uf = _UnionFind()
    keys_of: list[list[str]] = []
    for item in items:
        space = _id_space(item.dataset)
        keys = [f"{space}:{i}" for i in item.identities] or [f"{space}:item:{item.media_id}"]
        for key in keys[1:]:
            uf.union(keys[0], key)
        uf.find(keys[0])
        keys_of.append(keys)
    smallest: dict[str, str] = {}
    for keys in keys_of:
        root = uf.find(keys[0])
        smallest[root] = min([smallest.get(root, keys[0]), *keys])
    return [smallest[uf.find(keys[0])] for keys in keys_of]


def _id_space(dataset: str) -> str:
    """FF++-derived sets (``ffpp``, ``ffpp_c23_videos``...) share the FF++ person ids."""
    return "ffpp" if dataset.startswith("ffpp") and dataset != "ffpp_face_crops" else dataset


def identity_disjoint_split(
    items: Sequence[MediaItem],
    ratios: tuple[float, float, float] = (0.72, 0.14, 0.14),
    seed: int = 0,
) -> list[MediaItem]:
    """``items`` (same order) with ``split`` reassigned so no identity is in two splits.

    Items sharing an identity, directly or through a chain (a swap links its target and
    source), form one component; components are shuffled with ``numpy.random.default_rng(seed)``
    and each goes to the train/val/test split furthest below its target item count
    (``ratios`` are normalised; a zero ratio leaves that split empty). An item without
    identities is its own component. Reproducible from ``seed``.
    """
    if len(ratios) != 3 or any(not np.isfinite(r) or r < 0 for r in ratios) or sum(ratios) <= 0:
        raise ConfigError(
            f"ratios must be 3 non-negative numbers with a positive sum, not {ratios}"
        )
    components: dict[str, list[int]] = {}
    for index, name in enumerate(identity_groups(items)):
        components.setdefault(name, []).append(index)

    groups = list(components.values())  # first-appearance order: deterministic
    order = np.random.default_rng(seed).permutation(len(groups))
    total = float(sum(ratios))
    targets = [r / total * len(items) for r in ratios]
    allowed = [i for i, r in enumerate(ratios) if r > 0]
    counts = [0, 0, 0]
    assigned: list[str | None] = [None] * len(items)
    for g in order:
        members = groups[int(g)]
        best = max(allowed, key=lambda s: (targets[s] - counts[s], -s))
        counts[best] += len(members)
        for index in members:
            assigned[index] = SPLITS[best]
    return [
        dataclasses.replace(item, split=split) for item, split in zip(items, assigned, strict=True)
    ]
