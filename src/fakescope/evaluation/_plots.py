"""scikit-learn-style Display objects for detection results: ROC, DET, score histograms and
reliability diagrams.

Each Display holds the computed arrays; ``from_predictions(y, s, ...)`` computes them and
calls ``plot``; ``plot(ax=None, name=None, **kwargs)`` draws, sets ``ax_`` and ``figure_``
(plus ``line_`` or ``patches_``) and returns ``self``; ``save(path)`` writes a PNG. Several
curves can share one axes: ``disp.plot(ax=disp.ax_, name="other")``.

matplotlib is imported lazily inside the plotting methods, never at module import. When no
``ax`` is given a standalone :class:`matplotlib.figure.Figure` is created (no pyplot, no
global state, no GUI backend needed).
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, Self

import numpy as np
import numpy.typing as npt

from fakescope.evaluation._metrics import (
    _calibration_bins,
    _operating_points,
    _validate,
    _validate_probabilities,
    eer,
    expected_calibration_error,
    roc_auc,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from matplotlib.lines import Line2D
    from matplotlib.patches import StepPatch

__all__ = [
    "DET_TICKS",
    "DetCurveDisplay",
    "ReliabilityDisplay",
    "RocCurveDisplay",
    "ScoreHistogramDisplay",
]

FloatArray = npt.NDArray[np.float64]
IntArray = npt.NDArray[np.int64]

#: Error rates marked on both DET axes.
DET_TICKS: tuple[float, ...] = (0.001, 0.005, 0.01, 0.02, 0.05, 0.1, 0.2, 0.4, 0.6, 0.8, 0.95)
_DET_LIMITS = (0.0005, 0.98)  # wider than DETware (0.05-50 %): weak detectors stay visible
_DET_CLIP = 1e-6  # rates of exactly 0 or 1 are clipped to this before norm.ppf (no infinities)
_GUIDE_GID = "fakescope-guide"  # chance / perfect-calibration line, drawn once per axes


def _new_axes(ax: Axes | None) -> tuple[Axes, Figure]:
    if ax is None:
        from matplotlib.figure import Figure

        fig = Figure(figsize=(5.5, 5.0))
        ax = fig.add_subplot()
    root = ax.get_figure(root=True)
    if root is None:
        raise ValueError("the axes do not belong to a figure")
    return ax, root


def _has_guide(ax: Axes) -> bool:
    return any(line.get_gid() == _GUIDE_GID for line in ax.get_lines())


def _legend(ax: Axes, loc: Literal["lower right", "upper right", "upper left"]) -> None:
    if ax.get_legend_handles_labels()[1]:
        ax.legend(loc=loc)


def _label(name: str | None, stat: str | None) -> str | None:
    if name is None:
        return stat
    return name if stat is None else f"{name} ({stat})"


class _Display:
    ax_: Axes
    figure_: Figure

    def save(self, path: str | Path) -> Path:
        """Write the figure as PNG (120 dpi, tight bounding box); returns the path."""
        if getattr(self, "figure_", None) is None:
            raise RuntimeError("nothing drawn yet: call plot() or from_predictions() first")
        out = Path(path)
        self.figure_.savefig(out, dpi=120, bbox_inches="tight", format="png")
        return out


class _CurveDisplay(_Display):
    """A curve over every threshold of (labels, scores)."""

    @classmethod
    def _from_curve(
        cls, y: IntArray, s: FloatArray, fpr: FloatArray, fnr: FloatArray, name: str | None
    ) -> Self:
        raise NotImplementedError

    def plot(self, ax: Axes | None = None, name: str | None = None, **kwargs: Any) -> Self:
        raise NotImplementedError

    @classmethod
    def from_predictions(
        cls,
        y: npt.ArrayLike,
        s: npt.ArrayLike,
        *,
        name: str | None = None,
        ax: Axes | None = None,
        **kwargs: Any,
    ) -> Self:
        """Compute the curve from labels (1 = fake) and scores, then draw it."""
        y_int, s_float = _validate(y, s, both_classes=True)
        fpr, fnr, _ = _operating_points(y_int, s_float)
        return cls._from_curve(y_int, s_float, fpr, fnr, name).plot(ax=ax, name=name, **kwargs)


class RocCurveDisplay(_CurveDisplay):
    """ROC curve: true-positive (fake detected) rate against false-positive rate."""

    line_: Line2D

    def __init__(
        self, *, fpr: FloatArray, tpr: FloatArray, auc: float | None = None, name: str | None = None
    ) -> None:
        self.fpr = np.asarray(fpr, dtype=np.float64)
        self.tpr = np.asarray(tpr, dtype=np.float64)
        self.auc = auc
        self.name = name

    @classmethod
    def _from_curve(
        cls, y: IntArray, s: FloatArray, fpr: FloatArray, fnr: FloatArray, name: str | None
    ) -> Self:
        return cls(fpr=fpr, tpr=1.0 - fnr, auc=roc_auc(y, s), name=name)

    def plot(self, ax: Axes | None = None, name: str | None = None, **kwargs: Any) -> Self:
        ax, fig = _new_axes(ax)
        name = self.name if name is None else name
        stat = None if self.auc is None else f"AUC = {self.auc:.3f}"
        kwargs.setdefault("label", _label(name, stat))
        (self.line_,) = ax.plot(self.fpr, self.tpr, drawstyle="default", **kwargs)
        if not _has_guide(ax):
            ax.plot([0, 1], [0, 1], "k:", lw=0.8, gid=_GUIDE_GID, label="_chance")
        ax.set(
            xlabel="False positive rate (reals called fake)",
            ylabel="True positive rate (fakes detected)",
            xlim=(-0.01, 1.01),
            ylim=(-0.01, 1.01),
            aspect="equal",
        )
        _legend(ax, "lower right")
        self.ax_, self.figure_ = ax, fig
        return self


class DetCurveDisplay(_CurveDisplay):
    """DET curve: miss rate against false-alarm rate, both on normal-deviate (probit) axes.

    The plotted coordinates are ``norm.ppf(fpr)`` and ``norm.ppf(fnr)`` (rates clipped to
    ``[1e-6, 1 - 1e-6]`` so that 0 and 1 stay finite); ticks are placed at
    :data:`DET_TICKS` and labelled in percent; the visible range is 0.05 %–98 % (wider than NIST
    DETware's 0.05-50 %, so weak detectors stay visible).
    """

    line_: Line2D

    def __init__(
        self,
        *,
        fpr: FloatArray,
        fnr: FloatArray,
        eer: float | None = None,
        name: str | None = None,
    ) -> None:
        self.fpr = np.asarray(fpr, dtype=np.float64)
        self.fnr = np.asarray(fnr, dtype=np.float64)
        self.eer = eer
        self.name = name

    @classmethod
    def _from_curve(
        cls, y: IntArray, s: FloatArray, fpr: FloatArray, fnr: FloatArray, name: str | None
    ) -> Self:
        return cls(fpr=fpr, fnr=fnr, eer=eer(y, s)[0], name=name)

    def plot(self, ax: Axes | None = None, name: str | None = None, **kwargs: Any) -> Self:
        from scipy.stats import norm

        ax, fig = _new_axes(ax)
        name = self.name if name is None else name
        stat = None if self.eer is None else f"EER = {100 * self.eer:.1f}%"
        kwargs.setdefault("label", _label(name, stat))
        x = norm.ppf(np.clip(self.fpr, _DET_CLIP, 1.0 - _DET_CLIP))
        y = norm.ppf(np.clip(self.fnr, _DET_CLIP, 1.0 - _DET_CLIP))
        (self.line_,) = ax.plot(x, y, **kwargs)
        ticks = norm.ppf(np.asarray(DET_TICKS))
        labels = [f"{100 * t:g}" for t in DET_TICKS]
        limits = tuple(float(v) for v in norm.ppf(np.asarray(_DET_LIMITS)))
        if not _has_guide(ax):
            ax.plot(limits, limits, "k:", lw=0.8, gid=_GUIDE_GID, label="_eer")
        ax.set_xticks(ticks, labels)
        ax.set_yticks(ticks, labels)
        ax.set(
            xlim=limits,
            ylim=limits,
            xlabel="False alarm rate (%) — reals called fake",
            ylabel="Miss rate (%) — fakes missed",
            aspect="equal",
        )
        ax.grid(True, alpha=0.3)
        _legend(ax, "upper right")
        self.ax_, self.figure_ = ax, fig
        return self


class ScoreHistogramDisplay(_Display):
    """Score histograms per class (real vs fake), optionally splitting the fakes by method.

    All histograms share the same bin edges and are density-normalised (so classes of very
    different sizes stay comparable), drawn as outlines (``ax.stairs``). ``patches_`` maps
    each legend label to its :class:`~matplotlib.patches.StepPatch`.
    """

    patches_: dict[str, StepPatch]

    def __init__(
        self,
        *,
        y: npt.ArrayLike,
        scores: npt.ArrayLike,
        methods: npt.ArrayLike | None = None,
        bins: int = 30,
        name: str | None = None,
    ) -> None:
        self.y, self.scores = _validate(y, scores, both_classes=False)
        if methods is not None:
            methods = np.asarray(methods)
            if methods.ndim != 1 or len(methods) != len(self.y):
                raise ValueError("methods must be 1-D with one value per sample")
        self.methods = methods
        self.bins = bins
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        y: npt.ArrayLike,
        s: npt.ArrayLike,
        *,
        methods: npt.ArrayLike | None = None,
        bins: int = 30,
        name: str | None = None,
        ax: Axes | None = None,
        **kwargs: Any,
    ) -> ScoreHistogramDisplay:
        disp = cls(y=y, scores=s, methods=methods, bins=bins, name=name)
        return disp.plot(ax=ax, name=name, **kwargs)

    def _groups(self) -> list[tuple[str, npt.NDArray[np.bool_]]]:
        real = self.y == 0
        groups = [("real", real)] if real.any() else []
        if self.methods is None:
            if (~real).any():
                groups.append(("fake", ~real))
        else:
            for m in np.unique(self.methods[~real]):
                groups.append((f"fake: {m}", ~real & (self.methods == m)))
        return groups

    def plot(self, ax: Axes | None = None, name: str | None = None, **kwargs: Any) -> Self:
        ax, fig = _new_axes(ax)
        name = self.name if name is None else name
        lo, hi = float(np.min(self.scores)), float(np.max(self.scores))
        if hi - lo < 1e-6:  # (nearly) one value, e.g. a constant calibration: one visible bar
            lo, hi = lo - 0.05, hi + 0.05
        edges = np.histogram_bin_edges(self.scores, bins=self.bins, range=(lo, hi))
        self.patches_ = {}
        for label, mask in self._groups():
            counts, _ = np.histogram(self.scores[mask], bins=edges, density=True)
            full = label if name is None else f"{name}: {label}"
            kw = {"linewidth": 1.5, **kwargs}
            if label == "real":
                kw.setdefault("color", "tab:green")
                kw.setdefault("fill", True)
                kw.setdefault("alpha", 0.35)
            self.patches_[full] = ax.stairs(counts, edges, label=full, **kw)
        ax.set(xlabel="Score (higher = more likely fake)", ylabel="Density")
        ax.legend(loc="upper center", fontsize="small")
        self.ax_, self.figure_ = ax, fig
        return self


class ReliabilityDisplay(_Display):
    """Reliability diagram: per equal-width bin, mean predicted fake probability (confidence)
    against observed fake rate, with the diagonal of perfect calibration.

    Only non-empty bins are kept in ``confidence``, ``accuracy`` and ``counts``. With
    ``show_counts=True`` the bin counts are drawn as bars on a secondary y axis
    (``count_ax_``).
    """

    line_: Line2D
    count_ax_: Axes | None

    def __init__(
        self,
        *,
        confidence: FloatArray,
        accuracy: FloatArray,
        counts: FloatArray,
        bin_edges: FloatArray,
        ece: float | None = None,
        name: str | None = None,
    ) -> None:
        self.confidence = np.asarray(confidence, dtype=np.float64)
        self.accuracy = np.asarray(accuracy, dtype=np.float64)
        self.counts = np.asarray(counts, dtype=np.float64)
        self.bin_edges = np.asarray(bin_edges, dtype=np.float64)
        self.ece = ece
        self.name = name

    @classmethod
    def from_predictions(
        cls,
        y: npt.ArrayLike,
        p: npt.ArrayLike,
        *,
        n_bins: int = 15,
        name: str | None = None,
        ax: Axes | None = None,
        show_counts: bool = False,
        **kwargs: Any,
    ) -> ReliabilityDisplay:
        if n_bins < 1:
            raise ValueError(f"n_bins must be >= 1, got {n_bins}")
        y_int, p_float = _validate(y, p, both_classes=False, name="probabilities")
        _validate_probabilities(p_float)
        counts, sum_y, sum_p = _calibration_bins(y_int, p_float, n_bins)
        keep = counts > 0
        disp = cls(
            confidence=sum_p[keep] / counts[keep],
            accuracy=sum_y[keep] / counts[keep],
            counts=counts[keep],
            bin_edges=np.linspace(0.0, 1.0, n_bins + 1),
            ece=expected_calibration_error(y_int, p_float, n_bins),
            name=name,
        )
        return disp.plot(ax=ax, name=name, show_counts=show_counts, **kwargs)

    def plot(
        self,
        ax: Axes | None = None,
        name: str | None = None,
        *,
        show_counts: bool = False,
        **kwargs: Any,
    ) -> Self:
        ax, fig = _new_axes(ax)
        name = self.name if name is None else name
        stat = None if self.ece is None else f"ECE = {self.ece:.3f}"
        kwargs.setdefault("label", _label(name, stat))
        kwargs.setdefault("marker", "o")
        self.count_ax_ = None
        if show_counts:
            twin = ax.twinx()
            centers = (self.bin_edges[:-1] + self.bin_edges[1:]) / 2.0
            width = float(np.diff(self.bin_edges).min())
            # bars sit at their bin centres; rebuild each non-empty bin's centre from confidence
            idx = np.minimum(
                np.searchsorted(self.bin_edges, self.confidence, side="right") - 1,
                len(centers) - 1,
            )
            twin.bar(centers[idx], self.counts, width=0.9 * width, alpha=0.2, color="gray")
            twin.set_ylabel("Count")
            ax.set_zorder(twin.get_zorder() + 1)
            ax.patch.set_visible(False)
            self.count_ax_ = twin
        if not _has_guide(ax):
            ax.plot([0, 1], [0, 1], "k:", lw=0.8, gid=_GUIDE_GID, label="Perfectly calibrated")
        (self.line_,) = ax.plot(self.confidence, self.accuracy, **kwargs)
        ax.set(
            xlabel="Mean predicted fake probability",
            ylabel="Observed fake rate",
            xlim=(0.0, 1.0),
            ylim=(0.0, 1.0),
        )
        _legend(ax, "upper left")
        self.ax_, self.figure_ = ax, fig
        return self
