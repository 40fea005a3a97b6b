"""A synthesis detector's probability of its raw scores, shared by the linear (``_detector.py``)
and the CNN (``_cnn.py``) detectors."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from fakescope.calibration import Calibrator

__all__ = ["calibrated_probability"]

_F64 = npt.NDArray[np.float64]


def _sigmoid(raw: _F64) -> _F64:
    return np.asarray(0.5 * (1.0 + np.tanh(0.5 * raw)), dtype=np.float64)


def calibrated_probability(raw: _F64, calibrator: Calibrator | None) -> _F64:
    """A synthesis detector's probability of raw scores (logits): ``sigmoid(raw)`` through
    its fitted calibrator, when it has one."""
    r = np.asarray(raw, dtype=np.float64)
    p = _sigmoid(r)
    if calibrator is None:
        return p
    out = calibrator.predict_proba(p.reshape(-1))[:, 1]
    return np.asarray(out, dtype=np.float64).reshape(r.shape)
