"""Detection metrics for binary real/fake scores, with bootstrap confidence intervals.

Conventions used throughout:

* labels ``y`` are ``0`` (real / bona fide) or ``1`` (fake, the *target* / positive class);
* scores ``s`` are higher = more likely fake; the decision rule at a threshold ``t`` is
  "decide fake when ``s >= t``";
* calibration metrics (:func:`log_loss`, :func:`expected_calibration_error`) need
  probabilities in ``[0, 1]``.

Every function is pure: inputs are converted with :func:`numpy.asarray`, validated, and
never modified. Invalid input (length mismatch, labels other than 0/1, non-finite scores,
a single class where the metric needs both) raises :class:`ValueError`.

scikit-learn is imported lazily, only by the functions that delegate to it
(:func:`roc_auc`, :func:`average_precision`), so the rest works without it.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

__all__ = [
    "MetricSummary",
    "accuracy",
    "average_precision",
    "bayes_threshold",
    "bootstrap_ci",
    "breakdown",
    "dcf",
    "det_curve",
    "eer",
    "expected_calibration_error",
    "log_loss",
    "min_dcf",
    "roc_auc",
    "roc_auc_or_none",
    "summarize",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]
Metric = Callable[[npt.NDArray[Any], npt.NDArray[Any]], float]


# ---------------------------------------------------------------------------------------------
# validation helpers


def _validate(
    y: npt.ArrayLike, s: npt.ArrayLike, *, both_classes: bool, name: str = "scores"
) -> tuple[IntArray, FloatArray]:
    """Labels as int64 0/1 and scores as float64, both 1-D, same length, non-empty."""
    y_arr = np.asarray(y)
    s_arr = np.asarray(s)
    if y_arr.ndim != 1 or s_arr.ndim != 1:
        raise ValueError(
            f"labels and {name} must be 1-D, got shapes {y_arr.shape} and {s_arr.shape}"
        )
    if len(y_arr) != len(s_arr):
        raise ValueError(
            f"labels and {name} must have the same length, got {len(y_arr)} and {len(s_arr)}"
        )
    if len(y_arr) == 0:
        raise ValueError("empty input: need at least one sample")
    if y_arr.dtype == np.bool_:
        y_arr = y_arr.astype(np.int64)
    if not np.issubdtype(y_arr.dtype, np.number) or not np.isin(y_arr, (0, 1)).all():
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    try:
        s_float = s_arr.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{name} must be numeric") from exc
    if not np.isfinite(s_float).all():
        raise ValueError(f"{name} must be finite (no NaN or inf)")
    y_int = y_arr.astype(np.int64)
    if both_classes:
        n_fake = int(y_int.sum())
        if n_fake == 0 or n_fake == len(y_int):
            only = "fake" if n_fake else "real"
            raise ValueError(
                f"this metric needs both classes, but all {len(y_int)} samples are {only}"
            )
    return y_int, s_float


def _validate_probabilities(p: FloatArray) -> None:
    if p.min() < 0.0 or p.max() > 1.0:
        raise ValueError("probabilities must lie in [0, 1]")


from fakescope.decision import bayes_threshold, validate_costs  # noqa: E402


def _operating_points(y: IntArray, s: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Every distinct operating point, from reject-all to accept-all.

    Returns ``(fpr, fnr, thresholds)`` with thresholds strictly decreasing: the first entry is
    the reject-all point (``fpr=0, fnr=1``) whose threshold is the smallest float above
    ``max(s)``; then one point per distinct score (decide fake when ``s >= t``), the last being
    accept-all (``fpr=1, fnr=0``). Tied scores form a single point.
    """
    order = np.argsort(s, kind="mergesort")[::-1]
    s_sorted = s[order]
    y_sorted = y[order]
    # last index of each run of equal scores (in decreasing order)
    last = np.r_[np.flatnonzero(np.diff(s_sorted)), len(s_sorted) - 1]
    tps = np.cumsum(y_sorted)[last].astype(np.float64)
    fps = (last + 1 - tps).astype(np.float64)
    n_pos = float(tps[-1])
    n_neg = float(fps[-1])
    fpr = np.r_[0.0, fps / n_neg]
    fnr = np.r_[1.0, 1.0 - tps / n_pos]
    thresholds = np.r_[np.nextafter(s_sorted[0], np.inf), s_sorted[last]]
    return fpr, fnr, thresholds


