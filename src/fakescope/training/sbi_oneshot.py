"""Step 6 of the Self-Blended Images recipe (:mod:`fakescope.training.sbi`): the artefacts of
one-shot face swappers (the 128 px insightface "inswapper" family behind roop, FaceFusion and
Deep-Live-Cam) and of reenactment, each off unless its probability in
:class:`~fakescope.training.sbi_config.SBIConfig` is above 0 (issue 29 item 2): the source's
face through a 128 px crop and back (6a), Reinhard colour transfer from the target (6b),
feathered mask edges (6c), sharpening or blurring after the blend (6d), and a local warp of
the mouth or the eyes alone (6e). :func:`_draw_extras` draws their parameters after every
draw of the base recipe."""

from __future__ import annotations

import math
from dataclasses import dataclass

import cv2
import numpy as np
import numpy.typing as npt

from fakescope.training.sbi_config import SBIConfig

__all__: list[str] = []

_U8 = npt.NDArray[np.uint8]
_F32 = npt.NDArray[np.float32]


def _uniform(rng: np.random.Generator, lo_hi: tuple[float, float]) -> float:
    return float(rng.uniform(lo_hi[0], lo_hi[1]))


_MESH_LIPS = (
    *(61, 146, 91, 181, 84, 17, 314, 405, 321, 375),
    *(291, 409, 270, 269, 267, 0, 37, 39, 40, 185),
)
_MESH_EYES = (
    (33, 7, 163, 144, 145, 153, 154, 155, 133, 173, 157, 158, 159, 160, 161, 246),
    (263, 249, 390, 373, 374, 380, 381, 382, 362, 398, 384, 385, 386, 387, 388, 466),
)
_SWAP_DOWN = (cv2.INTER_LINEAR, cv2.INTER_CUBIC, cv2.INTER_AREA)  # LINEAR: aliased, as insightface
_SWAP_UP = (cv2.INTER_LINEAR, cv2.INTER_CUBIC)


@dataclass(frozen=True)
class _Local:
    """Step 6e: which part moves, its stretch along the eye line (``su``) and the face's
    vertical (``sv``), and its shift in units of the part's warp radius."""

    part: str  # "mouth" or "eyes"
    su: float
    sv: float
    tu: float
    tv: float


@dataclass(frozen=True)
class _Extras:
    swap: tuple[int, int] | None  # (down, up) OpenCV interpolations
    color_transfer: bool
    feather: float  # feather kernel, *face*; 0: none
    local: _Local | None
    post: tuple[str, float, float] | None  # ("sharpen" | "blur", amount, sigma *face*)


def _draw_extras(rng: np.random.Generator, cfg: SBIConfig) -> _Extras:
    """Step 6 parameters, in a fixed order; a step whose probability is 0 draws nothing."""
    swap: tuple[int, int] | None = None
    if cfg.p_swap128 > 0 and rng.random() < cfg.p_swap128:
        down = _SWAP_DOWN[int(rng.integers(len(_SWAP_DOWN)))]
        up = _SWAP_UP[int(rng.integers(len(_SWAP_UP)))]
        swap = (down, up)
    colour = bool(cfg.p_color_transfer > 0 and rng.random() < cfg.p_color_transfer)
    feather = 0.0
    if cfg.p_feather > 0 and rng.random() < cfg.p_feather:
        feather = _uniform(rng, cfg.feather_range)
    local: _Local | None = None
    if cfg.p_local_warp > 0 and rng.random() < cfg.p_local_warp:
        part = "mouth" if rng.random() < 0.5 else "eyes"
        s = cfg.local_warp_strength
        sv = 1.0 + float(rng.uniform(-s, s))
        su = 1.0 + float(rng.uniform(-s / 2, s / 2))
        tu, tv = (float(v) for v in rng.uniform(-0.1, 0.1, 2))
        local = _Local(part, su, sv, tu, tv)
    post: tuple[str, float, float] | None = None
    p_post = cfg.p_post_sharpen + cfg.p_post_blur
    if p_post > 0:
        u = float(rng.random())
        if u < p_post:
            kind = "sharpen" if u < cfg.p_post_sharpen else "blur"
            post = (
                kind,
                _uniform(rng, cfg.post_sharpen_amount),
                _uniform(rng, cfg.post_sigma_range),
            )
    return _Extras(swap, colour, feather, local, post)


