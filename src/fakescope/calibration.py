"""Score calibration after the network, following scikit-learn's estimator contract
(``fit(X, y)`` returns self, fitted attributes end in ``_``, ``get_params``/``set_params``; see
:mod:`fakescope._estimator`). Fitted calibrators serialise to plain JSON
(``to_dict``/``from_dict``), never to pickles, and apply with numpy alone: scikit-learn is
imported only inside ``fit``.

- :class:`LogitCalibrator`: Platt scaling on the logit of the score (temperature and bias),
  ``p' = sigmoid(a * logit(p) + b)``; monotone, two parameters, safe on small sets.
- :class:`TemperatureCalibrator`: the same map without the bias (``b = 0``, ``a = 1/T``): one
  parameter, for the smallest sets (it keeps 0.5 where the raw score is 0.5). It is stored as
  a ``logit`` calibrator with ``b`` 0, so every reader of the JSON applies it unchanged.
- :class:`IdentityCalibrator`: no map at all (``a = 1``, ``b = 0``, stored as ``logit``); it
  fits nothing and is the null model a fitted map has to beat in cross-validation.
- :class:`IsotonicCalibrator`: scikit-learn's isotonic regression on the score, clipped.
- :class:`ConstantCalibrator`: one probability whatever the score, for a detector whose scores
  carry no usable information on the calibration set (e.g. they fall with the fake label, where
  a decreasing map would invert the detector): the honest calibrated answer is then the same for
  every input. The null model a fitted map has to beat.

Both weight the two classes equally by default (``balanced=True``): the calibrated probability
is then the posterior under *equal* priors, whatever the real/fake ratio of the calibration set,
which is what :func:`fakescope.decision.bayes_threshold` expects (the user's prior enters
through the threshold, not twice). :func:`logit` and :func:`class_weights` are shared with the
fusers of :mod:`fakescope.fusion`.
"""

from __future__ import annotations

from typing import Any, Self

import numpy as np
import numpy.typing as npt

from fakescope._estimator import ParamsEstimator
from fakescope.errors import ConfigError

__all__ = [
    "FITTED_ON",
    "KINDS",
    "Calibrator",
    "ConstantCalibrator",
    "IdentityCalibrator",
    "IsotonicCalibrator",
    "LogitCalibrator",
    "TemperatureCalibrator",
    "calibrator_from_dict",
    "class_weights",
    "logit",
    "make_calibrator",
]

_EPS = 1e-6

FITTED_ON = "fitted_on"
"""The one key a stored calibrator may carry besides its parameters: an object that records
the data it was fitted on (written by ``fakescope calibrate``: what data, how many items of
each class, which map, the command). It is documentation only; applying ignores it."""

KINDS = ("logit", "temperature", "identity", "isotonic", "constant")
"""The calibration maps by name (``fakescope calibrate --kind``, a training run's
``calibrate.kinds``): :func:`make_calibrator` builds an unfitted one."""

_KEYS = {
    "logit": {"kind", "a", "b"},
    "isotonic": {"kind", "x", "y"},
    "constant": {"kind", "p"},
}


def _scores(X: Any) -> npt.NDArray[np.float64]:
    s = np.asarray(X, dtype=np.float64)
    if s.ndim == 2 and s.shape[1] == 1:
        s = s[:, 0]
    if s.ndim != 1:
        raise ValueError(f"expected one score per sample, got shape {s.shape}")
    if s.size and (np.nanmin(s) < 0 or np.nanmax(s) > 1):
        raise ValueError("scores must be probabilities in [0, 1]")
    return s


def logit(s: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """``log(s / (1 - s))`` with ``s`` clipped to ``[1e-6, 1 - 1e-6]`` (finite at 0 and 1)."""
    s = np.clip(s, _EPS, 1 - _EPS)
    return np.asarray(np.log(s / (1 - s)), dtype=np.float64)


def class_weights(labels: npt.NDArray[np.int64], balanced: bool) -> npt.NDArray[np.float64]:
    """Per-sample weights giving both classes the same total weight (or all ones)."""
    if not balanced:
        return np.ones(len(labels), dtype=np.float64)
    counts = np.bincount(labels, minlength=2).astype(np.float64)
    return np.asarray(len(labels) / (2.0 * counts[labels]), dtype=np.float64)


def _check_labels(y: Any, n: int) -> npt.NDArray[np.int64]:
    labels = np.asarray(y, dtype=np.int64)
    if labels.shape != (n,):
        raise ValueError("X and y have different lengths")
    if set(np.unique(labels).tolist()) != {0, 1}:
        raise ValueError("calibration needs both classes (0 = real, 1 = fake)")
    return labels


class LogitCalibrator(ParamsEstimator):
    """``p' = sigmoid(a * logit(p) + b)`` fitted by L2-regularised logistic regression."""

    def __init__(self, C: float = 1e4, balanced: bool = True) -> None:
        self.C = C
        self.balanced = balanced

    _fit_intercept = True
    """False for :class:`TemperatureCalibrator`: no bias (``b_`` is 0)."""

    def fit(self, X: Any, y: Any) -> Self:
        from sklearn.linear_model import LogisticRegression

        s = _scores(X)
        labels = _check_labels(y, len(s))
        model = LogisticRegression(C=self.C, fit_intercept=self._fit_intercept).fit(
            logit(s)[:, None], labels, sample_weight=class_weights(labels, self.balanced)
        )
        self.a_ = float(model.coef_[0, 0])
        self.b_ = float(model.intercept_[0]) if self._fit_intercept else 0.0
        if not self.a_ > 0:
            raise ValueError(
                "the scores do not rise with the fake label on this set (fitted slope "
                f"{self.a_:.3g}); a decreasing calibrator would invert the detector"
            )
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        """Columns (real, fake), like a classifier's."""
        z = self.a_ * logit(_scores(X)) + self.b_
        fake = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1 - fake, fake], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "logit", "a": self.a_, "b": self.b_}