# ---------------------------------------------------------------------------------------------
# ranking metrics


def roc_auc(y: npt.ArrayLike, s: npt.ArrayLike) -> float:
    """Area under the ROC curve (:func:`sklearn.metrics.roc_auc_score`; ties count 1/2)."""
    from sklearn.metrics import roc_auc_score

    y_int, s_float = _validate(y, s, both_classes=True)
    return float(roc_auc_score(y_int, s_float))


def roc_auc_or_none(
    y: npt.ArrayLike, s: npt.ArrayLike, *, ndigits: int | None = None
) -> float | None:
    """:func:`roc_auc`, or ``None`` where the AUC is undefined: the labels hold fewer than two
    classes (no samples at all included), as in a validation subset of one class.

    ``ndigits`` rounds the AUC (``round(auc, ndigits)``), as training reports keep it. Other
    invalid input (length mismatch, labels other than 0/1, non-finite scores) still raises
    :class:`ValueError`.
    """
    if np.size(y) == 0 and np.size(s) == 0:
        return None
    y_int, s_float = _validate(y, s, both_classes=False)
    if y_int.min() == y_int.max():
        return None
    auc = roc_auc(y_int, s_float)
    return auc if ndigits is None else round(auc, ndigits)


def average_precision(y: npt.ArrayLike, s: npt.ArrayLike) -> float:
    """Average precision with fake as the positive class
    (:func:`sklearn.metrics.average_precision_score`)."""
    from sklearn.metrics import average_precision_score

    y_int, s_float = _validate(y, s, both_classes=True)
    return float(average_precision_score(y_int, s_float))


