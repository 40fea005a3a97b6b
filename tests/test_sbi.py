"""Self-Blended Images generator (fakescope.training.sbi): numpy/OpenCV only, no torch."""

from __future__ import annotations

import ast
from pathlib import Path

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
    import fakescope.training.sbi as sbi

    tree = ast.parse(Path(sbi.__file__).read_text(encoding="utf-8"))
    imported = {
        a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names
    }
    imported |= {
        (n.module or "").split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)
    }
    assert imported <= {"__future__", "math", "dataclasses", "cv2", "numpy"}