_Ellipse = tuple[npt.NDArray[np.float64], float, float]  # centre, half-axes along/across


@dataclass(frozen=True)
class _FaceGeometry:
    """Where the eyes and mouth are: the eye-line angle (radians; 0 when the landmarks do not
    give the eyes) and, per part, ellipses ``(centre, half-axis along the eye line, half-axis
    across it)``. From the FaceMesh rings for 468 points, the 5 ArcFace-order points for 5,
    else proportions of the landmarks' box."""

    box: tuple[float, float, float, float]
    angle: float
    parts: dict[str, list[_Ellipse]]

    @staticmethod
    def of(xy: _F32, box: tuple[float, float, float, float]) -> _FaceGeometry:
        pts = xy.astype(np.float64)
        x0, y0, x1, y1 = box
        bw, bh = max(1.0, x1 - x0), max(1.0, y1 - y0)
        if len(pts) == 468:
            rings = [pts[list(r)] for r in _MESH_EYES]
            d = rings[1].mean(axis=0) - rings[0].mean(axis=0)
            angle = math.atan2(float(d[1]), float(d[0]))
            u = np.array([math.cos(angle), math.sin(angle)])
            v = np.array([-u[1], u[0]])

            def ellipse(ring: npt.NDArray[np.float64]) -> _Ellipse:
                c = ring.mean(axis=0)
                rel = ring - c
                half_u = max(1.0, float(np.abs(rel @ u).max()))
                return c, half_u, max(1.0, float(np.abs(rel @ v).max()))

            parts = {"eyes": [ellipse(r) for r in rings], "mouth": [ellipse(pts[list(_MESH_LIPS)])]}
        elif len(pts) == 5:
            d = pts[1] - pts[0]
            angle = math.atan2(float(d[1]), float(d[0]))
            eye = max(1.0, float(np.hypot(*d)))
            mw = max(1.0, float(np.hypot(*(pts[4] - pts[3]))))
            parts = {
                "eyes": [(pts[0], 0.22 * eye, 0.12 * eye), (pts[1], 0.22 * eye, 0.12 * eye)],
                "mouth": [(0.5 * (pts[3] + pts[4]), 0.55 * mw, 0.3 * mw)],
            }
        else:
            angle = 0.0

            def at(fx: float, fy: float) -> npt.NDArray[np.float64]:
                return np.array([x0 + fx * bw, y0 + fy * bh])

            parts = {
                "eyes": [
                    (at(0.32, 0.4), 0.12 * bw, 0.06 * bh),
                    (at(0.68, 0.4), 0.12 * bw, 0.06 * bh),
                ],
                "mouth": [(at(0.5, 0.78), 0.18 * bw, 0.07 * bh)],
            }
        return _FaceGeometry(box, angle, parts)