def det_curve(y: npt.ArrayLike, s: npt.ArrayLike) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Detection error tradeoff: ``(fpr, fnr, thresholds)`` at every distinct score.

    Like :func:`sklearn.metrics.det_curve` the thresholds are *increasing* (so ``fpr``
    decreases and ``fnr`` increases), each is an observed score, and the decision is fake when
    ``s >= threshold``. Unlike sklearn, no point is dropped: the first entry is accept-all
    (``fpr=1, fnr=0``) and every distinct score contributes one point. ``fpr`` is the false
    alarm rate (reals called fake), ``fnr`` the miss rate (fakes called real).
    """
    y_int, s_float = _validate(y, s, both_classes=True)
    fpr, fnr, thresholds = _operating_points(y_int, s_float)
    return fpr[1:][::-1].copy(), fnr[1:][::-1].copy(), thresholds[1:][::-1].copy()


def eer(y: npt.ArrayLike, s: npt.ArrayLike) -> tuple[float, float]:
    """Equal error rate and the threshold where it is reached: ``(eer, threshold)``.

    Method: the operating points (false-alarm rate ``P_fa``, miss rate ``P_miss``) of every
    distinct threshold, plus reject-all ``(0, 1)``, are joined by straight segments — each
    segment is achievable by randomising between its two thresholds (a convex combination of
    the two operating points). ``P_miss - P_fa`` strictly decreases along this curve from
    ``+1`` to ``-1``, so it crosses zero exactly once. On the crossing segment between points
    ``a`` and ``b`` with ``d = P_miss - P_fa``, the weight ``w = d_a / (d_a - d_b)`` gives
    ``EER = P_fa(a) + w * (P_fa(b) - P_fa(a))`` (which equals the interpolated ``P_miss``).
    The threshold is interpolated with the same weight between the two thresholds (the
    reject-all point uses the smallest float above ``max(s)``); if an operating point has
    ``P_miss == P_fa`` exactly, its own threshold is returned.

    This is *not* the common "nearest threshold" shortcut (``argmin |P_miss - P_fa|``), which
    is biased on small sets, and not the ROC-convex-hull EER (ROCCH-EER) of BOSARIS either: the
    segments join consecutive operating points, without taking the hull first.
    """
    y_int, s_float = _validate(y, s, both_classes=True)
    fpr, fnr, thresholds = _operating_points(y_int, s_float)
    d = fnr - fpr
    k = int(np.argmax(d <= 0.0))  # first point at or past the crossing; d[0] = 1 > 0
    if d[k] == 0.0:
        return float(fpr[k]), float(thresholds[k])
    w = d[k - 1] / (d[k - 1] - d[k])
    rate = fpr[k - 1] + w * (fpr[k] - fpr[k - 1])
    threshold = thresholds[k - 1] + w * (thresholds[k] - thresholds[k - 1])
    return float(rate), float(threshold)


# ---------------------------------------------------------------------------------------------
# detection cost


def _normalizer(c_miss: float, c_fa: float, p_target: float, normalized: bool) -> float:
    return min(c_miss * p_target, c_fa * (1.0 - p_target)) if normalized else 1.0


def dcf(
    y: npt.ArrayLike,
    s: npt.ArrayLike,
    threshold: float,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    p_target: float = 0.5,
    normalized: bool = True,
) -> float:
    """Actual detection cost at ``threshold`` (decide fake when ``s >= threshold``).

    ``C = c_miss * p_target * P_miss + c_fa * (1 - p_target) * P_fa``; when ``normalized``
    (NIST convention) it is divided by ``min(c_miss * p_target, c_fa * (1 - p_target))``, the
    cost of the best trivial system (always accept or always reject), so 1.0 means "no better
    than ignoring the scores".
    """
    validate_costs(c_miss, c_fa, p_target)
    y_int, s_float = _validate(y, s, both_classes=True)
    decide_fake = s_float >= threshold
    p_miss = float(np.mean(~decide_fake[y_int == 1]))
    p_fa = float(np.mean(decide_fake[y_int == 0]))
    cost = c_miss * p_target * p_miss + c_fa * (1.0 - p_target) * p_fa
    return cost / _normalizer(c_miss, c_fa, p_target, normalized)


def min_dcf(
    y: npt.ArrayLike,
    s: npt.ArrayLike,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    p_target: float = 0.5,
    normalized: bool = True,
) -> tuple[float, float]:
    """Minimum detection cost over all thresholds: ``(cost, threshold)``.

    The candidates are every distinct score (the lowest one is accept-all) plus reject-all,
    reported as threshold ``inf``. On ties the lowest threshold wins. Cost and normalisation
    as in :func:`dcf`.
    """
    validate_costs(c_miss, c_fa, p_target)
    y_int, s_float = _validate(y, s, both_classes=True)
    fpr, fnr, thresholds = _operating_points(y_int, s_float)
    costs = c_miss * p_target * fnr + c_fa * (1.0 - p_target) * fpr
    costs = costs / _normalizer(c_miss, c_fa, p_target, normalized)
    # scan from accept-all upwards so that ties pick the lowest threshold
    k = len(costs) - 1 - int(np.argmin(costs[::-1]))
    threshold = math.inf if k == 0 else float(thresholds[k])
    return float(costs[k]), threshold


# ---------------------------------------------------------------------------------------------
# threshold and calibration metrics


def accuracy(y: npt.ArrayLike, s: npt.ArrayLike, threshold: float = 0.5) -> float:
    """Fraction of samples classified correctly when deciding fake for ``s >= threshold``."""
    y_int, s_float = _validate(y, s, both_classes=False)
    return float(np.mean((s_float >= threshold) == (y_int == 1)))


def log_loss(y: npt.ArrayLike, p: npt.ArrayLike, eps: float = 1e-12) -> float:
    """Mean binary cross-entropy (natural log) of fake probabilities ``p``, clipped to
    ``[eps, 1 - eps]``. Defined for a single class too."""
    y_int, p_float = _validate(y, p, both_classes=False, name="probabilities")
    _validate_probabilities(p_float)
    p_clip = np.clip(p_float, eps, 1.0 - eps)
    losses = -(y_int * np.log(p_clip) + (1 - y_int) * np.log1p(-p_clip))
    return float(np.mean(losses))


def expected_calibration_error(
    y: npt.ArrayLike, p: npt.ArrayLike, n_bins: int = 15, *, balanced: bool = False
) -> float:
    """Expected calibration error of fake probabilities (Guo et al., 2017, binary form).

    ``[0, 1]`` is cut into ``n_bins`` equal-width bins ``[k/n, (k+1)/n)`` (the last one closed);
    in each non-empty bin ``B``, the gap ``|mean(y[B]) - mean(p[B])|`` (observed fake rate vs
    mean predicted fake probability) is weighted by ``|B| / N``, and the weighted gaps summed.

    ``balanced``: the class-balanced ECE, the error under equal priors. Every sample carries a
    weight, ``1 / (2 n_real)`` for a real and ``1 / (2 n_fake)`` for a fake, so both classes
    weigh the same whatever the set's class ratio (for probabilities calibrated class-balanced);
    the means in a bin are weighted means and the bin's weight is the sum of its samples'.
    With one class only, every sample weighs ``1 / N``: the ordinary ECE.
    """
    if n_bins < 1:
        raise ValueError(f"n_bins must be >= 1, got {n_bins}")
    y_int, p_float = _validate(y, p, both_classes=False, name="probabilities")
    _validate_probabilities(p_float)
    if balanced:
        return _balanced_ece(y_int, p_float, n_bins)
    counts, sum_y, sum_p = _calibration_bins(y_int, p_float, n_bins)
    nonempty = counts > 0
    gaps = np.abs(sum_y[nonempty] - sum_p[nonempty]) / counts[nonempty]
    return float(np.sum(gaps * counts[nonempty]) / len(y_int))


def _balanced_ece(y: IntArray, p: FloatArray, n_bins: int) -> float:
    """:func:`expected_calibration_error` with each class weighing one half."""
    n_fake = int(y.sum())
    n_real = len(y) - n_fake
    if n_fake and n_real:
        w = np.where(y == 1, 0.5 / n_fake, 0.5 / n_real)
    else:
        w = np.full(len(y), 1.0 / len(y))
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    sum_w = np.bincount(idx, weights=w, minlength=n_bins)
    sum_wy = np.bincount(idx, weights=w * y, minlength=n_bins)
    sum_wp = np.bincount(idx, weights=w * p, minlength=n_bins)
    nonempty = sum_w > 0
    gaps = np.abs(sum_wp[nonempty] / sum_w[nonempty] - sum_wy[nonempty] / sum_w[nonempty])
    return float(np.sum(gaps * sum_w[nonempty]))


def _calibration_bins(
    y: IntArray, p: FloatArray, n_bins: int
) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Per equal-width bin: sample count, sum of labels, sum of probabilities."""
    idx = np.minimum((p * n_bins).astype(np.int64), n_bins - 1)
    counts = np.bincount(idx, minlength=n_bins).astype(np.float64)
    sum_y = np.bincount(idx, weights=y.astype(np.float64), minlength=n_bins).astype(np.float64)
    sum_p = np.bincount(idx, weights=p, minlength=n_bins).astype(np.float64)
    return counts, sum_y, sum_p