class TemperatureCalibrator(LogitCalibrator):
    """``p' = sigmoid(a * logit(p))`` (temperature ``T = 1/a``, no bias), fitted by
    L2-regularised logistic regression without an intercept; ``b_`` is 0. Serialised as a
    ``logit`` calibrator, so it loads back as a :class:`LogitCalibrator` with the same map."""

    _fit_intercept = False


class IdentityCalibrator(LogitCalibrator):
    """The raw score unchanged: ``a_ = 1``, ``b_ = 0`` whatever the data (which must still hold
    both classes). The zero-parameter candidate: on a few dozen items, a fitted map may do
    worse out of fold than no map."""

    def fit(self, X: Any, y: Any) -> Self:
        _check_labels(y, len(_scores(X)))
        self.a_, self.b_ = 1.0, 0.0
        return self


class IsotonicCalibrator(ParamsEstimator):
    """Monotone step calibration (needs a few hundred samples to be trusted)."""

    def __init__(self, balanced: bool = True) -> None:
        self.balanced = balanced

    def fit(self, X: Any, y: Any) -> IsotonicCalibrator:
        from sklearn.isotonic import IsotonicRegression

        s = _scores(X)
        labels = _check_labels(y, len(s))
        model = IsotonicRegression(y_min=0.0, y_max=1.0, out_of_bounds="clip").fit(
            s, labels, sample_weight=class_weights(labels, self.balanced)
        )
        self.x_ = np.asarray(model.X_thresholds_, dtype=np.float64)
        self.y_ = np.asarray(model.y_thresholds_, dtype=np.float64)
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        fake = np.interp(_scores(X), self.x_, self.y_)
        return np.stack([1 - fake, fake], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "isotonic", "x": self.x_.tolist(), "y": self.y_.tolist()}


class ConstantCalibrator(ParamsEstimator):
    """``p' = p`` for every score: the class-weighted share of fakes of the fitting set (0.5
    with ``balanced=True``, the posterior under equal priors of a detector that knows nothing).
    Never increasing, so it never inverts a detector whose scores fall with the fake label."""

    def __init__(self, balanced: bool = True) -> None:
        self.balanced = balanced

    def fit(self, X: Any, y: Any) -> ConstantCalibrator:
        labels = _check_labels(y, len(_scores(X)))
        w = class_weights(labels, self.balanced)
        self.p_ = round(float(np.sum(w * labels) / np.sum(w)), 12)
        return self

    def predict_proba(self, X: Any) -> npt.NDArray[np.float64]:
        fake = np.full(len(_scores(X)), self.p_)
        return np.stack([1 - fake, fake], axis=1)

    def to_dict(self) -> dict[str, Any]:
        return {"kind": "constant", "p": self.p_}


Calibrator = LogitCalibrator | IsotonicCalibrator | ConstantCalibrator
"""Any fitted calibrator :func:`calibrator_from_dict` rebuilds."""


def make_calibrator(kind: str) -> Calibrator:
    """An unfitted calibrator of ``kind`` (one of :data:`KINDS`), classes weighted equally."""
    makers: dict[str, type[Calibrator]] = {
        "logit": LogitCalibrator,
        "temperature": TemperatureCalibrator,
        "identity": IdentityCalibrator,
        "isotonic": IsotonicCalibrator,
        "constant": ConstantCalibrator,
    }
    if kind not in makers:
        raise ConfigError(f"unknown calibrator kind {kind!r} (known: {', '.join(KINDS)})")
    return makers[kind]()


def calibrator_from_dict(data: dict[str, Any]) -> Calibrator:
    """Rebuild a fitted calibrator from :meth:`to_dict` output (JSON, no pickle). Keys other
    than the kind's parameters and :data:`FITTED_ON` (an object) are errors."""
    kind = data.get("kind")
    if kind in _KEYS:
        unknown = sorted(set(data) - _KEYS[kind] - {FITTED_ON})
        if unknown:
            raise ConfigError(f"unknown keys in a {kind} calibrator: {', '.join(unknown)}")
        if FITTED_ON in data and not isinstance(data[FITTED_ON], dict):
            raise ConfigError(f"a calibrator's {FITTED_ON!r} must be an object")
    if kind == "logit":
        platt = LogitCalibrator()
        platt.a_, platt.b_ = float(data["a"]), float(data["b"])
        if not platt.a_ > 0:
            raise ConfigError(f"a logit calibrator needs a positive slope, got a={platt.a_}")
        return platt
    if kind == "isotonic":
        iso = IsotonicCalibrator()
        iso.x_ = np.asarray(data["x"], dtype=np.float64)
        iso.y_ = np.asarray(data["y"], dtype=np.float64)
        return iso
    if kind == "constant":
        const = ConstantCalibrator()
        const.p_ = float(data["p"])
        if not 0.0 < const.p_ < 1.0:
            raise ConfigError(f"a constant calibrator needs 0 < p < 1, got p={const.p_}")
        return const
    raise ConfigError(f"unknown calibrator kind {kind!r}")