def _swap_round_trip(
    source: _U8, geometry: _FaceGeometry, cfg: SBIConfig, down: int, up: int
) -> _U8:
    """Step 6a: the square around the landmarks' box (``swap_crop`` times its longer side,
    levelled by the eye line) resampled to ``swap_size`` px and back into the source, as a
    swapper's aligned crop is pasted back. ``down`` INTER_LINEAR/CUBIC warps straight to the
    small crop (aliasing, as insightface's ``warpAffine`` does); INTER_AREA levels at full
    resolution first, then averages down. Pixels outside the square are unchanged."""
    h, w = source.shape[:2]
    x0, y0, x1, y1 = geometry.box
    side = max(2.0, cfg.swap_crop * max(x1 - x0, y1 - y0))
    cx, cy = 0.5 * (x0 + x1), 0.5 * (y0 + y1)
    size = cfg.swap_size
    degrees = math.degrees(geometry.angle)

    def levelled(out_side: float, scale: float) -> npt.NDArray[np.float64]:
        m = np.asarray(cv2.getRotationMatrix2D((cx, cy), degrees, scale), np.float64)
        m[:, 2] += (0.5 * out_side - cx, 0.5 * out_side - cy)
        return m

    if down == cv2.INTER_AREA:
        full = max(2, math.ceil(side))
        level = cv2.warpAffine(
            source,
            levelled(full, full / side),
            (full, full),
            flags=cv2.INTER_LINEAR,
            borderMode=cv2.BORDER_REFLECT_101,
        )
        crop = cv2.resize(level, (size, size), interpolation=cv2.INTER_AREA)
    else:
        crop = cv2.warpAffine(
            source,
            levelled(size, size / side),
            (size, size),
            flags=down,
            borderMode=cv2.BORDER_REFLECT_101,
        )
    forward = levelled(size, size / side)  # image -> crop
    # paste back over the square's bounding box only
    corners = (
        cv2.invertAffineTransform(forward)
        @ np.array([[0, 0, 1], [size, 0, 1], [0, size, 1], [size, size, 1]], np.float64).T
    )
    bx0, by0 = max(0, math.floor(corners[0].min())), max(0, math.floor(corners[1].min()))
    bx1, by1 = min(w, math.ceil(corners[0].max()) + 1), min(h, math.ceil(corners[1].max()) + 1)
    if bx0 >= bx1 or by0 >= by1:
        return source
    shifted = forward.copy()
    shifted[:, 2] += forward[:, :2] @ np.array([bx0, by0], np.float64)
    back = cv2.warpAffine(
        np.asarray(crop, np.uint8),
        shifted,
        (bx1 - bx0, by1 - by0),
        flags=up | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )
    ys, xs = np.mgrid[by0:by1, bx0:bx1].astype(np.float64)
    u = forward[0, 0] * xs + forward[0, 1] * ys + forward[0, 2]
    v = forward[1, 0] * xs + forward[1, 1] * ys + forward[1, 2]
    inside = (u >= 0) & (u <= size - 1) & (v >= 0) & (v <= size - 1)
    out = source.copy()
    region = out[by0:by1, bx0:bx1]
    region[inside] = np.asarray(back, np.uint8).reshape(region.shape)[inside]
    return out


def _part_frames(
    geometry: _FaceGeometry, part: str, origin: npt.NDArray[np.float64], h: int, w: int
) -> list[tuple[_F32, _F32, float, float]]:
    """For each ellipse of ``part``: ROI pixel offsets from its centre along the eye line and
    across it, and its half-axes."""
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    cos, sin = math.cos(geometry.angle), math.sin(geometry.angle)
    frames = []
    for c, half_u, half_v in geometry.parts[part]:
        px = xs + np.float32(origin[0] - c[0])
        py = ys + np.float32(origin[1] - c[1])
        ru = (px * np.float32(cos) + py * np.float32(sin)).astype(np.float32)
        rv = (py * np.float32(cos) - px * np.float32(sin)).astype(np.float32)
        frames.append((ru, rv, half_u, half_v))
    return frames


def _local_mask(
    geometry: _FaceGeometry,
    local: _Local,
    origin: npt.NDArray[np.float64],
    h: int,
    w: int,
    k2: int,
    sigma2: float,
    face: float,
    cfg: SBIConfig,
) -> _F32:
    """Step 6e mask: the part's ellipses grown by ``local_margin`` face sizes, blurred like
    the recipe's second mask blur (not normalised)."""
    grow = cfg.local_margin * face
    inside = np.zeros((h, w), bool)
    for ru, rv, half_u, half_v in _part_frames(geometry, local.part, origin, h, w):
        inside |= (ru / np.float32(half_u + grow)) ** 2 + (rv / np.float32(half_v + grow)) ** 2 <= 1
    return np.asarray(
        cv2.GaussianBlur(
            inside.astype(np.float32), (k2, k2), sigma2, borderType=cv2.BORDER_CONSTANT
        ),
        np.float32,
    )


def _normalised(m: _F32) -> _F32 | None:
    peak = float(m.max())
    if peak <= 0:
        return None
    out: _F32 = np.clip(m / np.float32(peak), 0.0, 1.0).astype(np.float32)
    return out


