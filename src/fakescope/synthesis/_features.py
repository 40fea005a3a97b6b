"""Frequency features of a whole image for the synthesis detector (numpy and OpenCV only).

The image is never resized: resampling would erase the traces looked for. Its luma is cut into
a fixed grid of ``window`` x ``window`` tiles (at most ``max_tiles`` per axis, spread evenly over
the image); each tile's mean is removed, a Hann window applied and its power spectrum taken;
the tiles' spectra are averaged. From that mean spectrum:

- *spectrum*: the azimuthally averaged log power (Durall et al. 2020, "Watch your
  up-convolution"), from the radius ``spectrum_from`` x N/2 to N/2, pooled into
  ``spectrum_bins`` radial bins, separately in ``spectrum_angles`` sectors of orientation
  (1 = the plain azimuthal average; 4 = near-horizontal, two diagonals folded together,
  near-vertical frequencies ...), and centred (its mean over the bins subtracted, so overall
  contrast does not count, only the shape of the fall-off);
- *peaks*: for each period ``p`` in ``peak_periods``, the log ratio of the power at the
  frequencies N/p on the axes and on the diagonal to the median power around them: the
  periodic grid that transposed convolutions with uneven kernel overlap leave (Frank et al.
  2020; nearest x2 up-sampling leaves none at period 2, its kernel has a zero at Nyquist);
- *residual*: statistics of a 3x3 high-pass (Laplacian) residual of the tiles: the log of
  its variance relative to the tiles', its log kurtosis (about zero) and the log ratio of its
  mean absolute value to its root mean square;
- optional groups: *directional* second differences, *scales* (octaves of residual-energy
  decay) and *colour* (RGB residual correlations), see :class:`FeatureConfig`.

Each tile is cut from the uint8 image before conversion, so the cost is bounded by the number
of tiles (at most ``max_tiles`` squared), whatever the photo's size.

Feature vectors are float64; their layout is fixed by :class:`FeatureConfig` and named by
:func:`feature_names`.
"""

from __future__ import annotations

import dataclasses
import functools
import math
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.errors import ConfigError

__all__ = ["FeatureConfig", "extract_features", "feature_names", "tile_origins"]

_F64 = npt.NDArray[np.float64]
_F32 = npt.NDArray[np.float32]
_EPS = 1e-12
_LAPLACIAN = np.array([[0, 1, 0], [1, -4, 1], [0, 1, 0]], dtype=np.float32)
_DIRECTIONS = {
    "horizontal": np.array([[1, -2, 1]], dtype=np.float32),
    "vertical": np.array([[1], [-2], [1]], dtype=np.float32),
    "diagonal": np.array([[1, 0, 0], [0, -2, 0], [0, 0, 1]], dtype=np.float32),
}


