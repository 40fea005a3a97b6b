"""Inference: the scan pipeline, aggregation strategies and decisions."""

from fakescope.inference._aggregate import AGGREGATORS, Aggregator, frame_max_scores
from fakescope.inference._pipeline import STAGES, Scanner, decide_label

__all__ = ["AGGREGATORS", "STAGES", "Aggregator", "Scanner", "decide_label", "frame_max_scores"]