# ---------------------------------------------------------------------------------------------
# bootstrap


def _resampler(
    n: int, groups: npt.ArrayLike | None, rng: np.random.Generator
) -> Callable[[], IntArray]:
    """A function drawing one bootstrap resample (indices), i.i.d. or by whole groups."""
    if groups is None:
        return lambda: rng.integers(0, n, size=n)
    g = np.asarray(groups)
    if g.ndim != 1 or len(g) != n:
        raise ValueError(f"groups must be 1-D with one id per sample ({n}), got shape {g.shape}")
    _, codes = np.unique(g, return_inverse=True)
    order = np.argsort(codes, kind="mergesort")
    starts = np.r_[0, np.flatnonzero(np.diff(codes[order])) + 1]
    members = np.split(order, starts[1:])
    n_groups = len(members)

    def draw() -> IntArray:
        picked = rng.integers(0, n_groups, size=n_groups)
        return np.concatenate([members[i] for i in picked]).astype(np.int64)

    return draw


def _bootstrap(
    metrics: dict[str, Metric],
    y: npt.NDArray[Any],
    s: npt.NDArray[Any],
    *,
    n_boot: int,
    alpha: float,
    seed: int | Sequence[int],
    groups: npt.ArrayLike | None,
    max_skipped: float = 0.5,
) -> dict[str, tuple[float, float]]:
    """Percentile intervals for several metrics over the *same* resamples.

    A resample where any metric raises :class:`ValueError` is skipped for all of them; more
    than ``max_skipped`` of them skipped (or all) raises :class:`ValueError`.
    """
    if n_boot < 1:
        raise ValueError(f"n_boot must be >= 1, got {n_boot}")
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must be in (0, 1), got {alpha}")
    if not 0.0 <= max_skipped <= 1.0:
        raise ValueError(f"max_skipped must be in [0, 1], got {max_skipped}")
    draw = _resampler(len(y), groups, np.random.default_rng(seed))
    values: dict[str, list[float]] = {name: [] for name in metrics}
    skipped = 0
    for _ in range(n_boot):
        idx = draw()
        y_b, s_b = y[idx], s[idx]
        try:
            row = {name: float(metric(y_b, s_b)) for name, metric in metrics.items()}
        except ValueError:
            skipped += 1
            continue
        for name, value in row.items():
            values[name].append(value)
    if skipped > max_skipped * n_boot or skipped == n_boot:
        raise ValueError(
            f"{skipped} of {n_boot} bootstrap resamples were invalid for the metric "
            "(e.g. a single class); too few classes or groups to bootstrap"
        )
    out: dict[str, tuple[float, float]] = {}
    for name, vals in values.items():
        low, high = np.quantile(np.asarray(vals), [alpha / 2.0, 1.0 - alpha / 2.0])
        out[name] = (float(low), float(high))
    return out