@dataclass(frozen=True)
class FeatureConfig:
    """Which features, from which analysis window."""

    window: int = 256
    """Side of the square analysis tiles, in pixels (a power of two, >= 32)."""
    max_tiles: int = 3
    """At most this many tiles per axis (evenly spread; overlapping when the image is small)."""
    spectrum_bins: int = 32
    """Radial bins of the azimuthally averaged log spectrum."""
    spectrum_angles: int = 1
    """Orientation sectors of the spectrum over 0-90 degrees (1 = a plain azimuthal average)."""
    spectrum_from: float = 0.0
    """Lowest radius of the spectrum features, as a fraction of N/2 (0 = from DC)."""
    peak_periods: tuple[int, ...] = (2, 4)
    """Periods (pixels) whose spectral peaks are measured (N/p on the axes and diagonal)."""
    residual: bool = True
    """Whether the Laplacian residual statistics are included."""
    directional: bool = False
    """Directional second differences (horizontal, vertical, diagonal): log variance relative
    to the tile's and log kurtosis of each."""
    scales: int = 0
    """Octaves of residual-energy decay: the log Laplacian-residual variance of the tile minus
    that of the tile halved (area), repeated ``scales`` times."""
    colour: bool = False
    """RGB Laplacian residuals: the three pairwise correlations and each channel's log
    variance relative to the luma residual's."""

    def __post_init__(self) -> None:
        w = self.window
        if w < 32 or w & (w - 1):
            raise ConfigError(f"window must be a power of two >= 32, got {w}")
        if not 1 <= self.max_tiles <= 8:
            raise ConfigError(f"max_tiles must be in 1..8, got {self.max_tiles}")
        if not 0.0 <= self.spectrum_from < 1.0:
            raise ConfigError(f"spectrum_from must be in [0, 1), got {self.spectrum_from}")
        if not 1 <= self.spectrum_angles <= 8:
            raise ConfigError(f"spectrum_angles must be in 1..8, got {self.spectrum_angles}")
        span = w // 2 - self.spectrum_start
        if not 1 <= self.spectrum_bins <= span:
            raise ConfigError(f"spectrum_bins must be in 1..{span}, got {self.spectrum_bins}")
        _spectrum_bins(w, self.spectrum_bins, self.spectrum_angles, self.spectrum_start)
        for p in self.peak_periods:
            if p < 2 or w % p:
                raise ConfigError(f"peak period {p} must be >= 2 and divide the window {w}")
        if not 0 <= self.scales <= 4 or w >> self.scales < 16:
            raise ConfigError(
                f"scales must be in 0..4 and leave tiles of >= 16 px, got {self.scales}"
            )

    @property
    def spectrum_start(self) -> int:
        """Lowest radius (in frequency bins, >= 1: DC never counts) of the spectrum features."""
        return max(1, int(self.spectrum_from * (self.window // 2)))

    @property
    def size(self) -> int:
        """Length of the feature vector."""
        return len(feature_names(self))

    def to_dict(self) -> dict[str, Any]:
        data = dataclasses.asdict(self)
        data["peak_periods"] = list(self.peak_periods)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureConfig:
        """Rebuild from :meth:`to_dict`; unknown keys are errors."""
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ConfigError(f"unknown feature keys: {', '.join(unknown)}")
        raw = dict(data)
        if "peak_periods" in raw:
            raw["peak_periods"] = tuple(int(p) for p in raw["peak_periods"])
        try:
            return cls(**raw)
        except TypeError as exc:
            raise ConfigError(f"invalid feature config: {exc}") from exc


def feature_names(config: FeatureConfig) -> list[str]:
    """One name per feature, in vector order."""
    names = [
        f"spectrum_a{a}_r{i}"
        for a in range(config.spectrum_angles)
        for i in range(config.spectrum_bins)
    ]
    for p in config.peak_periods:
        names += [f"peak_axis_p{p}", f"peak_diag_p{p}"]
    if config.residual:
        names += ["residual_log_var_ratio", "residual_log_kurtosis", "residual_log_abs_ratio"]
    if config.directional:
        for d in _DIRECTIONS:
            names += [f"{d}_log_var_ratio", f"{d}_log_kurtosis"]
    names += [f"octave_{i}_log_energy_drop" for i in range(config.scales)]
    if config.colour:
        names += ["rg_residual_corr", "rb_residual_corr", "gb_residual_corr"]
        names += [f"{c}_residual_log_var_ratio" for c in "rgb"]
    return names


def tile_origins(length: int, window: int, max_tiles: int) -> list[int]:
    """Evenly spread tile starts along one axis of ``length`` pixels (``length >= window``)."""
    if length < window:
        raise ValueError(f"an axis of {length} px is shorter than the {window} px window")
    n = min(max_tiles, math.ceil(length / window))
    if n == 1:
        return [(length - window) // 2]
    return [round(i * (length - window) / (n - 1)) for i in range(n)]


@functools.cache
def _hann(window: int) -> _F32:
    hann = np.hanning(window).astype(np.float32)
    out = np.asarray(np.outer(hann, hann), dtype=np.float32)
    out.setflags(write=False)  # cached and shared: never written
    return out


@functools.cache
def _spectrum_bins(
    window: int, bins: int, angles: int, start: int
) -> tuple[npt.NDArray[np.bool_], npt.NDArray[np.int64], npt.NDArray[np.float64]]:
    """For the rfft2 half spectrum: which coefficients count, each one's (sector, radial bin)
    index, and the number of coefficients per index."""
    half = window // 2
    fy = np.abs(np.fft.fftfreq(window) * window)
    fx = np.fft.rfftfreq(window) * window
    radius = np.hypot(fy[:, None], fx[None, :])
    angle = np.arctan2(np.broadcast_to(fy[:, None], radius.shape), fx[None, :])
    keep = (radius >= start) & (radius < half)
    rbin = np.floor((radius - start) * bins / (half - start)).astype(np.int64)
    abin = np.minimum(np.floor(angle / (np.pi / 2) * angles).astype(np.int64), angles - 1)
    index = (abin * bins + np.clip(rbin, 0, bins - 1))[keep]
    counts = np.bincount(index, minlength=bins * angles).astype(np.float64)
    for array in (keep, index, counts):
        array.setflags(write=False)  # cached and shared: never written
    if not counts.all():
        raise ConfigError(
            f"{bins} radial bins x {angles} sectors leave empty bins in a {window} px window"
        )
    return keep, index, counts


def _tiles(image: npt.NDArray[np.uint8], config: FeatureConfig) -> list[_F32]:
    """Each analysis tile as float32 RGB (0-255), cut from the image first so a large photo is
    never converted whole."""
    if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
        raise ValueError(f"expected an (H, W, 3) uint8 RGB image, got {image.shape} {image.dtype}")
    h, w = image.shape[:2]
    n = config.window
    if min(h, w) < n:
        raise ValueError(f"image of {w}x{h} px is smaller than the {n} px analysis window")
    return [
        np.ascontiguousarray(image[y : y + n, x : x + n]).astype(np.float32)
        for y in tile_origins(h, n, config.max_tiles)
        for x in tile_origins(w, n, config.max_tiles)
    ]


def _luma(rgb: _F32) -> _F32:
    return np.asarray(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), dtype=np.float32)


def _mean_power(tiles: list[_F32], n: int) -> _F64:
    """Mean rfft2 power spectrum of the tiles, (N, N // 2 + 1)."""
    hann = _hann(n)
    total = np.zeros((n, n // 2 + 1), dtype=np.float64)
    for tile in tiles:
        spec = np.fft.rfft2((tile - tile.mean()) * hann)
        total += np.abs(spec).astype(np.float64) ** 2
    return total / len(tiles)


def _spectrum(power: _F64, config: FeatureConfig) -> _F64:
    n = config.window
    keep, index, counts = _spectrum_bins(
        n, config.spectrum_bins, config.spectrum_angles, config.spectrum_start
    )
    sums = np.bincount(index, weights=power[keep], minlength=counts.size)
    profile = np.log(sums / counts + _EPS)
    return np.asarray(profile - profile.mean(), dtype=np.float64)


def _power_at(power: _F64, ky: npt.NDArray[np.int64], kx: npt.NDArray[np.int64]) -> _F64:
    """Power at full-spectrum frequencies (ky, kx) read from an rfft2 half spectrum."""
    n = power.shape[0]
    ky, kx = ky % n, kx % n
    mirror = kx > n // 2
    ky = np.where(mirror, (-ky) % n, ky)
    kx = np.where(mirror, (-kx) % n, kx)
    return np.asarray(power[ky, kx], dtype=np.float64)


def _peak(power: _F64, cy: int, cx: int) -> float:
    """Log ratio of the largest power within 1 bin of (cy, cx) to the median power of the ring
    2..4 bins around it."""
    offs = np.arange(-4, 5)
    dy, dx = np.meshgrid(offs, offs, indexing="ij")
    ring = np.maximum(np.abs(dy), np.abs(dx))
    inner, outer = ring <= 1, ring >= 2
    values = _power_at(power, cy + dy, cx + dx)
    return float(np.log(values[inner].max() + _EPS) - np.log(np.median(values[outer]) + _EPS))


def _peaks(power: _F64, config: FeatureConfig) -> list[float]:
    n = config.window
    out: list[float] = []
    for p in config.peak_periods:
        k = n // p
        out.append(0.5 * (_peak(power, k, 0) + _peak(power, 0, k)))
        out.append(_peak(power, k, k))
    return out


def _high_pass(tile: _F32, kernel: _F32) -> _F32:
    """``kernel`` applied to ``tile``, without the border rows and columns."""
    res = cv2.filter2D(tile, cv2.CV_32F, kernel)
    return np.asarray(res[1:-1, 1:-1], dtype=np.float32)


def _moments(parts: list[_F32]) -> tuple[float, float, float]:
    """Mean, second and fourth raw moments pooled over equally sized arrays."""
    m1 = m2 = m4 = 0.0
    for res in parts:
        r2 = res * res
        m1 += float(res.mean(dtype=np.float64))
        m2 += float(r2.mean(dtype=np.float64))
        m4 += float((r2 * r2).mean(dtype=np.float64))
    k = len(parts)
    return m1 / k, m2 / k, m4 / k


def _log_var_kurtosis(parts: list[_F32], image_var: float) -> tuple[float, float, float]:
    """Log variance relative to ``image_var``, log kurtosis (about zero), second moment."""
    m1, m2, m4 = _moments(parts)
    var = max(m2 - m1 * m1, 0.0)
    return (
        math.log((var + _EPS) / (image_var + _EPS)),
        math.log(m4 / (m2 * m2 + _EPS) + _EPS),
        m2,
    )


def _residual(laplacians: list[_F32], image_var: float) -> list[float]:
    """Laplacian residual: log variance ratio, log kurtosis, log mean-abs / rms ratio."""
    log_var, log_kurt, m2 = _log_var_kurtosis(laplacians, image_var)
    a1 = sum(float(np.abs(r).mean(dtype=np.float64)) for r in laplacians) / len(laplacians)
    return [log_var, log_kurt, math.log(a1 / (math.sqrt(m2) + _EPS) + _EPS)]


def _directional(lumas: list[_F32], image_var: float) -> list[float]:
    out: list[float] = []
    for kernel in _DIRECTIONS.values():
        log_var, log_kurt, _ = _log_var_kurtosis([_high_pass(t, kernel) for t in lumas], image_var)
        out += [log_var, log_kurt]
    return out


def _half(tile: _F32) -> _F32:
    size = (tile.shape[1] // 2, tile.shape[0] // 2)
    return np.asarray(cv2.resize(tile, size, interpolation=cv2.INTER_AREA), dtype=np.float32)


def _octaves(lumas: list[_F32], scales: int) -> list[float]:
    energies = []
    current = lumas
    for level in range(scales + 1):
        if level:
            current = [_half(t) for t in current]
        _, m2, _ = _moments([_high_pass(t, _LAPLACIAN) for t in current])
        energies.append(math.log(m2 + _EPS))
    return [energies[i] - energies[i + 1] for i in range(scales)]


def _colour(tiles: list[_F32], luma_m2: float) -> list[float]:
    """Correlations of the channels' Laplacian residuals and their log energy vs the luma's."""
    sums = np.zeros((3, 3), dtype=np.float64)
    for tile in tiles:
        res = _high_pass(tile, _LAPLACIAN).reshape(-1, 3)
        sums += (res.T @ res).astype(np.float64) / len(res)
    sums /= len(tiles)
    d = np.sqrt(np.diag(sums)) + _EPS
    corr = sums / np.outer(d, d)
    return [
        float(corr[0, 1]),
        float(corr[0, 2]),
        float(corr[1, 2]),
        *(math.log((float(sums[c, c]) + _EPS) / (luma_m2 + _EPS)) for c in range(3)),
    ]


def extract_features(image: npt.NDArray[np.uint8], config: FeatureConfig) -> _F64:
    """The feature vector of one (H, W, 3) uint8 RGB image whose shorter side is at least
    ``config.window`` (else ValueError)."""
    tiles = _tiles(image, config)
    lumas = [_luma(t) for t in tiles]
    power = _mean_power(lumas, config.window)
    values = [*_spectrum(power, config), *_peaks(power, config)]
    image_var = sum(float(t.var(dtype=np.float64)) for t in lumas) / len(lumas)
    laplacians = [_high_pass(t, _LAPLACIAN) for t in lumas]
    if config.residual:
        values += _residual(laplacians, image_var)
    if config.directional:
        values += _directional(lumas, image_var)
    values += _octaves(lumas, config.scales)
    if config.colour:
        values += _colour(tiles, _moments(laplacians)[1])
    return np.asarray(values, dtype=np.float64)
