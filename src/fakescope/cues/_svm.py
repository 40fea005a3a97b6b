"""The cue model: a standardised RBF SVM with Platt calibration, stored as plain JSON and
evaluated with numpy only (scikit-learn is needed to train it, never to apply it).

JSON format ``fakescope-cues-svm/1`` (written by :mod:`fakescope.training.cues`)::

    {
      "format": "fakescope-cues-svm/1", "name": "...", "cues_version": 1,
      "features": [names in input order],
      "scaler": {"mean": [...], "scale": [...]},          # x_std = (x - mean) / scale
      "svm": {"kernel": "rbf", "gamma": g, "C": c,
              "support_vectors": [[...], ...],            # in standardised units
              "dual_coef": [...], "intercept": b},        # sklearn's dual_coef_[0], intercept_[0]
      "platt": {"a": A, "b": B},                          # p = 1 / (1 + exp(A d + B))
      "threshold": 0.5,
      "reference": {name: {"lo": p10, "median": p50, "hi": p90}},   # real training tracks
      "templates": {name: {"high": "...", "low": "...", "scale": "ratio|log|linear"}},
      "neutral": {name: value},                           # substituted for missing cues
      "meta": {...}                                       # free-form (training summary)
    }

The decision value is sklearn's ``SVC.decision_function`` (positive = fake):
``d(x) = sum_i dual_coef_i exp(-gamma |x_std - sv_i|^2) + intercept``.
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope.cues._features import CueFeatures
from fakescope.errors import ConfigError, ModelError

__all__ = [
    "MODEL_FORMAT",
    "SHIPPED_ASSET",
    "CueModel",
    "FeatureMismatchError",
    "FeatureReference",
]

MODEL_FORMAT = "fakescope-cues-svm/1"
SHIPPED_ASSET = "cues_svm_v1.json"
"""File name of the shipped model in ``fakescope/models/assets`` (``ship`` copies it there)."""

_F64 = npt.NDArray[np.float64]
_SCALES = ("ratio", "log", "linear")


class FeatureMismatchError(ConfigError):
    """The features given are not the ones (or not in the order) the model was trained on."""


@dataclass(frozen=True)
class FeatureReference:
    """The real-class range of one feature on the training tracks: 10th, 50th and 90th
    percentiles."""

    lo: float
    median: float
    hi: float

    def outside(self, value: float) -> float:
        """How far ``value`` lies outside ``[lo, hi]``, in units of ``hi - lo`` (0 inside)."""
        spread = max(self.hi - self.lo, 1e-9 + 1e-6 * abs(self.median))
        if value > self.hi:
            return (value - self.hi) / spread
        if value < self.lo:
            return (self.lo - value) / spread
        return 0.0


@dataclass(frozen=True, eq=False)
class CueModel:
    """A trained cue SVM (see the module docstring for the JSON format).

    :meth:`predict` gives the calibrated fake probability of one track's
    :class:`~fakescope.cues.CueFeatures`; :meth:`explain` the cues furthest outside the real
    range, in plain words. Missing cues (``CueFeatures.missing``) take :attr:`neutral`."""

    names: tuple[str, ...]
    mean: _F64
    scale: _F64
    support_vectors: _F64
    dual_coef: _F64
    intercept: float
    gamma: float
    platt_a: float
    platt_b: float
    reference: dict[str, FeatureReference]
    templates: dict[str, dict[str, str]]
    neutral: dict[str, float]
    threshold: float = 0.5
    name: str = "cues-svm"
    cues_version: int = 1
    C: float = 1.0
    meta: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        d = len(self.names)
        if d == 0 or len(set(self.names)) != d:
            raise ModelError("a cue model needs unique feature names")
        sv = self.support_vectors
        if self.mean.shape != (d,) or self.scale.shape != (d,):
            raise ModelError(f"scaler mean/scale must have {d} entries")
        if not np.all(self.scale > 0):
            raise ModelError("scaler scale must be positive")
        if sv.ndim != 2 or sv.shape[1] != d or self.dual_coef.shape != (sv.shape[0],):
            raise ModelError(
                f"support vectors {sv.shape} and dual coefficients {self.dual_coef.shape} do "
                f"not fit {d} features"
            )
        numbers = [self.intercept, self.gamma, self.platt_a, self.platt_b, self.threshold]
        arrays = (self.mean, self.scale, sv, self.dual_coef)
        if not all(math.isfinite(v) for v in numbers) or not all(
            np.isfinite(a).all() for a in arrays
        ):
            raise ModelError("cue model parameters must be finite")
        if self.gamma <= 0:
            raise ModelError("gamma must be positive")
        for part, what in ((self.reference, "reference"), (self.neutral, "neutral")):
            if set(part) != set(self.names):
                raise ModelError(f"{what} must name exactly the model's features")
        if not set(self.templates) <= set(self.names):
            raise ModelError("templates name unknown features")

    # ---------------------------------------------------------------------------- JSON

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (plain lists and numbers)."""
        return {
            "format": MODEL_FORMAT,
            "name": self.name,
            "cues_version": self.cues_version,
            "features": list(self.names),
            "scaler": {"mean": self.mean.tolist(), "scale": self.scale.tolist()},
            "svm": {
                "kernel": "rbf",
                "gamma": self.gamma,
                "C": self.C,
                "support_vectors": self.support_vectors.tolist(),
                "dual_coef": self.dual_coef.tolist(),
                "intercept": self.intercept,
            },
            "platt": {"a": self.platt_a, "b": self.platt_b},
            "threshold": self.threshold,
            "reference": {
                n: {"lo": r.lo, "median": r.median, "hi": r.hi} for n, r in self.reference.items()
            },
            "templates": self.templates,
            "neutral": self.neutral,
            "meta": self.meta,
        }

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> CueModel:
        """Inverse of :meth:`to_dict`; a wrong format or a malformed entry raises
        :class:`~fakescope.errors.ModelError`."""
        if data.get("format") != MODEL_FORMAT:
            raise ModelError(f"not a cue model: format {data.get('format')!r}, want {MODEL_FORMAT}")
        try:
            svm = data["svm"]
            if svm.get("kernel", "rbf") != "rbf":
                raise ModelError(f"unsupported kernel {svm.get('kernel')!r}")
            names = tuple(str(n) for n in data["features"])
            templates = {
                str(n): {str(k): str(v) for k, v in t.items()} for n, t in data["templates"].items()
            }
            return cls(
                names=names,
                mean=np.asarray(data["scaler"]["mean"], np.float64),
                scale=np.asarray(data["scaler"]["scale"], np.float64),
                support_vectors=np.asarray(svm["support_vectors"], np.float64).reshape(
                    -1, len(names)
                ),
                dual_coef=np.asarray(svm["dual_coef"], np.float64).reshape(-1),
                intercept=float(svm["intercept"]),
                gamma=float(svm["gamma"]),
                C=float(svm.get("C", 1.0)),
                platt_a=float(data["platt"]["a"]),
                platt_b=float(data["platt"]["b"]),
                threshold=float(data.get("threshold", 0.5)),
                reference={
                    str(n): FeatureReference(float(r["lo"]), float(r["median"]), float(r["hi"]))
                    for n, r in data["reference"].items()
                },
                templates=templates,
                neutral={str(n): float(v) for n, v in data["neutral"].items()},
                name=str(data.get("name", "cues-svm")),
                cues_version=int(data.get("cues_version", 1)),
                meta=dict(data.get("meta", {})),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            if isinstance(exc, ModelError):
                raise
            raise ModelError(f"malformed cue model: {exc!r}") from exc

    @classmethod
    def load(cls, path: Path | str, sha256: str | None = None) -> CueModel:
        """Read a model JSON; with ``sha256`` the file's digest must match (else
        :class:`~fakescope.errors.ModelError`)."""
        path = Path(path)
        try:
            blob = path.read_bytes()
        except OSError as exc:
            raise ModelError(f"cannot read cue model {path}: {exc}") from exc
        if sha256 is not None and hashlib.sha256(blob).hexdigest() != sha256.lower():
            raise ModelError(f"{path}: sha256 mismatch")
        try:
            data = json.loads(blob.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise ModelError(f"{path} is not JSON: {exc}") from exc
        if not isinstance(data, dict):
            raise ModelError(f"{path}: a cue model is a JSON object")
        return cls.from_dict(data)

    def save(self, path: Path | str) -> None:
        """Write the JSON form (``allow_nan`` off: every number is finite)."""
        text = json.dumps(self.to_dict(), indent=1, allow_nan=False)
        Path(path).write_text(text + "\n", encoding="utf-8")

    # ---------------------------------------------------------------------------- scoring

    def vector(self, features: CueFeatures | Mapping[str, float]) -> _F64:
        """The model's input vector for ``features``, missing cues replaced by
        :attr:`neutral`.

        A :class:`CueFeatures` must carry exactly the model's names in the model's order; a
        mapping exactly its names (any order). Otherwise :class:`FeatureMismatchError`."""
        if isinstance(features, CueFeatures):
            names, values, missing = features.names, features.values, features.missing
            if names != self.names:
                raise FeatureMismatchError(self._mismatch(names))
            x = np.asarray(values, np.float64)
            for i, name in enumerate(self.names):
                if name in missing:
                    x[i] = self.neutral[name]
            return x
        if set(features) != set(self.names):
            raise FeatureMismatchError(self._mismatch(tuple(features)))
        return np.asarray([float(features[n]) for n in self.names], np.float64)

    def _mismatch(self, names: Sequence[str]) -> str:
        extra = [n for n in names if n not in self.names]
        absent = [n for n in self.names if n not in names]
        if not extra and not absent:
            return (
                f"features are in a different order than model {self.name!r} expects: "
                f"got {list(names)}, want {list(self.names)}"
            )
        return (
            f"features do not match model {self.name!r} (cues version {self.cues_version}): "
            f"missing {absent}, unexpected {extra}"
        )

    def decision_values(self, x: npt.ArrayLike) -> _F64:
        """SVM decision values of raw feature rows (N, D) or one row (D,) in the model's
        feature order (no missing-value handling); > 0 leans fake."""
        arr = np.asarray(x, np.float64)
        rows = np.atleast_2d(arr)
        if rows.ndim != 2 or rows.shape[1] != len(self.names):
            raise FeatureMismatchError(
                f"feature rows must have {len(self.names)} columns, got shape {arr.shape}"
            )
        z = (rows - self.mean) / self.scale
        sq = np.sum((z[:, None, :] - self.support_vectors[None, :, :]) ** 2, axis=2)
        out = np.exp(-self.gamma * sq) @ self.dual_coef + self.intercept
        return np.asarray(out, np.float64)

    def probability_from_decision(self, d: npt.ArrayLike) -> _F64:
        """Platt's calibrated fake probability ``1 / (1 + exp(a d + b))``."""
        logit = -(self.platt_a * np.asarray(d, np.float64) + self.platt_b)
        return np.asarray(0.5 * (1.0 + np.tanh(0.5 * logit)), np.float64)

    def decision(self, features: CueFeatures | Mapping[str, float]) -> float:
        """The SVM decision value of one track (> 0 leans fake)."""
        return float(self.decision_values(self.vector(features))[0])

    def predict(self, features: CueFeatures | Mapping[str, float]) -> float:
        """Calibrated probability that the track is fake."""
        return float(self.probability_from_decision(self.decision(features)))

    # ---------------------------------------------------------------------------- words

    def deviations(self, features: CueFeatures | Mapping[str, float]) -> list[tuple[str, float]]:
        """``(name, distance outside the real range)`` for every measured cue outside it,
        furthest first (distance in units of the real 10th-90th percentile spread)."""
        x = self.vector(features)
        missing = features.missing if isinstance(features, CueFeatures) else frozenset()
        out = []
        for name, value in zip(self.names, x, strict=True):
            if name in missing:
                continue
            score = self.reference[name].outside(float(value))
            if score > 0:
                out.append((name, score))
        out.sort(key=lambda item: -item[1])
        return out

    def describe(self, name: str, value: float) -> str:
        """One cue's value in plain words against its real range."""
        ref = self.reference[name]
        template = self.templates.get(name, {})
        kind = template.get("scale", "ratio")
        high = value >= ref.median
        if kind == "log":
            times = math.exp(abs(value - ref.median))
        else:
            top, bottom = (value, ref.median) if high else (ref.median, value)
            times = top / bottom if bottom > 1e-12 and top > 0 else math.inf
        fields = {"value": value, "lo": ref.lo, "hi": ref.hi, "median": ref.median}
        fields["times"] = times
        text = template.get("high" if high else "low")
        if text and (math.isfinite(times) or "{times" not in text):
            try:
                return text.format(**fields)
            except (KeyError, IndexError, ValueError):
                pass
        return f"{name} is {value:.3g} (typical {ref.lo:.3g}–{ref.hi:.3g})"

    def explain(self, features: CueFeatures | Mapping[str, float], k: int = 3) -> list[str]:
        """Up to ``k`` plain-words reasons: the measured cues furthest outside the real
        training range (10th-90th percentile), furthest first; empty when all are typical."""
        x = dict(zip(self.names, self.vector(features), strict=True))
        return [self.describe(name, float(x[name])) for name, _ in self.deviations(features)[:k]]
