"""Grouping face tracks of the same person by the distance between their embeddings."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import numpy.typing as npt

__all__ = ["merge_tracks"]


def merge_tracks(
    embeddings: Sequence[npt.ArrayLike], threshold: float, linkage: str = "average"
) -> list[int]:
    """A group id per track: tracks whose pooled embeddings are within ``threshold``
    (Euclidean) end in the same group.

    Agglomerative clustering with ``linkage`` ``"average"`` (mean pairwise distance between
    two groups, the default) or ``"complete"`` (largest pairwise distance): the two closest
    groups are merged while their linkage distance is at most ``threshold``. Group ids are
    0, 1, ... in the order of each group's first track.
    """
    if linkage not in {"average", "complete"}:
        raise ValueError(f"linkage must be 'average' or 'complete', got {linkage!r}")
    if not threshold >= 0.0:
        raise ValueError(f"threshold must be >= 0, got {threshold}")
    n = len(embeddings)
    if n == 0:
        return []
    data = np.stack([np.asarray(e, dtype=np.float64).ravel() for e in embeddings])
    if not np.isfinite(data).all():
        raise ValueError("merge_tracks got non-finite embeddings")
    dist = np.linalg.norm(data[:, None, :] - data[None, :, :], axis=2)
    groups: list[list[int]] = [[i] for i in range(n)]
    while len(groups) > 1:
        best: tuple[float, int, int] | None = None
        for a in range(len(groups)):
            for b in range(a + 1, len(groups)):
                block = dist[np.ix_(groups[a], groups[b])]
                d = float(block.mean() if linkage == "average" else block.max())
                if best is None or d < best[0]:
                    best = (d, a, b)
        assert best is not None
        if best[0] > threshold:
            break
        _, a, b = best
        groups[a] = sorted(groups[a] + groups[b])
        del groups[b]
    labels = [0] * n
    for gid, members in enumerate(sorted(groups, key=min)):
        for i in members:
            labels[i] = gid
    return labels
