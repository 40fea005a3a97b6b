"""Self-Blended Images generator (fakescope.training.sbi): numpy/OpenCV only, no torch."""

from __future__ import annotations

import ast
import dataclasses
import hashlib
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from fakescope.faces import FACE_DETECTORS
from fakescope.io import load_example_face
from fakescope.training.sbi import SBIConfig, sbi_pair, self_blend

FAST = settings(max_examples=25, deadline=None)
FaceAndMesh = tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32]]
Mask = npt.NDArray[np.bool_]


@pytest.fixture(scope="module")
def face_and_mesh() -> FaceAndMesh:
    image = load_example_face()
    boxes = FACE_DETECTORS.create("mtcnn").detect(image, 0)
    assert boxes and boxes[0].mesh is not None
    return image, np.asarray(boxes[0].mesh[:, :2], np.float32)


@st.composite
def scenes(draw: st.DrawFn) -> tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], int]:
    """A small (possibly tiny, non-square) random image, 3-12 landmarks inside it, a seed."""
    h = draw(st.integers(2, 48))
    w = draw(st.integers(2, 48))
    n = draw(st.integers(3, 12))
    seed = draw(st.integers(0, 2**31 - 1))
    gen = np.random.default_rng(seed)
    image = gen.integers(0, 256, (h, w, 3), dtype=np.uint8)
    pts = np.stack([gen.uniform(0, w - 1, n), gen.uniform(0, h - 1, n)], axis=1)
    return image, pts.astype(np.float32), seed


@FAST
@given(scenes())
def test_outputs_and_unchanged_outside_mask(
    scene: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], int],
) -> None:
    image, pts, seed = scene
    cfg = SBIConfig()
    real, fake, mask = sbi_pair(image, pts, np.random.default_rng(seed), cfg)
    assert fake.shape == real.shape == image.shape and fake.dtype == real.dtype == np.uint8
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32
    assert 0.0 < mask.max() <= max(cfg.blend_ratios) + 1e-6 and mask.min() >= 0.0
    # the blurred mask is normalised to 1 then scaled: its peak is one of the blend ratios
    assert np.isclose(cfg.blend_ratios, mask.max(), atol=1e-6).any()
    outside = mask == 0
    assert np.array_equal(fake[outside], real[outside])
    # self_blend is the same recipe with the same random draws
    fake2, mask2 = self_blend(image, pts, np.random.default_rng(seed), cfg)
    assert np.array_equal(fake, fake2) and np.array_equal(mask, mask2)


@settings(max_examples=10, deadline=None)
@given(scenes(), st.sampled_from([(0.25,), (0.5, 0.75), (1.0,)]))
def test_mask_never_exceeds_blend_ratio(
    scene: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], int],
    ratios: tuple[float, ...],
) -> None:
    image, pts, seed = scene
    _, mask = self_blend(image, pts, np.random.default_rng(seed), SBIConfig(blend_ratios=ratios))
    assert mask.max() <= max(ratios) + 1e-6


def test_deterministic_under_seed_and_varies_across_seeds(face_and_mesh: FaceAndMesh) -> None:
    image, mesh = face_and_mesh
    a = sbi_pair(image, mesh, np.random.default_rng(7))
    b = sbi_pair(image, mesh, np.random.default_rng(7))
    for x, y in zip(a, b, strict=True):
        assert x.tobytes() == y.tobytes()
    c = sbi_pair(image, mesh, np.random.default_rng(8))
    assert not np.array_equal(a[1], c[1]) or not np.array_equal(a[2], c[2])
    assert image.tobytes() == load_example_face().tobytes()  # input not modified


def test_example_face_mask_covers_face_not_corners(face_and_mesh: FaceAndMesh) -> None:
    image, mesh = face_and_mesh
    h, w = image.shape[:2]
    nose_x, nose_y = (round(float(v)) for v in mesh[1])
    for seed in range(4):
        real, fake, mask = sbi_pair(image, mesh, np.random.default_rng(seed))
        assert mask[nose_y, nose_x] > 0.2
        corners = mask[[0, 0, h - 1, h - 1], [0, w - 1, 0, w - 1]]
        assert np.all(corners == 0)
        assert np.array_equal(fake[mask == 0], real[mask == 0])
        assert not np.array_equal(fake, real)


