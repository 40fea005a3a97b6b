"""The reference check's estimator (issue 13): fitted on distances, applied with numpy."""

from __future__ import annotations

import numpy as np
import pytest

from fakescope.identity import ReferenceCheck, reference_distances
from fakescope.models import ASSET_SHA256


def _unit(rng: np.random.Generator, n: int, around: np.ndarray | None = None, s: float = 0.0):  # type: ignore[no-untyped-def]
    v = rng.normal(size=(n, 128)) if around is None else around + s * rng.normal(size=(n, 128))
    return v / np.linalg.norm(v, axis=1, keepdims=True)


def test_fit_predict_roundtrip_and_params() -> None:
    rng = np.random.default_rng(0)
    real = rng.normal(0.15, 0.05, 60)
    fake = rng.normal(0.60, 0.10, 40)
    X, y = np.concatenate([real, fake]), np.r_[np.zeros(60), np.ones(40)]
    check = ReferenceCheck().fit(X, y)
    p = check.predict_proba([0.1, 0.35, 0.8])[:, 1]
    assert p[0] < 0.1 < p[1] < 0.9 < p[2]
    assert 0.2 < check.half_distance < 0.5
    again = ReferenceCheck.from_dict(check.to_dict())
    assert np.allclose(again.predict_proba(X), check.predict_proba(X))
    assert check.get_params() == {"min_faces": 4}
    assert check.set_params(min_faces=6).min_faces == 6


def test_fit_refuses_one_class_and_an_inverted_fit() -> None:
    with pytest.raises(ValueError, match="both classes"):
        ReferenceCheck().fit([0.1, 0.2], [0, 0])
    with pytest.raises(ValueError, match="further"):
        ReferenceCheck().fit([0.6, 0.7, 0.1, 0.2], [0, 0, 1, 1])
    with pytest.raises(ValueError):
        ReferenceCheck.from_dict({"kind": "logit", "a": 1.0, "b": 0.0})


def test_distances_see_a_different_person_and_drift() -> None:
    rng = np.random.default_rng(1)
    person = _unit(rng, 1)[0]
    refs = _unit(rng, 6, person, 0.005)
    same = reference_distances(_unit(rng, 5, person, 0.005), refs)
    other = reference_distances(_unit(rng, 5), refs)
    assert same["distance"] < 0.1 < 0.8 < other["distance"]
    assert same["references"] == 6 and same["faces"] == 5
    drifting = np.concatenate([_unit(rng, 4, person, 0.005), _unit(rng, 1)])
    d = reference_distances(drifting, refs)
    assert d["frame_max"] > 0.8 > d["frame_median"]
    with pytest.raises(ValueError):
        reference_distances(np.zeros((0, 128)), refs)
    with pytest.raises(ValueError):
        reference_distances(np.full((2, 128), np.nan), refs)


def test_shipped_check_is_sane_and_checked() -> None:
    check, info = ReferenceCheck.shipped()
    assert info.name == "reference-v1" and info.sha256 == ASSET_SHA256["reference_v1.json"]
    p = check.predict_proba([0.15, 0.6])[:, 1]
    assert p[0] < 0.5 < p[1]
    evidence = check.assess(np.ones((3, 128)), np.ones((2, 128)), "kim", info)
    assert evidence.fake_probability is None and "2 reference face(s)" in evidence.summary
