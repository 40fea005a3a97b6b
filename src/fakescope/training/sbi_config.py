"""The knobs of the Self-Blended Images recipe (:mod:`fakescope.training.sbi`), in a module of
their own so that the recipe's steps (:mod:`fakescope.training.sbi`,
:mod:`fakescope.training.sbi_oneshot`) and the training config read one definition."""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["SBIConfig"]


@dataclass(frozen=True)
class SBIConfig:
    """Knobs of the SBI recipe. Defaults follow the paper's public code unless noted.

    Probabilities are in [0, 1]. Lengths marked *face* are fractions of the face size.
    """

    # (4) blend ratio: the blurred mask (max 1) is multiplied by one of these, uniformly.
    blend_ratios: tuple[float, ...] = (0.25, 0.5, 0.75, 1.0, 1.0, 1.0)

    # (2) source-target augmentation: colour + frequency transforms, applied to the source
    # with probability ``p_source_side``, else to the target (the real image).
    p_source_side: float = 0.5
    p_rgb_shift: float = 0.3
    rgb_shift: int = 20  # per-channel integer shift in [-rgb_shift, rgb_shift]
    p_hsv_shift: float = 1.0
    # HSV shifts in OpenCV uint8 units (hue 0-180, sat/val 0-255). The public code's +-0.3
    # is a no-op on uint8 images, so small visible shifts are used instead.
    hue_shift: float = 3.0
    sat_shift: float = 15.0
    val_shift: float = 15.0
    p_brightness_contrast: float = 1.0
    brightness: float = 0.1  # out = in * (1 + c) + b * 255, b in [-brightness, brightness]
    contrast: float = 0.1  # c in [-contrast, contrast]
    p_frequency: float = 1.0
    p_downscale: float = 0.5  # frequency transform: downscale-upscale, else sharpen
    downscale_factors: tuple[int, ...] = (2, 4)
    sharpen_alpha: tuple[float, float] = (0.2, 0.5)
    sharpen_lightness: tuple[float, float] = (0.5, 1.0)

    # (3) source misalignment: affine about the face centre, then a smooth elastic warp.
    p_affine: float = 1.0
    translate_x: float = 0.03  # *face*, uniform in [-t, t]
    translate_y: float = 0.015  # *face*
    scale_range: tuple[float, float] = (0.95, 1 / 0.95)
    p_elastic: float = 1.0
    elastic_alpha: float = 0.005  # *face*: std of the displacement (public code: ~1 px)
    elastic_sigma: float = 0.025  # *face*: smoothness (Gaussian sigma) of the field

    # (1) mask deformation.
    p_hull_jitter: float = 0.5
    hull_jitter: float = 0.06  # max relative radial change of the (smooth) hull outline
    p_morph: float = 0.5
    morph_radius_range: tuple[float, float] = (0.01, 0.05)  # *face*: erosion/dilation radius

    # (4) two Gaussian blurs of the mask: the first (then thresholded, which shrinks the
    # mask) is larger, the second makes the soft edge. Kernel sizes and sigma are *face*.
    blur1_kernel_range: tuple[float, float] = (0.06, 0.16)
    blur2_kernel_range: tuple[float, float] = (0.03, 0.10)
    blur2_sigma_range: tuple[float, float] = (0.03, 0.29)

    # (6) one-shot swapper and reenactment artefacts (issue 29 item 2); all off by default.
    # (a) the source's face region through a ``swap_size`` px crop (square, ``swap_crop``
    # times the landmarks' box, levelled by the eye line when the landmarks give the eyes) and
    # back, with a random down/up interpolation, before blending.
    p_swap128: float = 0.0
    swap_size: int = 128
    swap_crop: float = 1.4  # crop side / the landmarks' box side (the swapper's crop margin)
    # (b) Reinhard colour transfer in LAB (per-channel mean/std) from the target's face region
    # to the source's, before blending.
    p_color_transfer: float = 0.0
    # (c) feathering: the mask times a smooth ramp this many *face* wide, from the edge of its
    # support inward: the wide soft edge of the swappers' eroded and blurred paste-back masks.
    p_feather: float = 0.0
    feather_range: tuple[float, float] = (0.1, 0.3)
    # (d) after blending, inside the mask: an unsharp mask (amount in post_sharpen_amount) or
    # a Gaussian blur (p_post_sharpen + p_post_blur <= 1: one of them at most), sigma *face*.
    p_post_sharpen: float = 0.0
    p_post_blur: float = 0.0
    post_sharpen_amount: tuple[float, float] = (0.5, 1.5)
    post_sigma_range: tuple[float, float] = (0.004, 0.012)
    # (e) reenactment-like: instead of the whole face, only the mouth or the eyes (one of the
    # two, evenly) of the source are moved by a smooth local warp (their content stretched by
    # up to +-local_warp_strength along the face's vertical, half that along the eye line,
    # and shifted a little); the mask is that region (an ellipse around it, dilated by
    # ``local_margin`` *face*, with the recipe's edge blur).
    p_local_warp: float = 0.0
    local_warp_strength: float = 0.25
    local_margin: float = 0.06

    def __post_init__(self) -> None:
        probs = {
            name: getattr(self, name)
            for name in (
                "p_source_side",
                "p_rgb_shift",
                "p_hsv_shift",
                "p_brightness_contrast",
                "p_frequency",
                "p_downscale",
                "p_affine",
                "p_elastic",
                "p_hull_jitter",
                "p_morph",
                "p_swap128",
                "p_color_transfer",
                "p_feather",
                "p_post_sharpen",
                "p_post_blur",
                "p_local_warp",
            )
        }
        for name, p in probs.items():
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be in [0, 1], got {p}")
        if not self.blend_ratios or not all(0.0 < r <= 1.0 for r in self.blend_ratios):
            raise ValueError(f"blend_ratios must be non-empty, in (0, 1]: {self.blend_ratios}")
        if not self.downscale_factors or not all(f >= 1 for f in self.downscale_factors):
            raise ValueError(f"downscale_factors must be >= 1: {self.downscale_factors}")
        for name in (
            "sharpen_alpha",
            "sharpen_lightness",
            "scale_range",
            "morph_radius_range",
            "blur1_kernel_range",
            "blur2_kernel_range",
            "blur2_sigma_range",
            "feather_range",
            "post_sharpen_amount",
            "post_sigma_range",
        ):
            lo, hi = getattr(self, name)
            if not 0.0 <= lo <= hi:
                raise ValueError(f"{name} must satisfy 0 <= low <= high, got {(lo, hi)}")
        if self.scale_range[0] <= 0.0:
            raise ValueError("scale_range must be positive")
        for name in (
            "rgb_shift",
            "hue_shift",
            "sat_shift",
            "val_shift",
            "brightness",
            "contrast",
            "translate_x",
            "translate_y",
            "elastic_alpha",
            "elastic_sigma",
            "hull_jitter",
            "local_margin",
        ):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0")
        if self.hull_jitter >= 1.0 or self.contrast >= 1.0:
            raise ValueError("hull_jitter and contrast must be < 1")
        if self.p_post_sharpen + self.p_post_blur > 1.0:
            raise ValueError("p_post_sharpen + p_post_blur must be <= 1")
        if self.swap_size < 8:
            raise ValueError(f"swap_size must be >= 8, got {self.swap_size}")
        if self.swap_crop < 1.0:
            raise ValueError(f"swap_crop must be >= 1, got {self.swap_crop}")
        if not 0.0 <= self.local_warp_strength <= 0.5:
            raise ValueError(
                f"local_warp_strength must be in [0, 0.5], got {self.local_warp_strength}"
            )
