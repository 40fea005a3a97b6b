"""How much two detectors' scores move together (:func:`score_correlation`): overall and
within each class, on the log-odds scale and by rank."""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.evaluation._metrics import FloatArray, _validate_probabilities

__all__ = ["score_correlation"]


_CORRELATION_EPS = 1e-6
"""Probabilities are clipped to ``[eps, 1 - eps]`` before the logit in
:func:`score_correlation`."""


def _rank(x: FloatArray) -> FloatArray:
    """Ranks 1..n, ties given the average of the ranks they span."""
    order = np.argsort(x, kind="mergesort")
    sorted_x = x[order]
    starts = np.r_[0, np.flatnonzero(np.diff(sorted_x)) + 1]
    ends = np.r_[starts[1:], len(x)]
    average = (starts + ends - 1) / 2.0 + 1.0
    ranks = np.empty(len(x), dtype=np.float64)
    ranks[order] = np.repeat(average, ends - starts)
    return ranks


def _pearson(a: FloatArray, b: FloatArray) -> float:
    """Pearson correlation; NaN for fewer than 3 samples or a constant vector."""
    if len(a) < 3 or bool(np.all(a == a[0])) or bool(np.all(b == b[0])):
        return math.nan
    da = a - a.mean()
    db = b - b.mean()
    den = math.sqrt(float(np.dot(da, da)) * float(np.dot(db, db)))
    if den == 0.0:
        return math.nan
    return float(np.clip(float(np.dot(da, db)) / den, -1.0, 1.0))


def _correlations(a: FloatArray, b: FloatArray) -> dict[str, Any]:
    logit_a, logit_b = (
        np.log(c) - np.log1p(-c)
        for c in (np.clip(v, _CORRELATION_EPS, 1.0 - _CORRELATION_EPS) for v in (a, b))
    )
    return {
        "n": len(a),
        "pearson_logit": _pearson(logit_a, logit_b),
        "spearman": _pearson(_rank(a), _rank(b)) if len(a) >= 3 else math.nan,
    }


def score_correlation(
    a: npt.ArrayLike, b: npt.ArrayLike, y: npt.ArrayLike | None = None
) -> dict[str, Any]:
    """How much two detectors' fake probabilities for the same samples move together.

    ``a[i]`` and ``b[i]`` are the two detectors' probabilities for sample ``i`` (in
    ``[0, 1]``). Returns ``n`` (samples), ``pearson_logit`` (Pearson correlation of
    ``logit(clip(p, 1e-6, 1 - 1e-6))``: the log-odds scale the scores are combined on) and
    ``spearman`` (rank correlation, ties given their average rank).

    With labels ``y`` (0 real, 1 fake), also ``within_real`` and ``within_fake``: the same
    three figures over the reals only and over the fakes only. Two good detectors correlate
    over all samples just because both follow the label; within a class that shared cause is
    gone, so the within-class figures are the ones that say whether a second detector adds
    independent evidence (near 0: independent errors; near 1: it repeats the first).

    A correlation is NaN, not an error, when there are fewer than 3 samples or either vector
    is constant (after clipping, for the logit figure). Shape mismatches, non-finite values,
    probabilities outside ``[0, 1]`` and labels other than 0/1 raise :class:`ValueError`.
    """
    a_arr = np.asarray(a)
    b_arr = np.asarray(b)
    if a_arr.ndim != 1 or b_arr.ndim != 1:
        raise ValueError(f"scores must be 1-D, got shapes {a_arr.shape} and {b_arr.shape}")
    if len(a_arr) != len(b_arr):
        raise ValueError(
            f"the two score vectors must have the same length, got {len(a_arr)} and {len(b_arr)}"
        )
    floats: list[FloatArray] = []
    for arr in (a_arr, b_arr):
        try:
            f = arr.astype(np.float64)
        except (TypeError, ValueError) as exc:
            raise ValueError("scores must be numeric") from exc
        if not np.isfinite(f).all():
            raise ValueError("scores must be finite (no NaN or inf)")
        if len(f):
            _validate_probabilities(f)
        floats.append(f)
    a_float, b_float = floats
    out = _correlations(a_float, b_float)
    if y is None:
        return out
    y_arr = np.asarray(y)
    if y_arr.ndim != 1 or len(y_arr) != len(a_float):
        raise ValueError(
            f"labels must be 1-D with one per sample ({len(a_float)}), got shape {y_arr.shape}"
        )
    if y_arr.dtype == np.bool_:
        y_arr = y_arr.astype(np.int64)
    if not np.issubdtype(y_arr.dtype, np.number) or not np.isin(y_arr, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    for name, label in (("within_real", 0), ("within_fake", 1)):
        mask = y_arr == label
        out[name] = _correlations(a_float[mask], b_float[mask])
    return out
