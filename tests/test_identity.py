"""fakescope.identity: embeddings, pooling, track merging, the gallery, missing-model errors."""

from __future__ import annotations

import importlib.util
import json
import sys
from pathlib import Path

import cv2
import numpy as np
import numpy.typing as npt
import pytest

from fakescope.errors import ModelError
from fakescope.identity import (
    EMBEDDING_DIM,
    Gallery,
    IdentityEmbedder,
    face_chip,
    find_model,
    fit_same_person_calibration,
    merge_tracks,
    pool,
    same_person_probability,
)
from fakescope.identity._embed import MESH_DLIB5
from fakescope.types import FaceBox

needs_dlib = pytest.mark.skipif(
    importlib.util.find_spec("dlib") is None,
    reason="dlib (the reference the shipped ONNX is checked against) is not installed: "
    "pip install dlib-bin face-recognition-models==0.3.0 (in the dev extra)",
)


def _unit(seed: int) -> npt.NDArray[np.float32]:
    v = np.random.default_rng(seed).normal(size=EMBEDDING_DIM)
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


def _near(base: npt.NDArray[np.float32], seed: int, scale: float) -> npt.NDArray[np.float32]:
    v = base + scale * np.random.default_rng(seed).normal(size=EMBEDDING_DIM) / 11.3
    return np.asarray(v / np.linalg.norm(v), dtype=np.float32)


@pytest.fixture(scope="module")
def embedder() -> IdentityEmbedder:
    return IdentityEmbedder()  # the shipped ONNX: a missing or altered file fails here


@pytest.fixture(scope="module")
def detector():  # type: ignore[no-untyped-def]
    from fakescope.faces import FACE_DETECTORS

    return FACE_DETECTORS.create("mtcnn")


def _largest(detector, image: npt.NDArray[np.uint8]) -> FaceBox:  # type: ignore[no-untyped-def]
    faces = detector.detect(image, 0)
    assert faces, "no face found"
    return max(faces, key=lambda f: f.width)


def _hopper() -> npt.NDArray[np.uint8]:
    """Grace Hopper's portrait (public domain, US Navy), shipped with matplotlib."""
    from matplotlib import cbook

    path = cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    bgr = cv2.imread(str(path), cv2.IMREAD_COLOR)
    assert bgr is not None
    return np.ascontiguousarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))


def _warp(image: npt.NDArray[np.uint8], dx: float, dy: float, s: float) -> npt.NDArray[np.uint8]:
    h, w = image.shape[:2]
    m = np.array([[s, 0.0, dx], [0.0, s, dy]])
    out = cv2.warpAffine(image, m, (w, h), borderMode=cv2.BORDER_REFLECT)
    return np.ascontiguousarray(out, dtype=np.uint8)


# -- embeddings ----------------------------------------------------------------------------