def test_full_blend_ratio_reaches_one_in_face_centre(face_and_mesh: FaceAndMesh) -> None:
    image, mesh = face_and_mesh
    nose_x, nose_y = (round(float(v)) for v in mesh[1])
    cfg = SBIConfig(blend_ratios=(1.0,))
    for seed in range(3):
        _, mask = self_blend(image, mesh, np.random.default_rng(seed), cfg)
        assert mask[nose_y, nose_x] > 0.99


def test_five_landmarks_and_mesh_with_z(face_and_mesh: FaceAndMesh) -> None:
    image, mesh = face_and_mesh
    # eyes, nose tip, mouth corners (FaceMesh indices)
    five = mesh[[33, 263, 1, 61, 291]]
    fake, mask = self_blend(image, five, np.random.default_rng(0))
    assert mask.max() > 0 and fake.shape == image.shape
    xyz = np.concatenate([mesh, np.zeros((len(mesh), 1), np.float32)], axis=1)
    f1, m1 = self_blend(image, xyz, np.random.default_rng(1))
    f2, m2 = self_blend(image, mesh, np.random.default_rng(1))
    assert np.array_equal(f1, f2) and np.array_equal(m1, m2)


def test_tiny_and_landmarks_partly_outside() -> None:
    image = np.full((3, 5, 3), 128, np.uint8)
    pts = np.array([[0, 0], [4, 0], [2, 2]], np.float32)
    fake, mask = self_blend(image, pts, np.random.default_rng(0))
    assert fake.shape == (3, 5, 3) and mask.shape == (3, 5)
    # landmarks far outside the image: nothing to blend, still valid output
    far = np.array([[500, 500], [520, 500], [510, 520]], np.float32)
    real, fake, mask = sbi_pair(image, far, np.random.default_rng(0))
    assert not mask.any() and np.array_equal(real, fake)


def test_invalid_inputs_raise() -> None:
    image = np.zeros((16, 16, 3), np.uint8)
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="at least 3"):
        self_blend(image, np.array([[1, 1], [5, 5]], np.float32), rng)
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(image, np.zeros((5, 4), np.float32), rng)
    with pytest.raises(ValueError, match="landmarks"):
        self_blend(image, np.zeros(10, np.float32), rng)
    with pytest.raises(ValueError, match="finite"):
        self_blend(image, np.array([[1, 1], [5, np.nan], [3, 8]], np.float32), rng)
    pts = np.array([[1, 1], [10, 2], [5, 12]], np.float32)
    with pytest.raises(ValueError, match="shape"):
        self_blend(np.zeros((16, 16), np.uint8), pts, rng)
    with pytest.raises(ValueError, match="shape"):
        self_blend(np.zeros((16, 16, 4), np.uint8), pts, rng)
    with pytest.raises(ValueError, match="uint8"):
        self_blend(np.zeros((16, 16, 3), np.float32), pts, rng)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="blend_ratios"):
        SBIConfig(blend_ratios=())
    with pytest.raises(ValueError, match="p_morph"):
        SBIConfig(p_morph=1.5)


def test_sbi_cache_crop_replicates_the_border_like_align_face() -> None:
    from fakescope.faces import align_face
    from fakescope.training.prepare_sbi import crop_face
    from fakescope.types import FaceBox

    image = load_example_face()
    face = FACE_DETECTORS.create("mtcnn").detect(image, 0)[0]
    assert face.mesh is not None
    # Cut the frame just inside the face box's top-left corner: the loose SBI crop (1.6 x the
    # box) and the aligned model crop then both run off the top and left edges.
    x0, y0 = int(face.box[0]) + 2, int(face.box[1]) + 2
    frame = np.ascontiguousarray(np.clip(image[y0:, x0:], 30, 255))  # no black in the frame
    shift = np.array([x0, y0], np.float32)
    box = (face.box[0] - x0, face.box[1] - y0, face.box[2] - x0, face.box[3] - y0)
    mesh = face.mesh.copy()
    mesh[:, :2] -= shift
    crop, points = crop_face(frame, box, mesh, 128, 1.6)
    assert crop.shape == (128, 128, 3) and points.shape == (468, 2)
    assert crop[:8].min() >= 30 and crop[:, :8].min() >= 30  # no black band
    shifted = FaceBox(0, box, 1.0, np.asarray(face.landmarks - shift, np.float32), mesh)
    aligned = align_face(frame, shifted, 128, 0.5).image
    # Off both edges, both crops repeat the frame's corner pixel: the same border rule.
    assert np.array_equal(crop[0, 0], frame[0, 0])
    assert np.array_equal(aligned[0, 0], frame[0, 0])