def bootstrap_ci(
    metric: Metric,
    y: npt.ArrayLike,
    s: npt.ArrayLike,
    *,
    n_boot: int = 1000,
    alpha: float = 0.05,
    seed: int | Sequence[int] = 0,
    groups: npt.ArrayLike | None = None,
    max_skipped: float = 0.5,
) -> tuple[float, float, float]:
    """Percentile bootstrap ``(point estimate on all data, low, high)`` for ``metric(y, s)``.

    ``low``/``high`` are the ``alpha/2`` and ``1 - alpha/2`` quantiles of the metric over
    ``n_boot`` resamples drawn with ``numpy.random.default_rng(seed)`` (``seed`` an int or a
    sequence of ints, e.g. ``[run_seed, 13]`` for a stream of its own). With ``groups`` (one id
    per sample, e.g. the video of each frame) whole groups are resampled (cluster bootstrap),
    because samples of one group are not independent. Resamples where ``metric`` raises
    :class:`ValueError` (e.g. only one class drawn) are skipped; if more than ``max_skipped``
    of them are (default: more than half), or all, a :class:`ValueError` is raised.
    """
    y_arr = np.asarray(y)
    s_arr = np.asarray(s)
    if len(y_arr) != len(s_arr):
        raise ValueError(
            f"labels and scores must have the same length, got {len(y_arr)} and {len(s_arr)}"
        )
    point = float(metric(y_arr, s_arr))
    low, high = _bootstrap(
        {"metric": metric},
        y_arr,
        s_arr,
        n_boot=n_boot,
        alpha=alpha,
        seed=seed,
        groups=groups,
        max_skipped=max_skipped,
    )["metric"]
    return point, low, high


# ---------------------------------------------------------------------------------------------
# summaries


