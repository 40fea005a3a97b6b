"""Score fusion: several detectors' fake probabilities combined into one, following
scikit-learn's estimator contract like :mod:`fakescope.calibration` (``fit(X, y)`` returns
self, fitted attributes end in ``_``, ``get_params``/``set_params``; see
:mod:`fakescope._estimator`). ``X`` is (n, m): the raw (uncalibrated) probability of each of
``m`` member detectors for ``n`` samples; ``predict_proba(X)`` gives the (n,) fused
probability. Fitted fusers serialise to
plain JSON (``to_dict``/:func:`fuser_from_dict`), never to pickles, and are applied with numpy
alone (scikit-learn is only needed to fit).

- :class:`MeanLogitFuser` (``mean-logit``): ``sigmoid(mean_i logit(p_i))``, optionally
  weighted; nothing to fit.
- :class:`StackingFuser` (``stacking``): logistic regression on the members' logits,
  ``sigmoid(sum_i w_i logit(p_i) + b)``, fitted on a held-out (calibration) split with both
  classes weighted equally by default, as the calibrators are.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from fakescope._estimator import ParamsEstimator
from fakescope.calibration import class_weights, logit
from fakescope.errors import ConfigError
from fakescope.registry import Registry

__all__ = ["FUSERS", "Fuser", "MeanLogitFuser", "StackingFuser", "fuser_from_dict"]


class Fuser(Protocol):
    """What :class:`~fakescope.models.FusedDetector` needs of a fuser."""

    def fit(self, X: Any, y: Any) -> Fuser: ...

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]: ...

    def to_dict(self) -> dict[str, Any]: ...


def _members(X: Any) -> npt.NDArray[np.float64]:
    """``X`` as an (n, m) float64 array of probabilities."""
    p = np.asarray(X, dtype=np.float64)
    if p.ndim != 2 or p.shape[1] < 1:
        raise ValueError(f"expected one column per member detector, got shape {p.shape}")
    if not np.all(np.isfinite(p)):
        raise ValueError("member scores must be finite (no NaN)")
    if p.size and (p.min() < 0 or p.max() > 1):
        raise ValueError("member scores must be probabilities in [0, 1]")
    return p


def _sigmoid(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    return np.asarray(1.0 / (1.0 + np.exp(-z)), dtype=np.float64)


def _labels(y: Any, n: int) -> npt.NDArray[np.int64]:
    labels = np.asarray(y, dtype=np.int64)
    if labels.shape != (n,):
        raise ValueError("X and y have different lengths")
    if not set(np.unique(labels).tolist()) <= {0, 1}:
        raise ValueError("labels must be 0 (real) or 1 (fake)")
    return labels


def _check_width(p: npt.NDArray[np.float64], expected: int) -> None:
    if p.shape[1] != expected:
        raise ValueError(f"this fuser combines {expected} members, got {p.shape[1]} columns")


class MeanLogitFuser(ParamsEstimator):
    """``sigmoid(sum_i w_i logit(p_i) / sum_i w_i)``: equal weights unless ``weights`` is
    given. Parameter-free, so :meth:`fit` only checks its input."""

    def __init__(self, weights: Sequence[float] | None = None) -> None:
        self.weights = weights

    def _weights(self, m: int) -> npt.NDArray[np.float64]:
        if self.weights is None:
            return np.full(m, 1.0 / m)
        w = np.asarray(self.weights, dtype=np.float64)
        if w.shape != (m,):
            raise ValueError(f"this fuser combines {w.size} members, got {m} columns")
        if not (np.all(np.isfinite(w)) and np.all(w >= 0) and w.sum() > 0):
            raise ValueError("mean-logit weights must be >= 0 and not all zero")
        return np.asarray(w / w.sum(), dtype=np.float64)

    def __sklearn_is_fitted__(self) -> bool:
        return True  # nothing to fit

    def fit(self, X: Any, y: Any) -> MeanLogitFuser:
        """Check ``X`` (n, m) and ``y`` (n,); nothing is learned."""
        p = _members(X)
        _labels(y, len(p))
        self._weights(p.shape[1])
        self.n_features_in_ = p.shape[1]
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """The (n,) fused fake probability."""
        p = _members(X)
        return _sigmoid(logit(p) @ self._weights(p.shape[1]))

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": "mean-logit"}
        if self.weights is not None:
            out["weights"] = [float(w) for w in self.weights]
        return out


class StackingFuser(ParamsEstimator):
    """``sigmoid(coef_ . logit(p) + intercept_)`` fitted by L2-regularised logistic regression
    (strength ``1 / C``), both classes weighted equally when ``balanced``. ``coef_`` is (m,),
    one weight per member; ``intercept_`` a float."""

    def __init__(self, C: float = 1.0, balanced: bool = True) -> None:
        self.C = C
        self.balanced = balanced

    def fit(self, X: Any, y: Any) -> StackingFuser:
        """Fit the member weights on held-out scores ``X`` (n, m) and labels ``y`` (n,)."""
        from sklearn.linear_model import LogisticRegression

        p = _members(X)
        labels = _labels(y, len(p))
        counts = np.bincount(labels, minlength=2).astype(np.float64)
        if counts.min() == 0:
            raise ValueError("stacking needs both classes (0 = real, 1 = fake)")
        weight = class_weights(labels, self.balanced)
        model = LogisticRegression(C=self.C).fit(logit(p), labels, sample_weight=weight)
        self.coef_ = np.asarray(model.coef_[0], dtype=np.float64)
        self.intercept_ = float(model.intercept_[0])
        self.n_features_in_ = p.shape[1]
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """The (n,) fused fake probability."""
        if not hasattr(self, "coef_"):
            message = "this StackingFuser is not fitted yet: call fit(X, y) first"
            try:
                from sklearn.exceptions import NotFittedError
            except ImportError:  # the lean install: NotFittedError is a ValueError too
                raise ValueError(message) from None
            raise NotFittedError(message)
        p = _members(X)
        _check_width(p, len(self.coef_))
        return _sigmoid(logit(p) @ self.coef_ + self.intercept_)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "stacking",
            "coef": [float(c) for c in self.coef_],
            "intercept": self.intercept_,
        }


FUSERS: Registry[Fuser] = Registry("fuser")


@FUSERS.register("mean-logit")
def _mean_logit(**params: Any) -> Fuser:
    """Equal-weight mean of the members' logits (nothing to fit)."""
    return MeanLogitFuser(**params)


