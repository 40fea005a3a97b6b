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
    uf = _UnionFind()
    for item in items:
        keys = [f"id:{i}" for i in item.identities] or [f"item:{item.media_id}"]
        for key in keys[1:]:
            uf.union(keys[0], key)
        uf.find(keys[0])
    components: dict[str, list[int]] = {}
    for index, item in enumerate(items):
        key = f"id:{item.identities[0]}" if item.identities else f"item:{item.media_id}"
        components.setdefault(uf.find(key), []).append(index)

    groups = list(components.values())  # first-appearance order: deterministic
    order = np.random.default_rng(seed).permutation(len(groups))
    total = float(sum(ratios))
    targets = [r / total * len(items) for r in ratios]
    allowed = [i for i, r in enumerate(ratios) if r > 0]
    counts = [0, 0, 0]
    assigned: list[str | None] = [None] * len(items)
    for g in order:
        group = groups[int(g)]
        best = max(allowed, key=lambda s: (targets[s] - counts[s], -s))
        counts[best] += len(group)
        for index in group:
            assigned[index] = SPLITS[best]
    return [
        dataclasses.replace(item, split=split) for item, split in zip(items, assigned, strict=True)
    ]