@dataclass(frozen=True)
class MetricSummary:
    """A metric's value on all data and its bootstrap interval ``[low, high]``."""

    value: float
    low: float
    high: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def summarize(
    y: npt.ArrayLike,
    s: npt.ArrayLike,
    *,
    threshold: float = 0.5,
    c_miss: float = 1.0,
    c_fa: float = 1.0,
    p_target: float = 0.5,
    n_boot: int = 1000,
    seed: int = 0,
    groups: npt.ArrayLike | None = None,
    alpha: float = 0.05,
) -> dict[str, MetricSummary]:
    """All metrics with percentile-bootstrap intervals (same resamples for every metric).

    Keys: ``auc``, ``ap``, ``eer``, ``min_dcf`` (normalised), ``act_dcf`` (normalised, at
    ``threshold``), ``accuracy`` (at ``threshold``), and — only when every score lies in
    ``[0, 1]`` — ``log_loss`` and ``ece``; plus the counts ``n_real`` and ``n_fake`` (with
    ``low == high == value``). ``groups`` switches to the cluster bootstrap (see
    :func:`bootstrap_ci`). ``n_boot=0`` skips the bootstrap: intervals are then NaN.
    """
    y_int, s_float = _validate(y, s, both_classes=True)
    metrics: dict[str, Metric] = {
        "auc": roc_auc,
        "ap": average_precision,
        "eer": lambda a, b: eer(a, b)[0],
        "min_dcf": lambda a, b: min_dcf(a, b, c_miss, c_fa, p_target)[0],
        "act_dcf": lambda a, b: dcf(a, b, threshold, c_miss, c_fa, p_target),
        "accuracy": lambda a, b: accuracy(a, b, threshold),
    }
    if s_float.min() >= 0.0 and s_float.max() <= 1.0:
        metrics["log_loss"] = log_loss
        metrics["ece"] = expected_calibration_error
    points = {name: float(metric(y_int, s_float)) for name, metric in metrics.items()}
    if n_boot == 0:
        intervals = {name: (math.nan, math.nan) for name in metrics}
    else:
        intervals = _bootstrap(
            metrics, y_int, s_float, n_boot=n_boot, alpha=alpha, seed=seed, groups=groups
        )
    out = {name: MetricSummary(points[name], *intervals[name]) for name in metrics}
    n_fake = float(y_int.sum())
    n_real = float(len(y_int)) - n_fake
    out["n_real"] = MetricSummary(n_real, n_real, n_real)
    out["n_fake"] = MetricSummary(n_fake, n_fake, n_fake)
    return out


def breakdown(
    y: npt.ArrayLike,
    s: npt.ArrayLike,
    by: npt.ArrayLike,
    *,
    baseline_label: int = 0,
    **summarize_kwargs: Any,
) -> dict[str, dict[str, MetricSummary]]:
    """Per-subgroup :func:`summarize`, FaceForensics++ per-method style.

    ``by`` gives each sample's subgroup (e.g. the manipulation method: ``"Deepfakes"``,
    ``"Face2Face"``, ...). The samples whose label is ``baseline_label`` (default 0, the reals)
    form the shared baseline; for every distinct ``by`` value among the *other* samples (the
    fakes), the result holds the metrics of *that group's fakes against ALL reals* — ``by`` is
    ignored for the reals. This is the FF++ convention: each method's AUC/EER is "method X vs
    all originals", so a method is not judged on a fraction of the reals. Keys are
    ``str(value)``, sorted by value. ``summarize_kwargs`` go to :func:`summarize`; a ``groups``
    array (one id per sample) is subset alongside the data.
    """
    if baseline_label not in (0, 1):
        raise ValueError(f"baseline_label must be 0 or 1, got {baseline_label}")
    y_int, s_float = _validate(y, s, both_classes=True)
    by_arr = np.asarray(by)
    if by_arr.ndim != 1 or len(by_arr) != len(y_int):
        raise ValueError(
            f"`by` must be 1-D with one value per sample ({len(y_int)}), got shape {by_arr.shape}"
        )
    groups = summarize_kwargs.pop("groups", None)
    groups_arr = None if groups is None else np.asarray(groups)
    if groups_arr is not None and len(groups_arr) != len(y_int):
        raise ValueError(f"groups must have one id per sample ({len(y_int)})")
    baseline = y_int == baseline_label
    out: dict[str, dict[str, MetricSummary]] = {}
    for value in np.unique(by_arr[~baseline]):
        mask = baseline | (~baseline & (by_arr == value))
        out[str(value)] = summarize(
            y_int[mask],
            s_float[mask],
            groups=None if groups_arr is None else groups_arr[mask],
            **summarize_kwargs,
        )
    return out