@FUSERS.register("stacking")
def _stacking(**params: Any) -> Fuser:
    """Logistic regression on the members' logits, fitted on held-out scores."""
    return StackingFuser(**params)


def _finite_floats(data: dict[str, Any], key: str) -> list[float]:
    values = data.get(key)
    if not isinstance(values, list) or not values:
        raise ConfigError(f"fuser {data.get('kind')!r}: {key!r} must be a non-empty list")
    try:
        out = [float(v) for v in values]
    except (TypeError, ValueError):
        raise ConfigError(f"fuser {data.get('kind')!r}: {key!r} must hold numbers") from None
    if not all(math.isfinite(v) for v in out):
        raise ConfigError(f"fuser {data.get('kind')!r}: {key!r} must be finite")
    return out


def fuser_from_dict(data: dict[str, Any]) -> MeanLogitFuser | StackingFuser:
    """Rebuild a fitted fuser from :meth:`to_dict` output (JSON, no pickle)."""
    kind = data.get("kind") if isinstance(data, dict) else None
    if kind == "mean-logit":
        if data.get("weights") is None:
            return MeanLogitFuser()
        weights = _finite_floats(data, "weights")
        if min(weights) < 0 or sum(weights) <= 0:
            raise ConfigError("fuser 'mean-logit': weights must be >= 0 and not all zero")
        return MeanLogitFuser(weights=weights)
    if kind == "stacking":
        stacking = StackingFuser()
        stacking.coef_ = np.asarray(_finite_floats(data, "coef"), dtype=np.float64)
        try:
            stacking.intercept_ = float(data["intercept"])
        except (KeyError, TypeError, ValueError):
            raise ConfigError("fuser 'stacking': 'intercept' must be a number") from None
        if not math.isfinite(stacking.intercept_):
            raise ConfigError("fuser 'stacking': 'intercept' must be finite")
        stacking.n_features_in_ = len(stacking.coef_)
        return stacking
    raise ConfigError(f"unknown fuser kind {kind!r} (known: {', '.join(FUSERS.names())})")
