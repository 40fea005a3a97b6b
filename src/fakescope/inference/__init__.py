"""Inference: the scan pipeline, aggregation strategies and decisions."""

from fakescope.inference._aggregate import AGGREGATORS, Aggregator, frame_max_scores
from fakescope.inference._found import FaceMemo
from fakescope.inference._pipeline import AGGREGATION_RULE, STAGES, Scanner, decide_label, media_key

__all__ = [
    "AGGREGATION_RULE",
    "AGGREGATORS",
    "STAGES",
    "Aggregator",
    "FaceMemo",
    "Scanner",
    "decide_label",
    "frame_max_scores",
    "media_key",
]
