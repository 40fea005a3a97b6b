"""Decisions from scores: the cost-minimising threshold, the fake / real / uncertain label,
and :func:`combine`, the overall verdict's rule (the face and whole-image answers ->
manipulated / generated / authentic / uncertain / no_verdict; see :mod:`fakescope._overall`).

Kept free of heavy imports: the scan path and the evaluation metrics both use it.
"""

from __future__ import annotations

from fakescope._overall import FaceAnswer, ImageAnswer, combine
from fakescope.types import Label

__all__ = [
    "FaceAnswer",
    "ImageAnswer",
    "bayes_threshold",
    "combine",
    "decide_label",
    "validate_costs",
]


def validate_costs(c_miss: float, c_fa: float, p_target: float) -> None:
    """Raise ValueError unless both costs are positive and ``0 < p_target < 1``."""
    if not (c_miss > 0 and c_fa > 0):
        raise ValueError(f"costs must be positive, got c_miss={c_miss}, c_fa={c_fa}")
    if not 0.0 < p_target < 1.0:
        raise ValueError(f"p_target must be in (0, 1), got {p_target}")


def bayes_threshold(c_miss: float, c_fa: float, p_target: float) -> float:
    """Threshold on a calibrated fake probability that minimises the expected cost.

    Returns ``c_fa * (1 - p_target) / (c_miss * p_target + c_fa * (1 - p_target))``.

    Derivation: the Bayes decision is fake when the likelihood ratio
    ``LR = P(s | fake) / P(s | real) >= c_fa * (1 - p_target) / (c_miss * p_target)``. A
    probability calibrated under *equal* class priors (balanced training or calibration set)
    is ``LR / (1 + LR)``, so the same rule reads ``prob >= `` the value above. The deployment
    prior ``p_target`` and the costs thus enter only through the threshold. (If the
    probabilities are already posteriors under prior ``p_target``, the right threshold is
    ``c_fa / (c_miss + c_fa)`` instead, i.e. this function with ``p_target=0.5``.)
    """
    validate_costs(c_miss, c_fa, p_target)
    fa = c_fa * (1.0 - p_target)
    return fa / (c_miss * p_target + fa)


def decide_label(probability: float, threshold: float, band: float) -> Label:
    """``fake`` at or above ``threshold + band``, ``real`` below ``threshold - band``, else
    ``uncertain``."""
    if probability >= threshold + band:
        return Label.FAKE
    if probability < threshold - band:
        return Label.REAL
    return Label.UNCERTAIN
