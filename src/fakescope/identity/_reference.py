"""The reference check: is a face track consistent with how a named person really looks?

A person with real reference footage in the gallery (``fakescope people add NAME VIDEO``) can be
checked against: ``fakescope scan --reference NAME``. Each face track's identity embeddings are
compared with NAME's references (the distance of the track's pooled embedding to their pooled
centroid, and how far single frames drift), and :class:`ReferenceCheck` turns the distance into
a calibrated probability that the face is not NAME's real face: a face swap that puts another
person's face over NAME's head, or NAME's likeness that is not NAME. Reenactment (NAME's own
face, made to say other words) keeps the identity, so this check cannot see it; the face
detector's score and the other evidence still apply.

The check follows scikit-learn's estimator contract (``fit(X, y)`` on distances, labels 1 =
fake) and applies with numpy alone. The shipped fit is ``reference_v1.json``.
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from fakescope._estimator import ParamsEstimator
from fakescope.identity._embed import EMBEDDING_DIM, pool
from fakescope.identity._gallery import SAME_PERSON_THRESHOLD, fit_same_person_calibration
from fakescope.types import Evidence, ModelInfo

__all__ = [
    "REFERENCE_FILE",
    "REFERENCE_MIN_FACES",
    "ReferenceCheck",
    "reference_distances",
]

REFERENCE_FILE = "reference_v1.json"
REFERENCE_MIN_FACES = 4
"""A person needs at least this many reference faces in the gallery to be checked against."""


def _unit_rows(x: npt.ArrayLike, what: str) -> npt.NDArray[np.float64]:
    data = np.asarray(x, dtype=np.float64)
    if data.ndim == 1:
        data = data[None, :]
    if data.ndim != 2 or data.shape[1] != EMBEDDING_DIM or data.shape[0] == 0:
        raise ValueError(f"{what} must be (N, {EMBEDDING_DIM}) with N >= 1, got {data.shape}")
    if not np.isfinite(data).all():
        raise ValueError(f"{what} must be finite")
    norms = np.maximum(np.linalg.norm(data, axis=1, keepdims=True), 1e-12)
    return np.asarray(data / norms, dtype=np.float64)


def reference_distances(track: npt.ArrayLike, references: npt.ArrayLike) -> dict[str, float]:
    """How far a track's face embeddings (N, 128) are from a person's references (M, 128):

    - ``distance``: pooled track embedding to the references' pooled centroid (what the
      check is calibrated on);
    - ``frame_median`` / ``frame_max``: single frames to that centroid (drift within the
      track);
    - ``nearest_reference``: pooled track embedding to the closest single reference.
    """
    faces = _unit_rows(track, "track embeddings")
    refs = _unit_rows(references, "reference embeddings")
    centroid = pool(refs).astype(np.float64)
    frames = np.linalg.norm(faces - centroid, axis=1)
    pooled = pool(faces).astype(np.float64)
    return {
        "distance": float(np.linalg.norm(pooled - centroid)),
        "frame_median": float(np.median(frames)),
        "frame_max": float(frames.max()),
        "nearest_reference": float(np.linalg.norm(refs - pooled, axis=1).min()),
        "faces": float(faces.shape[0]),
        "references": float(refs.shape[0]),
    }


class ReferenceCheck(ParamsEstimator):
    """``p(fake) = sigmoid(intercept_ + slope_ * distance)``, the distance of a track to the
    claimed person's references (:func:`reference_distances`), fitted by logistic regression
    with the two classes weighted equally (the posterior under equal priors, like every other
    calibrated probability fakescope shows).

    ``min_faces`` is the fewest reference faces a person needs to be checked against.
    """

    def __init__(self, min_faces: int = REFERENCE_MIN_FACES) -> None:
        self.min_faces = min_faces

    def fit(self, X: npt.ArrayLike, y: npt.ArrayLike) -> ReferenceCheck:
        """``X``: distances (n,) or (n, 1); ``y``: 1 = fake (a face that is not the claimed
        person's), 0 = the person's real face. Raises ``ValueError`` for one class only or a
        fit where fakes are not further away."""
        d = np.asarray(X, dtype=np.float64).reshape(-1)
        labels = np.asarray(y).reshape(-1)
        if d.shape != labels.shape or not np.isfinite(d).all():
            raise ValueError("X must be finite distances, one per label")
        if set(np.unique(labels).tolist()) != {0, 1}:
            raise ValueError("the reference check needs both classes (0 = real, 1 = fake)")
        intercept, slope = fit_same_person_calibration(d[labels == 1], d[labels == 0])
        if not slope > 0:
            raise ValueError(f"fakes are not further from the references (slope {slope:.3g})")
        self.intercept_, self.slope_ = intercept, slope
        self.n_fit_ = {"real": int((labels == 0).sum()), "fake": int((labels == 1).sum())}
        return self

    def predict_proba(self, X: npt.ArrayLike) -> npt.NDArray[np.float64]:
        """Columns (real, fake) for distances ``X``."""
        d = np.asarray(X, dtype=np.float64).reshape(-1)
        z = np.clip(self.intercept_ + self.slope_ * d, -50.0, 50.0)
        fake = 1.0 / (1.0 + np.exp(-z))
        return np.stack([1.0 - fake, fake], axis=1)

    @property
    def half_distance(self) -> float:
        """The distance at which ``p(fake)`` is 0.5."""
        return -self.intercept_ / self.slope_

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": "reference-logistic",
            "intercept": self.intercept_,
            "slope": self.slope_,
            "min_faces": self.min_faces,
            "n_fit": self.n_fit_,
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ReferenceCheck:
        if data.get("kind") != "reference-logistic":
            raise ValueError(f"not a reference check: kind {data.get('kind')!r}")
        check = cls(int(data.get("min_faces", REFERENCE_MIN_FACES)))
        check.intercept_, check.slope_ = float(data["intercept"]), float(data["slope"])
        check.n_fit_ = dict(data.get("n_fit", {}))
        if not (math.isfinite(check.intercept_) and check.slope_ > 0):
            raise ValueError("a reference check needs a finite intercept and a positive slope")
        return check

    @classmethod
    def load(cls, path: Path) -> tuple[ReferenceCheck, dict[str, Any]]:
        """A fitted check and its file's other fields (what it was fitted on, measured)."""
        data = json.loads(Path(path).read_text())
        return cls.from_dict(data["check"]), data

    @classmethod
    def shipped(cls) -> tuple[ReferenceCheck, ModelInfo]:
        """The shipped fit (sha256-checked) and its :class:`ModelInfo`."""
        from fakescope.models import ASSET_SHA256, shipped

        check, data = cls.load(shipped(REFERENCE_FILE))
        info = ModelInfo("reference-v1", ASSET_SHA256[REFERENCE_FILE], str(data.get("version")))
        return check, info

    def assess(
        self,
        track: npt.ArrayLike,
        references: npt.ArrayLike,
        person: str,
        info: ModelInfo | None = None,
    ) -> Evidence:
        """The reference check of one track against ``person``'s references, as a line of
        evidence; without enough references it gives no probability and says why."""
        name = info.name if info is not None else "reference"
        refs = np.asarray(references)
        count = 0 if refs.size == 0 else (1 if refs.ndim == 1 else refs.shape[0])
        if count < self.min_faces:
            return Evidence(
                name,
                None,
                f"cannot check against {person}: {count} reference face(s) in the gallery, "
                f"{self.min_faces} needed (fakescope people add {person} MORE_FOOTAGE)",
                model=info,
            )
        values = reference_distances(track, refs)
        p = float(self.predict_proba([values["distance"]])[0, 1])
        d = values["distance"]
        if d <= SAME_PERSON_THRESHOLD:
            summary = f"the face looks like {person} (distance {d:.2f} to their references)"
        else:
            summary = (
                f"the face does not look like {person}: distance {d:.2f} to their "
                f"{count} reference faces (the same person is within {SAME_PERSON_THRESHOLD})"
            )
        findings = [summary]
        if values["frame_max"] > SAME_PERSON_THRESHOLD >= d:
            findings.append(
                f"some frames drift away from {person} (up to {values['frame_max']:.2f})"
            )
        findings.append(
            f"probability {p:.0%} that this is not {person}'s real face "
            f"(0.5 at distance {self.half_distance:.2f}); reenactment keeps the identity and "
            "is not seen by this check"
        )
        return Evidence(name, p, summary, tuple(findings), values, info)
