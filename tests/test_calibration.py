"""Calibrators follow the scikit-learn estimator contract and round-trip through JSON."""

from __future__ import annotations

import json

import numpy as np
import pytest
from sklearn.base import clone

from fakescope.calibration import IsotonicCalibrator, LogitCalibrator, calibrator_from_dict
from fakescope.evaluation import expected_calibration_error


def _overconfident(n: int = 2000, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    true_logit = rng.normal(0, 1, n) + (2 * y - 1) * 0.8
    p = 1 / (1 + np.exp(-3.0 * true_logit))  # three times too sharp
    return p, y


@pytest.mark.parametrize("cls", [LogitCalibrator, IsotonicCalibrator])
def test_calibration_reduces_ece_and_round_trips(cls: type) -> None:
    p, y = _overconfident()
    p_test, y_test = _overconfident(seed=1)
    cal = cls().fit(p, y)
    before = expected_calibration_error(y_test, p_test)
    after = expected_calibration_error(y_test, cal.predict_proba(p_test)[:, 1])
    assert after < before / 2
    again = calibrator_from_dict(json.loads(json.dumps(cal.to_dict())))
    np.testing.assert_allclose(again.predict_proba(p_test), cal.predict_proba(p_test))
    assert clone(cal).get_params() == cal.get_params()


def test_logit_calibrator_learns_the_temperature() -> None:
    p, y = _overconfident(20000)
    cal = LogitCalibrator().fit(p, y)
    # classes are N(+-0.8, 1) in z, so the true log-odds are 1.6 z while logit(p) = 3 z
    assert cal.a_ == pytest.approx(1.6 / 3, abs=0.05)
    assert cal.b_ == pytest.approx(0.0, abs=0.1)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="both classes"):
        LogitCalibrator().fit([0.2, 0.3], [1, 1])
    with pytest.raises(ValueError, match="probabilities"):
        IsotonicCalibrator().fit([0.2, 1.3], [0, 1])


def test_balanced_calibration_removes_the_calibration_set_prior() -> None:
    """Same class-conditional scores, 4x more fakes: the balanced fit gives the equal-prior
    posterior (0.5 where both classes are equally likely); the unbalanced one adds the set's
    prior (about 0.8 there)."""
    from scipy.special import expit

    from fakescope.calibration import IsotonicCalibrator, LogitCalibrator

    rng = np.random.default_rng(0)
    real = expit(rng.normal(-1.0, 1.0, 2000))
    fake = expit(rng.normal(1.0, 1.0, 8000))
    X, y = np.concatenate([real, fake]), np.r_[np.zeros(2000), np.ones(8000)].astype(int)
    midpoint = np.array([0.5])  # logit 0: equal likelihood under both classes
    assert LogitCalibrator().fit(X, y).predict_proba(midpoint)[0, 1] == pytest.approx(0.5, abs=0.03)
    unbalanced = LogitCalibrator(balanced=False).fit(X, y).predict_proba(midpoint)[0, 1]
    assert unbalanced == pytest.approx(0.8, abs=0.03)
    iso = IsotonicCalibrator().fit(X, y).predict_proba(midpoint)[0, 1]
    assert iso == pytest.approx(0.5, abs=0.08)