def _local_warp(
    source: _U8,
    geometry: _FaceGeometry,
    local: _Local,
    origin: npt.NDArray[np.float64],
    h: int,
    w: int,
    face: float,
    cfg: SBIConfig,
) -> _U8:
    """Step 6e warp: each ROI pixel p samples the source at ``p + d(p)`` with
    ``d = g(p) * ((1/s - 1) * r + t)`` per axis (eye line, across it), ``r`` the offset from
    the ellipse's centre and ``g`` a Gaussian window of the ellipse's size: the part's content
    is stretched by ``s`` about its centre, the rest of the face barely moves, and the
    sampling map never folds (``|1/s - 1| <= 1``, small shifts)."""
    grow = cfg.local_margin * face
    cos, sin = np.float32(math.cos(geometry.angle)), np.float32(math.sin(geometry.angle))
    ys, xs = np.mgrid[0:h, 0:w].astype(np.float32)
    map_x = xs + np.float32(origin[0])
    map_y = ys + np.float32(origin[1])
    ku, kv = np.float32(1.0 / local.su - 1.0), np.float32(1.0 / local.sv - 1.0)
    for ru, rv, half_u, half_v in _part_frames(geometry, local.part, origin, h, w):
        gu, gv = np.float32(0.7 * (half_u + grow)), np.float32(0.7 * (half_v + grow))
        window = np.exp(np.float32(-0.5) * ((ru / gu) ** 2 + (rv / gv) ** 2)).astype(np.float32)
        du = window * (ku * ru + np.float32(local.tu) * gu)
        dv = window * (kv * rv + np.float32(local.tv) * gv)
        map_x += du * cos - dv * sin
        map_y += du * sin + dv * cos
    out = cv2.remap(
        source, map_x, map_y, interpolation=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT_101
    )
    return np.asarray(out, np.uint8).reshape(h, w, 3)


def _feather(m: _F32, width: float) -> _F32:
    """Step 6c: ``m`` times a ramp ``width`` px wide (smoothstep of the distance inward from
    the edge of the mask's support ``m > 0``), the soft paste-back edge of the swappers,
    normalised to max 1. The support is unchanged; inside, the edge only gets wider."""
    support = (m > 0).astype(np.uint8)
    depth = np.asarray(
        cv2.distanceTransform(support, cv2.DIST_L2, cv2.DIST_MASK_PRECISE), dtype=np.float32
    )
    t = np.clip(depth / np.float32(max(1.0, width)), 0.0, 1.0)
    ramp = t * t * (np.float32(3.0) - np.float32(2.0) * t)
    result = _normalised((m * ramp).astype(np.float32))
    return m if result is None else result


def _reinhard(source: _U8, target: _U8, region: npt.NDArray[np.bool_]) -> _U8:
    """Step 6b: Reinhard et al. (2001) colour transfer in CIELAB: each channel of ``source``
    shifted and scaled so that its mean and std over ``region`` match ``target``'s (std ratio
    clipped to [0.2, 5])."""
    if int(region.sum()) < 4:
        return source
    src = np.asarray(
        cv2.cvtColor(source.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2LAB), np.float32
    )
    tgt = np.asarray(
        cv2.cvtColor(target.astype(np.float32) / np.float32(255.0), cv2.COLOR_RGB2LAB), np.float32
    )
    s_mean, s_std = src[region].mean(axis=0), src[region].std(axis=0)
    t_mean, t_std = tgt[region].mean(axis=0), tgt[region].std(axis=0)
    gain = np.clip(t_std / np.maximum(s_std, np.float32(1e-3)), 0.2, 5.0).astype(np.float32)
    lab = (src - s_mean) * gain + t_mean
    lab[..., 0] = np.clip(lab[..., 0], 0.0, 100.0)
    rgb = np.asarray(cv2.cvtColor(lab.astype(np.float32), cv2.COLOR_LAB2RGB), np.float32)
    out: _U8 = np.clip(np.rint(rgb * np.float32(255.0)), 0, 255).astype(np.uint8)
    return out


def _post_filter(out: _F32, weight: _F32, post: tuple[str, float, float], face: float) -> _F32:
    """Step 6d: an unsharp mask (``out + amount * (out - blur)``) or the blur itself, mixed in
    by ``weight`` (the mask normalised to max 1: nothing changes where the mask is 0)."""
    kind, amount, sigma = post
    s = max(0.5, sigma * face)
    blurred = np.asarray(
        cv2.GaussianBlur(out, (0, 0), s, borderType=cv2.BORDER_REFLECT_101), np.float32
    )
    filtered = out + np.float32(amount) * (out - blurred) if kind == "sharpen" else blurred
    result: _F32 = out + weight[:, :, None] * (filtered - out)
    return result
