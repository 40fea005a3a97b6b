"""Deployment degradations used in training: shape/dtype kept, deterministic, really lossy."""

from __future__ import annotations

import numpy as np
import pytest

from fakescope.io import load_example_face
from fakescope.training.degrade import DegradeConfig, degrade, h264_roundtrip, jpeg_roundtrip


def _face() -> np.ndarray:
    return np.ascontiguousarray(load_example_face()[:192, :192])


def test_h264_roundtrip_is_lossy_and_worse_at_higher_crf() -> None:
    img = _face()
    errors = []
    for crf in (18, 30, 45):
        out = h264_roundtrip(img, crf)
        assert out.shape == img.shape and out.dtype == np.uint8
        errors.append(float(np.abs(out.astype(int) - img.astype(int)).mean()))
    assert 0 < errors[0] < errors[1] < errors[2]


def test_h264_roundtrip_odd_sides_keep_shape() -> None:
    img = _face()[:101, :77]
    assert h264_roundtrip(img, 30).shape == img.shape


def test_jpeg_roundtrip_keeps_shape() -> None:
    img = _face()
    out = jpeg_roundtrip(img, 20)
    assert out.shape == img.shape and np.abs(out.astype(int) - img).mean() > 0.5


def test_degrade_is_deterministic_and_keeps_shape() -> None:
    img = _face()
    cfg = DegradeConfig(p_resize=1.0, p_codec=1.0)
    a = degrade(img, np.random.default_rng(3), cfg)
    b = degrade(img, np.random.default_rng(3), cfg)
    assert a.shape == img.shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and not np.array_equal(a, img)


def test_degrade_off_is_identity() -> None:
    img = _face()
    out = degrade(img, np.random.default_rng(0), DegradeConfig(p_resize=0.0, p_codec=0.0))
    assert np.array_equal(out, img)


@pytest.mark.parametrize(
    "kwargs", [{"p_codec": 1.5}, {"resize_min": 0.0}, {"crf_min": 40, "crf_max": 30}]
)
def test_degrade_config_rejects_bad_values(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        DegradeConfig(**kwargs).validate()  # type: ignore[arg-type]
