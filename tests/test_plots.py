"""Display objects: render to PNG headlessly, probit DET axes, overlays, lazy matplotlib."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from scipy.stats import norm

from fakescope.evaluation._metrics import det_curve, eer, roc_auc
from fakescope.evaluation._plots import (
    DET_TICKS,
    DetCurveDisplay,
    ReliabilityDisplay,
    RocCurveDisplay,
    ScoreHistogramDisplay,
)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 200)
    p = 1.0 / (1.0 + np.exp(-(rng.normal(size=200) + 2.0 * y - 1.0)))
    methods = np.where(rng.random(200) < 0.5, "Deepfakes", "FaceSwap")
    return y, p, methods


def _check_png(path: Path) -> None:
    assert path.is_file()
    assert path.read_bytes()[:8] == PNG_MAGIC
    assert path.stat().st_size > 1024


def _legend_texts(disp: object) -> list[str]:
    legend = disp.ax_.get_legend()  # type: ignore[attr-defined]
    return [t.get_text() for t in legend.get_texts()]


def test_import_does_not_import_matplotlib() -> None:
    code = (
        "import sys, fakescope.evaluation._plots, fakescope.evaluation._metrics; "
        "assert 'matplotlib' not in sys.modules, 'matplotlib imported at import time'"
    )
    subprocess.run([sys.executable, "-c", code], check=True, timeout=60)


def test_roc_display(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    y, p, _ = data
    disp = RocCurveDisplay.from_predictions(y, p, name="model")
    assert disp.auc == pytest.approx(roc_auc(y, p))
    x, t = disp.line_.get_data()
    np.testing.assert_allclose(np.asarray(x), disp.fpr)
    np.testing.assert_allclose(np.asarray(t), disp.tpr)
    assert disp.fpr[0] == 0.0 and disp.tpr[-1] == 1.0
    assert disp.figure_ is disp.ax_.get_figure(root=True)
    _check_png(disp.save(tmp_path / "roc.png"))


def test_det_display_uses_probit_axes(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    y, p, _ = data
    disp = DetCurveDisplay.from_predictions(y, p, name="model")
    fpr, fnr, _ = det_curve(y, p)
    assert len(fpr) == len(fnr)
    x, t = (np.asarray(v, dtype=float) for v in disp.line_.get_data())
    assert np.all(np.isfinite(x)) and np.all(np.isfinite(t))  # 0 and 1 are clipped
    inner = (disp.fpr > 0) & (disp.fpr < 1) & (disp.fnr > 0) & (disp.fnr < 1)
    np.testing.assert_allclose(x[inner], norm.ppf(disp.fpr[inner]))
    np.testing.assert_allclose(t[inner], norm.ppf(disp.fnr[inner]))
    # the display's points are det_curve's points (plus reject-all)
    assert set(np.round(fpr, 12)) <= set(np.round(disp.fpr, 12))
    assert disp.eer == pytest.approx(eer(y, p)[0])
    np.testing.assert_allclose(disp.ax_.get_xticks(), norm.ppf(DET_TICKS))
    np.testing.assert_allclose(disp.ax_.get_yticks(), norm.ppf(DET_TICKS))
    labels = [tick.get_text() for tick in disp.ax_.get_xticklabels()]
    assert labels == ["0.1", "0.5", "1", "2", "5", "10", "20", "40", "60", "80", "95"]
    assert "%" in disp.ax_.get_xlabel()
    _check_png(disp.save(tmp_path / "det.png"))


@pytest.mark.parametrize("cls", [RocCurveDisplay, DetCurveDisplay])
def test_two_curves_on_one_axes(
    cls: type[RocCurveDisplay] | type[DetCurveDisplay],
    data: tuple[np.ndarray, ...],
    tmp_path: Path,
) -> None:
    y, p, _ = data
    first = cls.from_predictions(y, p, name="model A")
    second = cls.from_predictions(y, np.sqrt(p), name="model B", ax=first.ax_)
    assert second.ax_ is first.ax_ and second.figure_ is first.figure_
    texts = _legend_texts(second)
    assert any(t.startswith("model A") for t in texts)
    assert any(t.startswith("model B") for t in texts)
    # re-plotting an existing display on the same axes works too, with a new name
    first.plot(ax=first.ax_, name="model A again")
    assert len(_legend_texts(first)) == 3
    _check_png(first.save(tmp_path / "overlay.png"))


def test_score_histogram(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    y, p, methods = data
    plain = ScoreHistogramDisplay.from_predictions(y, p, bins=20)
    assert set(plain.patches_) == {"real", "fake"}
    per_method = ScoreHistogramDisplay.from_predictions(y, p, methods=methods, name="m")
    assert set(per_method.patches_) == {"m: real", "m: fake: Deepfakes", "m: fake: FaceSwap"}
    values = per_method.patches_["m: real"].get_data().values
    edges = per_method.patches_["m: real"].get_data().edges
    assert len(values) == 30
    assert float(np.sum(values * np.diff(edges))) == pytest.approx(1.0)  # density
    _check_png(plain.save(tmp_path / "hist.png"))
    _check_png(per_method.save(tmp_path / "hist_methods.png"))


def test_score_histogram_of_one_value(tmp_path: Path) -> None:
    """A detector whose calibration is constant gives one value (up to rounding: 0.5 and
    0.5000000000000001); the histogram draws one bar instead of failing on a zero range."""
    y = np.r_[np.zeros(10, int), np.ones(10, int)]
    p = np.r_[np.full(19, 0.5), 0.5000000000000001]
    disp = ScoreHistogramDisplay.from_predictions(y, p)
    edges = disp.patches_["real"].get_data().edges
    assert edges[0] < 0.5 < edges[-1]
    _check_png(disp.save(tmp_path / "flat.png"))


def test_reliability_display(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    y, p, _ = data
    disp = ReliabilityDisplay.from_predictions(y, p, n_bins=10, name="raw", show_counts=True)
    assert disp.counts.sum() == len(y)
    assert np.all((disp.confidence >= 0) & (disp.confidence <= 1))
    x, t = disp.line_.get_data()
    np.testing.assert_allclose(np.asarray(x), disp.confidence)
    np.testing.assert_allclose(np.asarray(t), disp.accuracy)
    assert disp.count_ax_ is not None
    disp2 = ReliabilityDisplay.from_predictions(y, p**2, n_bins=10, name="sq", ax=disp.ax_)
    texts = _legend_texts(disp2)
    assert texts.count("Perfectly calibrated") == 1  # diagonal drawn once
    assert any(t.startswith("raw") for t in texts) and any(t.startswith("sq") for t in texts)
    _check_png(disp2.save(tmp_path / "reliability.png"))
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        ReliabilityDisplay.from_predictions(y, p + 1.0)


def test_save_before_plot_raises() -> None:
    disp = RocCurveDisplay(fpr=np.array([0.0, 1.0]), tpr=np.array([0.0, 1.0]))
    with pytest.raises(RuntimeError, match="plot"):
        disp.save("never.png")