def test_does_not_import_torch() -> None:
    """The recipe's three modules import numpy, OpenCV and each other only (no torch), so the
    generator runs in data loaders and tests."""
    import fakescope.training.sbi as sbi
    import fakescope.training.sbi_config as sbi_config
    import fakescope.training.sbi_oneshot as sbi_oneshot

    for module in (sbi, sbi_config, sbi_oneshot):
        tree = ast.parse(Path(str(module.__file__)).read_text(encoding="utf-8"))
        imported = {a.name for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
        imported |= {n.module or "" for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
        own = {"fakescope.training.sbi_config", "fakescope.training.sbi_oneshot"}
        allowed = {"__future__", "math", "dataclasses", "cv2", "numpy", "numpy.typing"}
        assert imported <= allowed | own, module.__name__


# --------------------------------------------------------------------------------------------
# One-shot swapper and reenactment steps (issue 29 item 2): off by default, each confined to
# its mask.

NEW_STEPS = {
    "swap128": {"p_swap128": 1.0},
    "color_transfer": {"p_color_transfer": 1.0},
    "feather": {"p_feather": 1.0},
    "post_sharpen": {"p_post_sharpen": 1.0},
    "post_blur": {"p_post_blur": 1.0},
    "local_warp": {"p_local_warp": 1.0},
}
# Every knob of the new steps away from its default, with every probability left at 0.
NEW_KNOBS_PROBS_ZERO = {
    "swap_size": 32,
    "swap_crop": 2.0,
    "feather_range": (0.3, 0.4),
    "post_sharpen_amount": (2.0, 3.0),
    "post_sigma_range": (0.02, 0.03),
    "local_warp_strength": 0.5,
    "local_margin": 0.2,
}
# Recorded with the recipe before the new steps existed (OpenCV 5.1.0, numpy 2.4.6): a hash
# of (real, fake, mask) of the synthetic scene below, and the generator's next draw.
GOLDEN = {
    0: ("bf0edba6387e2af5", 0.9237903906952366),
    1: ("a1abac9fb9ec53fd", 0.6288090579296824),
    2: ("531909dc8905ab77", 0.3225446505865517),
}
GOLDEN_CV2 = "5.1.0"


def _synthetic_scene() -> FaceAndMesh:
    gen = np.random.default_rng(123)
    yy, xx = np.mgrid[0:96, 0:80]
    img = (np.stack([xx * 3, yy * 2, xx + yy], -1) % 256).astype(np.uint8)
    img = np.clip(img.astype(int) + gen.integers(-20, 21, img.shape), 0, 255).astype(np.uint8)
    t = np.linspace(0, 2 * np.pi, 24, endpoint=False)
    pts = np.stack([40 + 25 * np.cos(t), 50 + 32 * np.sin(t)], 1).astype(np.float32)
    return img, pts


@pytest.fixture(scope="module")
def big_face(face_and_mesh: FaceAndMesh) -> FaceAndMesh:
    """The example face at twice its size (face ~190 px, larger than the swapper's 128)."""
    image, mesh = face_and_mesh
    big = cv2.resize(image, None, fx=2, fy=2, interpolation=cv2.INTER_CUBIC)
    return np.ascontiguousarray(big, np.uint8), (mesh * 2).astype(np.float32)


def test_default_recipe_reproduces_the_recorded_bytes_and_draws() -> None:
    image, pts = _synthetic_scene()
    for seed, (digest, next_draw) in GOLDEN.items():
        rng = np.random.default_rng(seed)
        real, fake, mask = sbi_pair(image, pts, rng)
        # the new steps draw nothing at their default probability 0
        assert rng.random() == next_draw
        if cv2.__version__ == GOLDEN_CV2:
            got = hashlib.sha256(real.tobytes() + fake.tobytes() + mask.tobytes()).hexdigest()
            assert got[:16] == digest, f"seed {seed}: the default recipe's bytes changed"


def test_new_steps_are_off_by_default_and_inert_at_probability_zero(
    face_and_mesh: FaceAndMesh,
) -> None:
    default = SBIConfig()
    for knobs in NEW_STEPS.values():
        for name in knobs:
            assert getattr(default, name) == 0.0
    knobs_only = SBIConfig(**NEW_KNOBS_PROBS_ZERO)  # type: ignore[arg-type]
    for image, pts in (face_and_mesh, _synthetic_scene()):
        for seed in range(3):
            rng_a, rng_b = np.random.default_rng(seed), np.random.default_rng(seed)
            a = sbi_pair(image, pts, rng_a, default)
            b = sbi_pair(image, pts, rng_b, knobs_only)
            for x, y in ((a[0], b[0]), (a[1], b[1]), (a[2], b[2])):
                assert x.tobytes() == y.tobytes()
            assert rng_a.random() == rng_b.random()


@pytest.mark.parametrize("step", sorted(NEW_STEPS))
def test_each_new_step_changes_the_fake_only_inside_its_mask(
    big_face: FaceAndMesh, step: str
) -> None:
    image, mesh = big_face
    on = SBIConfig(**NEW_STEPS[step])  # type: ignore[arg-type]
    changed = 0
    for seed in range(3):
        real0, fake0, mask0 = sbi_pair(image, mesh, np.random.default_rng(seed))
        real1, fake1, mask1 = sbi_pair(image, mesh, np.random.default_rng(seed), on)
        assert real1.tobytes() == real0.tobytes()  # the target is never touched
        assert np.array_equal(fake1[mask1 == 0], real1[mask1 == 0])
        assert mask1.max() > 0 and np.isclose(on.blend_ratios, mask1.max(), atol=1e-6).any()
        moved = np.any(fake1 != fake0, axis=2)
        changed += int(moved.sum())
        if step == "local_warp":  # its own mask: see test_local_warp_moves_only_the_mouth...
            assert (mask1 > 0).sum() < 0.5 * (mask0 > 0).sum()
            continue
        if step == "feather":  # same support, a wider edge inside it
            assert np.array_equal(mask1 > 0, mask0 > 0)
            assert np.all(mask1 <= mask0 + 1e-6) and mask1.sum() < mask0.sum()
        else:
            assert mask1.tobytes() == mask0.tobytes()
        assert not moved[mask0 == 0].any()
    assert changed > 0


def test_swap128_round_trip_removes_high_frequencies() -> None:
    # A face-sized patch of fine texture, 240 px across: the 128 px crop cannot hold it.
    gen = np.random.default_rng(5)
    image = gen.integers(0, 256, (360, 360, 3), dtype=np.uint8)
    t = np.linspace(0, 2 * np.pi, 40, endpoint=False)
    pts = np.stack([180 + 110 * np.cos(t), 180 + 120 * np.sin(t)], 1).astype(np.float32)
    plain = SBIConfig(
        blend_ratios=(1.0,),
        p_source_side=1.0,
        p_rgb_shift=0.0,
        p_hsv_shift=0.0,
        p_brightness_contrast=0.0,
        p_frequency=0.0,
        p_affine=0.0,
        p_elastic=0.0,
    )
    swapped = dataclasses.replace(plain, p_swap128=1.0)

    def laplacian_var(img: npt.NDArray[np.uint8], where: npt.NDArray[np.bool_]) -> float:
        grey = cv2.cvtColor(img, cv2.COLOR_RGB2GRAY).astype(np.float32)
        return float(cv2.Laplacian(grey, cv2.CV_32F)[where].var())

    for seed in range(6):  # covers the down-sampling interpolations
        _, before, mask = sbi_pair(image, pts, np.random.default_rng(seed), plain)
        _, after, mask1 = sbi_pair(image, pts, np.random.default_rng(seed), swapped)
        inside = mask >= 0.999
        assert inside.sum() > 10_000 and np.array_equal(mask, mask1)
        assert laplacian_var(after, inside) < 0.35 * laplacian_var(before, inside)
        assert np.array_equal(after[mask == 0], before[mask == 0])


def test_color_transfer_moves_the_source_lab_mean_to_the_target(big_face: FaceAndMesh) -> None:
    image, mesh = big_face
    shifted = SBIConfig(
        blend_ratios=(1.0,),
        p_source_side=1.0,  # colour shifts on the source only: the real is the image
        p_rgb_shift=1.0,
        rgb_shift=40,
        p_hsv_shift=1.0,
        hue_shift=8.0,
        p_frequency=0.0,
        p_affine=0.0,
        p_elastic=0.0,
    )
    matched = dataclasses.replace(shifted, p_color_transfer=1.0)

    def lab_gap(real: npt.NDArray[np.uint8], fake: npt.NDArray[np.uint8], core: Mask) -> float:
        def lab_mean(img: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
            lab = cv2.cvtColor(img.astype(np.float32) / 255, cv2.COLOR_RGB2LAB)
            return np.asarray(lab[core].mean(axis=0), np.float32)

        return float(np.linalg.norm(lab_mean(fake) - lab_mean(real)))

    gaps = []
    for seed in range(5):
        real, fake, mask = sbi_pair(image, mesh, np.random.default_rng(seed), shifted)
        real1, fake1, mask1 = sbi_pair(image, mesh, np.random.default_rng(seed), matched)
        assert real1.tobytes() == real.tobytes() == image.tobytes()
        assert np.array_equal(mask1, mask)
        core = mask >= 0.999
        gaps.append((lab_gap(real, fake, core), lab_gap(real1, fake1, core)))
    assert max(before for before, _ in gaps) > 5.0  # the source's colours were moved
    for before, after in gaps:
        assert after < max(1.0, 0.3 * before)


def test_local_warp_moves_only_the_mouth_or_the_eyes(big_face: FaceAndMesh) -> None:
    image, mesh = big_face
    h, w = image.shape[:2]
    cfg = SBIConfig(p_local_warp=1.0, blend_ratios=(1.0,))
    span = mesh.max(axis=0) - mesh.min(axis=0)
    face = float(span.mean())
    yy, xx = np.mgrid[0:h, 0:w]
    lips = mesh[[61, 291, 0, 17, 13, 14]]
    eyes = mesh[[33, 133, 159, 145, 362, 263, 386, 374]]

    def near(points: npt.NDArray[np.float32], radius: float) -> npt.NDArray[np.bool_]:
        d = np.min([np.hypot(xx - x, yy - y) for x, y in points], axis=0)
        return np.asarray(d <= radius)

    seen = set()
    for seed in range(8):
        real, fake, mask = sbi_pair(image, mesh, np.random.default_rng(seed), cfg)
        assert np.array_equal(fake[mask == 0], real[mask == 0]) and (fake != real).any()
        part = "mouth" if mask[round(mesh[13][1]), round(mesh[13][0])] > 0.5 else "eyes"
        seen.add(part)
        centres = lips[4:] if part == "mouth" else eyes
        assert all(mask[round(y), round(x)] > 0.5 for x, y in centres)
        # everything the step touched lies near the part's landmarks
        assert not (mask > 0)[~near(lips if part == "mouth" else eyes, 0.3 * face)].any()
        for i in (10, 152, 234, 454):  # forehead, chin, cheeks
            assert mask[round(mesh[i][1]), round(mesh[i][0])] == 0
    assert seen == {"mouth", "eyes"}
    # without the colour/frequency transforms, only the warp makes the fake differ
    pure = dataclasses.replace(
        cfg, p_rgb_shift=0.0, p_hsv_shift=0.0, p_brightness_contrast=0.0, p_frequency=0.0
    )
    for seed in range(4):
        real, fake, mask = sbi_pair(image, mesh, np.random.default_rng(seed), pure)
        assert real.tobytes() == image.tobytes()
        gap = np.abs(fake.astype(np.float32) - real.astype(np.float32)).max(axis=2)
        assert gap[mask > 0.5].mean() > 2.0 and gap[mask == 0].max() == 0


@settings(max_examples=15, deadline=None)
@given(scenes(), st.sampled_from([0.5, 1.0]))
def test_new_steps_keep_the_outputs_valid_on_any_scene(
    scene: tuple[npt.NDArray[np.uint8], npt.NDArray[np.float32], int], p: float
) -> None:
    image, pts, seed = scene
    cfg = SBIConfig(
        p_swap128=p,
        p_color_transfer=p,
        p_feather=p,
        p_post_sharpen=p / 2,
        p_post_blur=p / 2,
        p_local_warp=p,
    )
    real, fake, mask = sbi_pair(image, pts, np.random.default_rng(seed), cfg)
    assert fake.shape == real.shape == image.shape and fake.dtype == np.uint8
    assert mask.shape == image.shape[:2] and mask.dtype == np.float32 and mask.min() >= 0.0
    assert np.isclose(cfg.blend_ratios, mask.max(), atol=1e-6).any()
    assert np.array_equal(fake[mask == 0], real[mask == 0])
    fake2, mask2 = self_blend(image, pts, np.random.default_rng(seed), cfg)
    assert np.array_equal(fake, fake2) and np.array_equal(mask, mask2)


def test_new_steps_five_points_and_invalid_knobs(face_and_mesh: FaceAndMesh) -> None:
    image, mesh = face_and_mesh
    five = mesh[[33, 263, 1, 61, 291]]
    every = {k: v for knobs in NEW_STEPS.values() for k, v in knobs.items()}
    cfg = SBIConfig(**(every | {"p_post_blur": 0.0}))  # type: ignore[arg-type]
    real, fake, mask = sbi_pair(image, five, np.random.default_rng(0), cfg)
    assert mask.max() > 0 and np.array_equal(fake[mask == 0], real[mask == 0])
    for bad, match in (
        ({"p_swap128": 1.5}, "p_swap128"),
        ({"p_local_warp": -0.1}, "p_local_warp"),
        ({"p_post_sharpen": 0.6, "p_post_blur": 0.6}, "p_post_sharpen"),
        ({"swap_size": 4}, "swap_size"),
        ({"swap_crop": 0.5}, "swap_crop"),
        ({"feather_range": (0.3, 0.1)}, "feather_range"),
        ({"local_warp_strength": 0.8}, "local_warp_strength"),
    ):
        with pytest.raises(ValueError, match=match):
            SBIConfig(**bad)


def test_training_config_passes_the_new_keys(tmp_path: Path) -> None:
    from fakescope.errors import ConfigError
    from fakescope.training.config import resolve

    path = tmp_path / "c.yaml"
    path.write_text(
        "sbi:\n  p_swap128: 0.5\n  p_color_transfer: 0.5\n  p_feather: 0.3\n"
        "  feather_range: [0.1, 0.2]\n  p_post_sharpen: 0.2\n  p_post_blur: 0.1\n"
        "  p_local_warp: 0.25\n  swap_size: 96\n",
        encoding="utf-8",
    )
    sbi = resolve(path, ["sbi.local_warp_strength=0.3"]).sbi.to_sbi_config()
    assert (sbi.p_swap128, sbi.p_color_transfer, sbi.p_feather) == (0.5, 0.5, 0.3)
    assert (sbi.p_post_sharpen, sbi.p_post_blur, sbi.p_local_warp) == (0.2, 0.1, 0.25)
    assert sbi.feather_range == (0.1, 0.2) and sbi.swap_size == 96
    assert sbi.local_warp_strength == 0.3
    assert resolve(None).sbi.to_sbi_config() == SBIConfig()
    with pytest.raises(ConfigError, match="p_swap256"):
        resolve(None, ["sbi.p_swap256=0.5"])
    with pytest.raises(ConfigError, match="p_post_sharpen"):
        resolve(None, ["sbi.p_post_sharpen=0.7", "sbi.p_post_blur=0.7"])
