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


def _channel_errors(out: np.ndarray, img: np.ndarray) -> np.ndarray:
    return np.abs(out.astype(int) - img.astype(int)).mean(axis=(0, 1))


@pytest.mark.parametrize("quality", [25, 50, 90])
def test_jpeg_roundtrip_codes_rgb_as_rgb(quality: int) -> None:
    # A YCbCr codec keeps luma best and subsampled chroma worst, and BT.601 luma weighs red
    # (0.299) well above blue (0.114): on colour noise, red must come back closer than blue.
    # An RGB array handed to cv2 as if it were BGR swaps that (red worst, blue better).
    img = np.random.default_rng(quality).integers(0, 256, (64, 64, 3)).astype(np.uint8)
    r, g, b = _channel_errors(jpeg_roundtrip(img, quality), img)
    assert g < r < b
    r264, g264, b264 = _channel_errors(h264_roundtrip(img, 30), img)
    assert g264 < r264 < b264  # the same order as the (RGB-correct) H.264 round trip


def _patch(colour: tuple[int, int, int]) -> np.ndarray:
    """A saturated square (not aligned to the 16 px chroma blocks) on a mid-grey frame."""
    img = np.full((64, 64, 3), 128, np.uint8)
    img[21:43, 19:41] = colour
    return img


@pytest.mark.parametrize("quality", [30, 60, 90])
def test_jpeg_roundtrip_keeps_red_better_than_blue(quality: int) -> None:
    red = jpeg_roundtrip(_patch((255, 0, 0)), quality).astype(int)[21:43, 19:41]
    blue = jpeg_roundtrip(_patch((0, 0, 255)), quality).astype(int)[21:43, 19:41]
    r, g, b = red[3:-3, 3:-3].reshape(-1, 3).mean(axis=0)
    assert r > 235 and g < 25 and b < 25  # red stays red
    # Red carries more luma than blue, so its patch loses less at the subsampled border;
    # with the channels swapped into cv2 (RGB read as BGR) it is the other way round.
    assert 255 - red[..., 0].mean() < 255 - blue[..., 2].mean()


def test_augment_jpeg_goes_through_jpeg_roundtrip(monkeypatch: pytest.MonkeyPatch) -> None:
    from fakescope.training import crops

    calls: list[int] = []

    def spy(img: np.ndarray, quality: int) -> np.ndarray:
        calls.append(quality)
        return jpeg_roundtrip(img, quality)

    monkeypatch.setattr(crops, "jpeg_roundtrip", spy)
    img = _face()[:64, :64].copy()
    for seed in range(8):
        out = crops.augment(img, np.random.default_rng(seed))
        assert out.shape == img.shape and out.dtype == np.uint8
    assert calls and all(30 <= q <= 95 for q in calls)


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