def test_embedding_is_128d_unit_float32(embedder, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    face = _largest(detector, example_face)
    emb = embedder.embed(example_face, face)
    assert emb.shape == (EMBEDDING_DIM,) and emb.dtype == np.float32
    assert abs(float(np.linalg.norm(emb)) - 1.0) < 1e-5
    batch = embedder.embed_many([(example_face, face), (example_face, face)])
    assert batch.shape == (2, EMBEDDING_DIM)
    assert np.allclose(batch[0], emb, atol=1e-5)


@needs_dlib
def test_our_chip_matches_dlib_get_face_chip(embedder, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    import dlib

    face = _largest(detector, example_face)
    assert face.mesh is not None
    pts = face.mesh[list(MESH_DLIB5), :2]
    h, w = example_face.shape[:2]
    det = dlib.full_object_detection(
        dlib.rectangle(0, 0, w - 1, h - 1), [dlib.point(round(x), round(y)) for x, y in pts]
    )
    theirs = dlib.get_face_chip(example_face, det, 150, 0.25)
    ours = face_chip(example_face, face)
    assert ours.shape == theirs.shape == (150, 150, 3)
    assert float(np.abs(ours.astype(int) - theirs.astype(int)).mean()) < 8.0
    d = np.linalg.norm(embedder.embed_chips([ours])[0] - embedder.embed_chips([theirs])[0])
    assert d < 0.1


def test_same_face_is_much_closer_than_a_different_face(embedder, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    def emb(image: npt.NDArray[np.uint8]) -> npt.NDArray[np.float32]:
        return embedder.embed(image, _largest(detector, image))

    base = emb(example_face)
    again = emb(example_face.copy())
    moved = emb(_warp(example_face, 7.0, -5.0, 0.9))
    bigger = emb(_warp(example_face, -20.0, -20.0, 1.15))
    mirrored = emb(np.ascontiguousarray(example_face[:, ::-1]))
    other = emb(_hopper())
    assert np.linalg.norm(base - again) < 1e-4
    for variant in (moved, bigger, mirrored):
        assert np.linalg.norm(base - variant) < 0.3
    different = float(np.linalg.norm(base - other))
    # Two older white women: dlib puts them only ~0.48 apart (below its usual 0.6 threshold).
    assert different > 0.4
    assert different > 2.5 * max(np.linalg.norm(base - v) for v in (moved, bigger, mirrored))


def test_face_without_mesh_aligns_from_five_landmarks(embedder, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    face = _largest(detector, example_face)
    no_mesh = FaceBox(face.frame_index, face.box, face.score, face.landmarks, None)
    d = np.linalg.norm(embedder.embed(example_face, face) - embedder.embed(example_face, no_mesh))
    assert d < 0.2


# -- pooling and merging -------------------------------------------------------------------


def test_pool_ignores_an_outlier_frame() -> None:
    person = _unit(1)
    frames = [_near(person, s, 0.3) for s in range(6)]
    outlier = _unit(99)
    pooled = pool(np.stack([*frames, outlier]))
    assert pooled.shape == (EMBEDDING_DIM,) and pooled.dtype == np.float32
    assert abs(float(np.linalg.norm(pooled)) - 1.0) < 1e-5
    inliers = np.mean(frames, axis=0)
    inliers /= np.linalg.norm(inliers)
    naive = np.mean([*frames, outlier], axis=0)
    naive /= np.linalg.norm(naive)
    assert np.allclose(pooled, inliers, atol=1e-5)  # exactly the outlier was dropped
    assert np.linalg.norm(pooled - person) < np.linalg.norm(naive - person)
    assert np.allclose(pool(person), person, atol=1e-6)
    with pytest.raises(ValueError):
        pool(np.zeros((0, EMBEDDING_DIM)))


def test_merge_tracks_groups_the_same_person_and_separates_another() -> None:
    a, b = _unit(1), _unit(2)
    tracks = [a, b, a.copy(), _near(a, 5, 0.2), _near(b, 6, 0.2)]
    assert merge_tracks(tracks, threshold=0.6) == [0, 1, 0, 0, 1]
    assert merge_tracks(tracks, threshold=0.6, linkage="complete") == [0, 1, 0, 0, 1]
    assert merge_tracks(tracks, threshold=0.0) == [0, 1, 0, 2, 3]
    assert merge_tracks([], threshold=0.6) == []
    assert merge_tracks([a, b], threshold=10.0) == [0, 0]


def test_calibration_fit_is_decreasing_and_crosses_between_the_classes() -> None:
    rng = np.random.default_rng(0)
    same = rng.normal(0.35, 0.06, 300)
    diff = rng.normal(0.85, 0.08, 3000)
    intercept, slope = fit_same_person_calibration(same, diff)
    assert slope < 0
    assert 0.5 < -intercept / slope < 0.7
    assert same_person_probability(0.3, intercept, slope) > 0.95
    assert same_person_probability(0.95, intercept, slope) < 0.05
    assert same_person_probability(0.2) > same_person_probability(0.6) > same_person_probability(1)


# -- gallery -------------------------------------------------------------------------------


def test_gallery_round_trip_and_removal_from_disk(tmp_path: Path) -> None:
    alice, bob = _unit(10), _unit(20)
    folder = tmp_path / "gallery"
    g = Gallery(folder)
    assert g.names() == []
    assert g.match(alice).name is None
    g.add("Alice Ö", np.stack([_near(alice, s, 0.2) for s in range(3)]), {"source": "test"})
    g.add("bob", _near(bob, 7, 0.2))
    assert sorted(p.name for p in folder.iterdir()) == ["embeddings.npz", "gallery.json"]

    reopened = Gallery(folder)
    assert reopened.names() == ["Alice Ö", "bob"]
    assert reopened.embeddings("Alice Ö").shape == (3, EMBEDDING_DIM)
    hit = reopened.match(_near(alice, 42, 0.2))
    assert hit.name == "Alice Ö" and hit.distance < 0.6 and hit.same_person_probability > 0.5
    miss = reopened.match(_unit(30))
    assert miss.name is None and miss.closest is not None and miss.distance > 0.6
    assert miss.same_person_probability < 0.5
    bob_refs = reopened.embeddings("bob")

    reopened.remove("bob")
    with pytest.raises(KeyError):
        reopened.remove("bob")
    final = Gallery(folder)
    assert final.names() == ["Alice Ö"]
    assert "bob" not in (folder / "gallery.json").read_text(encoding="utf-8")
    meta = json.loads((folder / "gallery.json").read_text(encoding="utf-8"))
    assert meta["people"][0]["metadata"] == {"source": "test"}
    with np.load(folder / "embeddings.npz", allow_pickle=False) as npz:
        stored = [npz[k] for k in npz.files]
    assert len(stored) == 1
    assert not any(np.allclose(s[0], bob_refs[0]) for s in stored if len(s))
    assert final.match(_near(bob, 8, 0.2)).name is None
    assert not list(folder.glob("*.tmp"))


def test_gallery_rejects_bad_embeddings(tmp_path: Path) -> None:
    g = Gallery(tmp_path)
    with pytest.raises(ValueError):
        g.add("x", np.zeros((2, 64)))
    with pytest.raises(ValueError):
        g.add("", _unit(1))
    with pytest.raises(ValueError):
        g.match(np.zeros(3))


# -- missing engine ------------------------------------------------------------------------


def test_missing_model_file_is_a_model_error(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="missing"):
        IdentityEmbedder(model_path=tmp_path / "missing.onnx")


def test_missing_source_package_is_a_model_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None)
    with pytest.raises(ModelError, match="face-recognition-models"):
        find_model()


def test_identity_needs_no_dlib(monkeypatch: pytest.MonkeyPatch, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.setitem(sys.modules, "dlib", None)  # makes ``import dlib`` raise ImportError
    emb = IdentityEmbedder().embed(example_face, _largest(detector, example_face))
    assert emb.shape == (EMBEDDING_DIM,) and np.isfinite(emb).all()


@needs_dlib
def test_shipped_onnx_gives_dlibs_embeddings(embedder, detector, example_face) -> None:  # type: ignore[no-untyped-def]
    """The converted network against dlib's own on a real face chip and on noise chips."""
    import dlib

    ref = dlib.face_recognition_model_v1(str(find_model()))
    rng = np.random.default_rng(3)
    chips = [face_chip(example_face, _largest(detector, example_face))]
    chips += [rng.integers(0, 256, (150, 150, 3), dtype=np.uint8) for _ in range(2)]
    want = np.asarray([np.asarray(v) for v in ref.compute_face_descriptor(chips)])
    want /= np.linalg.norm(want, axis=1, keepdims=True)
    got = embedder.embed_chips(chips)
    assert float(np.linalg.norm(got - want, axis=1).max()) < 3e-3
    assert float(np.linalg.norm(got[1] - got[2])) > 0.05  # not a constant output


def test_a_model_file_with_the_wrong_sha256_is_refused(tmp_path: Path) -> None:
    bad = tmp_path / "dlib_resnet_v1.onnx"
    bad.write_bytes(b"not the model")
    with pytest.raises(ModelError, match="sha256"):
        IdentityEmbedder(model_path=bad)
