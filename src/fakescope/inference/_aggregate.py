"""Aggregation strategies: many crop scores -> one score. Registered by name."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np

from fakescope.registry import Registry
from fakescope.types import CropScore

__all__ = ["AGGREGATORS", "Aggregator", "frame_max_scores"]

Aggregator = Callable[[Sequence[float]], float]
AGGREGATORS: Registry[Aggregator] = Registry("aggregator")


@AGGREGATORS.register("mean")
def _mean() -> Aggregator:
    return lambda scores: float(np.mean(scores))


@AGGREGATORS.register("median")
def _median() -> Aggregator:
    return lambda scores: float(np.median(scores))


@AGGREGATORS.register("max")
def _max() -> Aggregator:
    return lambda scores: float(np.max(scores))


@AGGREGATORS.register("top-quartile-mean")
def _top_quartile() -> Aggregator:
    """Mean of the highest quarter of the scores (robust to a few missed fake frames)."""

    def agg(scores: Sequence[float]) -> float:
        ordered = np.sort(np.asarray(scores, dtype=np.float64))[::-1]
        return float(ordered[: max(1, len(ordered) // 4)].mean())

    return agg


def frame_max_scores(scores: Sequence[CropScore]) -> list[float]:
    """Per sampled frame, the most suspicious face (the input-level building block)."""
    best: dict[int, float] = {}
    for s in scores:
        best[s.frame_index] = max(best.get(s.frame_index, 0.0), s.fake_probability)
    return [best[k] for k in sorted(best)]
