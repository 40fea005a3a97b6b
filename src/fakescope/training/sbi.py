"""Self-Blended Images (SBI): pseudo-fakes made by blending a face with a warped copy of itself.

Shiohara & Yamasaki, "Detecting Deepfakes with Self-Blended Images", CVPR 2022
(public code: github.com/mapooon/SelfBlendedImages, ``src/utils/sbi.py`` and
``src/utils/blend.py``). A detector trained on (real, self-blended) pairs learns the generic
blending artefacts of face swaps (boundary, colour and frequency mismatch, misalignment)
instead of the fingerprints of one manipulation method.

numpy + OpenCV only (no torch), so it can run inside data loaders and tests. All randomness
comes from the ``np.random.Generator`` passed in: same inputs + same seed give
byte-identical outputs.

Sizes that the public code gives in pixels of its ~380 px face crops (mask blur kernels,
elastic warp, mask deformation) are given here as fractions of the face size (the mean side
of the landmarks' bounding box), so the recipe behaves the same on crops and full frames.

Optional steps (issue 29 item 2; all off by default) add the artefacts of one-shot 128 px
face swappers (the insightface ``inswapper_128`` family behind roop, FaceFusion and
Deep-Live-Cam: the face is generated in a 128 px aligned crop, colour-matched to the target
and pasted back with an eroded, blurred mask, sometimes sharpened by an enhancer) and of
reenactment (only the mouth or the eyes move): ``p_swap128``, ``p_color_transfer``,
``p_feather``, ``p_post_sharpen`` / ``p_post_blur`` and ``p_local_warp`` in
:class:`SBIConfig`. Each draws from the generator only when its probability is > 0, after
every draw of the base recipe, so the default recipe gives the same bytes as before and
switching one step on leaves the base recipe's random parameters unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.training.sbi_config import SBIConfig
from fakescope.training.sbi_oneshot import (
    _draw_extras,
    _FaceGeometry,
    _feather,
    _local_mask,
    _local_warp,
    _normalised,
    _post_filter,
    _reinhard,
    _swap_round_trip,
    _uniform,
)

__all__ = ["SBIConfig", "sbi_pair", "self_blend"]

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]
_DEFAULT = SBIConfig()


def self_blend(
    image: _U8,
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    config: SBIConfig = _DEFAULT,
) -> tuple[_U8, _F32]:
    """Make one SBI pseudo-fake of ``image``: returns ``(fake, mask)``.

    ``image`` is (H, W, 3) uint8 RGB; ``landmarks`` is (N, 2) (or (N, 3), z ignored) in image
    pixels, N >= 3 points on the face (e.g. the 468 FaceMesh points). ``mask`` is the (H, W)
    float32 blend weight in [0, 1] actually used: ``fake = source * mask + target * (1 - mask)``
    rounded to uint8, so ``fake == target`` wherever ``mask == 0``. Note that the target may
    itself be colour/frequency transformed (step 2); use :func:`sbi_pair` to get it.

    Steps (see the module docstring for the reference):

    1. mask = filled convex hull of the landmarks, randomly deformed (smooth radial jitter
       of the outline and/or a random erosion/dilation);
    2. colour (RGB shift, HSV shift, brightness/contrast) and frequency (downscale-upscale
       or sharpen) transforms on the source *or* the target;
    3. source moved by a small random affine (translation, scale about the face centre) and
       a smooth elastic warp; the mask is *not* moved, so source and target are misaligned;
    4. mask blurred twice (larger blur, threshold, smaller blur), normalised to max 1,
       forced to exactly 0 outside a dilated hull that contains the blur's support, then
       multiplied by a blend ratio from ``config.blend_ratios``;
    5. alpha blend, rounded to uint8;
    6. optional (probability 0 by default): the source's face through a 128 px crop and back
       and/or Reinhard colour transfer from the target before the blend, a feathered mask,
       sharpening or blur inside the mask after it; or (``p_local_warp``) only the mouth or
       the eyes moved by a local warp, the mask being that region.
    """
    _, fake, mask = _blend(image, landmarks, rng, config)
    return fake, mask


def sbi_pair(
    image: _U8,
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    config: SBIConfig = _DEFAULT,
) -> tuple[_U8, _U8, _F32]:
    """``(real, fake, mask)`` for SBI training: same recipe and random draws as
    :func:`self_blend` (same seed -> same ``fake`` and ``mask``).

    ``real`` is the target after the target-side transforms of step 2 (possibly none), so
    ``real`` and ``fake`` differ only where ``mask > 0``; the real image's own mask is all
    zeros (``np.zeros_like(mask)``).
    """
    return _blend(image, landmarks, rng, config)


# --------------------------------------------------------------------------------------------
# implementation


def _validate(image: _U8, landmarks: npt.NDArray[np.floating]) -> _F32:
    if not isinstance(image, np.ndarray) or image.dtype != np.uint8:
        raise ValueError("image must be a uint8 numpy array")
    if image.ndim != 3 or image.shape[2] != 3 or image.shape[0] < 1 or image.shape[1] < 1:
        raise ValueError(f"image must have shape (H, W, 3), got {image.shape}")
    pts = np.asarray(landmarks)
    if pts.ndim != 2 or pts.shape[1] not in (2, 3):
        raise ValueError(f"landmarks must have shape (N, 2) or (N, 3), got {pts.shape}")
    if pts.shape[0] < 3:
        raise ValueError(f"need at least 3 landmarks, got {pts.shape[0]}")
    xy = np.ascontiguousarray(pts[:, :2], dtype=np.float32)
    if not np.all(np.isfinite(xy)):
        raise ValueError("landmarks must be finite")
    return xy


def _odd(n: float) -> int:
    k = max(1, round(n))
    return k if k % 2 == 1 else k + 1


def _blend(
    image: _U8,
    landmarks: npt.NDArray[np.floating],
    rng: np.random.Generator,
    cfg: SBIConfig,
) -> tuple[_U8, _U8, _F32]:
    xy = _validate(image, landmarks)
    h, w = image.shape[:2]
    hull = cv2.convexHull(xy).reshape(-1, 2).astype(np.float64)
    x0, y0 = hull.min(axis=0)
    x1, y1 = hull.max(axis=0)
    face = max(1.0, 0.5 * float((x1 - x0) + (y1 - y0)))
    centre = hull.mean(axis=0)

    # Draw every random parameter up front, in a fixed order (determinism).
    outline, jitter_extent = _jitter_outline(hull, centre, rng, cfg)
    morph = 0.0  # signed radius in px: > 0 dilate, < 0 erode
    if rng.random() < cfg.p_morph:
        radius = _uniform(rng, cfg.morph_radius_range) * face
        morph = radius if rng.random() < 0.5 else -radius
    k1 = _odd(_uniform(rng, cfg.blur1_kernel_range) * face)
    k2 = _odd(_uniform(rng, cfg.blur2_kernel_range) * face)
    sigma2 = max(0.3, _uniform(rng, cfg.blur2_sigma_range) * face)
    ratio = float(cfg.blend_ratios[int(rng.integers(len(cfg.blend_ratios)))])

    # Work in a region of interest: the mask cannot reach beyond `margin` px of the hull.
    reach = jitter_extent + max(morph, 0.0) + k1 // 2 + k2 // 2
    margin = math.ceil(1.02 * reach) + 2
    rx0, ry0 = max(0, math.floor(x0) - margin), max(0, math.floor(y0) - margin)
    rx1, ry1 = min(w, math.ceil(x1) + margin + 1), min(h, math.ceil(y1) + margin + 1)

    # (2) colour + frequency transforms on the source or the target (whole image).
    target = image.copy()
    source = image.copy()
    if rng.random() < cfg.p_source_side:
        source = _source_target_transforms(source, rng, cfg)
    else:
        target = _source_target_transforms(target, rng, cfg)

    mask = np.zeros((h, w), np.float32)
    fake = target.copy()
    if rx0 >= rx1 or ry0 >= ry1:  # face entirely outside the image: nothing to blend
        _draw_source_warp(rng, cfg, 1, 1, face)  # keep the draw sequence uniform
        _draw_extras(rng, cfg)
        return target, fake, mask

    roi_h, roi_w = ry1 - ry0, rx1 - rx0
    origin = np.array([rx0, ry0], np.float64)

    warp = _draw_source_warp(rng, cfg, roi_h, roi_w, face)
    extra = _draw_extras(rng, cfg)  # (6): nothing is drawn for a step whose p is 0
    geometry = _FaceGeometry.of(xy, (float(x0), float(y0), float(x1), float(y1)))

    # (6a) the source's face region through the swapper's small crop and back.
    if extra.swap is not None:
        source = _swap_round_trip(source, geometry, cfg, *extra.swap)

    # (1) + (4) mask in the ROI; (6e) or the mouth/eyes region only.
    m: _F32 | None = None
    if extra.local is not None:
        m = _local_mask(geometry, extra.local, origin, roi_h, roi_w, k2, sigma2, face, cfg)
        support = _distance_outside(_fill(hull, origin, roi_h, roi_w)) <= np.float32(margin)
        m[~support] = 0.0
        m = _normalised(m)  # None when the region lies outside the support: whole face then
    if m is None:
        extra = replace(extra, local=None)
        m = _make_mask(hull, outline, origin, roi_h, roi_w, morph, k1, k2, sigma2, margin)
    if extra.feather > 0:  # (6c)
        m = _feather(m, extra.feather * face)

    # (3) warp the source into the ROI (affine + elastic; (6e): the local warp instead); the
    # mask stays put.
    if extra.local is not None:
        warped = _local_warp(source, geometry, extra.local, origin, roi_h, roi_w, face, cfg)
    else:
        warped = _warp_source(source, warp, centre, origin, roi_h, roi_w)
    t_roi = target[ry0:ry1, rx0:rx1]
    if extra.color_transfer:  # (6b) over the region the mask replaces
        warped = _reinhard(warped, t_roi, m >= np.float32(0.5))

    weight = m
    m = m * np.float32(ratio)
    mask[ry0:ry1, rx0:rx1] = m

    # (5) blend; where m == 0 this is exactly the target.
    t = t_roi.astype(np.float32)
    a = m[:, :, None]
    out = warped.astype(np.float32) * a + t * (np.float32(1.0) - a)
    if extra.post is not None:  # (6d) sharpen or blur the blended face, inside the mask
        out = _post_filter(out, weight, extra.post, face)
    fake[ry0:ry1, rx0:rx1] = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return target, fake, mask


def _jitter_outline(
    hull: npt.NDArray[np.float64],
    centre: npt.NDArray[np.float64],
    rng: np.random.Generator,
    cfg: SBIConfig,
) -> tuple[npt.NDArray[np.float64], float]:
    """Step 1, elastic-like hull deformation: resample the hull outline to 64 points and
    scale each radially by ``1 + sum_k a_k cos(k theta + phi_k)`` (k = 1..3), a smooth
    perturbation with ``|change| <= hull_jitter`` (an analogue of the public code's random
    landmark-hull variants, for any landmark set). Returns the outline and how far (px) any
    of its points moved."""
    if rng.random() >= cfg.p_hull_jitter:
        return hull, 0.0
    amps = rng.uniform(-1.0, 1.0, 3) * (cfg.hull_jitter / 3.0)
    phases = rng.uniform(0.0, 2 * np.pi, 3)
    closed = np.vstack([hull, hull[:1]])
    seg = np.linalg.norm(np.diff(closed, axis=0), axis=1)
    cum = np.concatenate([[0.0], np.cumsum(seg)])
    if len(hull) < 3 or cum[-1] <= 0:
        return hull, 0.0
    s = np.linspace(0.0, cum[-1], 64, endpoint=False)
    dense = np.stack([np.interp(s, cum, closed[:, 0]), np.interp(s, cum, closed[:, 1])], axis=1)
    rel = dense - centre
    theta = np.arctan2(rel[:, 1], rel[:, 0])
    k = np.arange(1, 4)[:, None]
    eps = np.sum(amps[:, None] * np.cos(k * theta[None, :] + phases[:, None]), axis=0)
    out: npt.NDArray[np.float64] = centre + rel * (1.0 + eps)[:, None]
    moved = float(np.max(np.linalg.norm(rel, axis=1) * np.abs(eps)))
    return out, moved


def _fill(poly: npt.NDArray[np.float64], origin: npt.NDArray[np.float64], h: int, w: int) -> _U8:
    canvas = np.zeros((h, w), np.uint8)
    pts = np.round((poly - origin) * 16.0).astype(np.int32).reshape(-1, 1, 2)
    cv2.fillPoly(canvas, [pts], (1,), lineType=cv2.LINE_8, shift=4)
    return canvas


def _distance_outside(inside: _U8) -> _F32:
    """Euclidean distance (px) of each pixel to the nearest ``inside`` pixel (0 inside)."""
    if not inside.any():
        return np.full(inside.shape, np.inf, np.float32)
    outside = (inside == 0).astype(np.uint8)
    return np.asarray(
        cv2.distanceTransform(outside, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), dtype=np.float32
    )


def _make_mask(
    hull: npt.NDArray[np.float64],
    outline: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
    h: int,
    w: int,
    morph: float,
    k1: int,
    k2: int,
    sigma2: float,
    margin: int,
) -> _F32:
    """Steps 1 and 4 on an (h, w) ROI whose top-left is ``origin``.

    Deformed hull -> erosion/dilation by ``|morph|`` px (a disc kernel, via a distance
    transform) -> Gaussian blur ``k1``, normalise, keep only the fully-inside plateau (the
    public code's ``mask[mask < 1] = 0``: an erosion by ~k1/2) -> Gaussian blur ``k2`` with
    ``sigma2`` -> normalise to max 1 -> zero outside the original hull dilated by ``margin``
    (which contains all of the above, so this never cuts the soft edge; it guarantees
    pixels far from the face are untouched).
    """
    base = _fill(outline, origin, h, w)
    if morph > 0:
        base = (_distance_outside(base) <= morph).astype(np.uint8)
    elif morph < 0:
        inner = np.asarray(
            cv2.distanceTransform(base, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), dtype=np.float32
        )
        eroded = (inner > -morph).astype(np.uint8)
        if eroded.any():  # never erode the face away
            base = eroded
    m = base.astype(np.float32)
    if not m.any():
        return m
    blurred = np.asarray(
        cv2.GaussianBlur(m, (k1, k1), 0, borderType=cv2.BORDER_CONSTANT), np.float32
    )
    blurred = blurred / np.float32(blurred.max())
    plateau = (blurred >= np.float32(1.0 - 1e-3)).astype(np.float32)
    m = plateau if plateau.sum() >= 1 else blurred
    m = np.asarray(
        cv2.GaussianBlur(m, (k2, k2), sigma2, borderType=cv2.BORDER_CONSTANT), np.float32
    )
    peak = float(m.max())
    if peak <= 0:
        return np.zeros((h, w), np.float32)
    result: _F32 = np.clip(m / np.float32(peak), 0.0, 1.0).astype(np.float32)
    support = _distance_outside(_fill(hull, origin, h, w)) <= np.float32(margin)
    result[~support] = 0.0
    return result


def _source_target_transforms(img: _U8, rng: np.random.Generator, cfg: SBIConfig) -> _U8:
    """Step 2 (public code's ``get_source_transforms``): RGB shift, HSV shift,
    brightness/contrast, then one frequency transform (downscale-upscale or sharpen)."""
    out = img
    if rng.random() < cfg.p_rgb_shift:
        shift = rng.integers(-cfg.rgb_shift, cfg.rgb_shift + 1, 3).astype(np.int16)
        out = np.clip(out.astype(np.int16) + shift, 0, 255).astype(np.uint8)
    if rng.random() < cfg.p_hsv_shift:
        dh, ds, dv = (
            float(rng.uniform(-x, x)) for x in (cfg.hue_shift, cfg.sat_shift, cfg.val_shift)
        )
        hsv = cv2.cvtColor(out, cv2.COLOR_RGB2HSV).astype(np.float32)
        hsv[..., 0] = np.mod(hsv[..., 0] + dh, 180.0)
        hsv[..., 1] = np.clip(hsv[..., 1] + ds, 0, 255)
        hsv[..., 2] = np.clip(hsv[..., 2] + dv, 0, 255)
        hsv_u8 = np.clip(np.rint(hsv), 0, 255).astype(np.uint8)
        hsv_u8[..., 0] = np.where(hsv_u8[..., 0] >= 180, 0, hsv_u8[..., 0])
        out = np.asarray(cv2.cvtColor(hsv_u8, cv2.COLOR_HSV2RGB), dtype=np.uint8)
    if rng.random() < cfg.p_brightness_contrast:
        alpha = 1.0 + float(rng.uniform(-cfg.contrast, cfg.contrast))
        beta = 255.0 * float(rng.uniform(-cfg.brightness, cfg.brightness))
        lut = np.clip(np.rint(np.arange(256, dtype=np.float64) * alpha + beta), 0, 255)
        out = lut.astype(np.uint8)[out]
    if rng.random() < cfg.p_frequency:
        h, w = out.shape[:2]
        if rng.random() < cfg.p_downscale:
            r = int(cfg.downscale_factors[int(rng.integers(len(cfg.downscale_factors)))])
            small = cv2.resize(
                out, (max(1, w // r), max(1, h // r)), interpolation=cv2.INTER_NEAREST
            )
            out = np.asarray(cv2.resize(small, (w, h), interpolation=cv2.INTER_LINEAR), np.uint8)
        else:
            a = _uniform(rng, cfg.sharpen_alpha)
            light = _uniform(rng, cfg.sharpen_lightness)
            effect = np.array([[-1, -1, -1], [-1, 8 + light, -1], [-1, -1, -1]], np.float32)
            identity = np.zeros((3, 3), np.float32)
            identity[1, 1] = 1.0
            kernel = (1.0 - a) * identity + a * effect
            out = np.asarray(cv2.filter2D(out, -1, kernel), np.uint8)  # saturating uint8
    return np.ascontiguousarray(out, dtype=np.uint8)


@dataclass(frozen=True)
class _Warp:
    scale: float
    tx: float
    ty: float
    dx: _F32 | None
    dy: _F32 | None


def _draw_source_warp(
    rng: np.random.Generator, cfg: SBIConfig, h: int, w: int, face: float
) -> _Warp:
    """Step 3 parameters (public code's ``randaffine``): scale in ``scale_range`` and a
    translation of up to ``translate_x/y`` face sizes; an elastic displacement field: uniform
    noise smoothed by a Gaussian of ``elastic_sigma`` face sizes (computed on a coarser grid
    for speed, then upsampled), scaled to a std of ``elastic_alpha`` face sizes."""
    scale, tx, ty = 1.0, 0.0, 0.0
    if rng.random() < cfg.p_affine:
        scale = _uniform(rng, cfg.scale_range)
        tx = float(rng.uniform(-cfg.translate_x, cfg.translate_x)) * face
        ty = float(rng.uniform(-cfg.translate_y, cfg.translate_y)) * face
    dx: _F32 | None = None
    dy: _F32 | None = None
    if rng.random() < cfg.p_elastic:
        sigma = max(1.0, cfg.elastic_sigma * face)
        step = max(1, int(sigma // 2))
        gh, gw = -(-h // step), -(-w // step)
        fields = []
        for _ in range(2):
            noise = rng.uniform(-1.0, 1.0, (gh, gw)).astype(np.float32)
            s = sigma / step
            smooth = cv2.GaussianBlur(noise, (0, 0), s, borderType=cv2.BORDER_REFLECT_101)
            up = cv2.resize(smooth, (gw * step, gh * step), interpolation=cv2.INTER_LINEAR)
            field = np.asarray(up, np.float32)[:h, :w]
            std = float(field.std())
            field = field * np.float32(cfg.elastic_alpha * face / std) if std > 0 else field
            fields.append(np.ascontiguousarray(field, np.float32))
        dx, dy = fields
    return _Warp(scale, tx, ty, dx, dy)


def _warp_source(
    source: _U8,
    warp: _Warp,
    centre: npt.NDArray[np.float64],
    origin: npt.NDArray[np.float64],
    h: int,
    w: int,
) -> _U8:
    """Sample the source for each ROI pixel p at ``A^-1(p + d(p))``, where A scales by
    ``warp.scale`` about the face centre then translates; reflected borders."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    xs += np.float32(origin[0])
    ys += np.float32(origin[1])
    if warp.dx is not None and warp.dy is not None:
        xs += warp.dx
        ys += warp.dy
    cx, cy = np.float32(centre[0]), np.float32(centre[1])
    inv = np.float32(1.0 / warp.scale)
    map_x = (cx + (xs - np.float32(warp.tx) - cx) * inv).astype(np.float32)
    map_y = (cy + (ys - np.float32(warp.ty) - cy) * inv).astype(np.float32)
    out = cv2.remap(
        source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    return np.asarray(out, np.uint8).reshape(h, w, 3)


# --------------------------------------------------------------------------------------------
# (6) one-shot swapper and reenactment steps

# FaceMesh rings: lips (outer), image-left eye, image-right eye.
